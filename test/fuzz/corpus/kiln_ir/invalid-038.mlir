func.func @iota_dim_negative() {
  %0 = kiln.iota () dim = -1 : tensor<4x4xi64>
  return
}
