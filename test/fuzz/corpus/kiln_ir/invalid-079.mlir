func.func @linear_element_type(%a: tensor<2x8xf32>, %w: tensor<4x8xbf16>) {
  %0 = "kiln.linear"(%a, %w) : (tensor<2x8xf32>, tensor<4x8xbf16>) -> tensor<2x4xf32>
  return
}
