func.func @matmul_element_type(%a: tensor<2x8xf32>, %b: tensor<8x4xf16>) {
  %0 = "kiln.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<8x4xf16>) -> tensor<2x4xf32>
  return
}
