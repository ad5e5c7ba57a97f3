func.func @generic_bad_property(%a: tensor<2x3xf32>) {
  %0 = "kiln.transpose"(%a) <{permutation = 1 : i64}> : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}
