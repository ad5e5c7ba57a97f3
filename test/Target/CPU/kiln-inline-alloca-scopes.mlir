// RUN: kiln-opt %s --kiln-inline-alloca-scopes --split-input-file | FileCheck %s

// Every memref.alloca_scope is replaced by its body, spliced in place
// (convert-scf-to-openmp wraps each parallel loop body in one, and
// scf-to-cf would then split its single-block region). The test holds the
// pass to: no scope is left, wherever it sits; the body's ops keep their
// order and stay between the ops around the scope; the scope's results are
// replaced by the values its terminator returned; IR without scopes is
// left as it is.

// A scope without results: its ops land where the scope was.
// CHECK-LABEL: func.func @no_results
// CHECK-SAME: (%[[M:.*]]: memref<4xf32>, %[[V:.*]]: f32)
// CHECK-NOT: memref.alloca_scope
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[A:.*]] = memref.alloca() : memref<4xf32>
// CHECK-NEXT: memref.store %[[V]], %[[A]][%[[C0]]] : memref<4xf32>
// CHECK-NEXT: memref.copy %[[A]], %[[M]]
// CHECK-NEXT: return
func.func @no_results(%m: memref<4xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  memref.alloca_scope {
    %a = memref.alloca() : memref<4xf32>
    memref.store %v, %a[%c0] : memref<4xf32>
    memref.copy %a, %m : memref<4xf32> to memref<4xf32>
  }
  return
}

// -----

// A scope with results: each use of a result now uses the value the
// scope returned (defined inside the scope or outside it).
// CHECK-LABEL: func.func @results
// CHECK-SAME: (%[[X:.*]]: f32, %[[Y:.*]]: f32)
// CHECK-NOT: memref.alloca_scope
// CHECK: %[[S:.*]] = arith.addf %[[X]], %[[Y]] : f32
// CHECK-NEXT: %[[P:.*]] = arith.mulf %[[S]], %[[X]] : f32
// CHECK-NEXT: return %[[P]], %[[Y]] : f32, f32
func.func @results(%x: f32, %y: f32) -> (f32, f32) {
  %r:2 = memref.alloca_scope -> (f32, f32) {
    %s = arith.addf %x, %y : f32
    memref.alloca_scope.return %s, %y : f32, f32
  }
  %p = arith.mulf %r#0, %x : f32
  return %p, %r#1 : f32, f32
}

// -----

// Nested scopes, inside a loop body (the shape scf-to-openmp gives):
// both go, the loop stays, and the ops keep their order.
// CHECK-LABEL: func.func @nested_in_loop
// CHECK-SAME: (%[[M:.*]]: memref<8xf32>, %[[V:.*]]: f32)
// CHECK-NOT: memref.alloca_scope
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT: %[[L:.*]] = memref.load %[[M]][%[[I]]]
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[L]], %[[V]] : f32
// CHECK-NEXT: %[[T:.*]] = arith.mulf %[[S]], %[[S]] : f32
// CHECK-NEXT: memref.store %[[T]], %[[M]][%[[I]]]
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @nested_in_loop(%m: memref<8xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.for %i = %c0 to %c8 step %c1 {
    memref.alloca_scope {
      %l = memref.load %m[%i] : memref<8xf32>
      %t = memref.alloca_scope -> (f32) {
        %s = arith.addf %l, %v : f32
        %t0 = arith.mulf %s, %s : f32
        memref.alloca_scope.return %t0 : f32
      }
      memref.store %t, %m[%i] : memref<8xf32>
    }
  }
  return
}

// -----

// Nothing to inline: an alloca outside any scope and the loop stay as they
// are.
// CHECK-LABEL: func.func @no_scope
// CHECK: scf.for
// CHECK-NEXT: %[[A:.*]] = memref.alloca() : memref<2xf32>
// CHECK-NEXT: memref.store %{{.*}}, %[[A]]
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @no_scope(%v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %a = memref.alloca() : memref<2xf32>
    memref.store %v, %a[%c0] : memref<2xf32>
  }
  return
}
