kiln.parameter @p : tensor<4xf32> init zeros
func.func @read_type() {
  %0 = kiln.read_param @p : tensor<4xf16>
  return
}
