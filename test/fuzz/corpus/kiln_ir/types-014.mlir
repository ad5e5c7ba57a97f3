func.func @reshape_f64(%a: tensor<4xf64>) {
  %0 = "kiln.reshape"(%a) : (tensor<4xf64>) -> tensor<2x2xf64>
  return
}
