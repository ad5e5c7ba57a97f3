func.func @add_result_shape(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  %0 = "kiln.add"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x3xf32>
  return
}
