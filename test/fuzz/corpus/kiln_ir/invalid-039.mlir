func.func @causal_mask_sizes(%n: index) {
  %0 = kiln.causal_mask (%n) : tensor<?x?xi1>
  return
}
