func.func @embedding_result(%t: tensor<10x4xf32>, %i: tensor<3xi64>) {
  %0 = "kiln.embedding"(%t, %i) : (tensor<10x4xf32>, tensor<3xi64>) -> tensor<3x10xf32>
  return
}
