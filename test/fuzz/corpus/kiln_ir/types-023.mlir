func.func @random_uniform_int(%s: tensor<i64>) {
  %0 = "kiln.random_uniform"(%s) : (tensor<i64>) -> tensor<4xi32>
  return
}
