func.func @reduce_no_axes(%a: tensor<2x8xf32>) {
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64>} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}
