func.func @neg_i1(%a: tensor<4xi1>) {
  %0 = "kiln.neg"(%a) : (tensor<4xi1>) -> tensor<4xi1>
  return
}
