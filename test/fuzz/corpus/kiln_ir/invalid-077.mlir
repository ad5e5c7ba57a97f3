func.func @rms_norm_weight(%a: tensor<2x8xf32>, %w: tensor<16xf32>) {
  %0 = "kiln.rms_norm"(%a, %w) {eps = 1.0e-06 : f64} : (tensor<2x8xf32>, tensor<16xf32>) -> tensor<2x8xf32>
  return
}
