// RUN: kiln-opt %s --convert-kiln-attention --canonicalize --cse --split-input-file --verify-diagnostics | FileCheck %s

// The forward: one forall over (batch, head, query row); a causal row walks
// only its visible keys with the online softmax (max, sum, accumulator) as
// loop-carried registers, in f32 for bf16 operands; no [Sq, Sk] tensor.

// CHECK-LABEL: func.func @attention
// CHECK-NOT: tensor<?x4x?x?x
// CHECK: %[[B:.*]] = tensor.dim %arg0, %c0
// CHECK: %[[SQ:.*]] = tensor.dim %arg0, %c2
// CHECK: %[[SK:.*]] = tensor.dim %arg1, %c2
// CHECK: scf.forall (%[[b:.*]], %[[h:.*]], %[[i:.*]]) in (%[[B]], 4, %[[SQ]]) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<?x4x?x16xbf16>)
// CHECK:   %[[Q:.*]] = vector.transfer_read %arg0[%[[b]], %[[h]], %[[i]], %c0]{{.*}} : tensor<?x4x?x8xbf16>, vector<8xbf16>
// CHECK:   arith.extf %[[Q]] : vector<8xbf16> to vector<8xf32>
// Grouped-query: query head h reads key/value head h / 2.
// CHECK:   %[[KVH:.*]] = arith.divui %[[h]], %c2
// CHECK:   %[[END:.*]] = arith.select
// Blocks of 16 keys: 16 independent scores, one max, one vector exp.
// CHECK:   %[[NB:.*]] = arith.divsi %[[END]], %c16
// CHECK:   %[[BLOCKED:.*]] = arith.muli %[[NB]], %c16
// CHECK:   %[[BLOCKS:.*]]:3 = scf.for %[[j:.*]] = %c0 to %[[BLOCKED]] step %c16 iter_args({{.*}}) -> (f32, f32, vector<16xf32>)
// CHECK:     vector.transfer_read %arg1[%[[b]], %[[KVH]], %[[j]], %c0]
// CHECK:     vector.reduction <add>, %{{.*}} fastmath<reassoc> : vector<8xf32> into f32
// CHECK:     %[[S:.*]] = vector.from_elements {{.*}} : vector<16xf32>
// CHECK:     vector.reduction <maximumf>, %[[S]]
// CHECK:     math.exp %{{.*}} : f32
// CHECK:     math.exp %{{.*}} : vector<16xf32>
// CHECK:     vector.transfer_read %arg2[%[[b]], %[[KVH]], %[[j]], %c0]
// CHECK:     vector.fma {{.*}} : vector<16xf32>
// The remaining keys one by one.
// CHECK:   %[[ROW:.*]]:3 = scf.for %{{.*}} = %[[BLOCKED]] to %[[END]] step %c1 iter_args(%{{.*}} = %[[BLOCKS]]#0, %{{.*}} = %[[BLOCKS]]#1, %{{.*}} = %[[BLOCKS]]#2)
// CHECK:     arith.maximumf
// CHECK:     vector.fma {{.*}} : vector<16xf32>
// CHECK:   arith.divf %[[ROW]]#2
// CHECK:   arith.truncf {{.*}} : vector<16xf32> to vector<16xbf16>
// CHECK:   scf.forall.in_parallel
// CHECK-NEXT: tensor.parallel_insert_slice {{.*}} into %[[OUT]][%[[b]], %[[h]], %[[i]], 0] [1, 1, 1, 16]
func.func @attention(%q: tensor<?x4x?x8xbf16>, %k: tensor<?x2x?x8xbf16>, %v: tensor<?x2x?x16xbf16>) -> tensor<?x4x?x16xbf16> {
  %0 = kiln.attention %q, %k, %v causal : (tensor<?x4x?x8xbf16>, tensor<?x2x?x8xbf16>, tensor<?x2x?x16xbf16>) -> tensor<?x4x?x16xbf16>
  return %0 : tensor<?x4x?x16xbf16>
}

// -----

// key_lengths (a KV cache): each row walks only the keys its batch row has
// filled, min(Sk, max(key_lengths[b], 1)); the slots after them are never
// read.

