// RUN: kiln-opt %s --kiln-strided-copies-to-loops | FileCheck %s

// A copy into (or out of) a strided buffer becomes linalg.copy, a loop
// nest that runs on threads and vectorizes instead of the support
// library's element-by-element memrefCopy; copies between contiguous
// buffers (identity layouts of any shape) stay memref.copy (memcpy).
// CHECK-LABEL: func.func @copies
// CHECK-SAME: (%[[SRC:.*]]: memref<4x128x768xf32>, %[[PAD:.*]]: memref<4x132x768xf32>, %[[DST:.*]]: memref<4x128x768xf32>, %[[DYN:.*]]: memref<?x768xf32>, %[[DYN2:.*]]: memref<?x768xf32>)
// CHECK: %[[VIEW:.*]] = memref.subview %[[PAD]]
// CHECK: linalg.copy ins(%[[SRC]] : memref<4x128x768xf32>) outs(%[[VIEW]] : memref<4x128x768xf32, strided<[101376, 768, 1]>>)
// CHECK: linalg.copy ins(%[[VIEW]] : memref<4x128x768xf32, strided<[101376, 768, 1]>>) outs(%[[DST]] : memref<4x128x768xf32>)
// CHECK: memref.copy %[[SRC]], %[[DST]] : memref<4x128x768xf32> to memref<4x128x768xf32>
// CHECK: memref.copy %[[DYN]], %[[DYN2]] : memref<?x768xf32> to memref<?x768xf32>
// CHECK: %[[COLS:.*]] = memref.subview %[[DYN]]
// CHECK: linalg.copy ins(%[[COLS]] : memref<?x512xf32, strided<[768, 1]>>) outs(%{{.*}} : memref<?x512xf32, strided<[768, 1]>>)
// CHECK-NOT: memref.copy
func.func @copies(%src: memref<4x128x768xf32>, %pad: memref<4x132x768xf32>, %dst: memref<4x128x768xf32>,
                  %dyn: memref<?x768xf32>, %dyn2: memref<?x768xf32>) {
  %view = memref.subview %pad[0, 0, 0] [4, 128, 768] [1, 1, 1] : memref<4x132x768xf32> to memref<4x128x768xf32, strided<[101376, 768, 1]>>
  memref.copy %src, %view : memref<4x128x768xf32> to memref<4x128x768xf32, strided<[101376, 768, 1]>>
  memref.copy %view, %dst : memref<4x128x768xf32, strided<[101376, 768, 1]>> to memref<4x128x768xf32>
  memref.copy %src, %dst : memref<4x128x768xf32> to memref<4x128x768xf32>
  memref.copy %dyn, %dyn2 : memref<?x768xf32> to memref<?x768xf32>
  %c0 = arith.constant 0 : index
  %n = memref.dim %dyn, %c0 : memref<?x768xf32>
  %cols = memref.subview %dyn[0, 0] [%n, 512] [1, 1] : memref<?x768xf32> to memref<?x512xf32, strided<[768, 1]>>
  %cols2 = memref.subview %dyn2[0, 0] [%n, 512] [1, 1] : memref<?x768xf32> to memref<?x512xf32, strided<[768, 1]>>
  memref.copy %cols, %cols2 : memref<?x512xf32, strided<[768, 1]>> to memref<?x512xf32, strided<[768, 1]>>
  return
}
