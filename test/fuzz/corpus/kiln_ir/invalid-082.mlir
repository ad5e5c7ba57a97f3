func.func @linear_bias(%a: tensor<2x8xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>) {
  %0 = "kiln.linear"(%a, %w, %b) : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<2x4xf32>
  return
}
