// ViT (ViTModel with pooler) from its Hugging Face config: pixel_values in,
// the patch embedding as a conv2d with kernel = stride = patch, the class
// token in front, learned positions, pre-norm layers, a final LayerNorm and
// the tanh pooler on the class token.
// RUN: kiln-compile %models/vit-tiny.json --emit=kiln | FileCheck %s
// RUN: kiln-compile %models/vit-tiny.json --batch 2 | FileCheck %s --check-prefix=STATIC

// CHECK:       kiln.parameter @embeddings.patch_embeddings.projection.weight : tensor<64x3x8x8xf32>
// CHECK-NEXT:  kiln.parameter @embeddings.patch_embeddings.projection.bias : tensor<64xf32> init zeros
// CHECK-NEXT:  kiln.parameter @embeddings.cls_token : tensor<1x1x64xf32>
// CHECK-NEXT:  kiln.parameter @embeddings.position_embeddings : tensor<1x17x64xf32>
// CHECK-NEXT:  kiln.parameter @encoder.layer.0.layernorm_before.weight : tensor<64xf32> init ones
// CHECK:       kiln.parameter @encoder.layer.0.attention.attention.query.weight : tensor<64x64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.attention.output.dense.weight : tensor<64x64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.layernorm_after.weight : tensor<64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.intermediate.dense.weight : tensor<256x64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.output.dense.weight : tensor<64x256xf32>
// CHECK:       kiln.parameter @layernorm.weight : tensor<64xf32>
// CHECK:       kiln.parameter @pooler.dense.weight : tensor<64x64xf32>
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[PIXELS:[^:]*]]: tensor<?x3x32x32xf32> {kiln.name = "pixel_values"}) -> (tensor<?x17x64xf32> {kiln.name = "last_hidden_state"}, tensor<?x64xf32> {kiln.name = "pooler_output"})
// CHECK:         %[[CONV:.*]] = kiln.conv2d %[[PIXELS]], %{{.*}} bias %{{.*}} stride = [8, 8] padding = [0, 0] dilation = [1, 1] groups = 1 : {{.*}} -> tensor<?x64x4x4xf32>
// CHECK:         %[[FLAT:.*]] = kiln.reshape %[[CONV]] : tensor<?x64x4x4xf32> -> tensor<?x64x16xf32>
// CHECK:         %[[TOKENS:.*]] = kiln.transpose %[[FLAT]] permutation = [0, 2, 1]
// CHECK:         %[[CLS:.*]] = kiln.broadcast_to %{{.*}}(%{{.*}}) : tensor<1x1x64xf32> -> tensor<?x1x64xf32>
// CHECK:         kiln.concat %[[CLS]], %[[TOKENS]] axis = 1 : {{.*}} -> tensor<?x17x64xf32>
// CHECK:         kiln.layer_norm
// CHECK:         kiln.attention %{{.*}}, %{{.*}}, %{{.*}} : (tensor<?x4x17x16xf32>
// CHECK-NOT:     causal
// CHECK:         kiln.gelu %{{.*}} approximate = erf
// CHECK:         %[[FIRST:.*]] = kiln.slice %[[H:.*]] axis = 1[0 : 1 : 1]
// CHECK:         %[[POOLED:.*]] = kiln.tanh
// CHECK:         return %[[H]], %[[POOLED]] : tensor<?x17x64xf32>, tensor<?x64xf32>

// STATIC-LABEL: func.func @forward(%{{.*}}: tensor<2x3x32x32xf32> {kiln.name = "pixel_values"}) -> (tensor<2x17x64xf32> {kiln.name = "last_hidden_state"}, tensor<2x64xf32> {kiln.name = "pooler_output"})
