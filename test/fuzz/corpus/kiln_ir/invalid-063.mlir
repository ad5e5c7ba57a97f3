func.func @pad_negative(%a: tensor<2x3xf32>) {
  %0 = "kiln.pad"(%a) {low = array<i64: 0, -1>, high = array<i64: 0, 1>, value = 0.0 : f64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}
