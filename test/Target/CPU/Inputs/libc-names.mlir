// Entry points named after libc functions (kernel-config.test).
func.func @log(%x: tensor<4x8xf32> {kiln.name = "x"}) -> (tensor<4x8xf32> {kiln.name = "y"}) {
  %0 = kiln.log %x : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
func.func @random(%s: tensor<i64> {kiln.name = "s"}) -> (tensor<4x8xf32> {kiln.name = "r"}) {
  %0 = kiln.random_uniform %s () : (tensor<i64>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
func.func @matmul(%x: tensor<4x8xf32> {kiln.name = "x"}) -> (tensor<4x4xf32> {kiln.name = "m"}) {
  %t = kiln.transpose %x permutation = [1, 0] : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %0 = kiln.matmul %x, %t : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}
