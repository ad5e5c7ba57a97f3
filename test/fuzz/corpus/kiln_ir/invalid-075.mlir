func.func @layer_norm_bias(%a: tensor<2x8xf32>, %b: tensor<4xf32>) {
  %0 = "kiln.layer_norm"(%a, %b) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}
