func.func @wrong_operand_count(%a: tensor<2xf32>) {
  %0 = kiln.add %a : (tensor<2xf32>) -> tensor<2xf32>
  return
}
