kiln.parameter @q : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
kiln.parameter @b : tensor<4xi1> init ones
func.func @quant_accepted(%i: tensor<3xi64>, %c: tensor<2x4xi1>) {
  %0 = kiln.read_param @q : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>>
  %1 = kiln.reshape %0 : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<8x!quant.uniform<i8:f32, 1.000000e-01>>
  %2 = kiln.transpose %0 permutation = [1, 0] : (tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %3 = kiln.gather %0[%i] axis = 0 : (tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<3xi64>) -> tensor<3x2x!quant.uniform<i8:f32, 1.000000e-01>>
  %4 = kiln.cast %0 : tensor<4x2x!quant.uniform<i8:f32, 1.000000e-01>> -> tensor<4x2xf32>
  %5 = kiln.concat %2, %2 axis = 0 : (tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %6 = kiln.select %c, %2, %2 : (tensor<2x4xi1>, tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<2x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %7 = kiln.read_param @b : tensor<4xi1>
  return
}
