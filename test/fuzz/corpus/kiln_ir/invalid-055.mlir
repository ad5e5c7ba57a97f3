func.func @slice_result(%a: tensor<2x8xf32>) {
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 1 : i64, end = 8 : i64, step = 2 : i64} : (tensor<2x8xf32>) -> tensor<2x3xf32>
  return
}
