func.func @matmul_result(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  %0 = "kiln.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<4x2xf32>
  return
}
