func.func @write_unknown(%v: tensor<4xf32>) {
  kiln.write_param @missing, %v : tensor<4xf32>
  return
}
