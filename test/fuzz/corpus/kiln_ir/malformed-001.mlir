func.func @bad_predicate(%a: tensor<2xf32>) {
  %0 = kiln.compare almost, %a, %a : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xi1>
  return
}
