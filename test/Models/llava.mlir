// The llava family: a CLIP image tower's hidden states (class token
// dropped under the default strategy), a two-layer projector, the image
// tokens as a prefix before the caption's embeddings, GPT-2's positions
// over both and its blocks, and the logits of the caption's positions
// only; names as transformers' LlavaForConditionalGeneration.
// RUN: kiln-compile %models/captioner-shapes.json --emit=kiln --batch 2 --seq 16 | FileCheck %s
// RUN: kiln-compile %models/captioner-shapes.json --emit=summary | FileCheck %s --check-prefix=SUMMARY
// RUN: sed 's/"vision_feature_layer": -1/"vision_feature_layer": -2/; s/"default"/"full"/' %models/captioner-shapes.json > %t-full.json
// RUN: kiln-compile %t-full.json --emit=kiln --seq 4 | FileCheck %s --check-prefix=FULL
// RUN: not kiln-compile %models/captioner-shapes.json --seq 17 --emit=summary 2>&1 | FileCheck %s --check-prefix=LONG
// RUN: not kiln-compile %models/captioner-shapes.json --kv-cache 8 --emit=summary 2>&1 | FileCheck %s --check-prefix=CACHE

// CHECK:       kiln.parameter @vision_tower.vision_model.embeddings.patch_embedding.weight : tensor<96x3x4x4xf32>
// CHECK:       kiln.parameter @vision_tower.vision_model.encoder.layers.2.mlp.fc2.bias
// CHECK-NEXT:  kiln.parameter @multi_modal_projector.linear_1.weight : tensor<128x96xf32>
// CHECK-NEXT:  kiln.parameter @multi_modal_projector.linear_1.bias : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @multi_modal_projector.linear_2.weight : tensor<128x128xf32>
// CHECK-NEXT:  kiln.parameter @multi_modal_projector.linear_2.bias : tensor<128xf32>
// CHECK-NEXT:  kiln.parameter @language_model.transformer.wte.weight : tensor<384x128xf32>
// CHECK-NEXT:  kiln.parameter @language_model.transformer.wpe.weight : tensor<80x128xf32>
// CHECK-NOT:   post_layernorm
// CHECK-NOT:   lm_head
// CHECK-LABEL: func.func @forward(%{{.*}}: tensor<2x16xi64> {kiln.name = "input_ids"}, %{{.*}}: tensor<2x3x32x32xf32> {kiln.name = "pixel_values"}) -> (tensor<2x16x384xf32> {kiln.name = "logits"})
// CHECK:         kiln.conv2d
// CHECK:         %[[FEATURES:.*]] = kiln.slice %{{.*}} axis = 1[1 : 65 : 1] : (tensor<2x65x96xf32>) -> tensor<2x64x96xf32>
// CHECK:         kiln.linear %[[FEATURES]]
// CHECK:         kiln.gelu
// CHECK:         %[[IMAGE:.*]] = kiln.linear
// CHECK:         %[[TEXT:.*]] = kiln.embedding
// CHECK:         kiln.concat %[[IMAGE]], %[[TEXT]] axis = 1 : (tensor<2x64x128xf32>, tensor<2x16x128xf32>) -> tensor<2x80x128xf32>
// CHECK:         kiln.attention {{.*}} causal
// CHECK:         %[[CAPTION:.*]] = kiln.slice %{{.*}} axis = 1[64 : 80 : 1] : (tensor<2x80x128xf32>) -> tensor<2x16x128xf32>
// CHECK:         kiln.matmul %[[CAPTION]], %{{.*}} transpose_rhs : (tensor<2x16x128xf32>, tensor<384x128xf32>) -> tensor<2x16x384xf32>

// SUMMARY: entry        @forward(tensor<?x16xi64>, tensor<?x3x32x32xf32>) -> (tensor<?x16x384xf32>)

// vision_feature_layer -2 of 3 layers builds two; "full" keeps the class
// token: 65 image tokens.
// FULL:     kiln.parameter @vision_tower.vision_model.encoder.layers.1.mlp.fc2.bias
// FULL-NOT: encoder.layers.2
// FULL:     kiln.concat %{{.*}}, %{{.*}} axis = 1 : (tensor<?x65x128xf32>, tensor<?x4x128xf32>) -> tensor<?x69x128xf32>
// FULL:     kiln.slice %{{.*}} axis = 1[65 : 69 : 1]

// LONG: llava: --seq 17 is more than the 16 text tokens the text model's n_positions of 80 leaves after the image's 64
// CACHE: llava: a KV cache is for the causal LMs (gpt2, llama)
