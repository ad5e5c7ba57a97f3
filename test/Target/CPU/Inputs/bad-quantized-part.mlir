// Hand-written IR whose kiln.quantized_from disagrees with the parameter:
// An unknown part.
kiln.parameter @"h.fc.qweight" : tensor<96x64xi8> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 4 : i64, group = 32 : i64, part = "codez", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = true, transposed = true}}
kiln.parameter @"h.fc.scales" : tensor<96x2xf32> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 4 : i64, group = 32 : i64, part = "scales", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = true, transposed = true}}
func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x96xf32> {
  %q = kiln.read_param @"h.fc.qweight" : tensor<96x64xi8>
  %s = kiln.read_param @"h.fc.scales" : tensor<96x2xf32>
  %w = kiln.dequantize %q, %s : (tensor<96x64xi8>, tensor<96x2xf32>) -> tensor<96x64xf32>
  %y = kiln.linear %x, %w : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}
