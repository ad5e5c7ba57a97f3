func.func @kl_div_batchmean_scalar(%a: tensor<f32>) {
  %0 = "kiln.kl_div"(%a, %a) {reduction = 3 : i32} : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return
}
