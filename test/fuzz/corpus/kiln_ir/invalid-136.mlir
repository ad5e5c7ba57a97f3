func.func @mse_element_type(%a: tensor<8xf32>, %b: tensor<8xf16>) {
  %0 = "kiln.mse"(%a, %b) : (tensor<8xf32>, tensor<8xf16>) -> tensor<f32>
  return
}
