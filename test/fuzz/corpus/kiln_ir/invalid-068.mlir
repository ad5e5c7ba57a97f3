func.func @broadcast_to_dynamic_input(%a: tensor<?x8xf32>) {
  %0 = kiln.broadcast_to %a () : tensor<?x8xf32> -> tensor<4x8xf32>
  return
}