// CHECK-LABEL: func.func @attention_key_lengths
// CHECK: scf.forall (%[[b:.*]], %{{.*}}) in (%{{.*}}, 4)
// CHECK:   %[[LEN:.*]] = tensor.extract %arg3[%[[b]]] : tensor<?xi64>
// CHECK:   %[[LEN_I:.*]] = arith.index_cast %[[LEN]] : i64 to index
// CHECK:   %[[AT_LEAST_1:.*]] = arith.maxsi %[[LEN_I]], %c1
// CHECK:   %[[END:.*]] = arith.minsi %[[AT_LEAST_1]], %c64
// CHECK:   arith.divsi %[[END]], %c16
func.func @attention_key_lengths(%q: tensor<?x4x1x8xf32>, %k: tensor<?x4x64x8xf32>, %v: tensor<?x4x64x8xf32>, %len: tensor<?xi64>) -> tensor<?x4x1x8xf32> {
  %0 = kiln.attention %q, %k, %v key_lengths %len : (tensor<?x4x1x8xf32>, tensor<?x4x64x8xf32>, tensor<?x4x64x8xf32>, tensor<?xi64>) -> tensor<?x4x1x8xf32>
  return %0 : tensor<?x4x1x8xf32>
}

// -----

// The gradient: per query row (dq and the row max, 1/sum and g·o it
// stores), then per key row (dk, dv) over the two query heads sharing each
// key/value head; the broadcast mask is read in place.

// CHECK-LABEL: func.func @attention_grad
// CHECK: %[[ROWS:.*]]:4 = scf.forall ({{.*}}) in (2, 4, 5) shared_outs({{.*}}) -> (tensor<2x4x5x8xf32>, tensor<2x4x5xf32>, tensor<2x4x5xf32>, tensor<2x4x5xf32>)
// CHECK:   tensor.extract %arg4[%{{.*}}, %c0, %c0, %{{.*}}] : tensor<2x1x1x7xf32>
// CHECK: %[[KEYS:.*]]:2 = scf.forall (%{{.*}}, %[[KVH:.*]], %{{.*}}) in (2, 2, 7) shared_outs({{.*}}) -> (tensor<2x2x7x8xf32>, tensor<2x2x7x8xf32>)
// CHECK:   %[[BASE:.*]] = arith.muli %[[KVH]], %c2
// CHECK:   scf.for %[[G:.*]] = %c0 to %c2
// CHECK:     arith.addi %[[BASE]], %[[G]]
// CHECK:     scf.for %{{.*}} = %c0 to %c5
// CHECK:       tensor.extract %[[ROWS]]#1
// CHECK:       tensor.extract %[[ROWS]]#2
// CHECK:       tensor.extract %[[ROWS]]#3
// CHECK: return %[[ROWS]]#0, %[[KEYS]]#0, %[[KEYS]]#1
func.func @attention_grad(%q: tensor<2x4x5x8xf32>, %k: tensor<2x2x7x8xf32>, %v: tensor<2x2x7x8xf32>, %g: tensor<2x4x5x8xf32>, %m: tensor<2x1x1x7xf32>) -> (tensor<2x4x5x8xf32>, tensor<2x2x7x8xf32>, tensor<2x2x7x8xf32>) {
  %0:3 = kiln.attention_grad %q, %k, %v, %g mask %m scale = 0.5 : (tensor<2x4x5x8xf32>, tensor<2x2x7x8xf32>, tensor<2x2x7x8xf32>, tensor<2x4x5x8xf32>, tensor<2x1x1x7xf32>) -> (tensor<2x4x5x8xf32>, tensor<2x2x7x8xf32>, tensor<2x2x7x8xf32>)
  return %0#0, %0#1, %0#2 : tensor<2x4x5x8xf32>, tensor<2x2x7x8xf32>, tensor<2x2x7x8xf32>
}

// -----

func.func @dynamic_head_dim(%q: tensor<1x2x3x?xf32>, %k: tensor<1x2x3x?xf32>, %v: tensor<1x2x3x?xf32>) -> tensor<1x2x3x?xf32> {
  // expected-error @+1 {{'kiln.attention' op needs static head dims for the fused lowering}}
  %0 = kiln.attention %q, %k, %v : (tensor<1x2x3x?xf32>, tensor<1x2x3x?xf32>, tensor<1x2x3x?xf32>) -> tensor<1x2x3x?xf32>
  return %0 : tensor<1x2x3x?xf32>
}

// -----

func.func @grad_type(%q: tensor<1x2x3x4xf32>, %g: tensor<1x2x3x5xf32>) -> tensor<1x2x3x4xf32> {
  // expected-error @+2 {{grad 'tensor<1x2x3x5xf32>' must have the attention result's type 'tensor<1x2x3x4xf32>'}}
  // expected-error @+1 {{'kiln.attention_grad' op failed to infer returned types}}
  %0:3 = kiln.attention_grad %q, %q, %q, %g : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x2x3x5xf32>) -> (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>)
  return %0#0 : tensor<1x2x3x4xf32>
}
