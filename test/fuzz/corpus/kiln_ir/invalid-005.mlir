func.func @exp_result_type(%a: tensor<2xf32>) {
  %0 = "kiln.exp"(%a) : (tensor<2xf32>) -> tensor<3xf32>
  return
}
