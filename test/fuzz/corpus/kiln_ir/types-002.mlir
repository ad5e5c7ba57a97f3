kiln.parameter @p : tensor<4xf64> init zeros
