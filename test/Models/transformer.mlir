// The encoder-decoder Transformer (torch.nn.Transformer names) from a
// config: scaled embeddings plus the in-graph sinusoidal encoding,
// non-causal encoder and cross attention, causal decoder self-attention,
// final encoder/decoder norms and the generator.
// RUN: kiln-compile %models/transformer-tiny.json --emit=kiln | FileCheck %s

// CHECK:       kiln.parameter @src_embed.weight : tensor<100x32xf32> init uniform
// CHECK:       kiln.parameter @encoder.layers.0.self_attn.in_proj_weight : tensor<96x32xf32> init uniform
// CHECK-NEXT:  kiln.parameter @encoder.layers.0.self_attn.in_proj_bias : tensor<96xf32> init zeros
// CHECK-NEXT:  kiln.parameter @encoder.layers.0.self_attn.out_proj.weight : tensor<32x32xf32>
// CHECK-NEXT:  kiln.parameter @encoder.layers.0.self_attn.out_proj.bias : tensor<32xf32> init zeros
// CHECK:       kiln.parameter @encoder.layers.0.linear1.weight : tensor<64x32xf32>
// CHECK:       kiln.parameter @encoder.layers.0.linear2.weight : tensor<32x64xf32>
// CHECK:       kiln.parameter @encoder.layers.1.norm2.bias : tensor<32xf32>
// CHECK:       kiln.parameter @encoder.norm.weight : tensor<32xf32> init ones
// CHECK:       kiln.parameter @tgt_embed.weight : tensor<120x32xf32>
// CHECK:       kiln.parameter @decoder.layers.0.multihead_attn.in_proj_weight : tensor<96x32xf32>
// CHECK:       kiln.parameter @decoder.layers.1.norm3.weight : tensor<32xf32>
// CHECK:       kiln.parameter @decoder.norm.bias : tensor<32xf32>
// CHECK:       kiln.parameter @generator.weight : tensor<120x32xf32>
// CHECK-NEXT:  kiln.parameter @generator.bias : tensor<120xf32>
// CHECK-LABEL: func.func @forward(%{{.*}}: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "src_ids"}, %{{.*}}: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "tgt_ids"}) -> (tensor<?x?x120xf32> {kiln.name = "logits"})
// Positional encoding: sin on even, cos on odd dimensions, interleaved.
// CHECK:         %[[ANGLE:.*]] = kiln.mul %{{.*}} : (tensor<?x1xf32>, tensor<16xf32>) -> tensor<?x16xf32>
// CHECK:         kiln.sin %[[ANGLE]]
// CHECK:         kiln.cos %[[ANGLE]]
// CHECK:         kiln.concat %{{.*}}, %{{.*}} axis = 2 : (tensor<?x16x1xf32>, tensor<?x16x1xf32>) -> tensor<?x16x2xf32>
// CHECK:         kiln.reshape %{{.*}} : tensor<?x16x2xf32> -> tensor<?x32xf32>
// Encoder self-attention is not causal; decoder self-attention is, and the
// cross attention after it is not.
// CHECK:         kiln.attention %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}} : (
// CHECK:         kiln.relu
// CHECK:         kiln.attention %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}} causal : (
// CHECK-NEXT:    kiln.read_param @decoder.layers.0.self_attn.out_proj.weight
// CHECK:         kiln.attention %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}} : (
// CHECK-NEXT:    kiln.read_param @decoder.layers.0.multihead_attn.out_proj.weight
// CHECK:         %[[LOGITS:.*]] = kiln.linear %{{.*}} : (tensor<?x?x32xf32>, tensor<120x32xf32>, tensor<120xf32>) -> tensor<?x?x120xf32>
// CHECK-NEXT:    return %[[LOGITS]]
