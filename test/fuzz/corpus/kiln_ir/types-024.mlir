func.func @random_uniform_seed(%s: tensor<i32>) {
  %0 = "kiln.random_uniform"(%s) : (tensor<i32>) -> tensor<4xf32>
  return
}
