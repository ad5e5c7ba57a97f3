func.func @matmul_quant(%a: tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>) {
  %0 = "kiln.matmul"(%a, %a) : (tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<2x2x!quant.uniform<i8:f32, 1.000000e-01>>
  return
}
