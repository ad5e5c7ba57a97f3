// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// Element type constraints: f32, bf16, f16, i64, i32, i1 and quantized types
// where an op moves data; f64, i8 and quantized types are rejected where an
// op computes. Cases without an expected error must verify.

kiln.parameter @q : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
kiln.parameter @b : tensor<4xi1> init ones
func.func @quant_accepted(%i: tensor<3xi64>, %c: tensor<2x4xi1>) {
  %0 = kiln.read_param @q : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>>
  %1 = kiln.reshape %0 : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<8x!quant.uniform<i8:f32, 1.000000e-01>>
  %2 = kiln.transpose %0 permutation = [1, 0] : (tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %3 = kiln.gather %0[%i] axis = 0 : (tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<3xi64>) -> tensor<3x2x!quant.uniform<i8:f32, 1.000000e-01>>
  %4 = kiln.cast %0 : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<4x2xf32>
  %5 = kiln.concat %2, %2 axis = 0 : (tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %6 = kiln.select %c, %2, %2 : (tensor<2x4xi1>, tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %7 = kiln.read_param @b : tensor<4xi1>
  return
}

// -----

func.func @per_axis_quant(%x: tensor<4x2x!quant.uniform<i8:f32:0, {1.000000e-01, 2.000000e-01, 3.000000e-01, 4.000000e-01}>>) {
  %0 = kiln.cast %x : tensor<4x2x!quant.uniform<i8:f32:0, {1.000000e-01, 2.000000e-01, 3.000000e-01, 4.000000e-01}>> -> tensor<4x2xbf16>
  return
}

// -----

// expected-error @+1 {{'kiln.parameter' op attribute 'type' failed to satisfy constraint: type attribute of ranked tensor of}}
kiln.parameter @p : tensor<4xf64> init zeros

// -----

func.func @add_f64(%a: tensor<4xf64>) {
  // expected-error-re @+1 {{'kiln.add' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xf64>'}}
  %0 = "kiln.add"(%a, %a) : (tensor<4xf64>, tensor<4xf64>) -> tensor<4xf64>
  return
}

// -----

func.func @add_i8(%a: tensor<4xi8>) {
  // expected-error-re @+1 {{'kiln.add' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi8>'}}
  %0 = "kiln.add"(%a, %a) : (tensor<4xi8>, tensor<4xi8>) -> tensor<4xi8>
  return
}

// -----

func.func @add_i1(%a: tensor<4xi1>) {
  // expected-error-re @+1 {{'kiln.add' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi1>'}}
  %0 = "kiln.add"(%a, %a) : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  return
}

// -----

func.func @add_quant(%a: tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) {
  // expected-error-re @+1 {{'kiln.add' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>'}}
  %0 = "kiln.add"(%a, %a) : (tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>
  return
}

// -----

func.func @add_unranked(%a: tensor<*xf32>) {
  // expected-error-re @+1 {{'kiln.add' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<*xf32>'}}
  %0 = "kiln.add"(%a, %a) : (tensor<*xf32>, tensor<*xf32>) -> tensor<*xf32>
  return
}

// -----

func.func @add_vector(%a: vector<4xf32>) {
  // expected-error-re @+1 {{'kiln.add' op operand #0 must be ranked tensor of {{.*}} values, but got 'vector<4xf32>'}}
  %0 = "kiln.add"(%a, %a) : (vector<4xf32>, vector<4xf32>) -> vector<4xf32>
  return
}

// -----

func.func @exp_integer(%a: tensor<4xi32>) {
  // expected-error-re @+1 {{'kiln.exp' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi32>'}}
  %0 = "kiln.exp"(%a) : (tensor<4xi32>) -> tensor<4xi32>
  return
}

// -----

func.func @pow_integer(%a: tensor<2xi32>) {
  // expected-error-re @+1 {{'kiln.pow' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<2xi32>'}}
  %0 = "kiln.pow"(%a, %a) : (tensor<2xi32>, tensor<2xi32>) -> tensor<2xi32>
  return
}

// -----

func.func @neg_i1(%a: tensor<4xi1>) {
  // expected-error-re @+1 {{'kiln.neg' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi1>'}}
  %0 = "kiln.neg"(%a) : (tensor<4xi1>) -> tensor<4xi1>
  return
}

// -----

func.func @softmax_integer(%a: tensor<2x8xi32>) {
  // expected-error-re @+1 {{'kiln.softmax' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<2x8xi32>'}}
  %0 = "kiln.softmax"(%a) {axis = 1 : i64} : (tensor<2x8xi32>) -> tensor<2x8xi32>
  return
}

// -----

func.func @matmul_quant(%a: tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>) {
  // expected-error-re @+1 {{'kiln.matmul' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>'}}
  %0 = "kiln.matmul"(%a, %a) : (tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>
  return
}

// -----

func.func @reshape_f64(%a: tensor<4xf64>) {
  // expected-error-re @+1 {{'kiln.reshape' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xf64>'}}
  %0 = "kiln.reshape"(%a) : (tensor<4xf64>) -> tensor<2x2xf64>
  return
}

// -----

func.func @compare_result_type(%a: tensor<4xf32>) {
  // expected-error-re @+1 {{'kiln.compare' op result #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xf32>'}}
  %0 = "kiln.compare"(%a, %a) {predicate = 0 : i32} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @select_condition_type(%c: tensor<4xi32>, %a: tensor<4xf32>) {
  // expected-error-re @+1 {{'kiln.select' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi32>'}}
  %0 = "kiln.select"(%c, %a, %a) : (tensor<4xi32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @gather_float_indices(%t: tensor<10x4xf32>, %i: tensor<3xf32>) {
  // expected-error-re @+1 {{'kiln.gather' op operand #1 must be ranked tensor of {{.*}} values, but got 'tensor<3xf32>'}}
  %0 = "kiln.gather"(%t, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @gather_i16_indices(%t: tensor<10x4xf32>, %i: tensor<3xi16>) {
  // expected-error-re @+1 {{'kiln.gather' op operand #1 must be ranked tensor of {{.*}} values, but got 'tensor<3xi16>'}}
  %0 = "kiln.gather"(%t, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<3xi16>) -> tensor<3x4xf32>
  return
}

// -----

func.func @embedding_float_ids(%t: tensor<10x4xf32>, %i: tensor<3xf32>) {
  // expected-error-re @+1 {{'kiln.embedding' op operand #1 must be ranked tensor of {{.*}} values, but got 'tensor<3xf32>'}}
  %0 = "kiln.embedding"(%t, %i) : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @causal_mask_type() {
  // expected-error-re @+1 {{'kiln.causal_mask' op result #0 must be 2D tensor of {{.*}} values, but got 'tensor<4x4xf32>'}}
  %0 = "kiln.causal_mask"() : () -> tensor<4x4xf32>
  return
}

// -----

func.func @padding_mask_float_input(%m: tensor<2x4xf32>) {
  // expected-error-re @+1 {{'kiln.padding_mask' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<2x4xf32>'}}
  %0 = "kiln.padding_mask"(%m) : (tensor<2x4xf32>) -> tensor<2x1x1x4xf32>
  return
}

// -----

func.func @padding_mask_int_result(%m: tensor<2x4xi64>) {
  // expected-error-re @+1 {{'kiln.padding_mask' op result #0 must be ranked tensor of {{.*}} values, but got 'tensor<2x1x1x4xi64>'}}
  %0 = "kiln.padding_mask"(%m) : (tensor<2x4xi64>) -> tensor<2x1x1x4xi64>
  return
}

// -----

func.func @random_uniform_int(%s: tensor<i64>) {
  // expected-error-re @+1 {{'kiln.random_uniform' op result #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi32>'}}
  %0 = "kiln.random_uniform"(%s) : (tensor<i64>) -> tensor<4xi32>
  return
}

// -----

func.func @random_uniform_seed(%s: tensor<i32>) {
  // expected-error-re @+1 {{'kiln.random_uniform' op operand #0 must be 0D tensor of {{.*}} values, but got 'tensor<i32>'}}
  %0 = "kiln.random_uniform"(%s) : (tensor<i32>) -> tensor<4xf32>
  return
}

// -----

func.func @iota_bool() {
  // expected-error-re @+1 {{'kiln.iota' op result #0 must be ranked tensor of {{.*}} values, but got 'tensor<4xi1>'}}
  %0 = "kiln.iota"() {dim = 0 : i64} : () -> tensor<4xi1>
  return
}

// -----

func.func @layer_norm_f64(%a: tensor<2x8xf64>) {
  // expected-error-re @+1 {{'kiln.layer_norm' op operand #0 must be ranked tensor of {{.*}} values, but got 'tensor<2x8xf64>'}}
  %0 = "kiln.layer_norm"(%a) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<2x8xf64>) -> tensor<2x8xf64>
  return
}
