func.func @causal_mask_type() {
  %0 = "kiln.causal_mask"() : () -> tensor<4x4xf32>
  return
}
