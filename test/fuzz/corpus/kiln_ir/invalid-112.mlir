func.func @max_pool_kernel(%x: tensor<1x3x8x8xf32>) {
  %0 = "kiln.max_pool2d"(%x) {kernel = array<i64: 2, 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
  return
}
