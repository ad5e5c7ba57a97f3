kiln.parameter @"h.fc.qweight" : tensor<96x32xi8> init normal std = 2.000000e-02 {kiln.quantized_from = {bits = 4 : i64, group = 32 : i64, part = "codes", source = "h.fc.weight", source_shape = array<i64: 64, 96>, symmetric = false, transposed = true}}
kiln.parameter @"h.fc.scales" : tensor<96x2xf32> init normal std = 2.000000e-02
kiln.parameter @"h.fc.qzeros" : tensor<96x2xi8> init zeros
func.func @forward(%x: tensor<?x64xf32>) -> (tensor<?x96xf32>, tensor<?x64xi8>) {
  %q = kiln.read_param @"h.fc.qweight" : tensor<96x32xi8>
  %s = kiln.read_param @"h.fc.scales" : tensor<96x2xf32>
  %z = kiln.read_param @"h.fc.qzeros" : tensor<96x2xi8>
  %w = kiln.dequantize %q, %s zero_point %z bits = 4 unsigned : (tensor<96x32xi8>, tensor<96x2xf32>, tensor<96x2xi8>) -> tensor<96x64xf32>
  %y = kiln.linear %x, %w : (tensor<?x64xf32>, tensor<96x64xf32>) -> tensor<?x96xf32>
  %one = kiln.constant dense<5.000000e-02> : tensor<1x1xf32>
  %t = kiln.quantize %x, %one : (tensor<?x64xf32>, tensor<1x1xf32>) -> tensor<?x64xi8>
  return %y, %t : tensor<?x96xf32>, tensor<?x64xi8>
}
