// BERT (BertModel with pooler) from its Hugging Face config: three i64
// inputs, the padding mask from attention_mask, erf GELU, post-norm layers,
// and (last_hidden_state, pooler_output).
// RUN: kiln-compile %models/bert-tiny.json --emit=kiln | FileCheck %s
// RUN: kiln-compile %models/bert-tiny.json --batch 4 --seq 32 | FileCheck %s --check-prefix=STATIC

// CHECK:       kiln.parameter @embeddings.word_embeddings.weight : tensor<1000x64xf32>
// CHECK-NEXT:  kiln.parameter @embeddings.position_embeddings.weight : tensor<128x64xf32>
// CHECK-NEXT:  kiln.parameter @embeddings.token_type_embeddings.weight : tensor<2x64xf32>
// CHECK-NEXT:  kiln.parameter @embeddings.LayerNorm.weight : tensor<64xf32> init ones
// CHECK-NEXT:  kiln.parameter @embeddings.LayerNorm.bias : tensor<64xf32> init zeros
// CHECK-NEXT:  kiln.parameter @encoder.layer.0.attention.self.query.weight : tensor<64x64xf32>
// CHECK-NEXT:  kiln.parameter @encoder.layer.0.attention.self.query.bias : tensor<64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.attention.output.dense.weight : tensor<64x64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.attention.output.LayerNorm.weight : tensor<64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.intermediate.dense.weight : tensor<256x64xf32>
// CHECK:       kiln.parameter @encoder.layer.0.output.dense.weight : tensor<64x256xf32>
// CHECK:       kiln.parameter @encoder.layer.1.output.LayerNorm.bias : tensor<64xf32>
// CHECK:       kiln.parameter @pooler.dense.weight : tensor<64x64xf32>
// CHECK-NEXT:  kiln.parameter @pooler.dense.bias : tensor<64xf32>
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:    %[[IDS:[^:]*]]: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "input_ids"}, %[[TYPES:[^:]*]]: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "token_type_ids"}, %[[MASK:[^:]*]]: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, {{[0-9]+}}>, kiln.name = "attention_mask"}) -> (tensor<?x?x64xf32> {kiln.name = "last_hidden_state"}, tensor<?x64xf32> {kiln.name = "pooler_output"})
// CHECK:         %[[ADD:.*]] = kiln.padding_mask %[[MASK]] : tensor<?x?xi64> -> tensor<?x1x1x?xf32>
// CHECK:         kiln.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[ADD]] : (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x1x1x?xf32>) -> tensor<?x4x?x16xf32>
// CHECK:         kiln.gelu %{{.*}} approximate = erf
// CHECK:         %[[FIRST:.*]] = kiln.slice %[[H:.*]] axis = 1[0 : 1 : 1]
// CHECK:         %[[POOLED:.*]] = kiln.tanh
// CHECK:         return %[[H]], %[[POOLED]] : tensor<?x?x64xf32>, tensor<?x64xf32>

// STATIC-LABEL: func.func @forward(%{{.*}}: tensor<4x32xi64> {kiln.name = "input_ids"}, %{{.*}}: tensor<4x32xi64> {kiln.name = "token_type_ids"}, %{{.*}}: tensor<4x32xi64> {kiln.name = "attention_mask"}) -> (tensor<4x32x64xf32> {kiln.name = "last_hidden_state"}, tensor<4x64xf32> {kiln.name = "pooler_output"})
