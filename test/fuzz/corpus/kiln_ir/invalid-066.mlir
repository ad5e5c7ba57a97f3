func.func @broadcast_to_rank(%a: tensor<2x1x8xf32>) {
  %0 = kiln.broadcast_to %a () : tensor<2x1x8xf32> -> tensor<4x8xf32>
  return
}
