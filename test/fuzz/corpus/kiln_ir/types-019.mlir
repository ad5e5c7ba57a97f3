func.func @embedding_float_ids(%t: tensor<10x4xf32>, %i: tensor<3xf32>) {
  %0 = "kiln.embedding"(%t, %i) : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  return
}
