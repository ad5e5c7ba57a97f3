func.func @layer_norm_weight(%a: tensor<2x8xf32>, %w: tensor<4xf32>) {
  %0 = "kiln.layer_norm"(%a, %w) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}
