// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s --mlir-print-op-generic | kiln-opt | FileCheck %s

// Round trip of the kiln ops (62 of the 64; kiln.attention_grad and
// kiln.store_param are in their passes' tests), in the custom form and through the
// generic form: static and dynamic (`?`) shapes, f32/bf16/f16/integer/i1 and
// quantized element types, and every optional operand and attribute variant.

// CHECK: kiln.parameter @transformer.wte.weight : tensor<50257x768xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"transformer.wte.weight" : tensor<50257x768xf32> init normal std = 2.000000e-02 trainable
// CHECK: kiln.parameter @ln.bias : tensor<768xf32> init zeros trainable
kiln.parameter @"ln.bias" : tensor<768xf32> init zeros trainable
// CHECK: kiln.parameter @ln.weight : tensor<768xbf16> init ones
kiln.parameter @"ln.weight" : tensor<768xbf16> init ones
// CHECK: kiln.parameter @proj.weight : tensor<16x8xf16> init uniform range(-1.000000e-01, 1.000000e-01)
kiln.parameter @"proj.weight" : tensor<16x8xf16> init uniform range(-1.000000e-01, 1.000000e-01)
// CHECK: kiln.parameter @q.weight : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
kiln.parameter @"q.weight" : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
// CHECK: kiln.parameter @idx : tensor<4xi64> init zeros
kiln.parameter @"idx" : tensor<4xi64> init zeros
// CHECK-LABEL: func.func @params(
// CHECK-SAME: ) -> (tensor<50257x768xf32>, tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>)
func.func @params() -> (tensor<50257x768xf32>, tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.read_param @transformer.wte.weight : tensor<50257x768xf32>
  %0 = kiln.read_param @"transformer.wte.weight" : tensor<50257x768xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.read_param @q.weight : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>
  %1 = kiln.read_param @"q.weight" : tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.read_param @idx : tensor<4xi64>
  %2 = kiln.read_param @idx : tensor<4xi64>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.read_param @ln.weight : tensor<768xbf16>
  %3 = kiln.read_param @"ln.weight" : tensor<768xbf16>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.read_param @proj.weight : tensor<16x8xf16>
  %4 = kiln.read_param @"proj.weight" : tensor<16x8xf16>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.read_param @ln.bias : tensor<768xf32>
  %5 = kiln.read_param @"ln.bias" : tensor<768xf32>
// CHECK: return %[[V0]], %[[V1]] : tensor<50257x768xf32>, tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>
  return %0, %1 : tensor<50257x768xf32>, tensor<16x8x!quant.uniform<i8:f32, 1.000000e-01>>
}

// CHECK: kiln.parameter @w : tensor<768x2304xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"w" : tensor<768x2304xf32> init normal std = 2.000000e-02 trainable
// CHECK: kiln.parameter @b : tensor<2304xf32> init zeros trainable
kiln.parameter @"b" : tensor<2304xf32> init zeros trainable
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x128x768xf32>) -> tensor<?x128x2304xf32>
func.func @forward(%x: tensor<?x128x768xf32>) -> tensor<?x128x2304xf32> {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.read_param @w : tensor<768x2304xf32>
  %w = kiln.read_param @w : tensor<768x2304xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.read_param @b : tensor<2304xf32>
  %b = kiln.read_param @b : tensor<2304xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.matmul %[[ARG0]], %[[V0]] : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
  %0 = kiln.matmul %x, %w : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.add %[[V2]], %[[V1]] : (tensor<?x128x2304xf32>, tensor<2304xf32>) -> tensor<?x128x2304xf32>
  %1 = kiln.add %0, %b : (tensor<?x128x2304xf32>, tensor<2304xf32>) -> tensor<?x128x2304xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.gelu %[[V3]] approximate = tanh : tensor<?x128x2304xf32>
  %2 = kiln.gelu %1 approximate = tanh : tensor<?x128x2304xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.exp %[[V4]] : tensor<?x128x2304xf32>
  %3 = kiln.exp %2 : tensor<?x128x2304xf32>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.reduce sum %[[V5]] axes = [2] keepdim : (tensor<?x128x2304xf32>) -> tensor<?x128x1xf32>
  %4 = kiln.reduce sum %3 axes = [2] keepdim : (tensor<?x128x2304xf32>) -> tensor<?x128x1xf32>
// CHECK: return %[[V3]] : tensor<?x128x2304xf32>
  return %1 : tensor<?x128x2304xf32>
}

