func.func @rope_dynamic_dim(%x: tensor<1x2x4x?xf32>) {
  %0 = "kiln.rope"(%x) {theta = 1.0e+04 : f64} : (tensor<1x2x4x?xf32>) -> tensor<1x2x4x?xf32>
  return
}
