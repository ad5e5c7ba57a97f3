func.func @broadcast_to_element_type(%a: tensor<1x8xf32>) {
  %0 = kiln.broadcast_to %a () : tensor<1x8xf32> -> tensor<4x8xf16>
  return
}
