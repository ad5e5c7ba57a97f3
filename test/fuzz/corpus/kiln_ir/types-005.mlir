func.func @add_i1(%a: tensor<4xi1>) {
  %0 = "kiln.add"(%a, %a) : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  return
}
