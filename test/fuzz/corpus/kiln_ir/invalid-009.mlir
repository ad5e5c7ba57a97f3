func.func @select_element_type(%c: tensor<8xi1>, %a: tensor<8xf32>, %b: tensor<f16>) {
  %0 = "kiln.select"(%c, %a, %b) : (tensor<8xi1>, tensor<8xf32>, tensor<f16>) -> tensor<8xf32>
  return
}
