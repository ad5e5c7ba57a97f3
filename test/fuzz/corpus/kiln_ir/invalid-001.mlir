func.func @add_element_type(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) {
  %0 = "kiln.add"(%a, %b) : (tensor<2x3xf32>, tensor<2x3xf16>) -> tensor<2x3xf32>
  return
}
