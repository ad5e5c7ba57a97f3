func.func @conv2d_dynamic(%x: tensor<1x?x8x8xf32>, %w: tensor<4x3x3x3xf32>) {
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x?x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}
