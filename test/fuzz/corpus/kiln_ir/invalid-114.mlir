func.func @avg_pool_padding(%x: tensor<1x3x8x8xf32>) {
  %0 = "kiln.avg_pool2d"(%x) {kernel = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 2, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x11x7xf32>
  return
}
