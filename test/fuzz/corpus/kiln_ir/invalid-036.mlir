func.func @iota_extra_sizes(%n: index) {
  %0 = kiln.iota (%n) dim = 0 : tensor<4xi64>
  return
}
