func.func @transpose_size(%a: tensor<2x3xf32>) {
  %0 = "kiln.transpose"(%a) {permutation = array<i64: 0, 1, 2>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}
