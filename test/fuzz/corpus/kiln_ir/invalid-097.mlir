func.func @rope_positions(%x: tensor<2x2x4x8xf32>, %p: tensor<5xi64>) {
  %0 = "kiln.rope"(%x, %p) {theta = 1.0e+04 : f64} : (tensor<2x2x4x8xf32>, tensor<5xi64>) -> tensor<2x2x4x8xf32>
  return
}
