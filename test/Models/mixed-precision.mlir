// Mixed precision (kiln-compile --dtype bf16|f16): f32 parameters (master
// weights) cast to the compute type where they are read, bf16 activations
// and matmuls, logits cast back to f32; training keeps f32 parameters and
// optimizer state and casts the bf16 gradients to f32.
// RUN: kiln-compile %models/gpt2-tiny.json --dtype bf16 --emit=kiln | FileCheck %s --check-prefix=GPT2
// RUN: kiln-compile %models/gpt2-tiny.json --dtype bf16 --batch 2 --seq 8 --emit=decomposed | FileCheck %s --check-prefix=DECOMPOSED
// RUN: kiln-compile %models/llama-tiny.json --dtype bf16 --emit=kiln | FileCheck %s --check-prefix=LLAMA
// RUN: kiln-compile %models/gpt2-tiny.json --dtype f16 --emit=kiln | FileCheck %s --check-prefix=F16
// RUN: kiln-compile %models/gpt2-tiny.json --dtype f32 --emit=kiln | FileCheck %s --check-prefix=F32
// RUN: kiln-compile %models/gpt2-tiny.json --dtype bf16 --mode train --batch 2 --seq 8 --emit=kiln | FileCheck %s --check-prefix=TRAIN
// RUN: kiln-compile %models/bert-tiny.json --dtype bf16 --emit=kiln | FileCheck %s --check-prefix=BERT
// RUN: kiln-compile %models/transformer-tiny.json --dtype bf16 --emit=kiln | FileCheck %s --check-prefix=TRANSFORMER
// RUN: not kiln-compile %models/gpt2-tiny.json --dtype fp8 --emit=kiln 2>&1 | FileCheck %s --check-prefix=BADTYPE
// RUN: not kiln-compile %models/mlp.mlir --dtype bf16 --emit=kiln 2>&1 | FileCheck %s --check-prefix=NOTCONFIG

// GPT2:       kiln.parameter @transformer.wte.weight : tensor<1000x64xf32>
// GPT2:       kiln.parameter @transformer.ln_f.bias : tensor<64xf32>
// GPT2-NOT:   kiln.parameter {{.*}}bf16
// GPT2-LABEL: func.func @forward(
// GPT2-SAME:    -> (tensor<?x?x1000xf32> {kiln.name = "logits"})
// GPT2:         %[[WTE:.*]] = kiln.read_param @transformer.wte.weight : tensor<1000x64xf32>
// GPT2-NEXT:    %[[WTE16:.*]] = kiln.cast %[[WTE]] : tensor<1000x64xf32> -> tensor<1000x64xbf16>
// GPT2:         kiln.embedding %[[WTE16]], %{{.*}} : (tensor<1000x64xbf16>, tensor<?x?xi64>) -> tensor<?x?x64xbf16>
// GPT2:         %[[W:.*]] = kiln.read_param @transformer.h.0.attn.c_attn.weight : tensor<64x192xf32>
// GPT2-NEXT:    %[[W16:.*]] = kiln.cast %[[W]] : tensor<64x192xf32> -> tensor<64x192xbf16>
// GPT2:         kiln.linear %{{.*}}, %[[W16]] bias %{{.*}} weight_in_out : (tensor<?x?x64xbf16>, tensor<64x192xbf16>, tensor<192xbf16>) -> tensor<?x?x192xbf16>
// GPT2:         kiln.attention {{.*}} -> tensor<?x4x?x16xbf16>
// GPT2:         kiln.gelu {{.*}} : tensor<?x?x256xbf16>
// GPT2:         %[[LOGITS:.*]] = kiln.matmul %{{.*}}, %[[WTE16]] transpose_rhs : (tensor<?x?x64xbf16>, tensor<1000x64xbf16>) -> tensor<?x?x1000xbf16>
// GPT2-NEXT:    %[[OUT:.*]] = kiln.cast %[[LOGITS]] : tensor<?x?x1000xbf16> -> tensor<?x?x1000xf32>
// GPT2-NEXT:    return %[[OUT]] : tensor<?x?x1000xf32>

// Matmuls stay bf16 (they accumulate in f32 when lowered); layer_norm and
// softmax normalize in f32 and round once.
// DECOMPOSED-LABEL: func.func @forward(
// DECOMPOSED:         kiln.cast %{{.*}} : tensor<2x8x64xbf16> -> tensor<2x8x64xf32>
// DECOMPOSED:         kiln.reduce mean %{{.*}} axes = [2] keepdim : (tensor<2x8x64xf32>) -> tensor<2x8x1xf32>
// DECOMPOSED:         kiln.cast %{{.*}} : tensor<2x8x64xf32> -> tensor<2x8x64xbf16>
// DECOMPOSED:         kiln.matmul %{{.*}}, %{{.*}} : (tensor<2x8x64xbf16>, tensor<64x192xbf16>) -> tensor<2x8x192xbf16>
// DECOMPOSED:         kiln.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<2x4x8x16xbf16>, tensor<2x4x8x16xbf16>) -> tensor<2x4x8x8xbf16>
// DECOMPOSED:         kiln.reduce sum %{{.*}} axes = [3] keepdim : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x1xf32>
// DECOMPOSED-NOT:     kiln.reduce {{.*}}bf16
// DECOMPOSED:         return %{{.*}} : tensor<2x8x1000xf32>

