func.func @compare_result_type(%a: tensor<4xf32>) {
  %0 = "kiln.compare"(%a, %a) {predicate = 0 : i32} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}
