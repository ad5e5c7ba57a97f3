func.func @sub_rank_broadcast(%a: tensor<2x3x5xf32>, %b: tensor<4x1xf32>) {
  %0 = kiln.sub %a, %b : (tensor<2x3x5xf32>, tensor<4x1xf32>) -> tensor<2x3x5xf32>
  return
}
