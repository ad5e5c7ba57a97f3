func.func @linear_rank(%a: tensor<f32>, %w: tensor<4x8xf32>) {
  %0 = "kiln.linear"(%a, %w) : (tensor<f32>, tensor<4x8xf32>) -> tensor<4xf32>
  return
}
