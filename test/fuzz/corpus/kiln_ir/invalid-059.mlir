func.func @concat_element_type(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) {
  %0 = "kiln.concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf16>) -> tensor<4x3xf32>
  return
}
