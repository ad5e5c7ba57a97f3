func.func @rope_inv_freq_negative(%x: tensor<2x2x4x4xf32>) {
  %0 = kiln.rope %x theta = 1.0e+04 inv_freq = [1.0, -1.0] : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  return
}
