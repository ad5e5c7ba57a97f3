func.func @padding_mask_float_input(%m: tensor<2x4xf32>) {
  %0 = "kiln.padding_mask"(%m) : (tensor<2x4xf32>) -> tensor<2x1x1x4xf32>
  return
}
