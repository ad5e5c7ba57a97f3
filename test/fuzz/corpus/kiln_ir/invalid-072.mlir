func.func @log_softmax_axis(%a: tensor<2x8xf32>) {
  %0 = "kiln.log_softmax"(%a) {axis = -3 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}
