func.func @padding_mask_rank(%m: tensor<2x3x4xi64>) {
  %0 = kiln.padding_mask %m : tensor<2x3x4xi64> -> tensor<2x1x1x4xf32>
  return
}
