func.func @pad_count(%a: tensor<2x3xf32>) {
  %0 = "kiln.pad"(%a) {low = array<i64: 1>, high = array<i64: 1, 1>, value = 0.0 : f64} : (tensor<2x3xf32>) -> tensor<4x5xf32>
  return
}
