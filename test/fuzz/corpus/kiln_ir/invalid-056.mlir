func.func @concat_empty() {
  %0 = "kiln.concat"() {axis = 0 : i64} : () -> tensor<2xf32>
  return
}
