kiln.parameter @p : tensor<4xf32> init zeros std = 1.000000e-01
