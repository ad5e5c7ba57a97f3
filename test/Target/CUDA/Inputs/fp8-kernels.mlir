// fp8 ops as generated kernels (ptxas.test): the e4m3 encoder and decoder,
// and a scaled fp8 matmul whose k (40) misses cuBLASLt's fp8 rules.
func.func @forward(%x: tensor<?x40xf32> {kiln.name = "x"}, %w: tensor<24x40xf32> {kiln.name = "w"},
                   %s: tensor<1x1xf32> {kiln.name = "s"}, %s1: tensor<1xf32> {kiln.name = "s1"})
    -> (tensor<?x24xf32> {kiln.name = "y"}, tensor<24x40xf32> {kiln.name = "d"}) {
  %xq = kiln.quantize %x, %s e4m3 : (tensor<?x40xf32>, tensor<1x1xf32>) -> tensor<?x40xf8E4M3FN>
  %wq = kiln.quantize %w, %s e4m3 : (tensor<24x40xf32>, tensor<1x1xf32>) -> tensor<24x40xf8E4M3FN>
  %y = kiln.scaled_fp8_matmul %xq, %wq scales %s1, %s1 transpose_rhs : (tensor<?x40xf8E4M3FN>, tensor<24x40xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x24xf32>
  %d = kiln.dequantize %wq, %s : (tensor<24x40xf8E4M3FN>, tensor<1x1xf32>) -> tensor<24x40xf32>
  return %y, %d : tensor<?x24xf32>, tensor<24x40xf32>
}
