func.func @exp_integer(%a: tensor<4xi32>) {
  %0 = "kiln.exp"(%a) : (tensor<4xi32>) -> tensor<4xi32>
  return
}
