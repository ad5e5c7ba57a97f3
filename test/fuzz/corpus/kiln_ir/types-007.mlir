func.func @add_unranked(%a: tensor<*xf32>) {
  %0 = "kiln.add"(%a, %a) : (tensor<*xf32>, tensor<*xf32>) -> tensor<*xf32>
  return
}
