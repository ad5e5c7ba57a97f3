func.func @undefined_value() {
  %0 = kiln.exp %nope : tensor<2xf32>
  return
}
