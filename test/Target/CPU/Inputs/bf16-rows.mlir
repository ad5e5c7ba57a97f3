// A decoding step's bf16 matmul (one row) and a prompt's (12 rows).
func.func @forward(%x: tensor<1x64xbf16> {kiln.name = "x"}, %z: tensor<12x64xbf16> {kiln.name = "z"}, %w: tensor<64x128xbf16> {kiln.name = "w"}) -> (tensor<1x128xbf16> {kiln.name = "y"}, tensor<12x128xbf16> {kiln.name = "v"}) {
  %y = kiln.matmul %x, %w : (tensor<1x64xbf16>, tensor<64x128xbf16>) -> tensor<1x128xbf16>
  %v = kiln.matmul %z, %w : (tensor<12x64xbf16>, tensor<64x128xbf16>) -> tensor<12x128xbf16>
  return %y, %v : tensor<1x128xbf16>, tensor<12x128xbf16>
}
