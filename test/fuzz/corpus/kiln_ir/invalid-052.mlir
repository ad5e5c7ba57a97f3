func.func @slice_step(%a: tensor<2x3xf32>) {
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 0 : i64, end = 1 : i64, step = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  return
}
