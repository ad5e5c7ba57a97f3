func.func @scatter_add_shape(%t: tensor<10x4xf32>, %ids: tensor<3xi64>, %u: tensor<3x5xf32>) {
  %0 = kiln.scatter_add %t[%ids], %u axis = 0 : (tensor<10x4xf32>, tensor<3xi64>, tensor<3x5xf32>) -> tensor<10x4xf32>
  return
}
