// RUN: kiln-opt %s --split-input-file --kiln-lower-amx-attention | FileCheck %s

// Causal grouped-query attention (4 query heads, 2 key/value heads), head
// dim 64, value dim 32, sequences known at run time. K is copied
// zero-padded to whole blocks of 32 keys and V transposed per block, both
// read as buffers by the parallel loop over (batch, head, block of 32
// queries). Each iteration packs its queries as pairs of d (16 x 16
// transposes of words), then per block of keys: four score tiles over two
// steps of d, the scaled and masked scores' max, exp rounded to bf16 into
// interleaved pairs of keys, Vᵀ·Pᵀ on four tiles, the rescaled
// accumulator; the rows written are Oᵀ / l transposed and rounded.
// CHECK-LABEL: func.func @causal(
// CHECK-SAME: %[[Q:.+]]: tensor<1x4x?x64xbf16>, %[[K:.+]]: tensor<1x2x?x64xbf16>, %[[V:.+]]: tensor<1x2x?x32xbf16>
// CHECK: %[[KPAD:.+]] = tensor.insert_slice %[[K]] into
// CHECK: %[[VPAD:.+]] = tensor.insert_slice %[[V]] into
// CHECK: tensor.expand_shape %[[VPAD]] {{\[}}[0], [1], [2, 3], [4]]
// CHECK: %[[VT:.+]] = linalg.transpose {{.*}} permutation = [0, 1, 2, 4, 3]
// CHECK: scf.forall (%[[B:.+]], %[[H:.+]], %{{.+}}) in ({{.*}}) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<1x4x?x32xbf16>)
// CHECK: %[[KEYS:.+]] = bufferization.to_buffer %[[KPAD]] read_only : tensor<1x2x?x64xbf16> to memref<1x2x?x64xbf16>
// CHECK: %[[VALUES:.+]] = bufferization.to_buffer %[[VT]] read_only : tensor<1x2x?x32x32xbf16> to memref<1x2x?x32x32xbf16>
// CHECK: %[[KVH:.+]] = arith.divui %[[H]]
// CHECK: %[[QP:.+]] = memref.alloc() : memref<32x64xbf16>
// CHECK-COUNT-4: vector.transpose {{.*}} : vector<16x16xi32> to vector<16x16xi32>
// CHECK: %[[OT:.+]] = memref.alloc() : memref<32x32xf32>
// CHECK: %[[S:.+]] = memref.alloc() : memref<32x32xf32>
// CHECK: %[[P:.+]] = memref.alloc() : memref<16x64xbf16>
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (vector<32xf32>, vector<32xf32>)
// CHECK-COUNT-4: amx.tile_zero : !amx.tile<16x16xf32>
// CHECK: amx.tile_load %[[KEYS]][%[[B]], %[[KVH]]
// CHECK: amx.tile_load %[[KEYS]][%[[B]], %[[KVH]]
// CHECK: amx.tile_load %[[QP]]
// CHECK: amx.tile_load %[[QP]]
// CHECK-COUNT-4: amx.tile_mulf
// CHECK-COUNT-4: amx.tile_mulf
// CHECK-COUNT-4: amx.tile_store %[[S]]
// CHECK: arith.cmpi sge, {{.*}} : vector<32xi32>
// CHECK: arith.maximumf {{.*}} : vector<32xf32>
// CHECK: math.exp {{.*}} : vector<32xf32>
// CHECK: vector.shuffle {{.*}} : vector<32xbf16>, vector<32xbf16>
// CHECK: vector.store {{.*}}, %[[P]]
// CHECK: amx.tile_load %[[VALUES]][%[[B]], %[[KVH]]
// CHECK-COUNT-4: amx.tile_mulf
// CHECK: vector.fma
// CHECK: vector.transpose {{.*}} : vector<16x16xf32> to vector<16x16xf32>
// CHECK: arith.truncf {{.*}} : vector<16x16xf32> to vector<16x16xbf16>
// CHECK: tensor.parallel_insert_slice {{.*}} into %[[OUT]]
// CHECK-NOT: kiln.attention
func.func @causal(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x32xbf16>) -> tensor<1x4x?x32xbf16> {
  %0 = kiln.attention %q, %k, %v causal : (tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x32xbf16>) -> tensor<1x4x?x32xbf16>
  return %0 : tensor<1x4x?x32xbf16>
}

// -----

// Without the causal mask no key is masked but those past the end.
// CHECK-LABEL: func.func @full(
// CHECK-NOT: arith.cmpi sge
// CHECK: arith.cmpi slt
// CHECK: amx.tile_mulf
func.func @full(%q: tensor<2x2x40x32xbf16>, %k: tensor<2x2x70x32xbf16>, %v: tensor<2x2x70x32xbf16>) -> tensor<2x2x40x32xbf16> {
  %0 = kiln.attention %q, %k, %v : (tensor<2x2x40x32xbf16>, tensor<2x2x70x32xbf16>, tensor<2x2x70x32xbf16>) -> tensor<2x2x40x32xbf16>
  return %0 : tensor<2x2x40x32xbf16>
}

// -----

