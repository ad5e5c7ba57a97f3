func.func @param_in_func() {
  kiln.parameter @p : tensor<4xf32> init zeros
  return
}
