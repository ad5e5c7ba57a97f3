func.func @generic_missing_properties(%a: tensor<2x3xf32>) {
  %0 = "kiln.transpose"(%a) : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}
