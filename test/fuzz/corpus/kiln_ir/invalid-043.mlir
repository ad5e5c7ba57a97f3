func.func @padding_mask_result_rank(%m: tensor<2x16xi64>) {
  %0 = kiln.padding_mask %m : tensor<2x16xi64> -> tensor<2x16xf32>
  return
}
