func.func @missing_type(%a: tensor<2xf32>) {
  %0 = kiln.add %a, %a
  return
}
