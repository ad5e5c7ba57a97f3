func.func @unknown_op(%a: tensor<2xf32>) {
  %0 = kiln.frobnicate %a : tensor<2xf32>
  return
}
