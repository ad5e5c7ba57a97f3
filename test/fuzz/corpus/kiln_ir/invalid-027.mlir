"kiln.parameter"() <{init = 3 : i32, sym_name = "p", type = tensor<4xf32>, low = 0.0 : f64}> : () -> ()
