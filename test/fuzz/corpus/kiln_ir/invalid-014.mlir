func.func @matmul_k_transposed(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  %0 = "kiln.matmul"(%a, %b) {transpose_rhs} : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  return
}
