module {
  kiln.parameter @"input_layernorm.weight" : tensor<512xf32> init ones trainable
  kiln.parameter @"self_attn.q_proj.weight" : tensor<512x512xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"self_attn.k_proj.weight" : tensor<128x512xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"self_attn.v_proj.weight" : tensor<128x512xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"self_attn.o_proj.weight" : tensor<512x512xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"post_attention_layernorm.weight" : tensor<512xf32> init ones trainable
  kiln.parameter @"mlp.gate_proj.weight" : tensor<1376x512xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"mlp.up_proj.weight" : tensor<1376x512xf32> init normal std = 2.000000e-02 trainable
  kiln.parameter @"mlp.down_proj.weight" : tensor<512x1376xf32> init normal std = 2.000000e-02 trainable

  func.func @block(%x: tensor<?x?x512xf32>) -> tensor<?x?x512xf32> {
    %g1 = kiln.read_param @"input_layernorm.weight" : tensor<512xf32>
    %n1 = kiln.rms_norm %x, %g1 eps = 1.000000e-06 : (tensor<?x?x512xf32>, tensor<512xf32>) -> tensor<?x?x512xf32>
    %wq = kiln.read_param @"self_attn.q_proj.weight" : tensor<512x512xf32>
    %wk = kiln.read_param @"self_attn.k_proj.weight" : tensor<128x512xf32>
    %wv = kiln.read_param @"self_attn.v_proj.weight" : tensor<128x512xf32>
    %q0 = kiln.linear %n1, %wq : (tensor<?x?x512xf32>, tensor<512x512xf32>) -> tensor<?x?x512xf32>
    %k0 = kiln.linear %n1, %wk : (tensor<?x?x512xf32>, tensor<128x512xf32>) -> tensor<?x?x128xf32>
    %v0 = kiln.linear %n1, %wv : (tensor<?x?x512xf32>, tensor<128x512xf32>) -> tensor<?x?x128xf32>
    %q1 = kiln.reshape %q0 : tensor<?x?x512xf32> -> tensor<?x?x8x64xf32>
    %q2 = kiln.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<?x?x8x64xf32>) -> tensor<?x8x?x64xf32>
    %k1 = kiln.reshape %k0 : tensor<?x?x128xf32> -> tensor<?x?x2x64xf32>
    %k2 = kiln.transpose %k1 permutation = [0, 2, 1, 3] : (tensor<?x?x2x64xf32>) -> tensor<?x2x?x64xf32>
    %v1 = kiln.reshape %v0 : tensor<?x?x128xf32> -> tensor<?x?x2x64xf32>
    %v = kiln.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<?x?x2x64xf32>) -> tensor<?x2x?x64xf32>
    %q = kiln.rope %q2 theta = 1.000000e+04 : (tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32>
    %k = kiln.rope %k2 theta = 1.000000e+04 : (tensor<?x2x?x64xf32>) -> tensor<?x2x?x64xf32>
    %o = kiln.attention %q, %k, %v causal : (tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>) -> tensor<?x8x?x64xf32>
    %o1 = kiln.transpose %o permutation = [0, 2, 1, 3] : (tensor<?x8x?x64xf32>) -> tensor<?x?x8x64xf32>
    %o2 = kiln.reshape %o1 : tensor<?x?x8x64xf32> -> tensor<?x?x512xf32>
    %wo = kiln.read_param @"self_attn.o_proj.weight" : tensor<512x512xf32>
    %attn = kiln.linear %o2, %wo : (tensor<?x?x512xf32>, tensor<512x512xf32>) -> tensor<?x?x512xf32>
    %h = kiln.add %x, %attn : (tensor<?x?x512xf32>, tensor<?x?x512xf32>) -> tensor<?x?x512xf32>

    %g2 = kiln.read_param @"post_attention_layernorm.weight" : tensor<512xf32>
    %n2 = kiln.rms_norm %h, %g2 eps = 1.000000e-06 : (tensor<?x?x512xf32>, tensor<512xf32>) -> tensor<?x?x512xf32>
    %wg = kiln.read_param @"mlp.gate_proj.weight" : tensor<1376x512xf32>
    %wu = kiln.read_param @"mlp.up_proj.weight" : tensor<1376x512xf32>
    %wd = kiln.read_param @"mlp.down_proj.weight" : tensor<512x1376xf32>
    %gate = kiln.linear %n2, %wg : (tensor<?x?x512xf32>, tensor<1376x512xf32>) -> tensor<?x?x1376xf32>
    %up = kiln.linear %n2, %wu : (tensor<?x?x512xf32>, tensor<1376x512xf32>) -> tensor<?x?x1376xf32>
    %act = kiln.silu %gate : tensor<?x?x1376xf32>
    %prod = kiln.mul %act, %up : (tensor<?x?x1376xf32>, tensor<?x?x1376xf32>) -> tensor<?x?x1376xf32>
    %down = kiln.linear %prod, %wd : (tensor<?x?x1376xf32>, tensor<512x1376xf32>) -> tensor<?x?x512xf32>
    %out = kiln.add %h, %down : (tensor<?x?x512xf32>, tensor<?x?x512xf32>) -> tensor<?x?x512xf32>
    return %out : tensor<?x?x512xf32>
  }
}
