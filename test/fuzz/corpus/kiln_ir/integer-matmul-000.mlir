kiln.parameter @"fc.qweight" : tensor<16x64xi8> init normal std = 2.000000e-02
kiln.parameter @"fc.scales" : tensor<16x1xf32> init normal std = 2.000000e-02
func.func @forward(%x: tensor<?x64xf32>, %s: tensor<?x1xf32>) -> tensor<?x16xf32> {
  %q = kiln.read_param @"fc.qweight" : tensor<16x64xi8>
  %w = kiln.read_param @"fc.scales" : tensor<16x1xf32>
  %xq = kiln.quantize %x, %s : (tensor<?x64xf32>, tensor<?x1xf32>) -> tensor<?x64xi8>
  %acc = kiln.integer_matmul %xq, %q transpose_rhs : (tensor<?x64xi8>, tensor<16x64xi8>) -> tensor<?x16xi32>
  %f = kiln.cast %acc : tensor<?x16xi32> -> tensor<?x16xf32>
  %y = kiln.mul %f, %s : (tensor<?x16xf32>, tensor<?x1xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
