func.func @slice_axis(%a: tensor<2x3xf32>) {
  %0 = "kiln.slice"(%a) {axis = 2 : i64, start = 0 : i64, end = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}
