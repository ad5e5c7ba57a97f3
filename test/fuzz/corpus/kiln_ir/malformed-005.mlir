func.func @bad_axes(%a: tensor<2x3xf32>) {
  %0 = kiln.reduce sum %a axes = 1 : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}
