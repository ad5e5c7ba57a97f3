// CLIP (CLIPModel) from its nested Hugging Face config: forward scores
// every text against every image; encode_image and encode_text give the
// unit-length embeddings alone. The text tower is causal with the padding
// mask and pools at the end-of-text token (eos_token_id 2 here: the largest
// id of each row); the image tower has a bias-free patch conv, a class
// embedding, pre_layrnorm, and post_layernorm on the class token.
// RUN: kiln-compile %models/clip-tiny.json --emit=kiln | FileCheck %s
// RUN: kiln-compile %models/clip-tiny.json --emit=summary | FileCheck %s --check-prefix=SUMMARY
// RUN: sed 's/"eos_token_id": 2/"eos_token_id": 7/' %models/clip-tiny.json > %t.json
// RUN: kiln-compile %t.json --emit=kiln | FileCheck %s --check-prefix=EOS
// RUN: kiln-compile %models/clip-tiny.json --emit=kiln --batch 2 --seq 5 | FileCheck %s --check-prefix=STATIC

// CHECK:       kiln.parameter @text_model.embeddings.token_embedding.weight : tensor<1000x64xf32>
// CHECK-NEXT:  kiln.parameter @text_model.embeddings.position_embedding.weight : tensor<32x64xf32>
// CHECK-NEXT:  kiln.parameter @text_model.encoder.layers.0.layer_norm1.weight : tensor<64xf32> init ones
// CHECK:       kiln.parameter @text_model.encoder.layers.0.self_attn.q_proj.weight : tensor<64x64xf32> init normal std = 6.250000e-02
// CHECK:       kiln.parameter @text_model.encoder.layers.0.self_attn.out_proj.weight : tensor<64x64xf32> init normal std = 1.250000e-01
// CHECK:       kiln.parameter @text_model.encoder.layers.0.mlp.fc1.weight : tensor<256x64xf32>
// CHECK:       kiln.parameter @text_model.final_layer_norm.weight : tensor<64xf32>
// CHECK:       kiln.parameter @text_projection.weight : tensor<32x64xf32>
// CHECK-NEXT:  kiln.parameter @vision_model.embeddings.patch_embedding.weight : tensor<64x3x8x8xf32>
// CHECK-NEXT:  kiln.parameter @vision_model.embeddings.class_embedding : tensor<64xf32>
// CHECK-NEXT:  kiln.parameter @vision_model.embeddings.position_embedding.weight : tensor<17x64xf32>
// CHECK-NEXT:  kiln.parameter @vision_model.pre_layrnorm.weight : tensor<64xf32>
// CHECK:       kiln.parameter @vision_model.post_layernorm.bias : tensor<64xf32>
// CHECK-NEXT:  kiln.parameter @visual_projection.weight : tensor<32x64xf32>
// CHECK-NEXT:  kiln.parameter @logit_scale : tensor<f32> init uniform range(2.659200e+00, 2.659200e+00)

// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[IDS:[^:]*]]: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 32>, kiln.name = "input_ids"}, %[[PIXELS:[^:]*]]: tensor<?x3x32x32xf32> {kiln.name = "pixel_values"}, %[[MASK:[^:]*]]: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 32>, kiln.name = "attention_mask"})
// CHECK-SAME:    -> (tensor<?x?xf32> {kiln.name = "logits_per_image"}, tensor<?x?xf32> {kiln.name = "logits_per_text"}, tensor<?x32xf32> {kiln.name = "text_embeds"}, tensor<?x32xf32> {kiln.name = "image_embeds"})
// CHECK:         %[[PAD:.*]] = kiln.padding_mask %[[MASK]]
// CHECK:         kiln.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[PAD]] causal
// CHECK:         %[[LARGEST:.*]] = kiln.reduce max %[[IDS]] axes = [1] keepdim
// CHECK:         kiln.compare eq, %[[IDS]], %[[LARGEST]]
// CHECK:         kiln.reduce min
// CHECK:         kiln.read_param @text_projection.weight
// CHECK:         kiln.rsqrt
// CHECK:         kiln.conv2d %[[PIXELS]], %{{.*}} stride = [8, 8]
// CHECK-NOT:     bias
// CHECK-SAME:    -> tensor<?x64x4x4xf32>
// CHECK:         kiln.broadcast_to %{{.*}}(%{{.*}}) : tensor<64xf32> -> tensor<?x1x64xf32>
// CHECK:         kiln.read_param @vision_model.pre_layrnorm.weight
// CHECK:         kiln.slice %{{.*}} axis = 1[0 : 1 : 1]
// CHECK:         kiln.read_param @vision_model.post_layernorm.weight
// CHECK:         kiln.read_param @visual_projection.weight
// CHECK:         %[[SCALE:.*]] = kiln.exp
// CHECK:         %[[SIM:.*]] = kiln.matmul %[[TEXT:.*]], %[[IMAGE:.*]] transpose_rhs
// CHECK:         %[[PER_TEXT:.*]] = kiln.mul %[[SIM]], %[[SCALE]]
// CHECK:         %[[PER_IMAGE:.*]] = kiln.transpose %[[PER_TEXT]] permutation = [1, 0]
// CHECK:         return %[[PER_IMAGE]], %[[PER_TEXT]], %[[TEXT]], %[[IMAGE]]

// CHECK-LABEL: func.func @encode_image(%{{.*}}: tensor<?x3x32x32xf32> {kiln.name = "pixel_values"}) -> (tensor<?x32xf32> {kiln.name = "image_embeds"})
// CHECK-NOT:     text_model
// CHECK:         kiln.read_param @visual_projection.weight
// CHECK-LABEL: func.func @encode_text(%{{.*}}: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 32>, kiln.name = "input_ids"}, %{{.*}}: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 32>, kiln.name = "attention_mask"}) -> (tensor<?x32xf32> {kiln.name = "text_embeds"})
// CHECK-NOT:     vision_model
// CHECK:         kiln.read_param @text_projection.weight

// SUMMARY: entry        @forward(tensor<?x?xi64>, tensor<?x3x32x32xf32>, tensor<?x?xi64>) -> (tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
// SUMMARY: entry        @encode_image(tensor<?x3x32x32xf32>) -> (tensor<?x32xf32>)
// SUMMARY: entry        @encode_text(tensor<?x?xi64>, tensor<?x?xi64>) -> (tensor<?x32xf32>)

// Any other eos_token_id: its first occurrence is pooled.
// EOS-LABEL: func.func @forward(
// EOS-NOT:     kiln.reduce max
// EOS:         %[[EOS:.*]] = kiln.constant dense<7> : tensor<i64>
// EOS:         kiln.compare eq, %{{.*}}, %[[EOS]]

// STATIC-LABEL: func.func @forward(%{{.*}}: tensor<2x5xi64> {kiln.name = "input_ids"}, %{{.*}}: tensor<2x3x32x32xf32> {kiln.name = "pixel_values"}, %{{.*}}: tensor<2x5xi64> {kiln.name = "attention_mask"}) -> (tensor<2x2xf32> {kiln.name = "logits_per_image"}, tensor<2x2xf32> {kiln.name = "logits_per_text"}, tensor<2x32xf32> {kiln.name = "text_embeds"}, tensor<2x32xf32> {kiln.name = "image_embeds"})
