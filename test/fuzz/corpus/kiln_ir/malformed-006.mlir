func.func @bad_gelu(%a: tensor<2xf32>) {
  %0 = kiln.gelu %a approximate = sigmoid : tensor<2xf32>
  return
}
