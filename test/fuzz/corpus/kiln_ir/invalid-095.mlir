func.func @rope_odd(%x: tensor<1x2x4x7xf32>) {
  %0 = "kiln.rope"(%x) {theta = 1.0e+04 : f64} : (tensor<1x2x4x7xf32>) -> tensor<1x2x4x7xf32>
  return
}
