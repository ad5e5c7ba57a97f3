func.func @slice_syntax(%a: tensor<2x8xf32>) {
  %0 = kiln.slice %a axis = 1 [0 : 4] : (tensor<2x8xf32>) -> tensor<2x4xf32>
  return
}
