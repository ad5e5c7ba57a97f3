func.func @store_not_parameter_argument(%v: tensor<4xf32>, %d: tensor<4xf32>) {
  kiln.store_param %v to %d : tensor<4xf32>
  return
}
