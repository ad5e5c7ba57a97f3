func.func @dropout_p(%x: tensor<4xf32>, %s: tensor<i64>) {
  %0 = "kiln.dropout"(%x, %s) {p = 1.0 : f64} : (tensor<4xf32>, tensor<i64>) -> tensor<4xf32>
  return
}
