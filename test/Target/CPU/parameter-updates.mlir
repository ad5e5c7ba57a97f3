// RUN: kiln-opt %s --kiln-cpu-pipeline --mlir-print-ir-after=one-shot-bufferize -o /dev/null 2>&1 | FileCheck %s
// RUN: kiln-opt %s --kiln-optimizer --kiln-cpu-pipeline -o /dev/null

// Parameter updates are computed in the parameters' own buffers: the
// written arguments are writable, every other argument read-only, and the
// update writes straight into the argument (only the self-copy of the
// materialization remains, which canonicalization deletes).
// CHECK-LABEL: func.func @step
// CHECK-SAME: %[[X:[a-z0-9]+]]: memref<4xf32>
// CHECK-SAME: %[[W:[a-z0-9]+]]: memref<4xf32> {{.*}}kiln.parameter = "w"
// CHECK: linalg.generic {{.*}} ins(%[[W]], %[[X]] : memref<4xf32>, memref<4xf32>) outs(%[[W]] : memref<4xf32>)
// CHECK: memref.copy %[[W]], %[[W]]
// CHECK-LABEL: func.func @loss
kiln.parameter @w : tensor<4xf32> init zeros trainable
func.func @step(%x: tensor<4xf32>) {
  %w = kiln.read_param @w : tensor<4xf32>
  %new = kiln.sub %w, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  kiln.write_param @w, %new : tensor<4xf32>
  return
}
func.func @loss(%x: tensor<4xf32>) -> tensor<f32> {
  %w = kiln.read_param @w : tensor<4xf32>
  %p = kiln.mul %w, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %l = kiln.reduce sum %p axes = [0] : (tensor<4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
