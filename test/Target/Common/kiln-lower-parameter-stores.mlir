// RUN: kiln-opt %s --kiln-lower-parameter-stores --split-input-file --verify-diagnostics | FileCheck %s

// Each kiln.store_param becomes bufferization.materialize_in_destination of
// the value into the parameter's argument, placed just before the
// terminator (after every read of the old value); the stored arguments are
// marked writable, every other tensor argument read-only, and every tensor
// argument of a public function llvm.noalias. The test holds the pass to:
// no store is left; the materialization writes the stored value into the
// stored argument, after the reads that follow the store; the writable flag
// is true exactly for the stored arguments; only tensor arguments get
// attributes; only public functions get llvm.noalias; declarations are left
// alone; a parameter stored twice in one function is an error.
// (Input: the form --kiln-externalize-parameters and --convert-kiln-to-linalg
// give, reduced by hand; parameter-updates.mlir runs the whole pipeline.)

// An optimizer step: %w is updated, %b only read, after the store %w is
// read again (its old value). Scalar and memref arguments get nothing.
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = false, llvm.noalias},
// CHECK-SAME: %{{[a-z0-9]+}}: i64, %{{[a-z0-9]+}}: memref<4xf32>,
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = true, kiln.parameter = "w", llvm.noalias},
// CHECK-SAME: %[[B:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = false, kiln.parameter = "b", llvm.noalias})
// CHECK-NOT: kiln.store_param
// CHECK: %[[NEW:.*]] = linalg.generic {{.*}} ins(%[[W]], %[[X]] : tensor<4xf32>, tensor<4xf32>) outs(%[[E:.*]] : tensor<4xf32>)
// CHECK: %[[READ:.*]] = arith.addf %[[W]], %[[B]] : tensor<4xf32>
// CHECK-NEXT: bufferization.materialize_in_destination %[[NEW]] in %[[W]] : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: return %[[READ]] : tensor<4xf32>
#map = affine_map<(d0) -> (d0)>
func.func @step(%x: tensor<4xf32>, %n: i64, %m: memref<4xf32>,
                %w: tensor<4xf32> {kiln.parameter = "w"},
                %b: tensor<4xf32> {kiln.parameter = "b"}) -> tensor<4xf32> {
  %e = tensor.empty() : tensor<4xf32>
  %new = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]}
      ins(%w, %x : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %d = arith.subf %in, %in_0 : f32
    linalg.yield %d : f32
  } -> tensor<4xf32>
  kiln.store_param %new to %w : tensor<4xf32>
  %read = arith.addf %w, %b : tensor<4xf32>
  return %read : tensor<4xf32>
}

// -----

// Two parameters stored: two materializations, in the order of the stores,
// each into its own argument; both arguments are writable.
// CHECK-LABEL: func.func @two_stores
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = false, llvm.noalias},
// CHECK-SAME: %[[A:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = true, kiln.parameter = "a", llvm.noalias},
// CHECK-SAME: %[[B:[a-z0-9]+]]: tensor<2xf32> {bufferization.writable = true, kiln.parameter = "b", llvm.noalias})
// CHECK-NOT: kiln.store_param
// CHECK: %[[NB:.*]] = arith.negf %[[B]]
// CHECK-NEXT: %[[R:.*]] = arith.addf %[[B]], %[[B]]
// CHECK-NEXT: bufferization.materialize_in_destination %[[NB]] in %[[B]]
// CHECK-NEXT: bufferization.materialize_in_destination %[[X]] in %[[A]]
// CHECK-NEXT: return %[[R]]
func.func @two_stores(%x: tensor<4xf32>,
                      %a: tensor<4xf32> {kiln.parameter = "a"},
                      %b: tensor<2xf32> {kiln.parameter = "b"}) -> tensor<2xf32> {
  %nb = arith.negf %b : tensor<2xf32>
  kiln.store_param %nb to %b : tensor<2xf32>
  kiln.store_param %x to %a : tensor<4xf32>
  %r = arith.addf %b, %b : tensor<2xf32>
  return %r : tensor<2xf32>
}

// A private function (not an entry point) gets the writable flags but no
// llvm.noalias: its callers may pass aliasing tensors. The same parameter
// stored in another function is no error.
// CHECK-LABEL: func.func private @private_store
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = false},
// CHECK-SAME: %[[A:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = true, kiln.parameter = "a"})
// CHECK-NOT: llvm.noalias
// CHECK: bufferization.materialize_in_destination %[[X]] in %[[A]]
// CHECK-NEXT: return
func.func private @private_store(%x: tensor<4xf32>,
                                 %a: tensor<4xf32> {kiln.parameter = "a"}) {
  kiln.store_param %x to %a : tensor<4xf32>
  return
}

// A public function without stores (a forward pass): every tensor argument,
// parameters included, is read-only and noalias; the body is untouched.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = false, llvm.noalias},
// CHECK-SAME: %[[A:[a-z0-9]+]]: tensor<4xf32> {bufferization.writable = false, kiln.parameter = "a", llvm.noalias})
// CHECK-NEXT: %[[S:.*]] = arith.mulf %[[X]], %[[A]]
// CHECK-NEXT: return %[[S]]
func.func @forward(%x: tensor<4xf32>, %a: tensor<4xf32> {kiln.parameter = "a"}) -> tensor<4xf32> {
  %s = arith.mulf %x, %a : tensor<4xf32>
  return %s : tensor<4xf32>
}

// Left alone: a declaration, and a function without tensor arguments.
// CHECK-LABEL: func.func private @external(tensor<4xf32>, tensor<4xf32> {kiln.parameter = "a"})
// CHECK-LABEL: func.func @no_tensors
// CHECK-SAME: (%[[M:[a-z0-9]+]]: memref<4xf32>, %[[F:[a-z0-9]+]]: f32) {
// CHECK-NEXT: linalg.fill ins(%[[F]] : f32) outs(%[[M]] : memref<4xf32>)
// CHECK-NEXT: return
func.func private @external(%x: tensor<4xf32>, %a: tensor<4xf32> {kiln.parameter = "a"})
func.func @no_tensors(%m: memref<4xf32>, %f: f32) {
  linalg.fill ins(%f : f32) outs(%m : memref<4xf32>)
  return
}

// -----

// One buffer cannot take two values: a second store of the same parameter
// in one function is rejected.
func.func @stored_twice(%x: tensor<4xf32>, %w: tensor<4xf32> {kiln.parameter = "w"}) {
  kiln.store_param %x to %w : tensor<4xf32>
  // expected-error @+1 {{'kiln.store_param' op stores a parameter a second time}}
  kiln.store_param %x to %w : tensor<4xf32>
  return
}

// -----

// A store inside a region would be materialized at the end of that region,
// not of the function: refused.
func.func @stored_in_region(%x: tensor<4xf32>, %w: tensor<4xf32> {kiln.parameter = "w"}, %c: i1) {
  scf.if %c {
    // expected-error @+1 {{'kiln.store_param' op stores a parameter inside a region; parameter updates must be at the function's top level}}
    kiln.store_param %x to %w : tensor<4xf32>
  }
  return
}
