func.func @broadcast_to_dim(%a: tensor<3x8xf32>) {
  %0 = kiln.broadcast_to %a () : tensor<3x8xf32> -> tensor<4x8xf32>
  return
}
