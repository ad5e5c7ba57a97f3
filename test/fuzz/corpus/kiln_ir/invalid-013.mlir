func.func @matmul_k(%a: tensor<2x8xf32>, %b: tensor<7x4xf32>) {
  %0 = "kiln.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<7x4xf32>) -> tensor<2x4xf32>
  return
}
