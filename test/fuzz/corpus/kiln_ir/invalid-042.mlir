func.func @padding_mask_shape(%m: tensor<2x16xi64>) {
  %0 = kiln.padding_mask %m : tensor<2x16xi64> -> tensor<2x1x16x1xf32>
  return
}
