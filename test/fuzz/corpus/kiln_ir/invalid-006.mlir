func.func @compare_broadcast(%a: tensor<8xi64>, %b: tensor<4xi64>) {
  %0 = "kiln.compare"(%a, %b) {predicate = 2 : i32} : (tensor<8xi64>, tensor<4xi64>) -> tensor<8xi1>
  return
}
