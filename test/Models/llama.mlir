// LLaMA from its Hugging Face config: RMSNorm, RoPE on q and k,
// grouped-query causal attention (4 query heads, 2 key/value heads), SwiGLU,
// an untied lm_head.
// RUN: kiln-compile %models/llama-tiny.json --emit=kiln | FileCheck %s

// CHECK:       kiln.parameter @model.embed_tokens.weight : tensor<1000x64xf32> init normal std = 2.000000e-02 trainable
// CHECK:       kiln.parameter @model.layers.0.input_layernorm.weight : tensor<64xf32> init ones trainable
// CHECK:       kiln.parameter @model.layers.0.self_attn.q_proj.weight : tensor<64x64xf32>
// CHECK:       kiln.parameter @model.layers.0.self_attn.k_proj.weight : tensor<32x64xf32>
// CHECK:       kiln.parameter @model.layers.0.self_attn.v_proj.weight : tensor<32x64xf32>
// CHECK:       kiln.parameter @model.layers.0.self_attn.o_proj.weight : tensor<64x64xf32>
// CHECK:       kiln.parameter @model.layers.0.mlp.gate_proj.weight : tensor<172x64xf32>
// CHECK:       kiln.parameter @model.layers.0.mlp.up_proj.weight : tensor<172x64xf32>
// CHECK:       kiln.parameter @model.layers.0.mlp.down_proj.weight : tensor<64x172xf32>
// CHECK:       kiln.parameter @model.layers.1.post_attention_layernorm.weight : tensor<64xf32> init ones
// CHECK:       kiln.parameter @model.norm.weight : tensor<64xf32> init ones
// CHECK:       kiln.parameter @lm_head.weight : tensor<1000x64xf32>
// CHECK-LABEL: func.func @forward(%{{.*}}: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "input_ids"}) -> (tensor<?x?x1000xf32> {kiln.name = "logits"})
// CHECK:         kiln.rms_norm %{{.*}}, %{{.*}} eps = 9.9999999999999995E-7
// CHECK:         %[[Q:.*]] = kiln.rope %{{.*}} theta = 1.000000e+04 : (tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32>
// CHECK:         %[[K:.*]] = kiln.rope %{{.*}} theta = 1.000000e+04 : (tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32>
// CHECK:         kiln.attention %[[Q]], %[[K]], %{{.*}} causal : (tensor<?x4x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) -> tensor<?x4x?x16xf32>
// CHECK:         kiln.silu
// CHECK:         kiln.mul
// CHECK:         %[[LM:.*]] = kiln.read_param @lm_head.weight
// CHECK:         %[[LOGITS:.*]] = kiln.linear %{{.*}}, %[[LM]] : (tensor<?x?x64xf32>, tensor<1000x64xf32>) -> tensor<?x?x1000xf32>
// CHECK:         return %[[LOGITS]]
