func.func @cast_shape(%a: tensor<2x8xi64>) {
  %0 = kiln.cast %a : tensor<2x8xi64> -> tensor<8x2xf32>
  return
}
