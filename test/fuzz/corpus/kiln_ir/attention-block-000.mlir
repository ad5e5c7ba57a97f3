module {
  kiln.parameter @"ln_1.weight" : tensor<256xf32> init ones trainable
  kiln.parameter @"ln_1.bias" : tensor<256xf32> init zeros trainable
  kiln.parameter @"attn.qkv.weight" : tensor<768x256xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"attn.qkv.bias" : tensor<768xf32> init zeros trainable
  kiln.parameter @"attn.proj.weight" : tensor<256x256xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"attn.proj.bias" : tensor<256xf32> init zeros trainable
  kiln.parameter @"ln_2.weight" : tensor<256xf32> init ones trainable
  kiln.parameter @"ln_2.bias" : tensor<256xf32> init zeros trainable
  kiln.parameter @"mlp.fc.weight" : tensor<1024x256xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"mlp.fc.bias" : tensor<1024xf32> init zeros trainable
  kiln.parameter @"mlp.proj.weight" : tensor<256x1024xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"mlp.proj.bias" : tensor<256xf32> init zeros trainable

  func.func @block(%x: tensor<2x64x256xf32>) -> tensor<2x64x256xf32> {
    %g1 = kiln.read_param @"ln_1.weight" : tensor<256xf32>
    %b1 = kiln.read_param @"ln_1.bias" : tensor<256xf32>
    %n1 = kiln.layer_norm %x weight %g1 bias %b1 eps = 1.000000e-05 : (tensor<2x64x256xf32>, tensor<256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
    %wqkv = kiln.read_param @"attn.qkv.weight" : tensor<768x256xf32>
    %bqkv = kiln.read_param @"attn.qkv.bias" : tensor<768xf32>
    %qkv = kiln.linear %n1, %wqkv bias %bqkv : (tensor<2x64x256xf32>, tensor<768x256xf32>, tensor<768xf32>) -> tensor<2x64x768xf32>
    %q0 = kiln.slice %qkv axis = 2 [0 : 256 : 1] : (tensor<2x64x768xf32>) -> tensor<2x64x256xf32>
    %k0 = kiln.slice %qkv axis = 2 [256 : 512 : 1] : (tensor<2x64x768xf32>) -> tensor<2x64x256xf32>
    %v0 = kiln.slice %qkv axis = 2 [512 : 768 : 1] : (tensor<2x64x768xf32>) -> tensor<2x64x256xf32>
    %q1 = kiln.reshape %q0 : tensor<2x64x256xf32> -> tensor<2x64x4x64xf32>
    %q = kiln.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<2x64x4x64xf32>) -> tensor<2x4x64x64xf32>
    %k1 = kiln.reshape %k0 : tensor<2x64x256xf32> -> tensor<2x64x4x64xf32>
    %k = kiln.transpose %k1 permutation = [0, 2, 1, 3] : (tensor<2x64x4x64xf32>) -> tensor<2x4x64x64xf32>
    %v1 = kiln.reshape %v0 : tensor<2x64x256xf32> -> tensor<2x64x4x64xf32>
    %v = kiln.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<2x64x4x64xf32>) -> tensor<2x4x64x64xf32>
    %o = kiln.attention %q, %k, %v causal : (tensor<2x4x64x64xf32>, tensor<2x4x64x64xf32>, tensor<2x4x64x64xf32>) -> tensor<2x4x64x64xf32>
    %o1 = kiln.transpose %o permutation = [0, 2, 1, 3] : (tensor<2x4x64x64xf32>) -> tensor<2x64x4x64xf32>
    %o2 = kiln.reshape %o1 : tensor<2x64x4x64xf32> -> tensor<2x64x256xf32>
    %wp = kiln.read_param @"attn.proj.weight" : tensor<256x256xf32>
    %bp = kiln.read_param @"attn.proj.bias" : tensor<256xf32>
    %proj = kiln.linear %o2, %wp bias %bp : (tensor<2x64x256xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
    %h = kiln.add %x, %proj : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>

    %g2 = kiln.read_param @"ln_2.weight" : tensor<256xf32>
    %b2 = kiln.read_param @"ln_2.bias" : tensor<256xf32>
    %n2 = kiln.layer_norm %h weight %g2 bias %b2 eps = 1.000000e-05 : (tensor<2x64x256xf32>, tensor<256xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
    %wfc = kiln.read_param @"mlp.fc.weight" : tensor<1024x256xf32>
    %bfc = kiln.read_param @"mlp.fc.bias" : tensor<1024xf32>
    %fc = kiln.linear %n2, %wfc bias %bfc : (tensor<2x64x256xf32>, tensor<1024x256xf32>, tensor<1024xf32>) -> tensor<2x64x1024xf32>
    %act = kiln.gelu %fc approximate = tanh : tensor<2x64x1024xf32>
    %wmp = kiln.read_param @"mlp.proj.weight" : tensor<256x1024xf32>
    %bmp = kiln.read_param @"mlp.proj.bias" : tensor<256xf32>
    %mlp = kiln.linear %act, %wmp bias %bmp : (tensor<2x64x1024xf32>, tensor<256x1024xf32>, tensor<256xf32>) -> tensor<2x64x256xf32>
    %out = kiln.add %h, %mlp : (tensor<2x64x256xf32>, tensor<2x64x256xf32>) -> tensor<2x64x256xf32>
    return %out : tensor<2x64x256xf32>
  }
}
