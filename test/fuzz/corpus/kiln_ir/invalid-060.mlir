func.func @concat_dim(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  %0 = "kiln.concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  return
}
