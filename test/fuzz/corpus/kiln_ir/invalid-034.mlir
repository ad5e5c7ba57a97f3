kiln.parameter @q : tensor<4x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
func.func @read_quant_type() {
  %0 = kiln.read_param @q : tensor<4x!quant.uniform<i8:f32, 2.000000e-01>>
  return
}
