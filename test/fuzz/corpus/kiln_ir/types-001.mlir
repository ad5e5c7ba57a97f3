func.func @per_axis_quant(%x: tensor<4x2x!quant.uniform<i8:f32:0, {1.000000e-01, 2.000000e-01, 3.000000e-01, 4.000000e-01}>>) {
  %0 = kiln.cast %x : tensor<4x2x!quant.uniform<i8:f32:0, {1.000000e-01, 2.000000e-01, 3.000000e-01, 4.000000e-01}>> -> tensor<4x2xbf16>
  return
}
