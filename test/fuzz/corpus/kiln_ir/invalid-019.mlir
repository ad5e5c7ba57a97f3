func.func @reduce_axis_twice(%a: tensor<2x8xf32>) {
  %0 = "kiln.reduce"(%a) {kind = 1 : i32, axes = array<i64: 1, 1>} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}
