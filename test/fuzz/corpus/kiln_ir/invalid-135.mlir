func.func @mse_shape(%a: tensor<8x1xf32>, %b: tensor<8xf32>) {
  %0 = "kiln.mse"(%a, %b) : (tensor<8x1xf32>, tensor<8xf32>) -> tensor<f32>
  return
}
