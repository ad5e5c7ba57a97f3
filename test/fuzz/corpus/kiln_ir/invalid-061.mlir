func.func @concat_result(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>) {
  %0 = "kiln.concat"(%a, %b) {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x9xf32>
  return
}
