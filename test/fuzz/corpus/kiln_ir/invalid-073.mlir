func.func @layer_norm_rank(%a: tensor<f32>) {
  %0 = "kiln.layer_norm"(%a) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<f32>) -> tensor<f32>
  return
}
