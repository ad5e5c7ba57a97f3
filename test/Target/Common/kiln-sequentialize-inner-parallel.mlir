// RUN: kiln-opt %s --kiln-sequentialize-inner-parallel --split-input-file | FileCheck %s

// A 2-D parallel loop with enough rows keeps the rows parallel and walks
// each row in a sequential (contiguous, vectorizable) inner loop.
// CHECK-LABEL: func.func @rows
// CHECK: scf.parallel (%[[I:.*]]) = (%{{.*}}) to (%{{.*}}) step (%{{.*}}) {
// CHECK-NEXT: scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT: memref.store %{{.*}}, %{{.*}}[%[[I]], %[[J]]]
func.func @rows(%m: memref<64x32xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c64, %c32) step (%c1, %c1) {
    memref.store %v, %m[%i, %j] : memref<64x32xf32>
  }
  return
}

// -----

// Too few rows to keep two threads busy: both dims stay parallel.
// CHECK-LABEL: func.func @few_rows
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) =
// CHECK-NOT: scf.for
func.func @few_rows(%m: memref<2x4096xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4096 = arith.constant 4096 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c2, %c4096) step (%c1, %c1) {
    memref.store %v, %m[%i, %j] : memref<2x4096xf32>
  }
  return
}

// -----

// A parallel loop nested in another becomes sequential.
// CHECK-LABEL: func.func @nested
// CHECK: scf.parallel (%{{.*}}) =
// CHECK: scf.for
// CHECK-NOT: scf.parallel
func.func @nested(%m: memref<64x32xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    scf.parallel (%j) = (%c0) to (%c32) step (%c1) {
      memref.store %v, %m[%i, %j] : memref<64x32xf32>
    }
  }
  return
}

// -----

// A parallel loop in an scf.for becomes sequential, unless every loop
// around it is an scf.for marked kiln.parallel_body (each iteration is
// work enough for a fork and join).
// CHECK-LABEL: func.func @in_for
// CHECK: scf.for
// CHECK-NEXT: scf.for
// CHECK-NOT: scf.parallel
// CHECK-LABEL: func.func @in_parallel_body
// CHECK: scf.for
// CHECK-NEXT: scf.parallel
// CHECK: } {kiln.parallel_body}
// CHECK-LABEL: func.func @in_parallel_body_in_for
// CHECK: scf.for
// CHECK: scf.for
// CHECK-NEXT: scf.for
// CHECK-NOT: scf.parallel
func.func @in_for(%m: memref<64x32xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %c64 step %c1 {
    scf.parallel (%j) = (%c0) to (%c32) step (%c1) {
      memref.store %v, %m[%i, %j] : memref<64x32xf32>
    }
  }
  return
}
func.func @in_parallel_body(%m: memref<64x32xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.for %i = %c0 to %c64 step %c1 {
    scf.parallel (%j) = (%c0) to (%c32) step (%c1) {
      memref.store %v, %m[%i, %j] : memref<64x32xf32>
    }
  } {kiln.parallel_body}
  return
}
func.func @in_parallel_body_in_for(%m: memref<64x32xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.for %h = %c0 to %c1 step %c1 {
    scf.for %i = %c0 to %c64 step %c1 {
      scf.parallel (%j) = (%c0) to (%c32) step (%c1) {
        memref.store %v, %m[%i, %j] : memref<64x32xf32>
      }
    } {kiln.parallel_body}
  }
  return
}
