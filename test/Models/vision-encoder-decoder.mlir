// The vision-encoder-decoder family: a CLIP (or ViT) image encoder's last
// hidden state, projected to the decoder's width by enc_to_dec_proj when
// the widths differ, which each GPT-2 block cross-attends to (no mask,
// not causal) after its causal self-attention; with cross_attention_gate
// the cross-attention output is scaled by tanh of a learned scalar.
// RUN: kiln-compile %models/captioner-xattn-shapes.json --emit=kiln --batch 2 --seq 16 | FileCheck %s
// RUN: sed 's/"cross_attention_gate": false/"cross_attention_gate": true/' %models/captioner-xattn-shapes.json > %t-gated.json
// RUN: kiln-compile %t-gated.json --emit=kiln --batch 2 --seq 16 | FileCheck %s --check-prefix=GATED
// RUN: sed 's/"add_cross_attention": true/"add_cross_attention": false/' %models/captioner-xattn-shapes.json > %t-plain.json
// RUN: not kiln-compile %t-plain.json --emit=summary 2>&1 | FileCheck %s --check-prefix=PLAIN
// RUN: not kiln-compile %models/captioner-xattn-shapes.json --seq 17 --emit=summary 2>&1 | FileCheck %s --check-prefix=LONG

// CHECK:       kiln.parameter @encoder.vision_model.embeddings.patch_embedding.weight : tensor<96x3x4x4xf32>
// CHECK-NOT:   post_layernorm
// CHECK:       kiln.parameter @enc_to_dec_proj.weight : tensor<128x96xf32>
// CHECK-NEXT:  kiln.parameter @enc_to_dec_proj.bias : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.wte.weight : tensor<384x128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.wpe.weight : tensor<16x128xf32>
// CHECK:       kiln.parameter @decoder.transformer.h.0.attn.c_proj.bias
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.ln_cross_attn.weight : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.ln_cross_attn.bias : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.crossattention.q_attn.weight : tensor<128x128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.crossattention.q_attn.bias : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.crossattention.c_attn.weight : tensor<128x256xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.crossattention.c_attn.bias : tensor<256xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.crossattention.c_proj.weight : tensor<128x128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.crossattention.c_proj.bias : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @decoder.transformer.h.0.ln_2.weight
// CHECK-NOT:   crossattention.gate
// CHECK-LABEL: func.func @forward(%{{.*}}: tensor<2x16xi64> {kiln.name = "input_ids"}, %{{.*}}: tensor<2x3x32x32xf32> {kiln.name = "pixel_values"}) -> (tensor<2x16x384xf32> {kiln.name = "logits"})
// CHECK:         kiln.attention %{{.*}} causal : (tensor<2x4x16x32xf32>, tensor<2x4x16x32xf32>, tensor<2x4x16x32xf32>) -> tensor<2x4x16x32xf32>
// CHECK:         kiln.attention %{{.*}} : (tensor<2x4x16x32xf32>, tensor<2x4x65x32xf32>, tensor<2x4x65x32xf32>) -> tensor<2x4x16x32xf32>

// GATED:       kiln.parameter @decoder.transformer.h.0.crossattention.gate : tensor<f32> init zeros
// GATED:       %[[GATE:.*]] = kiln.read_param @decoder.transformer.h.0.crossattention.gate
// GATED:       %[[TANH:.*]] = kiln.tanh %[[GATE]]
// GATED:       kiln.mul %{{.*}}, %[[TANH]] : (tensor<2x16x128xf32>, tensor<f32>) -> tensor<2x16x128xf32>

// PLAIN: vision-encoder-decoder config: the decoder's add_cross_attention is not true
// LONG: vision-encoder-decoder: sequence length 17 exceeds 'decoder.n_positions' (16)
