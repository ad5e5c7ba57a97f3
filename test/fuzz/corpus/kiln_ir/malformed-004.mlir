func.func @bad_reduce_kind(%a: tensor<2x3xf32>) {
  %0 = kiln.reduce product %a axes = [1] : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}
