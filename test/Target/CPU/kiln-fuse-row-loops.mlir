// RUN: kiln-opt %s --split-input-file --kiln-fuse-row-loops | FileCheck %s

// A row sum, then the rows divided by it: the second loop reads only its
// own row of what the first wrote (a fresh buffer; the [128, 1] view keeps
// the row dim), and the allocation between them moves up. One loop.
// CHECK-LABEL: func.func @row_local(
// CHECK: %[[SUM:.+]] = memref.alloc() : memref<128xf32>
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<128x64xf32>
// CHECK: %[[VIEW:.+]] = memref.expand_shape %[[SUM]]
// CHECK: scf.parallel (%[[I:.+]]) =
// CHECK: memref.store %{{.*}}, %[[SUM]][%[[I]]]
// CHECK: memref.load %[[VIEW]][%[[I]], %{{.*}}]
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]], %{{.*}}]
// CHECK-NOT: scf.parallel
// CHECK: return %[[OUT]]
func.func @row_local(%x: memref<128x64xf32>) -> memref<128x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %zero = arith.constant 0.0 : f32
  %sum = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %s = scf.for %j = %c0 to %c64 step %c1 iter_args(%acc = %zero) -> f32 {
      %v = memref.load %x[%i, %j] : memref<128x64xf32>
      %a = arith.addf %acc, %v : f32
      scf.yield %a : f32
    }
    memref.store %s, %sum[%i] : memref<128xf32>
    scf.reduce
  }
  %out = memref.alloc() : memref<128x64xf32>
  %view = memref.expand_shape %sum [[0, 1]] output_shape [128, 1] : memref<128xf32> into memref<128x1xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    scf.for %j = %c0 to %c64 step %c1 {
      %v = memref.load %x[%i, %j] : memref<128x64xf32>
      %s = memref.load %view[%i, %c0] : memref<128x1xf32>
      %d = arith.divf %v, %s : f32
      memref.store %d, %out[%i, %j] : memref<128x64xf32>
    }
    scf.reduce
  }
  return %out : memref<128x64xf32>
}

// -----

// The second loop reads row 0 of what the first wrote (every iteration
// needs the first loop's iteration 0 done): two loops.
// CHECK-LABEL: func.func @other_row(
// CHECK-COUNT-2: scf.parallel
func.func @other_row(%x: memref<128xf32>) -> memref<128xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %t = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %t[%i] : memref<128xf32>
    scf.reduce
  }
  %out = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %t[%c0] : memref<128xf32>
    memref.store %v, %out[%i] : memref<128xf32>
    scf.reduce
  }
  return %out : memref<128xf32>
}

// -----

// A written function argument may alias what the other loop reads; other
// bounds; a copy between the loops; a view that moves rows (a subview
// from row 1): each keeps its loops apart.
// CHECK-LABEL: func.func @not_fused(
// CHECK-COUNT-3: scf.parallel
// CHECK: memref.copy
// CHECK-COUNT-3: scf.parallel
func.func @not_fused(%x: memref<128xf32>, %y: memref<128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c127 = arith.constant 127 : index
  %c128 = arith.constant 128 : index
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %y[%i] : memref<128xf32>
    scf.reduce
  }
  %t = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %t[%i] : memref<128xf32>
    scf.reduce
  }
  %t2 = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %t[%i] : memref<128xf32>
    memref.store %v, %t2[%i] : memref<128xf32>
    scf.reduce
  }
  %u = memref.alloc() : memref<128xf32>
  memref.copy %t2, %u : memref<128xf32> to memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %u[%i] : memref<128xf32>
    memref.store %v, %t2[%i] : memref<128xf32>
    scf.reduce
  }
  %w = memref.alloc() : memref<128xf32>
  scf.parallel (%i) = (%c0) to (%c127) step (%c1) {
    %v = memref.load %x[%i] : memref<128xf32>
    memref.store %v, %w[%i] : memref<128xf32>
    scf.reduce
  }
  %shifted = memref.subview %w[1] [127] [1] : memref<128xf32> to memref<127xf32, strided<[1], offset: 1>>
  scf.parallel (%i) = (%c0) to (%c127) step (%c1) {
    %v = memref.load %shifted[%i] : memref<127xf32, strided<[1], offset: 1>>
    memref.store %v, %u[%i] : memref<128xf32>
    scf.reduce
  }
  return
}
