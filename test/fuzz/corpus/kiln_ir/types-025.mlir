func.func @iota_bool() {
  %0 = "kiln.iota"() {dim = 0 : i64} : () -> tensor<4xi1>
  return
}
