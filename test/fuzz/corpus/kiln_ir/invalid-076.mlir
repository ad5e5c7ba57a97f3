func.func @layer_norm_element_type(%a: tensor<2x8xf32>, %w: tensor<8xf16>) {
  %0 = "kiln.layer_norm"(%a, %w) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x8xf32>, tensor<8xf16>) -> tensor<2x8xf32>
  return
}
