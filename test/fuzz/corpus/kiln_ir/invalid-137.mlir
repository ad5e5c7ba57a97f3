func.func @mse_batchmean(%a: tensor<8xf32>) {
  %0 = "kiln.mse"(%a, %a) {reduction = 3 : i32} : (tensor<8xf32>, tensor<8xf32>) -> tensor<f32>
  return
}
