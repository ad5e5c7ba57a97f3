func.func @compare_element_type(%a: tensor<8xi64>, %b: tensor<8xi32>) {
  %0 = "kiln.compare"(%a, %b) {predicate = 2 : i32} : (tensor<8xi64>, tensor<8xi32>) -> tensor<8xi1>
  return
}
