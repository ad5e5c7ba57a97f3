kiln.parameter @p : tensor<4xf32> init uniform range(1.000000e+00)
