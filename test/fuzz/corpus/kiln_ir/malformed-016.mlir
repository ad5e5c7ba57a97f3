func.func @dense_mismatch() {
  %0 = kiln.constant dense<[1.0, 2.0]> : tensor<3xf32>
  return
}
