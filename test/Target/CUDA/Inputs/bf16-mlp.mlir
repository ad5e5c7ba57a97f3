// A bf16 layer for the CUDA backend tests (ptxas.test): matmul, bias,
// GELU and softmax in bf16; the matmul goes to cuBLASLt as bf16 with f32
// accumulation.
func.func @f(%a: tensor<?x64xbf16>, %w: tensor<64x128xbf16>, %b: tensor<128xbf16>) -> tensor<?x128xbf16> {
  %h = kiln.matmul %a, %w : (tensor<?x64xbf16>, tensor<64x128xbf16>) -> tensor<?x128xbf16>
  %y = kiln.add %h, %b : (tensor<?x128xbf16>, tensor<128xbf16>) -> tensor<?x128xbf16>
  %g = kiln.gelu %y approximate = tanh : tensor<?x128xbf16>
  %s = kiln.softmax %g axis = -1 : (tensor<?x128xbf16>) -> tensor<?x128xbf16>
  return %s : tensor<?x128xbf16>
}
