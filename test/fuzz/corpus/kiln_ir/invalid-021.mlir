func.func @reduce_keepdim_result(%a: tensor<2x8xf32>) {
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64: 1>, keepdim} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}
