// RUN: kiln-opt %s --convert-kiln-to-linalg --split-input-file | FileCheck %s
// RUN: kiln-opt %s --convert-kiln-to-linalg --split-input-file | kiln-opt --split-input-file --verify-each > /dev/null

// Per-channel int8: the [O, 1] scale loses its unit dim and is read by row;
// codes are sign-extended, converted and scaled.
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK: func.func @per_channel(
// CHECK: %[[S:.+]] = tensor.collapse_shape %{{.*}} {{\[\[}}0, 1]] : tensor<8x1xf32> into tensor<8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ID]]]
// CHECK: arith.extsi %{{.*}} : i8 to i32
// CHECK: arith.sitofp
// CHECK: arith.mulf
func.func @per_channel(%q: tensor<8x12xi8>, %s: tensor<8x1xf32>) -> tensor<8x12xf32> {
  %0 = kiln.dequantize %q, %s : (tensor<8x12xi8>, tensor<8x1xf32>) -> tensor<8x12xf32>
  return %0 : tensor<8x12xf32>
}

// -----

// Groups of 4 along the last dim with 4-bit unsigned codes and zero points:
// the result dim 12 splits into (3 groups, 2 bytes, 2 nibbles); the codes
// [8, 6] expand to [8, 3, 2]; scales and zero points are read per
// (row, group); the pair loop's index picks the nibble.
// CHECK-DAG: #[[CODES:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[GROUP:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1)>
// CHECK-DAG: #[[OUT:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK: func.func @int4_groups(
// CHECK: %[[E:.+]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1, 2]] output_shape [8, 3, 2] : tensor<8x6xi8> into tensor<8x3x2xi8>
// CHECK: %[[G:.+]] = linalg.generic {indexing_maps = [#[[CODES]], #[[GROUP]], #[[GROUP]], #[[OUT]]]
// CHECK-SAME: ins(%[[E]], %{{.*}}, %{{.*}} : tensor<8x3x2xi8>, tensor<8x3xf32>, tensor<8x3xi8>)
// CHECK: arith.andi
// CHECK: arith.shrui
// CHECK: linalg.index 3
// CHECK: arith.select
// CHECK: arith.extui
// CHECK: arith.subi
// CHECK: } -> tensor<8x3x2x2xf32>
// CHECK: tensor.collapse_shape %[[G]] {{\[\[}}0], [1, 2, 3]] : tensor<8x3x2x2xf32> into tensor<8x12xf32>
func.func @int4_groups(%q: tensor<8x6xi8>, %s: tensor<8x3xf32>, %z: tensor<8x3xi8>) -> tensor<8x12xf32> {
  %0 = kiln.dequantize %q, %s zero_point %z bits = 4 unsigned : (tensor<8x6xi8>, tensor<8x3xf32>, tensor<8x3xi8>) -> tensor<8x12xf32>
  return %0 : tensor<8x12xf32>
}

// -----

// Signed 4-bit codes: the low nibble is sign-extended by a shift pair.
// CHECK-LABEL: func.func @int4_signed(
// CHECK: arith.shli
// CHECK: arith.shrsi
// CHECK: arith.shrsi
// CHECK: arith.extsi
func.func @int4_signed(%q: tensor<2x4xi8>, %s: tensor<2x1xf32>) -> tensor<2x8xf32> {
  %0 = kiln.dequantize %q, %s bits = 4 : (tensor<2x4xi8>, tensor<2x1xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

// Per-token quantization of dynamic rows: x · (1 / scale), rounded half to
// even, clamped to [-128, 127].
// CHECK-LABEL: func.func @per_token(
// CHECK: %[[D:.+]] = tensor.dim %{{.*}}, %{{.*}} : tensor<?x12xf32>
// CHECK: tensor.empty(%[[D]]) : tensor<?x12xi8>
// CHECK: arith.divf
// CHECK: arith.mulf
// CHECK: math.roundeven
// CHECK: arith.minnumf
// CHECK: arith.maxnumf
// CHECK: arith.fptosi %{{.*}} : f32 to i8
func.func @per_token(%x: tensor<?x12xf32>, %s: tensor<?x1xf32>) -> tensor<?x12xi8> {
  %0 = kiln.quantize %x, %s : (tensor<?x12xf32>, tensor<?x1xf32>) -> tensor<?x12xi8>
  return %0 : tensor<?x12xi8>
}

// -----

// An integer matmul of a [B, S, K] lhs: loops (b, m, k, n), the [N, K] rhs
// read transposed through its map (no copy), sums of sign-extended products
// in i32 starting from zero.
// CHECK-DAG: #[[LHS:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[RHS:.+]] = affine_map<(d0, d1, d2, d3) -> (d3, d2)>
// CHECK-DAG: #[[OUT:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK: func.func @integer_matmul(
// CHECK-NOT: linalg.transpose
// CHECK: %[[Z:.+]] = linalg.fill ins(%{{.*}} : i32) outs(%{{.*}} : tensor<?x5x8xi32>)
// CHECK: linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%{{.*}}, %{{.*}} : tensor<?x5x12xi8>, tensor<8x12xi8>) outs(%[[Z]] : tensor<?x5x8xi32>)
// CHECK: arith.extsi %{{.*}} : i8 to i32
// CHECK: arith.extsi %{{.*}} : i8 to i32
// CHECK: arith.muli
// CHECK: arith.addi
func.func @integer_matmul(%x: tensor<?x5x12xi8>, %w: tensor<8x12xi8>) -> tensor<?x5x8xi32> {
  %0 = kiln.integer_matmul %x, %w transpose_rhs : (tensor<?x5x12xi8>, tensor<8x12xi8>) -> tensor<?x5x8xi32>
  return %0 : tensor<?x5x8xi32>
}

// -----

// e4m3 codes with a per-tensor scale: x · (1 / s), then the encoding on the
// f32 bits (NaN check, clamp to 448's bits, the subnormal path's f32 add of
// 2^14, the normal path's round to nearest even), the byte bitcast to
// f8E4M3FN.
// CHECK-LABEL: func.func @quantize_e4m3(
// CHECK: linalg.generic
// CHECK: arith.divf
// CHECK: arith.mulf
// CHECK: arith.bitcast %{{.*}} : f32 to i32
// CHECK: arith.minui %{{.*}}, %c1138753536_i32 : i32
// CHECK: arith.addf
// CHECK: arith.trunci %{{.*}} : i32 to i8
// CHECK: arith.bitcast %{{.*}} : i8 to f8E4M3FN
// CHECK: linalg.yield %{{.*}} : f8E4M3FN
// CHECK-NOT: math.roundeven
func.func @quantize_e4m3(%x: tensor<?x64xf32>, %s: tensor<1x1xf32>) -> tensor<?x64xf8E4M3FN> {
  %0 = kiln.quantize %x, %s e4m3 : (tensor<?x64xf32>, tensor<1x1xf32>) -> tensor<?x64xf8E4M3FN>
  return %0 : tensor<?x64xf8E4M3FN>
}

// -----

// e4m3 codes back to floats: the byte's bits rebuilt as an f32 (exponent
// + 120, subnormals as m · 2^-9, S.1111.111 as NaN), times the scale.
// CHECK-LABEL: func.func @dequantize_e4m3(
// CHECK: linalg.generic
// CHECK: arith.bitcast %{{.*}} : f8E4M3FN to i8
// CHECK: arith.extui %{{.*}} : i8 to i32
// CHECK: arith.uitofp
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// CHECK: arith.mulf
// CHECK: linalg.yield %{{.*}} : f32
func.func @dequantize_e4m3(%q: tensor<96x64xf8E4M3FN>, %s: tensor<1x1xf32>) -> tensor<96x64xf32> {
  %0 = kiln.dequantize %q, %s : (tensor<96x64xf8E4M3FN>, tensor<1x1xf32>) -> tensor<96x64xf32>
  return %0 : tensor<96x64xf32>
}

// -----

// A scaled fp8 matmul: one (m, k, n) generic over both codes (the [N, K]
// rhs read through its map) and both one-element scales (constant maps)
// into a zero-filled f32 output, each product decoded and scaled.
// CHECK-DAG: #[[LHS:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[RHS:.+]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG: #[[SCALE:.+]] = affine_map<(d0, d1, d2) -> (0)>
// CHECK-DAG: #[[OUT:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK: func.func @scaled_fp8_matmul(
// CHECK: %[[Z:.+]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x96xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[SCALE]], #[[SCALE]], #[[OUT]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf8E4M3FN>, tensor<96x64xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) outs(%[[Z]] : tensor<?x96xf32>)
// CHECK: arith.bitcast %{{.*}} : f8E4M3FN to i8
// CHECK: arith.bitcast %{{.*}} : f8E4M3FN to i8
// CHECK: arith.addf
// CHECK: linalg.yield %{{.*}} : f32
func.func @scaled_fp8_matmul(%x: tensor<?x64xf8E4M3FN>, %w: tensor<96x64xf8E4M3FN>, %sx: tensor<1xf32>, %sw: tensor<1xf32>) -> tensor<?x96xf32> {
  %0 = kiln.scaled_fp8_matmul %x, %w scales %sx, %sw transpose_rhs : (tensor<?x64xf8E4M3FN>, tensor<96x64xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x96xf32>
  return %0 : tensor<?x96xf32>
}
