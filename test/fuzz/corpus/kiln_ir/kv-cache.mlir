func.func @decode(%q: tensor<?x4x1x16xf32>, %k: tensor<?x4x1x16xf32>, %p: tensor<?xi64>, %c: tensor<?x4x64x16xf32> {kiln.in_place}) -> tensor<?x4x1x16xf32> {
  %kc = kiln.cache_write %c[%p], %k : (tensor<?x4x64x16xf32>, tensor<?xi64>, tensor<?x4x1x16xf32>) -> tensor<?x4x64x16xf32>
  %o = kiln.attention %q, %kc, %kc key_lengths %p : (tensor<?x4x1x16xf32>, tensor<?x4x64x16xf32>, tensor<?x4x64x16xf32>, tensor<?xi64>) -> tensor<?x4x1x16xf32>
  kiln.store_param %kc to %c : tensor<?x4x64x16xf32>
  return %o : tensor<?x4x1x16xf32>
}
