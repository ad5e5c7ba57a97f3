// GPT-2 from its Hugging Face config: state-dict names and Conv1D [in, out]
// weights, no separate lm_head (tied to wte), dynamic or fixed input shapes.
// RUN: kiln-compile %models/gpt2-tiny.json --emit=kiln | FileCheck %s
// RUN: kiln-compile %models/gpt2-tiny.json --batch 2 --seq 16 | FileCheck %s --check-prefix=STATIC
// RUN: kiln-compile %models/gpt2-tiny.json | kiln-opt | FileCheck %s --check-prefix=ROUNDTRIP

// CHECK:       kiln.parameter @transformer.wte.weight : tensor<1000x64xf32> init normal std = 2.000000e-02 trainable
// CHECK-NEXT:  kiln.parameter @transformer.wpe.weight : tensor<128x64xf32> init normal std = 2.000000e-02 trainable
// CHECK-NEXT:  kiln.parameter @transformer.h.0.ln_1.weight : tensor<64xf32> init ones trainable
// CHECK-NEXT:  kiln.parameter @transformer.h.0.ln_1.bias : tensor<64xf32> init zeros trainable
// CHECK-NEXT:  kiln.parameter @transformer.h.0.attn.c_attn.weight : tensor<64x192xf32>
// CHECK-NEXT:  kiln.parameter @transformer.h.0.attn.c_attn.bias : tensor<192xf32> init zeros
// CHECK:       kiln.parameter @transformer.h.1.mlp.c_proj.weight : tensor<256x64xf32>
// CHECK:       kiln.parameter @transformer.ln_f.bias : tensor<64xf32>
// CHECK-NOT:   lm_head
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[IDS:[^:]*]]: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "input_ids"}) -> (tensor<?x?x1000xf32> {kiln.name = "logits"})
// CHECK:         %[[WTE:.*]] = kiln.read_param @transformer.wte.weight
// CHECK:         kiln.embedding %[[WTE]], %[[IDS]]
// CHECK:         %[[S:.*]] = tensor.dim %[[IDS]], %{{.*}} : tensor<?x?xi64>
// CHECK:         kiln.iota(%[[S]]) dim = 0 : tensor<?xi64>
// CHECK:         kiln.linear %{{.*}}, %{{.*}} bias %{{.*}} weight_in_out : (tensor<?x?x64xf32>, tensor<64x192xf32>, tensor<192xf32>) -> tensor<?x?x192xf32>
// CHECK:         kiln.attention %{{.*}}, %{{.*}}, %{{.*}} causal : (tensor<?x4x?x16xf32>
// CHECK:         kiln.gelu %{{.*}} approximate = tanh
// CHECK:         %[[LOGITS:.*]] = kiln.matmul %{{.*}}, %[[WTE]] transpose_rhs : (tensor<?x?x64xf32>, tensor<1000x64xf32>) -> tensor<?x?x1000xf32>
// CHECK:         return %[[LOGITS]]

// STATIC-LABEL: func.func @forward(%{{.*}}: tensor<2x16xi64> {kiln.name = "input_ids"}) -> (tensor<2x16x1000xf32> {kiln.name = "logits"})
// STATIC:         kiln.iota() dim = 0 : tensor<16xi64>

// ROUNDTRIP: func.func @forward