// Left to the fused lowering: f32 operands, a mask operand, key lengths,
// a head dim that is not a multiple of 32, fewer than 16 query rows.
// CHECK-LABEL: func.func @kept(
// CHECK-COUNT-5: kiln.attention
// CHECK-NOT: amx.
func.func @kept(%q: tensor<1x2x32x64xf32>, %qb: tensor<1x2x32x64xbf16>, %m: tensor<1x1x32x32xbf16>,
                %lengths: tensor<1xi32>, %q16: tensor<1x2x32x16xbf16>, %q8: tensor<1x2x8x64xbf16>) -> (
    tensor<1x2x32x64xf32>, tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x16xbf16>, tensor<1x2x8x64xbf16>) {
  %0 = kiln.attention %q, %q, %q causal : (tensor<1x2x32x64xf32>, tensor<1x2x32x64xf32>, tensor<1x2x32x64xf32>) -> tensor<1x2x32x64xf32>
  %1 = kiln.attention %qb, %qb, %qb mask %m : (tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x1x32x32xbf16>) -> tensor<1x2x32x64xbf16>
  %2 = kiln.attention %qb, %qb, %qb key_lengths %lengths causal : (tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1xi32>) -> tensor<1x2x32x64xbf16>
  %3 = kiln.attention %q16, %q16, %q16 causal : (tensor<1x2x32x16xbf16>, tensor<1x2x32x16xbf16>, tensor<1x2x32x16xbf16>) -> tensor<1x2x32x16xbf16>
  %4 = kiln.attention %q8, %q8, %q8 causal : (tensor<1x2x8x64xbf16>, tensor<1x2x8x64xbf16>, tensor<1x2x8x64xbf16>) -> tensor<1x2x8x64xbf16>
  return %0, %1, %2, %3, %4 : tensor<1x2x32x64xf32>, tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x16xbf16>, tensor<1x2x8x64xbf16>
}

// -----

// The gradient: K and V padded and transposed per block, Q and g as column
// pairs (for products over d) and row pairs (for products over the rows).
// The query-block pass walks the keys twice: the forward (m, l and Oᵀ, for
// δ = g·o) and Sᵀ, dPᵀ = V·gᵀ, dSᵀ as key pairs, dqᵀ summed on its tiles
// (loaded and stored around each product); it writes dq and the rows' m,
// 1/l and δ. The key-block pass reads them for each query head of the
// key/value head and each query block that sees the keys, and sums dv
// += Pᵀ·g and dk += dSᵀ·q on tiles.
// CHECK-LABEL: func.func @grad(
// CHECK-SAME: %[[Q:.+]]: tensor<1x4x?x64xbf16>, %[[K:.+]]: tensor<1x2x?x64xbf16>, %[[V:.+]]: tensor<1x2x?x32xbf16>, %[[G:.+]]: tensor<1x4x?x32xbf16>
// CHECK-DAG: tensor.collapse_shape {{.*}} into tensor<1x4x?x32x64xbf16>
// CHECK-DAG: tensor.collapse_shape {{.*}} into tensor<1x4x?x16x128xbf16>
// CHECK-DAG: tensor.collapse_shape {{.*}} into tensor<1x4x?x16x64xbf16>
// CHECK: %[[QUERIES:.+]]:4 = scf.forall ({{.*}}) in ({{.*}}) shared_outs({{.*}}) -> (tensor<1x4x?x64xbf16>, tensor<1x4x?xf32>, tensor<1x4x?xf32>, tensor<1x4x?xf32>)
// CHECK: bufferization.to_buffer {{.*}} read_only
// CHECK: scf.for {{.*}} -> (vector<32xf32>, vector<32xf32>)
// CHECK: scf.for
// CHECK: amx.tile_load {{.*}} : memref<64x32xf32> into !amx.tile<16x16xf32>
// CHECK: amx.tile_mulf
// CHECK: amx.tile_store {{.*}} : memref<64x32xf32>, !amx.tile<16x16xf32>
// CHECK: tensor.parallel_insert_slice
// CHECK-COUNT-3: tensor.parallel_insert_slice {{.*}} : tensor<32xf32> into tensor<1x4x?xf32>
// CHECK: scf.forall ({{.*}}) in ({{.*}}) shared_outs({{.*}}) -> (tensor<1x2x?x64xbf16>, tensor<1x2x?x32xbf16>)
// CHECK: bufferization.to_buffer %[[QUERIES]]#1 read_only
// CHECK: scf.for
// CHECK: scf.for
// CHECK: vector.load {{.*}} : memref<1x4x?xf32>, vector<32xf32>
// CHECK: amx.tile_load {{.*}} : memref<32x32xf32> into !amx.tile<16x16xf32>
// CHECK: amx.tile_store {{.*}} : memref<32x64xf32>, !amx.tile<16x16xf32>
// CHECK-COUNT-2: tensor.parallel_insert_slice
// CHECK-NOT: kiln.attention_grad
func.func @grad(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x32xbf16>, %g: tensor<1x4x?x32xbf16>) -> (tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x32xbf16>) {
  %0:3 = kiln.attention_grad %q, %k, %v, %g causal : (tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x32xbf16>, tensor<1x4x?x32xbf16>) -> (tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x32xbf16>)
  return %0#0, %0#1, %0#2 : tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x32xbf16>
}

// -----

// A gradient whose output gradient has a dynamic head dim (shape inference
// allows it) stays with the fused lowering.
// CHECK-LABEL: func.func @kept_grad(
// CHECK: kiln.attention_grad
// CHECK-NOT: amx.
func.func @kept_grad(%q: tensor<1x2x32x64xbf16>, %g: tensor<1x2x32x?xbf16>) -> tensor<1x2x32x64xbf16> {
  %0:3 = kiln.attention_grad %q, %q, %q, %g causal : (tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x?xbf16>) -> (tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>, tensor<1x2x32x64xbf16>)
  return %0#0 : tensor<1x2x32x64xbf16>
}
