func.func @read_unknown() {
  %0 = kiln.read_param @missing : tensor<4xf32>
  return
}
