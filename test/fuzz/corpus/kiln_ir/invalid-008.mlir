func.func @select_broadcast(%c: tensor<3x8xi1>, %a: tensor<2x8xf32>, %b: tensor<f32>) {
  %0 = "kiln.select"(%c, %a, %b) : (tensor<3x8xi1>, tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  return
}
