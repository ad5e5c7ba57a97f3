func.func @read_not_param() {
  %0 = kiln.read_param @read_not_param : tensor<4xf32>
  return
}
