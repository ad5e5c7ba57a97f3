func.func @padding_mask_int_result(%m: tensor<2x4xi64>) {
  %0 = "kiln.padding_mask"(%m) : (tensor<2x4xi64>) -> tensor<2x1x1x4xi64>
  return
}