// LLAMA:       kiln.parameter @model.embed_tokens.weight : tensor<1000x64xf32>
// LLAMA:       kiln.parameter @lm_head.weight : tensor<1000x64xf32>
// LLAMA-NOT:   kiln.parameter {{.*}}bf16
// LLAMA-LABEL: func.func @forward(
// LLAMA:         kiln.read_param @model.layers.0.input_layernorm.weight : tensor<64xf32>
// LLAMA-NEXT:    kiln.cast %{{.*}} : tensor<64xf32> -> tensor<64xbf16>
// LLAMA:         kiln.rms_norm {{.*}} -> tensor<?x?x64xbf16>
// LLAMA:         kiln.rope {{.*}} -> tensor<?x4x?x16xbf16>
// LLAMA:         kiln.attention {{.*}} -> tensor<?x4x?x16xbf16>
// LLAMA:         kiln.silu {{.*}} : tensor<?x?x172xbf16>
// LLAMA:         %[[HEAD:.*]] = kiln.read_param @lm_head.weight : tensor<1000x64xf32>
// LLAMA-NEXT:    %[[HEAD16:.*]] = kiln.cast %[[HEAD]] : tensor<1000x64xf32> -> tensor<1000x64xbf16>
// LLAMA-NEXT:    %[[LOGITS:.*]] = kiln.linear %{{.*}}, %[[HEAD16]] : (tensor<?x?x64xbf16>, tensor<1000x64xbf16>) -> tensor<?x?x1000xbf16>
// LLAMA-NEXT:    %[[OUT:.*]] = kiln.cast %[[LOGITS]] : tensor<?x?x1000xbf16> -> tensor<?x?x1000xf32>
// LLAMA-NEXT:    return %[[OUT]] : tensor<?x?x1000xf32>

// F16:       kiln.cast %{{.*}} : tensor<1000x64xf32> -> tensor<1000x64xf16>
// F16:       kiln.cast %{{.*}} : tensor<?x?x1000xf16> -> tensor<?x?x1000xf32>

// The default builds the f32 graph, without casts.
// F32-LABEL: func.func @forward(
// F32-NOT:   kiln.cast
// F32-NOT:   bf16

// TRAIN:       kiln.parameter @transformer.wte.weight : tensor<1000x64xf32>
// TRAIN:       kiln.parameter @"optimizer/step" : tensor<f32> init zeros {kiln.optimizer_state}
// TRAIN:       kiln.parameter @"transformer.h.0.attn.c_attn.weight/adam_m" : tensor<64x192xf32>
// TRAIN:       kiln.parameter @"transformer.h.0.attn.c_attn.weight/adam_v" : tensor<64x192xf32>
// TRAIN-NOT:   kiln.parameter {{.*}}bf16
// TRAIN-LABEL: func.func @train_step(
// TRAIN:         kiln.matmul {{.*}} : (tensor<2x8x64xbf16>, tensor<64x192xbf16>) -> tensor<2x8x192xbf16>
// TRAIN:         kiln.cross_entropy %{{.*}}, %{{.*}} reduction = mean : (tensor<2x8x1000xf32>, tensor<2x8xi64>) -> tensor<f32>
// The gradient of the cast: the bf16 weight gradient becomes f32.
// TRAIN:         kiln.cast %{{.*}} : tensor<64x192xbf16> -> tensor<64x192xf32>
// TRAIN:         kiln.write_param @"transformer.h.0.attn.c_attn.weight/adam_m", %{{.*}} : tensor<64x192xf32>
// TRAIN:         kiln.write_param @transformer.h.0.attn.c_attn.weight, %{{.*}} : tensor<64x192xf32>

// BERT-NOT:   kiln.parameter {{.*}}bf16
// BERT-LABEL: func.func @forward(
// BERT-SAME:    -> (tensor<?x?x64xf32> {kiln.name = "last_hidden_state"}, tensor<?x64xf32> {kiln.name = "pooler_output"})
// BERT:         kiln.padding_mask {{.*}} -> tensor<?x1x1x?xbf16>
// BERT:         kiln.cast %{{.*}} : tensor<?x?x64xbf16> -> tensor<?x?x64xf32>
// BERT-NEXT:    kiln.cast %{{.*}} : tensor<?x64xbf16> -> tensor<?x64xf32>

// TRANSFORMER-NOT:   kiln.parameter {{.*}}bf16
// TRANSFORMER-LABEL: func.func @forward(
// TRANSFORMER:         kiln.sin {{.*}} : tensor<?x{{[0-9]+}}xf32>
// TRANSFORMER:         kiln.cast %{{.*}} : tensor<?x{{[0-9]+}}xf32> -> tensor<?x{{[0-9]+}}xbf16>
// TRANSFORMER:         kiln.cast %{{.*}} : tensor<?x?x{{[0-9]+}}xbf16> -> tensor<?x?x{{[0-9]+}}xf32>

// BADTYPE: error: unknown --dtype 'fp8' (expected f32, bf16 or f16)
// NOTCONFIG: error: --dtype applies to model configs (.json); the element types of '{{.*}}mlp.mlir' are written in its IR
