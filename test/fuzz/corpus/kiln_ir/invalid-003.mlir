func.func @add_result_refines_dynamic(%a: tensor<?x3xf32>, %b: tensor<3xf32>) {
  %0 = "kiln.add"(%a, %b) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  return
}
