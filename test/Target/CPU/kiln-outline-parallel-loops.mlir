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
    %v = memref.load %a[%i] : memref<?xf32>
    %y = arith.addf %v, %x : f32
    memref.store %y, %a[%i] : memref<?xf32>
    scf.reduce
  }
  call @clash_parallel0(%n) : (index) -> ()
  return
}

// -----

// A loop equivalent to one already outlined, in this function or another
// (same types, same ops and attributes, values in the same places), calls
// that function with its own arguments. Loops that differ in a constant,
// in which value an op takes where, or in a type get functions of their
// own.
// CHECK-LABEL: func.func private @first_parallel0
// CHECK-SAME: (%{{.*}}: index, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>)
// CHECK: arith.constant 2.000000e+00
// CHECK-LABEL: func.func private @first_parallel2
// CHECK: arith.constant 3.000000e+00
// CHECK-LABEL: func.func private @first_parallel3
// CHECK: %[[V:.*]] = memref.load %[[ARG1:.*]][
// CHECK: %[[W:.*]] = memref.load
// CHECK: arith.subf %[[V]], %[[W]]
// CHECK-LABEL: func.func private @first_parallel4
// CHECK: %[[V:.*]] = memref.load %[[ARG1:.*]][
// CHECK: %[[W:.*]] = memref.load
// CHECK: arith.subf %[[W]], %[[V]]
// CHECK-LABEL: func.func private @first_parallel5
// CHECK-SAME: memref<?xf64>
// CHECK-LABEL: func.func @first
// CHECK-SAME: (%[[A:.*]]: memref<?xf32>, %[[B:.*]]: memref<?xf32>, %[[C:.*]]: memref<?xf32>, %[[D:.*]]: memref<?xf64>, %[[N:.*]]: index)
// CHECK: call @first_parallel0(%[[N]], %[[A]], %[[B]])
// CHECK: call @first_parallel0(%[[N]], %[[B]], %[[C]])
// CHECK: call @first_parallel2(%[[N]], %[[A]], %[[B]])
// CHECK: call @first_parallel3(%[[N]], %[[A]], %[[B]], %[[C]])
// CHECK: call @first_parallel4(%[[N]], %[[A]], %[[B]], %[[C]])
// CHECK: call @first_parallel5(%[[N]], %[[D]])
// CHECK-LABEL: func.func @second
// CHECK-SAME: (%[[SA:.*]]: memref<?xf32>, %[[SB:.*]]: memref<?xf32>, %[[SN:.*]]: index)
// CHECK-NOT: func.func private
// CHECK: call @first_parallel0(%[[SN]], %[[SB]], %[[SA]])
// CHECK: call @first_parallel2(%[[SN]], %[[SB]], %[[SA]])
func.func @first(%a: memref<?xf32>, %b: memref<?xf32>, %c: memref<?xf32>, %d: memref<?xf64>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %two = arith.constant 2.0 : f32
  %three = arith.constant 3.0 : f32
  %twod = arith.constant 2.0 : f64
  // b = 2 a; then the same loop on other buffers: c = 2 b.
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %a[%i] : memref<?xf32>
    %y = arith.mulf %v, %two : f32
    memref.store %y, %b[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %b[%i] : memref<?xf32>
    %y = arith.mulf %v, %two : f32
    memref.store %y, %c[%i] : memref<?xf32>
    scf.reduce
  }
  // Another constant.
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %a[%i] : memref<?xf32>
    %y = arith.mulf %v, %three : f32
    memref.store %y, %b[%i] : memref<?xf32>
    scf.reduce
  }
  // b - a in place of a - b: the same ops, their operands swapped.
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %a[%i] : memref<?xf32>
    %w = memref.load %b[%i] : memref<?xf32>
    %y = arith.subf %v, %w : f32
    memref.store %y, %c[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %a[%i] : memref<?xf32>
    %w = memref.load %b[%i] : memref<?xf32>
    %y = arith.subf %w, %v : f32
    memref.store %y, %c[%i] : memref<?xf32>
    scf.reduce
  }
  // Another type.
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %d[%i] : memref<?xf64>
    %y = arith.mulf %v, %twod : f64
    memref.store %y, %d[%i] : memref<?xf64>
    scf.reduce
  }
  return
}
func.func @second(%a: memref<?xf32>, %b: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %two = arith.constant 2.0 : f32
  %three = arith.constant 3.0 : f32
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %b[%i] : memref<?xf32>
    %y = arith.mulf %v, %two : f32
    memref.store %y, %a[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %b[%i] : memref<?xf32>
    %y = arith.mulf %v, %three : f32
    memref.store %y, %a[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
