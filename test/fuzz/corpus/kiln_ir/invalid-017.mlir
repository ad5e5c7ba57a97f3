func.func @reduce_axis_range(%a: tensor<2x8xf32>) {
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64: 2>} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}
