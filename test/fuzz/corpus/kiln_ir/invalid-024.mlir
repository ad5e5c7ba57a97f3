kiln.parameter @p : tensor<4xf32> init normal
