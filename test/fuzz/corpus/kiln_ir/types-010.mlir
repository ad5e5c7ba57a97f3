func.func @pow_integer(%a: tensor<2xi32>) {
  %0 = "kiln.pow"(%a, %a) : (tensor<2xi32>, tensor<2xi32>) -> tensor<2xi32>
  return
}
