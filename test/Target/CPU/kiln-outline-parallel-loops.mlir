// RUN: kiln-opt %s --kiln-outline-parallel-loops --split-input-file | FileCheck %s

// Each outermost scf.parallel of a function with more than one moves into
// a private function of its own, called where the loop was: the values it
// uses from above are its arguments (the loop's operands, then the values
// its body uses, in order), constants are cloned
// in, and a reduction's results come back through the call. The functions
// get internal linkage and LLVM's noinline.

// CHECK-LABEL: func.func private @two_loops_parallel0
// CHECK-SAME: (%[[N:.*]]: index, %[[X:.*]]: f32, %[[A:.*]]: memref<?xf32>)
// CHECK-SAME: attributes {llvm.linkage = #llvm.linkage<internal>, passthrough = ["noinline"]}
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK: scf.parallel (%[[I:.*]]) = (%[[C0]]) to (%[[N]]) step (%[[C1]])
// CHECK: memref.store %[[X]], %[[A]][%[[I]]]
// CHECK: return
// CHECK-LABEL: func.func private @two_loops_parallel1
// CHECK-SAME: (%{{.*}}: index, %{{.*}}: memref<?xf32>) -> f32
// CHECK: %[[SUM:.*]] = scf.parallel
// CHECK: scf.reduce
// CHECK: return %[[SUM]] : f32
// CHECK-LABEL: func.func @two_loops
// CHECK-SAME: (%[[FA:.*]]: memref<?xf32>, %[[FN:.*]]: index, %[[FX:.*]]: f32)
// CHECK-NOT: scf.parallel
// CHECK: call @two_loops_parallel0(%[[FN]], %[[FX]], %[[FA]]) : (index, f32, memref<?xf32>) -> ()
// CHECK: %[[R:.*]] = call @two_loops_parallel1(%[[FN]], %[[FA]]) : (index, memref<?xf32>) -> f32
// CHECK: return %[[R]]
func.func @two_loops(%a: memref<?xf32>, %n: index, %x: f32) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %x, %a[%i] : memref<?xf32>
    scf.reduce
  }
  %sum = scf.parallel (%i) = (%c0) to (%n) step (%c1) init (%zero) -> f32 {
    %v = memref.load %a[%i] : memref<?xf32>
    scf.reduce(%v : f32) {
    ^bb0(%l: f32, %r: f32):
      %s = arith.addf %l, %r : f32
      scf.reduce.return %s : f32
    }
  }
  return %sum : f32
}

// -----

// A function with one parallel loop keeps it (OpenMP outlines it once);
// nested parallel loops move with their outermost one.
// CHECK-LABEL: func.func @one_loop
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK-NOT: call
func.func @one_loop(%a: memref<?x?xf32>, %n: index, %x: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    scf.parallel (%j) = (%c0) to (%n) step (%c1) {
      memref.store %x, %a[%i, %j] : memref<?x?xf32>
      scf.reduce
    }
    scf.reduce
  }
  return
}

// -----

// A name already taken gets a fresh one.
// CHECK: func.func private @clash_parallel0(
// CHECK: func.func private @clash_parallel0_0(
// CHECK: func.func private @clash_parallel1(
// CHECK-LABEL: func.func @clash
// CHECK: call @clash_parallel0_0
// CHECK: call @clash_parallel1
// CHECK: call @clash_parallel0(
func.func private @clash_parallel0(%n: index) {
  return
}
func.func @clash(%a: memref<?xf32>, %n: index, %x: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %x, %a[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %x, %a[%i] : memref<?xf32>
    scf.reduce
  }
  call @clash_parallel0(%n) : (index) -> ()
  return
}
