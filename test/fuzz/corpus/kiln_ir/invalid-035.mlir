func.func @iota_sizes(%n: index) {
  %0 = kiln.iota () dim = 0 : tensor<?xi64>
  return
}