// CHECK-LABEL: func.func @binary(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<2x3xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<3xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<?x3xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<2x3xi32>, %[[ARG4:[a-z0-9_]+]]: tensor<i32>)
func.func @binary(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %d: tensor<?x3xf32>, %i: tensor<2x3xi32>, %j: tensor<i32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.add %[[ARG0]], %[[ARG1]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = kiln.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.sub %[[ARG2]], %[[ARG1]] : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  %1 = kiln.sub %d, %b : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.mul %[[ARG3]], %[[ARG4]] : (tensor<2x3xi32>, tensor<i32>) -> tensor<2x3xi32>
  %2 = kiln.mul %i, %j : (tensor<2x3xi32>, tensor<i32>) -> tensor<2x3xi32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.div %[[ARG0]], %[[ARG2]] : (tensor<2x3xf32>, tensor<?x3xf32>) -> tensor<2x3xf32>
  %3 = kiln.div %a, %d : (tensor<2x3xf32>, tensor<?x3xf32>) -> tensor<2x3xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.pow %[[ARG0]], %[[ARG1]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %4 = kiln.pow %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.max %[[ARG2]], %[[ARG2]] : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
  %5 = kiln.max %d, %d : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.min %[[ARG3]], %[[ARG3]] : (tensor<2x3xi32>, tensor<2x3xi32>) -> tensor<2x3xi32>
  %6 = kiln.min %i, %i : (tensor<2x3xi32>, tensor<2x3xi32>) -> tensor<2x3xi32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @unary(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<4x?xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<8xbf16>, %[[ARG2:[a-z0-9_]+]]: tensor<4xi64>)
func.func @unary(%x: tensor<4x?xf32>, %h: tensor<8xbf16>, %i: tensor<4xi64>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.neg %[[ARG0]] : tensor<4x?xf32>
  %0 = kiln.neg %x : tensor<4x?xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.neg %[[ARG2]] : tensor<4xi64>
  %1 = kiln.neg %i : tensor<4xi64>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.abs %[[ARG2]] : tensor<4xi64>
  %2 = kiln.abs %i : tensor<4xi64>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.exp %[[ARG0]] : tensor<4x?xf32>
  %3 = kiln.exp %x : tensor<4x?xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.log %[[ARG1]] : tensor<8xbf16>
  %4 = kiln.log %h : tensor<8xbf16>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.tanh %[[ARG0]] : tensor<4x?xf32>
  %5 = kiln.tanh %x : tensor<4x?xf32>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.erf %[[ARG0]] : tensor<4x?xf32>
  %6 = kiln.erf %x : tensor<4x?xf32>
// CHECK: %[[V7:[a-z0-9_]+]] = kiln.sin %[[ARG0]] : tensor<4x?xf32>
  %7 = kiln.sin %x : tensor<4x?xf32>
// CHECK: %[[V8:[a-z0-9_]+]] = kiln.cos %[[ARG0]] : tensor<4x?xf32>
  %8 = kiln.cos %x : tensor<4x?xf32>
// CHECK: %[[V9:[a-z0-9_]+]] = kiln.sqrt %[[ARG0]] : tensor<4x?xf32>
  %9 = kiln.sqrt %x : tensor<4x?xf32>
// CHECK: %[[V10:[a-z0-9_]+]] = kiln.rsqrt %[[ARG0]] : tensor<4x?xf32>
  %10 = kiln.rsqrt %x : tensor<4x?xf32>
// CHECK: %[[V11:[a-z0-9_]+]] = kiln.sigmoid %[[ARG1]] : tensor<8xbf16>
  %11 = kiln.sigmoid %h : tensor<8xbf16>
// CHECK: %[[V12:[a-z0-9_]+]] = kiln.relu %[[ARG0]] : tensor<4x?xf32>
  %12 = kiln.relu %x : tensor<4x?xf32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @compare_select_cast(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<8xi64>, %[[ARG1:[a-z0-9_]+]]: tensor<i64>, %[[ARG2:[a-z0-9_]+]]: tensor<8x8xi1>, %[[ARG3:[a-z0-9_]+]]: tensor<2x8x8xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<f32>, %[[ARG5:[a-z0-9_]+]]: tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>)
func.func @compare_select_cast(%pos: tensor<8xi64>, %len: tensor<i64>, %m: tensor<8x8xi1>, %x: tensor<2x8x8xf32>, %ninf: tensor<f32>, %q: tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.compare lt, %[[ARG0]], %[[ARG1]] : (tensor<8xi64>, tensor<i64>) -> tensor<8xi1>
  %0 = kiln.compare lt, %pos, %len : (tensor<8xi64>, tensor<i64>) -> tensor<8xi1>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.compare eq, %[[ARG3]], %[[ARG4]] : (tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xi1>
  %1 = kiln.compare eq, %x, %ninf : (tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xi1>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.compare ge, %[[ARG0]], %[[ARG0]] : (tensor<8xi64>, tensor<8xi64>) -> tensor<8xi1>
  %2 = kiln.compare ge, %pos, %pos : (tensor<8xi64>, tensor<8xi64>) -> tensor<8xi1>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.select %[[ARG2]], %[[ARG3]], %[[ARG4]] : (tensor<8x8xi1>, tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xf32>
  %3 = kiln.select %m, %x, %ninf : (tensor<8x8xi1>, tensor<2x8x8xf32>, tensor<f32>) -> tensor<2x8x8xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.cast %[[ARG0]] : tensor<8xi64> -> tensor<8xf32>
  %4 = kiln.cast %pos : tensor<8xi64> -> tensor<8xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.cast %[[ARG2]] : tensor<8x8xi1> -> tensor<8x8xbf16>
  %5 = kiln.cast %m : tensor<8x8xi1> -> tensor<8x8xbf16>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.cast %[[ARG5]] : tensor<4x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<4xf32>
  %6 = kiln.cast %q : tensor<4x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<4xf32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @matmul(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x128x768xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<768x2304xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<1x12x128x64xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<64x32xf16>, %[[ARG4:[a-z0-9_]+]]: tensor<3x16x64xf16>)
func.func @matmul(%x: tensor<?x128x768xf32>, %w: tensor<768x2304xf32>, %q: tensor<1x12x128x64xf32>, %a: tensor<64x32xf16>, %b: tensor<3x16x64xf16>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.matmul %[[ARG0]], %[[ARG1]] : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
  %0 = kiln.matmul %x, %w : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.matmul %[[ARG2]], %[[ARG2]] transpose_rhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x128xf32>
  %1 = kiln.matmul %q, %q transpose_rhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x128xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.matmul %[[ARG2]], %[[ARG2]] transpose_lhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x64x64xf32>
  %2 = kiln.matmul %q, %q transpose_lhs : (tensor<1x12x128x64xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x64x64xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.matmul %[[ARG3]], %[[ARG4]] transpose_lhs transpose_rhs : (tensor<64x32xf16>, tensor<3x16x64xf16>) -> tensor<3x32x16xf16>
  %3 = kiln.matmul %a, %b transpose_lhs transpose_rhs : (tensor<64x32xf16>, tensor<3x16x64xf16>) -> tensor<3x32x16xf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @reduce(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<4x?x768xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<4x8xi32>)
func.func @reduce(%x: tensor<4x?x768xf32>, %i: tensor<4x8xi32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.reduce mean %[[ARG0]] axes = [2] keepdim : (tensor<4x?x768xf32>) -> tensor<4x?x1xf32>
  %0 = kiln.reduce mean %x axes = [2] keepdim : (tensor<4x?x768xf32>) -> tensor<4x?x1xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.reduce sum %[[ARG0]] axes = [0, 2] : (tensor<4x?x768xf32>) -> tensor<?xf32>
  %1 = kiln.reduce sum %x axes = [0, 2] : (tensor<4x?x768xf32>) -> tensor<?xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.reduce max %[[ARG1]] axes = [1] : (tensor<4x8xi32>) -> tensor<4xi32>
  %2 = kiln.reduce max %i axes = [1] : (tensor<4x8xi32>) -> tensor<4xi32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.reduce min %[[ARG1]] axes = [0, 1] keepdim : (tensor<4x8xi32>) -> tensor<1x1xi32>
  %3 = kiln.reduce min %i axes = [0, 1] keepdim : (tensor<4x8xi32>) -> tensor<1x1xi32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @generators(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: index, %[[ARG1:[a-z0-9_]+]]: index, %[[ARG2:[a-z0-9_]+]]: tensor<i64>)
func.func @generators(%n: index, %s: index, %seed: tensor<i64>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.constant dense<1.000000e+00> : tensor<f32>
  %0 = kiln.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
  %1 = kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.constant dense<true> : tensor<2x2xi1>
  %2 = kiln.constant dense<true> : tensor<2x2xi1>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.iota() dim = 1 : tensor<4x8xi64>
  %3 = kiln.iota () dim = 1 : tensor<4x8xi64>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.iota(%[[ARG0]]) dim = 0 : tensor<?xi32>
  %4 = kiln.iota (%n) dim = 0 : tensor<?xi32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.iota(%[[ARG0]], %[[ARG1]]) dim = 1 : tensor<?x?xf32>
  %5 = kiln.iota (%n, %s) dim = 1 : tensor<?x?xf32>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.causal_mask() : tensor<128x128xi1>
  %6 = kiln.causal_mask () : tensor<128x128xi1>
// CHECK: %[[V7:[a-z0-9_]+]] = kiln.causal_mask(%[[ARG1]], %[[ARG1]]) : tensor<?x?xi1>
  %7 = kiln.causal_mask (%s, %s) : tensor<?x?xi1>
// CHECK: %[[V8:[a-z0-9_]+]] = kiln.causal_mask(%[[ARG0]]) : tensor<4x?xi1>
  %8 = kiln.causal_mask (%n) : tensor<4x?xi1>
// CHECK: %[[V9:[a-z0-9_]+]] = kiln.random_uniform %[[ARG2]]() : (tensor<i64>) -> tensor<2x768xf32>
  %9 = kiln.random_uniform %seed () : (tensor<i64>) -> tensor<2x768xf32>
// CHECK: %[[V10:[a-z0-9_]+]] = kiln.random_uniform %[[ARG2]](%[[ARG0]], %[[ARG1]]) : (tensor<i64>) -> tensor<?x?x768xbf16>
  %10 = kiln.random_uniform %seed (%n, %s) : (tensor<i64>) -> tensor<?x?x768xbf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @padding_mask(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x?xi64>, %[[ARG1:[a-z0-9_]+]]: tensor<2x16xi1>, %[[ARG2:[a-z0-9_]+]]: tensor<2x16xi32>)
func.func @padding_mask(%m: tensor<?x?xi64>, %b: tensor<2x16xi1>, %c: tensor<2x16xi32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.padding_mask %[[ARG0]] : tensor<?x?xi64> -> tensor<?x1x1x?xf32>
  %0 = kiln.padding_mask %m : tensor<?x?xi64> -> tensor<?x1x1x?xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.padding_mask %[[ARG1]] : tensor<2x16xi1> -> tensor<2x1x1x16xf16>
  %1 = kiln.padding_mask %b : tensor<2x16xi1> -> tensor<2x1x1x16xf16>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.padding_mask %[[ARG2]] : tensor<2x16xi32> -> tensor<2x1x1x16xbf16>
  %2 = kiln.padding_mask %c : tensor<2x16xi32> -> tensor<2x1x1x16xbf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @shapes(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x128x768xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<2x3x4xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>>)
func.func @shapes(%x: tensor<?x128x768xf32>, %y: tensor<2x3x4xf32>, %q: tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.reshape %[[ARG0]] : tensor<?x128x768xf32> -> tensor<?x128x12x64xf32>
  %0 = kiln.reshape %x : tensor<?x128x768xf32> -> tensor<?x128x12x64xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.reshape %[[ARG1]] : tensor<2x3x4xf32> -> tensor<24xf32>
  %1 = kiln.reshape %y : tensor<2x3x4xf32> -> tensor<24xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.reshape %[[ARG2]] : tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<24x!quant.uniform<i8:f32, 1.000000e-01>>
  %2 = kiln.reshape %q : tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<24x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.transpose %[[ARG1]] permutation = [2, 0, 1] : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %3 = kiln.transpose %y permutation = [2, 0, 1] : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.transpose %[[ARG0]] permutation = [1, 0, 2] : (tensor<?x128x768xf32>) -> tensor<128x?x768xf32>
  %4 = kiln.transpose %x permutation = [1, 0, 2] : (tensor<?x128x768xf32>) -> tensor<128x?x768xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.transpose %[[ARG2]] permutation = [1, 0] : (tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x6x!quant.uniform<i8:f32, 1.000000e-01>>
  %5 = kiln.transpose %q permutation = [1, 0] : (tensor<6x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x6x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.slice %[[ARG0]] axis = 2[0 : 768 : 1] : (tensor<?x128x768xf32>) -> tensor<?x128x768xf32>
  %6 = kiln.slice %x axis = 2 [0 : 768 : 1] : (tensor<?x128x768xf32>) -> tensor<?x128x768xf32>
// CHECK: %[[V7:[a-z0-9_]+]] = kiln.slice %[[ARG0]] axis = 1[1 : 128 : 2] : (tensor<?x128x768xf32>) -> tensor<?x64x768xf32>
  %7 = kiln.slice %x axis = 1 [1 : 128 : 2] : (tensor<?x128x768xf32>) -> tensor<?x64x768xf32>
// CHECK: %[[V8:[a-z0-9_]+]] = kiln.slice %[[ARG0]] axis = 0[0 : 4 : 1] : (tensor<?x128x768xf32>) -> tensor<4x128x768xf32>
  %8 = kiln.slice %x axis = 0 [0 : 4 : 1] : (tensor<?x128x768xf32>) -> tensor<4x128x768xf32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @concat_pad(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<2x3xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<2x5xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<?x3xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<1x3x8x8xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<4xi32>)
func.func @concat_pad(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>, %d: tensor<?x3xf32>, %img: tensor<1x3x8x8xf32>, %i: tensor<4xi32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.concat %[[ARG0]], %[[ARG1]] axis = 1 : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
  %0 = kiln.concat %a, %b axis = 1 : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.concat %[[ARG0]], %[[ARG2]], %[[ARG0]] axis = 0 : (tensor<2x3xf32>, tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
  %1 = kiln.concat %a, %d, %a axis = 0 : (tensor<2x3xf32>, tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.concat %[[ARG0]] axis = 0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = kiln.concat %a axis = 0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.pad %[[ARG3]] low = [0, 0, 1, 1] high = [0, 0, 1, 1] value = 0.000000e+00 : (tensor<1x3x8x8xf32>) -> tensor<1x3x10x10xf32>
  %3 = kiln.pad %img low = [0, 0, 1, 1] high = [0, 0, 1, 1] value = 0.000000e+00 : (tensor<1x3x8x8xf32>) -> tensor<1x3x10x10xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.pad %[[ARG2]] low = [1, 0] high = [0, 2] value = -1.000000e+00 : (tensor<?x3xf32>) -> tensor<?x5xf32>
  %4 = kiln.pad %d low = [1, 0] high = [0, 2] value = -1.000000e+00 : (tensor<?x3xf32>) -> tensor<?x5xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.pad %[[ARG4]] low = [2] high = [0] value = 7.000000e+00 : (tensor<4xi32>) -> tensor<6xi32>
  %5 = kiln.pad %i low = [2] high = [0] value = 7.000000e+00 : (tensor<4xi32>) -> tensor<6xi32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @broadcast_gather(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<768xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<1x768xf32>, %[[ARG2:[a-z0-9_]+]]: index, %[[ARG3:[a-z0-9_]+]]: tensor<50257x768xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<?x?xi64>, %[[ARG5:[a-z0-9_]+]]: tensor<4xi32>)
func.func @broadcast_gather(%bias: tensor<768xf32>, %x: tensor<1x768xf32>, %n: index, %table: tensor<50257x768xf32>, %ids: tensor<?x?xi64>, %ids32: tensor<4xi32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.broadcast_to %[[ARG0]]() : tensor<768xf32> -> tensor<4x768xf32>
  %0 = kiln.broadcast_to %bias () : tensor<768xf32> -> tensor<4x768xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.broadcast_to %[[ARG1]](%[[ARG2]]) : tensor<1x768xf32> -> tensor<?x768xf32>
  %1 = kiln.broadcast_to %x (%n) : tensor<1x768xf32> -> tensor<?x768xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.broadcast_to %[[ARG1]]() : tensor<1x768xf32> -> tensor<2x3x768xf32>
  %2 = kiln.broadcast_to %x () : tensor<1x768xf32> -> tensor<2x3x768xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.gather %[[ARG3]][%[[ARG4]]] axis = 0 : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
  %3 = kiln.gather %table[%ids] axis = 0 : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.gather %[[ARG3]][%[[ARG5]]] axis = 1 : (tensor<50257x768xf32>, tensor<4xi32>) -> tensor<50257x4xf32>
  %4 = kiln.gather %table[%ids32] axis = 1 : (tensor<50257x768xf32>, tensor<4xi32>) -> tensor<50257x4xf32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @softmax_norms(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<1x12x128x128xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<4x10xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<?x?x768xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<768xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<768xf32>, %[[ARG5:[a-z0-9_]+]]: tensor<?x?x64xbf16>, %[[ARG6:[a-z0-9_]+]]: tensor<64xbf16>)
func.func @softmax_norms(%s: tensor<1x12x128x128xf32>, %l: tensor<4x10xf32>, %x: tensor<?x?x768xf32>, %g: tensor<768xf32>, %b: tensor<768xf32>, %r: tensor<?x?x64xbf16>, %rg: tensor<64xbf16>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.softmax %[[ARG0]] axis = -1 : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
  %0 = kiln.softmax %s axis = -1 : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.softmax %[[ARG1]] axis = 0 : (tensor<4x10xf32>) -> tensor<4x10xf32>
  %1 = kiln.softmax %l axis = 0 : (tensor<4x10xf32>) -> tensor<4x10xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.log_softmax %[[ARG1]] axis = -1 : (tensor<4x10xf32>) -> tensor<4x10xf32>
  %2 = kiln.log_softmax %l axis = -1 : (tensor<4x10xf32>) -> tensor<4x10xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.layer_norm %[[ARG2]] weight %[[ARG3]] bias %[[ARG4]] eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  %3 = kiln.layer_norm %x weight %g bias %b eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.layer_norm %[[ARG2]] weight %[[ARG3]] eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  %4 = kiln.layer_norm %x weight %g eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.layer_norm %[[ARG2]] bias %[[ARG4]] eps = 9.9999999999999998E-13 : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
  %5 = kiln.layer_norm %x bias %b eps = 1.000000e-12 : (tensor<?x?x768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.layer_norm %[[ARG2]] eps = 1.000000e-05 : (tensor<?x?x768xf32>) -> tensor<?x?x768xf32>
  %6 = kiln.layer_norm %x eps = 1.000000e-05 : (tensor<?x?x768xf32>) -> tensor<?x?x768xf32>
// CHECK: %[[V7:[a-z0-9_]+]] = kiln.rms_norm %[[ARG5]], %[[ARG6]] eps = 9.9999999999999995E-7 : (tensor<?x?x64xbf16>, tensor<64xbf16>) -> tensor<?x?x64xbf16>
  %7 = kiln.rms_norm %r, %rg eps = 1.000000e-06 : (tensor<?x?x64xbf16>, tensor<64xbf16>) -> tensor<?x?x64xbf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @activations(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x?x3072xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<2x172xf16>)
func.func @activations(%x: tensor<?x?x3072xf32>, %h: tensor<2x172xf16>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.gelu %[[ARG0]] approximate = tanh : tensor<?x?x3072xf32>
  %0 = kiln.gelu %x approximate = tanh : tensor<?x?x3072xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.gelu %[[ARG0]] approximate = erf : tensor<?x?x3072xf32>
  %1 = kiln.gelu %x approximate = erf : tensor<?x?x3072xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.silu %[[ARG1]] : tensor<2x172xf16>
  %2 = kiln.silu %h : tensor<2x172xf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @linear_embedding(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x?x512xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<2048x512xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<2048xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<?x?x768xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<768x2304xf32>, %[[ARG5:[a-z0-9_]+]]: tensor<2304xf32>, %[[ARG6:[a-z0-9_]+]]: tensor<50257x768xf32>, %[[ARG7:[a-z0-9_]+]]: tensor<?x?xi64>, %[[ARG8:[a-z0-9_]+]]: tensor<7xi32>)
func.func @linear_embedding(%x: tensor<?x?x512xf32>, %w: tensor<2048x512xf32>, %b: tensor<2048xf32>, %x2: tensor<?x?x768xf32>, %w2: tensor<768x2304xf32>, %b2: tensor<2304xf32>, %wte: tensor<50257x768xf32>, %ids: tensor<?x?xi64>, %ids2: tensor<7xi32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.linear %[[ARG0]], %[[ARG1]] bias %[[ARG2]] : (tensor<?x?x512xf32>, tensor<2048x512xf32>, tensor<2048xf32>) -> tensor<?x?x2048xf32>
  %0 = kiln.linear %x, %w bias %b : (tensor<?x?x512xf32>, tensor<2048x512xf32>, tensor<2048xf32>) -> tensor<?x?x2048xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.linear %[[ARG0]], %[[ARG1]] : (tensor<?x?x512xf32>, tensor<2048x512xf32>) -> tensor<?x?x2048xf32>
  %1 = kiln.linear %x, %w : (tensor<?x?x512xf32>, tensor<2048x512xf32>) -> tensor<?x?x2048xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.linear %[[ARG3]], %[[ARG4]] weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>) -> tensor<?x?x2304xf32>
  %2 = kiln.linear %x2, %w2 weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>) -> tensor<?x?x2304xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.linear %[[ARG3]], %[[ARG4]] bias %[[ARG5]] weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>, tensor<2304xf32>) -> tensor<?x?x2304xf32>
  %3 = kiln.linear %x2, %w2 bias %b2 weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>, tensor<2304xf32>) -> tensor<?x?x2304xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.embedding %[[ARG6]], %[[ARG7]] : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
  %4 = kiln.embedding %wte, %ids : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.embedding %[[ARG6]], %[[ARG8]] : (tensor<50257x768xf32>, tensor<7xi32>) -> tensor<7x768xf32>
  %5 = kiln.embedding %wte, %ids2 : (tensor<50257x768xf32>, tensor<7xi32>) -> tensor<7x768xf32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @attention(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x12x?x64xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<?x12x?x64xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<?x12x?x64xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<2x8x16x64xf16>, %[[ARG4:[a-z0-9_]+]]: tensor<2x2x32x64xf16>, %[[ARG5:[a-z0-9_]+]]: tensor<2x2x32x32xf16>, %[[ARG6:[a-z0-9_]+]]: tensor<2x1x1x32xf16>)
func.func @attention(%q: tensor<?x12x?x64xf32>, %k: tensor<?x12x?x64xf32>, %v: tensor<?x12x?x64xf32>, %gq: tensor<2x8x16x64xf16>, %gk: tensor<2x2x32x64xf16>, %gv: tensor<2x2x32x32xf16>, %mask: tensor<2x1x1x32xf16>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.attention %[[ARG0]], %[[ARG1]], %[[ARG2]] causal : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
  %0 = kiln.attention %q, %k, %v causal : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.attention %[[ARG0]], %[[ARG1]], %[[ARG2]] : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
  %1 = kiln.attention %q, %k, %v : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.attention %[[ARG3]], %[[ARG4]], %[[ARG5]] mask %[[ARG6]] : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>, tensor<2x1x1x32xf16>) -> tensor<2x8x16x32xf16>
  %2 = kiln.attention %gq, %gk, %gv mask %mask : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>, tensor<2x1x1x32xf16>) -> tensor<2x8x16x32xf16>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.attention %[[ARG3]], %[[ARG4]], %[[ARG5]] mask %[[ARG6]] causal scale = 1.250000e-01 : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>, tensor<2x1x1x32xf16>) -> tensor<2x8x16x32xf16>
  %3 = kiln.attention %gq, %gk, %gv mask %mask causal scale = 1.250000e-01 : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>, tensor<2x1x1x32xf16>) -> tensor<2x8x16x32xf16>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.attention %[[ARG3]], %[[ARG4]], %[[ARG5]] scale = 5.000000e-01 : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>) -> tensor<2x8x16x32xf16>
  %4 = kiln.attention %gq, %gk, %gv scale = 5.000000e-01 : (tensor<2x8x16x64xf16>, tensor<2x2x32x64xf16>, tensor<2x2x32x32xf16>) -> tensor<2x8x16x32xf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @kv_cache(
// CHECK-SAME: %[[Q:[a-z0-9_]+]]: tensor<?x8x1x64xbf16>, %[[C:[a-z0-9_]+]]: tensor<?x2x256x64xbf16>, %[[K:[a-z0-9_]+]]: tensor<?x2x1x64xbf16>, %[[P:[a-z0-9_]+]]: tensor<?xi64>, %[[N:[a-z0-9_]+]]: tensor<?x2x?x64xbf16>)
func.func @kv_cache(%q: tensor<?x8x1x64xbf16>, %cache: tensor<?x2x256x64xbf16>, %k: tensor<?x2x1x64xbf16>, %pos: tensor<?xi64>, %prompt: tensor<?x2x?x64xbf16>) {
// CHECK: %[[W:[a-z0-9_]+]] = kiln.cache_write %[[C]][%[[P]]], %[[K]] : (tensor<?x2x256x64xbf16>, tensor<?xi64>, tensor<?x2x1x64xbf16>) -> tensor<?x2x256x64xbf16>
  %0 = kiln.cache_write %cache[%pos], %k : (tensor<?x2x256x64xbf16>, tensor<?xi64>, tensor<?x2x1x64xbf16>) -> tensor<?x2x256x64xbf16>
// CHECK: kiln.cache_write %[[C]], %[[N]] : (tensor<?x2x256x64xbf16>, tensor<?x2x?x64xbf16>) -> tensor<?x2x256x64xbf16>
  %1 = kiln.cache_write %cache, %prompt : (tensor<?x2x256x64xbf16>, tensor<?x2x?x64xbf16>) -> tensor<?x2x256x64xbf16>
// CHECK: kiln.attention %[[Q]], %[[W]], %[[W]] key_lengths %[[P]] scale = 1.250000e-01 : (tensor<?x8x1x64xbf16>, tensor<?x2x256x64xbf16>, tensor<?x2x256x64xbf16>, tensor<?xi64>) -> tensor<?x8x1x64xbf16>
  %2 = kiln.attention %q, %0, %0 key_lengths %pos scale = 1.250000e-01 : (tensor<?x8x1x64xbf16>, tensor<?x2x256x64xbf16>, tensor<?x2x256x64xbf16>, tensor<?xi64>) -> tensor<?x8x1x64xbf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @rope(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x8x?x64xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<2x4x16x32xbf16>, %[[ARG2:[a-z0-9_]+]]: tensor<16xi64>, %[[ARG3:[a-z0-9_]+]]: tensor<2x16xi32>)
func.func @rope(%q: tensor<?x8x?x64xf32>, %x: tensor<2x4x16x32xbf16>, %p1: tensor<16xi64>, %p2: tensor<2x16xi32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.rope %[[ARG0]] theta = 1.000000e+04 : (tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32>
  %0 = kiln.rope %q theta = 1.000000e+04 : (tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.rope %[[ARG1]] positions %[[ARG2]] theta = 5.000000e+05 : (tensor<2x4x16x32xbf16>, tensor<16xi64>) -> tensor<2x4x16x32xbf16>
  %1 = kiln.rope %x positions %p1 theta = 5.000000e+05 : (tensor<2x4x16x32xbf16>, tensor<16xi64>) -> tensor<2x4x16x32xbf16>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.rope %[[ARG1]] positions %[[ARG3]] theta = 1.000000e+04 : (tensor<2x4x16x32xbf16>, tensor<2x16xi32>) -> tensor<2x4x16x32xbf16>
  %2 = kiln.rope %x positions %p2 theta = 1.000000e+04 : (tensor<2x4x16x32xbf16>, tensor<2x16xi32>) -> tensor<2x4x16x32xbf16>
// CHECK: kiln.rope %[[ARG1]] theta = 1.000000e+04 inv_freq = [1.000000e+00, 2.500000e-01, {{.*}}] : (tensor<2x4x16x32xbf16>) -> tensor<2x4x16x32xbf16>
  %3 = kiln.rope %x theta = 1.000000e+04 inv_freq = [1.0, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01] : (tensor<2x4x16x32xbf16>) -> tensor<2x4x16x32xbf16>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @conv_pool(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x3x32x32xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<16x3x3x3xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<16xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<1x4x8x8xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<8x2x3x3xf32>, %[[ARG5:[a-z0-9_]+]]: tensor<1x16x32x32xf32>)
func.func @conv_pool(%x: tensor<?x3x32x32xf32>, %w: tensor<16x3x3x3xf32>, %b: tensor<16xf32>, %g: tensor<1x4x8x8xf32>, %gw: tensor<8x2x3x3xf32>, %p: tensor<1x16x32x32xf32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.conv2d %[[ARG0]], %[[ARG1]] bias %[[ARG2]] stride = [2, 2] padding = [1, 1] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<?x16x16x16xf32>
  %0 = kiln.conv2d %x, %w bias %b stride = [2, 2] padding = [1, 1] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<?x16x16x16xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.conv2d %[[ARG0]], %[[ARG1]] stride = [1, 1] padding = [0, 0] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>) -> tensor<?x16x30x30xf32>
  %1 = kiln.conv2d %x, %w stride = [1, 1] padding = [0, 0] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>) -> tensor<?x16x30x30xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.conv2d %[[ARG3]], %[[ARG4]] stride = [1, 1] padding = [2, 2] dilation = [2, 2] groups = 2 : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x8x8xf32>
  %2 = kiln.conv2d %g, %gw stride = [1, 1] padding = [2, 2] dilation = [2, 2] groups = 2 : (tensor<1x4x8x8xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x8x8xf32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.max_pool2d %[[ARG5]] kernel = [2, 2] stride = [2, 2] padding = [0, 0] : (tensor<1x16x32x32xf32>) -> tensor<1x16x16x16xf32>
  %3 = kiln.max_pool2d %p kernel = [2, 2] stride = [2, 2] padding = [0, 0] : (tensor<1x16x32x32xf32>) -> tensor<1x16x16x16xf32>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.avg_pool2d %[[ARG5]] kernel = [3, 3] stride = [1, 1] padding = [1, 1] : (tensor<1x16x32x32xf32>) -> tensor<1x16x32x32xf32>
  %4 = kiln.avg_pool2d %p kernel = [3, 3] stride = [1, 1] padding = [1, 1] : (tensor<1x16x32x32xf32>) -> tensor<1x16x32x32xf32>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.max_pool2d %[[ARG0]] kernel = [3, 2] stride = [1, 2] padding = [1, 0] : (tensor<?x3x32x32xf32>) -> tensor<?x3x32x16xf32>
  %5 = kiln.max_pool2d %x kernel = [3, 2] stride = [1, 2] padding = [1, 0] : (tensor<?x3x32x32xf32>) -> tensor<?x3x32x16xf32>
// CHECK: return
  return
}

// CHECK-LABEL: func.func @cells(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x32xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<?x64xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<?x64xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<192x32xf32>, %[[ARG4:[a-z0-9_]+]]: tensor<192x64xf32>, %[[ARG5:[a-z0-9_]+]]: tensor<192xf32>, %[[ARG6:[a-z0-9_]+]]: tensor<256x32xf32>, %[[ARG7:[a-z0-9_]+]]: tensor<256x64xf32>, %[[ARG8:[a-z0-9_]+]]: tensor<256xf32>)
func.func @cells(%x: tensor<?x32xf32>, %h: tensor<?x64xf32>, %c: tensor<?x64xf32>, %gwih: tensor<192x32xf32>, %gwhh: tensor<192x64xf32>, %gb: tensor<192xf32>, %lwih: tensor<256x32xf32>, %lwhh: tensor<256x64xf32>, %lb: tensor<256xf32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.gru_cell %[[ARG0]], %[[ARG1]], %[[ARG3]], %[[ARG4]], %[[ARG5]], %[[ARG5]] : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<192x32xf32>, tensor<192x64xf32>, tensor<192xf32>, tensor<192xf32>) -> tensor<?x64xf32>
  %0 = kiln.gru_cell %x, %h, %gwih, %gwhh, %gb, %gb : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<192x32xf32>, tensor<192x64xf32>, tensor<192xf32>, tensor<192xf32>) -> tensor<?x64xf32>
// CHECK: %[[NEW_HIDDEN:[a-z0-9_]+]], %[[NEW_CELL:[a-z0-9_]+]] = kiln.lstm_cell %[[ARG0]], %[[ARG1]], %[[ARG2]], %[[ARG6]], %[[ARG7]], %[[ARG8]], %[[ARG8]] : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<256x32xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %1:2 = kiln.lstm_cell %x, %h, %c, %lwih, %lwhh, %lb, %lb : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<256x32xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
// CHECK: return
  return
}

// CHECK-LABEL: func.func @training(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<?x?x768xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<i64>, %[[ARG2:[a-z0-9_]+]]: tensor<?x?x50257xf32>, %[[ARG3:[a-z0-9_]+]]: tensor<?x?xi64>, %[[ARG4:[a-z0-9_]+]]: tensor<4x10xbf16>, %[[ARG5:[a-z0-9_]+]]: tensor<4xi32>, %[[ARG6:[a-z0-9_]+]]: tensor<8x1xf32>, %[[ARG7:[a-z0-9_]+]]: tensor<8x1xf32>)
func.func @training(%x: tensor<?x?x768xf32>, %seed: tensor<i64>, %logits: tensor<?x?x50257xf32>, %labels: tensor<?x?xi64>, %l2: tensor<4x10xbf16>, %t2: tensor<4xi32>, %pred: tensor<8x1xf32>, %y: tensor<8x1xf32>) {
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.dropout %[[ARG0]], %[[ARG1]] p = 1.000000e-01 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
  %0 = kiln.dropout %x, %seed p = 1.000000e-01 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
// CHECK: %[[V1:[a-z0-9_]+]] = kiln.dropout %[[ARG0]], %[[ARG1]] p = 0.000000e+00 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
  %1 = kiln.dropout %x, %seed p = 0.000000e+00 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
// CHECK: %[[V2:[a-z0-9_]+]] = kiln.cross_entropy %[[ARG2]], %[[ARG3]] reduction = mean : (tensor<?x?x50257xf32>, tensor<?x?xi64>) -> tensor<f32>
  %2 = kiln.cross_entropy %logits, %labels reduction = mean : (tensor<?x?x50257xf32>, tensor<?x?xi64>) -> tensor<f32>
// CHECK: %[[V3:[a-z0-9_]+]] = kiln.cross_entropy %[[ARG4]], %[[ARG5]] ignore_index = 0 reduction = none : (tensor<4x10xbf16>, tensor<4xi32>) -> tensor<4xbf16>
  %3 = kiln.cross_entropy %l2, %t2 ignore_index = 0 reduction = none : (tensor<4x10xbf16>, tensor<4xi32>) -> tensor<4xbf16>
// CHECK: %[[V4:[a-z0-9_]+]] = kiln.cross_entropy %[[ARG4]], %[[ARG5]] reduction = sum : (tensor<4x10xbf16>, tensor<4xi32>) -> tensor<bf16>
  %4 = kiln.cross_entropy %l2, %t2 reduction = sum : (tensor<4x10xbf16>, tensor<4xi32>) -> tensor<bf16>
// CHECK: %[[V5:[a-z0-9_]+]] = kiln.mse %[[ARG6]], %[[ARG7]] reduction = mean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  %5 = kiln.mse %pred, %y reduction = mean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
// CHECK: %[[V6:[a-z0-9_]+]] = kiln.mse %[[ARG6]], %[[ARG7]] reduction = none : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
  %6 = kiln.mse %pred, %y reduction = none : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
// CHECK: %[[V7:[a-z0-9_]+]] = kiln.kl_div %[[ARG6]], %[[ARG7]] reduction = batchmean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  %7 = kiln.kl_div %pred, %y reduction = batchmean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
// CHECK: %[[V8:[a-z0-9_]+]] = kiln.kl_div %[[ARG6]], %[[ARG7]] reduction = sum log_target : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
  %8 = kiln.kl_div %pred, %y reduction = sum log_target : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
// CHECK: %[[V9:[a-z0-9_]+]] = kiln.kl_div %[[ARG6]], %[[ARG7]] reduction = none : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
  %9 = kiln.kl_div %pred, %y reduction = none : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
// CHECK: return
  return
}


// CHECK-LABEL: func.func @training_ops(
// CHECK-SAME: %[[ARG0:[a-z0-9_]+]]: tensor<4xf32>, %[[ARG1:[a-z0-9_]+]]: tensor<10x4xf32>, %[[ARG2:[a-z0-9_]+]]: tensor<?x3xi64>, %[[ARG3:[a-z0-9_]+]]: tensor<?x3x4xf32>)
kiln.parameter @"opt.w" : tensor<4xf32> init zeros trainable
func.func @training_ops(%v: tensor<4xf32>, %table: tensor<10x4xf32>, %ids: tensor<?x3xi64>, %g: tensor<?x3x4xf32>) {
// CHECK: kiln.write_param @opt.w, %[[ARG0]] : tensor<4xf32>
  kiln.write_param @"opt.w", %v : tensor<4xf32>
// CHECK: %[[V0:[a-z0-9_]+]] = kiln.scatter_add %[[ARG1]][%[[ARG2]]], %[[ARG3]] axis = 0 : (tensor<10x4xf32>, tensor<?x3xi64>, tensor<?x3x4xf32>) -> tensor<10x4xf32>
  %0 = kiln.scatter_add %table[%ids], %g axis = 0 : (tensor<10x4xf32>, tensor<?x3xi64>, tensor<?x3x4xf32>) -> tensor<10x4xf32>
// CHECK: return
  return
}


// CHECK-LABEL: func.func @quantization_ops(
func.func @quantization_ops(%q8: tensor<16x64xi8>, %q4: tensor<16x32xi8>, %s: tensor<16x1xf32>, %sg: tensor<16x2xf32>, %z: tensor<16x2xi8>, %x: tensor<?x64xf32>, %st: tensor<?x1xf32>, %zt: tensor<?x1xi8>, %ef: tensor<16x16xf32>, %ep: tensor<16x16xi8>, %co: tensor<17xi32>, %ci: tensor<100xi16>, %cv: tensor<100xf32>) {
// CHECK: kiln.dequantize %{{.*}}, %{{.*}} : (tensor<16x64xi8>, tensor<16x1xf32>) -> tensor<16x64xf32>
  %0 = kiln.dequantize %q8, %s : (tensor<16x64xi8>, tensor<16x1xf32>) -> tensor<16x64xf32>
// CHECK: kiln.dequantize %{{.*}}, %{{.*}} zero_point %{{.*}} bits = 4 unsigned : (tensor<16x32xi8>, tensor<16x2xf32>, tensor<16x2xi8>) -> tensor<16x64xf32>
  %1 = kiln.dequantize %q4, %sg zero_point %z bits = 4 unsigned : (tensor<16x32xi8>, tensor<16x2xf32>, tensor<16x2xi8>) -> tensor<16x64xf32>
// CHECK: kiln.expand_2of4 %{{.*}}, %{{.*}} positions %{{.*}} : (tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xi8>) -> tensor<16x64xf32>
  %e = kiln.expand_2of4 %ef, %ef positions %ep : (tensor<16x16xf32>, tensor<16x16xf32>, tensor<16x16xi8>) -> tensor<16x64xf32>
// CHECK: kiln.expand_csr %{{.*}}, %{{.*}}, %{{.*}} : (tensor<17xi32>, tensor<100xi16>, tensor<100xf32>) -> tensor<16x64xf32>
  %csr = kiln.expand_csr %co, %ci, %cv : (tensor<17xi32>, tensor<100xi16>, tensor<100xf32>) -> tensor<16x64xf32>
// CHECK: kiln.quantize %{{.*}}, %{{.*}} : (tensor<?x64xf32>, tensor<?x1xf32>) -> tensor<?x64xi8>
  %2 = kiln.quantize %x, %st : (tensor<?x64xf32>, tensor<?x1xf32>) -> tensor<?x64xi8>
// CHECK: kiln.quantize %{{.*}}, %{{.*}} zero_point %{{.*}} unsigned : (tensor<?x64xf32>, tensor<?x1xf32>, tensor<?x1xi8>) -> tensor<?x64xi8>
  %3 = kiln.quantize %x, %st zero_point %zt unsigned : (tensor<?x64xf32>, tensor<?x1xf32>, tensor<?x1xi8>) -> tensor<?x64xi8>
// CHECK: kiln.integer_matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<?x64xi8>, tensor<16x64xi8>) -> tensor<?x16xi32>
  %4 = kiln.integer_matmul %2, %q8 transpose_rhs : (tensor<?x64xi8>, tensor<16x64xi8>) -> tensor<?x16xi32>
  return
}

// CHECK-LABEL: func.func @fp8_ops(
func.func @fp8_ops(%x: tensor<?x64xf32>, %s: tensor<1x1xf32>, %w: tensor<16x64xf8E4M3FN>, %s1: tensor<1xf32>) -> (tensor<?x16xf32>, tensor<16x64xf32>) {
// CHECK: kiln.quantize %{{.*}}, %{{.*}} e4m3 : (tensor<?x64xf32>, tensor<1x1xf32>) -> tensor<?x64xf8E4M3FN>
  %0 = kiln.quantize %x, %s e4m3 : (tensor<?x64xf32>, tensor<1x1xf32>) -> tensor<?x64xf8E4M3FN>
// CHECK: kiln.scaled_fp8_matmul %{{.*}}, %{{.*}} scales %{{.*}}, %{{.*}} transpose_rhs : (tensor<?x64xf8E4M3FN>, tensor<16x64xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x16xf32>
  %1 = kiln.scaled_fp8_matmul %0, %w scales %s1, %s1 transpose_rhs : (tensor<?x64xf8E4M3FN>, tensor<16x64xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x16xf32>
// CHECK: kiln.dequantize %{{.*}}, %{{.*}} : (tensor<16x64xf8E4M3FN>, tensor<1x1xf32>) -> tensor<16x64xf32>
  %2 = kiln.dequantize %w, %s : (tensor<16x64xf8E4M3FN>, tensor<1x1xf32>) -> tensor<16x64xf32>
  return %1, %2 : tensor<?x16xf32>, tensor<16x64xf32>
}

// CHECK-LABEL: func.func @unpack_panels(
func.func @unpack_panels(%p: tensor<4x64x64xf32>, %q: tensor<2x32x128x2xbf16>) -> (tensor<64x200xf32>, tensor<64x256xbf16>, tensor<200x64xf32>) {
// CHECK: kiln.unpack_panels %{{.*}} columns = 200 : (tensor<4x64x64xf32>) -> tensor<64x200xf32>
  %0 = kiln.unpack_panels %p columns = 200 : (tensor<4x64x64xf32>) -> tensor<64x200xf32>
// CHECK: kiln.unpack_panels %{{.*}} columns = 256 : (tensor<2x32x128x2xbf16>) -> tensor<64x256xbf16>
  %1 = kiln.unpack_panels %q columns = 256 : (tensor<2x32x128x2xbf16>) -> tensor<64x256xbf16>
// CHECK: kiln.unpack_panels %{{.*}} columns = 200 transposed : (tensor<4x64x64xf32>) -> tensor<200x64xf32>
  %2 = kiln.unpack_panels %p columns = 200 transposed : (tensor<4x64x64xf32>) -> tensor<200x64xf32>
  return %0, %1, %2 : tensor<64x200xf32>, tensor<64x256xbf16>, tensor<200x64xf32>
}
