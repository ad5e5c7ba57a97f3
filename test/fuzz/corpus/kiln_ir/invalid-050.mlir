func.func @transpose_result(%a: tensor<2x3xf32>) {
  %0 = "kiln.transpose"(%a) {permutation = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}
