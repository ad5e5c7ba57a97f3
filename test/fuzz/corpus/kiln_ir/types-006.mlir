func.func @add_quant(%a: tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) {
  %0 = "kiln.add"(%a, %a) : (tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>
  return
}
