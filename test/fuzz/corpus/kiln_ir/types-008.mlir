func.func @add_vector(%a: vector<4xf32>) {
  %0 = "kiln.add"(%a, %a) : (vector<4xf32>, vector<4xf32>) -> vector<4xf32>
  return
}
