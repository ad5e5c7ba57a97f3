func.func @linear_features_in_out(%a: tensor<2x8xf32>, %w: tensor<4x8xf32>) {
  %0 = "kiln.linear"(%a, %w) {weight_in_out} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x8xf32>
  return
}
