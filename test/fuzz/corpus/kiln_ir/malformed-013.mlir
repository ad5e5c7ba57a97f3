func.func @missing_brace(%a: tensor<2xf32>) {
  %0 = kiln.neg %a : tensor<2xf32>
  return
