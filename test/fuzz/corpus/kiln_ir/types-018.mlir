func.func @gather_i16_indices(%t: tensor<10x4xf32>, %i: tensor<3xi16>) {
  %0 = "kiln.gather"(%t, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<3xi16>) -> tensor<3x4xf32>
  return
}
