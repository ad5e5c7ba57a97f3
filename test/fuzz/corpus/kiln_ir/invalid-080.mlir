func.func @linear_features(%a: tensor<2x8xf32>, %w: tensor<8x4xf32>) {
  %0 = "kiln.linear"(%a, %w) : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  return
}
