func.func @softmax_integer(%a: tensor<2x8xi32>) {
  %0 = "kiln.softmax"(%a) {axis = 1 : i64} : (tensor<2x8xi32>) -> tensor<2x8xi32>
  return
}
