func.func @kl_div_type(%a: tensor<8x4xf32>, %b: tensor<8x4xbf16>) {
  %0 = "kiln.kl_div"(%a, %b) : (tensor<8x4xf32>, tensor<8x4xbf16>) -> tensor<f32>
  return
}
