func.func @functional_type_count(%a: tensor<2xf32>) {
  %0 = kiln.add %a, %a : (tensor<2xf32>) -> tensor<2xf32>
  return
}
