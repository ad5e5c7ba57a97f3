kiln.parameter @p : tensor<4xf32> init zeros
func.func @write_type(%v: tensor<2x2xf32>) {
  kiln.write_param @p, %v : tensor<2x2xf32>
  return
}
