func.func @add_i8(%a: tensor<4xi8>) {
  %0 = "kiln.add"(%a, %a) : (tensor<4xi8>, tensor<4xi8>) -> tensor<4xi8>
  return
}
