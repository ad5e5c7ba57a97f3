func.func @rope_inv_freq_count(%x: tensor<2x2x4x8xf32>) {
  %0 = kiln.rope %x theta = 1.0e+04 inv_freq = [1.0, 0.5, 0.25] : (tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return
}
