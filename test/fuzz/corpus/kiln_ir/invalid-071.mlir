func.func @softmax_axis(%a: tensor<2x8xf32>) {
  %0 = "kiln.softmax"(%a) {axis = 2 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}
