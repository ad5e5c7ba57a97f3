func.func @unterminated(%a: tensor<2xf32>) {
  %0 = kiln.exp %a : tensor<2xf32
  return
}
