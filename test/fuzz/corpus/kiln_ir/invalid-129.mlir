func.func @dropout_p_negative(%x: tensor<4xf32>, %s: tensor<i64>) {
  %0 = "kiln.dropout"(%x, %s) {p = -0.5 : f64} : (tensor<4xf32>, tensor<i64>) -> tensor<4xf32>
  return
}
