kiln.parameter @p : tensor<4xf32> init normal std = 1.000000e-01 range(0.000000e+00, 1.000000e+00)
