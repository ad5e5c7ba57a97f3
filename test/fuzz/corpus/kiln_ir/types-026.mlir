func.func @layer_norm_f64(%a: tensor<2x8xf64>) {
  %0 = "kiln.layer_norm"(%a) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<2x8xf64>) -> tensor<2x8xf64>
  return
}
