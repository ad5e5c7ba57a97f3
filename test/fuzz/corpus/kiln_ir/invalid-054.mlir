func.func @slice_end(%a: tensor<2x3xf32>) {
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 0 : i64, end = 4 : i64} : (tensor<2x3xf32>) -> tensor<2x4xf32>
  return
}
