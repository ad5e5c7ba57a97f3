func.func @select_condition_type(%c: tensor<4xi32>, %a: tensor<4xf32>) {
  %0 = "kiln.select"(%c, %a, %a) : (tensor<4xi32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}
