kiln.parameter @p : tensor<?x4xf32> init zeros
