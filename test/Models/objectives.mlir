// The training objectives of kiln-compile --mode train --objective: the
// DPO loss over pairs (chosen rows, then rejected rows) and the GRPO
// clipped surrogate with a k3 KL term, both with a token_logprobs entry;
// the reward model, PPO, and knowledge distillation.
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective dpo --batch 4 --seq 8 --emit=kiln | FileCheck %s --check-prefix=DPO
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective grpo --emit=kiln | FileCheck %s --check-prefix=GRPO
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective lm --emit=summary | FileCheck %s --check-prefix=LM
// RUN: not kiln-compile %models/gpt2-tiny.json --mode train --objective dpo --emit=summary 2>&1 | FileCheck %s --check-prefix=DYNAMIC
// RUN: not kiln-compile %models/gpt2-tiny.json --mode train --objective dpo --batch 3 --emit=summary 2>&1 | FileCheck %s --check-prefix=ODD
// RUN: not kiln-compile %models/gpt2-tiny.json --mode train --objective rlhf --emit=summary 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not kiln-compile %models/gpt2-tiny.json --objective dpo --emit=summary 2>&1 | FileCheck %s --check-prefix=NOTRAIN
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective reward --batch 4 --seq 8 --emit=kiln | FileCheck %s --check-prefix=REWARD
// RUN: kiln-compile %models/llama-tiny.json --score-head --emit=summary | FileCheck %s --check-prefix=SCORE
// RUN: not kiln-compile %models/gpt2-tiny.json --mode train --objective reward --emit=summary 2>&1 | FileCheck %s --check-prefix=RDYNAMIC
// RUN: not kiln-compile %models/bert-tiny.json --score-head --emit=summary 2>&1 | FileCheck %s --check-prefix=RBERT
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective ppo --emit=kiln | FileCheck %s --check-prefix=PPO
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective distill --batch 2 --seq 8 --emit=kiln | FileCheck %s --check-prefix=DISTILL
// RUN: kiln-compile %models/gpt2-tiny.json --mode train --objective distill --distill-hidden mse --hidden-projection 96 --batch 2 --seq 8 --emit=kiln | FileCheck %s --check-prefix=HIDDEN
// RUN: not kiln-compile %models/gpt2-tiny.json --mode train --objective distill --distill-hidden l1 --emit=summary 2>&1 | FileCheck %s --check-prefix=BADHIDDEN
// RUN: not kiln-compile %models/gpt2-tiny.json --mode train --distill-hidden cosine --emit=summary 2>&1 | FileCheck %s --check-prefix=NODISTILL
// RUN: not kiln-compile %models/bert-tiny.json --hidden-states --emit=summary 2>&1 | FileCheck %s --check-prefix=HBERT

// DPO-LABEL: func.func @token_logprobs(%arg0: tensor<4x8xi64> {kiln.name = "input_ids"}, %arg1: tensor<4x8xi64> {kiln.name = "targets"}) -> (tensor<4x8xf32> {kiln.name = "logprobs"})
// DPO:         %[[CE:.*]] = kiln.cross_entropy %{{.*}}, %arg1 reduction = none
// DPO-NEXT:    %[[LP:.*]] = kiln.neg %[[CE]] : tensor<4x8xf32>
// DPO-NEXT:    return %[[LP]]
// DPO-LABEL: func.func @train_step(%arg0: tensor<4x8xi64> {kiln.name = "input_ids"}, %arg1: tensor<4x8xi64> {kiln.name = "targets"}, %arg2: tensor<4xf32> {kiln.name = "reference_logprobs"}, %arg3: tensor<f32> {kiln.name = "beta"}, %arg4: tensor<f32> {kiln.name = "nll_coef"}, %arg5: tensor<f32> {kiln.name = "lr"})
// DPO-LABEL: func.func @eval_step(
// DPO:         %[[SEQ:.*]] = kiln.reduce sum %{{.*}} axes = [1] : (tensor<4x8xf32>) -> tensor<4xf32>
// DPO-NEXT:    %[[REL:.*]] = kiln.sub %[[SEQ]], %arg2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// DPO-NEXT:    %[[CHO:.*]] = kiln.slice %[[REL]] axis = 0[0 : 2 : 1]
// DPO-NEXT:    %[[REJ:.*]] = kiln.slice %[[REL]] axis = 0[2 : 4 : 1]
// DPO:         %[[D:.*]] = kiln.sub %[[CHO]], %[[REJ]]
// DPO-NEXT:    %[[M:.*]] = kiln.mul %arg3, %[[D]]
// DPO-NEXT:    %[[NM:.*]] = kiln.neg %[[M]]
// DPO:         kiln.log
// DPO:         kiln.max %[[NM]]
// DPO:         kiln.reduce mean %{{.*}} axes = [0] : (tensor<2xf32>) -> tensor<f32>

// GRPO-LABEL: func.func @token_logprobs(
// GRPO-LABEL: func.func @train_step(%arg0: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 128>, kiln.name = "input_ids"}, %arg1: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 128>, kiln.name = "targets"}, %arg2: tensor<?x?xf32> {kiln.max_shape = array<i64: -1, 128>, kiln.name = "sample_logprobs"}, %arg3: tensor<?x?xf32> {kiln.max_shape = array<i64: -1, 128>, kiln.name = "reference_logprobs"}, %arg4: tensor<?xf32> {kiln.name = "advantages"}, %arg5: tensor<f32> {kiln.name = "kl_coef"}, %arg6: tensor<f32> {kiln.name = "clip"}, %arg7: tensor<f32> {kiln.name = "lr"})
// GRPO-LABEL: func.func @eval_step(
// GRPO:         %[[LP:.*]] = kiln.neg %{{.*}} : tensor<?x?xf32>
// GRPO-NEXT:    %[[KEEP:.*]] = kiln.compare ne, %arg1
// GRPO-NEXT:    %[[MASK:.*]] = kiln.cast %[[KEEP]] : tensor<?x?xi1> -> tensor<?x?xf32>
// GRPO-NEXT:    %[[A:.*]] = kiln.reshape %arg4 : tensor<?xf32> -> tensor<?x1xf32>
// GRPO-NEXT:    %[[LR:.*]] = kiln.sub %[[LP]], %arg2
// GRPO-NEXT:    %[[RATIO:.*]] = kiln.exp %[[LR]]
// GRPO-NEXT:    %[[LOW:.*]] = kiln.sub %{{.*}}, %arg6
// GRPO-NEXT:    %[[HIGH:.*]] = kiln.add %arg6,
// GRPO-NEXT:    %[[LO:.*]] = kiln.max %[[RATIO]], %[[LOW]]
// GRPO-NEXT:    %[[CL:.*]] = kiln.min %[[LO]], %[[HIGH]]
// GRPO-NEXT:    %[[S1:.*]] = kiln.mul %[[RATIO]], %[[A]]
// GRPO-NEXT:    %[[S2:.*]] = kiln.mul %[[CL]], %[[A]]
// GRPO-NEXT:    %[[SUR:.*]] = kiln.min %[[S1]], %[[S2]]
// GRPO-NEXT:    %[[Q:.*]] = kiln.sub %arg3, %[[LP]]
// GRPO-NEXT:    %[[EQ:.*]] = kiln.exp %[[Q]]
// GRPO:         kiln.mul %arg5
// GRPO:         kiln.mul %{{.*}}, %[[MASK]]
// GRPO:         kiln.reduce mean %{{.*}} axes = [0] : (tensor<?xf32>) -> tensor<f32>

// LM: entry        @train_step(tensor<?x?xi64>, tensor<?x?xi64>, tensor<f32>) -> (tensor<f32>, tensor<f32>)
// LM-NOT: token_logprobs
// DYNAMIC: the DPO loss pairs the first half of a batch (chosen responses) with the second (rejected ones): compile it with a static, even --batch (twice the pairs per step)
// ODD: compile it with a static, even --batch (twice the pairs per step), not 3
// UNKNOWN: unknown --objective 'rlhf' (expected lm, dpo, grpo, reward, ppo, distill or contrastive)
// NOTRAIN: --objective needs --mode train

// The reward model: score.weight on the last token's final hidden state,
// then the Bradley-Terry loss over the two halves of the batch.
// REWARD:      kiln.parameter @score.weight : tensor<1x64xf32>
// REWARD-LABEL: func.func @score(%arg0: tensor<4x8xi64> {kiln.name = "input_ids"}, %arg1: tensor<4xi64> {kiln.name = "lengths"}) -> (tensor<4xf32> {kiln.name = "scores"})
// REWARD:        kiln.compare eq
// REWARD:        %[[LAST:.*]] = kiln.reduce sum %{{.*}} axes = [1] keepdim : (tensor<4x8x64xf32>) -> tensor<4x1x64xf32>
// REWARD-NEXT:   %[[W:.*]] = kiln.read_param @score.weight
// REWARD-NEXT:   %[[S:.*]] = kiln.matmul %[[LAST]], %[[W]] transpose_rhs
// REWARD-LABEL: func.func @train_step(%arg0: tensor<4x8xi64> {kiln.name = "input_ids"}, %arg1: tensor<4xi64> {kiln.name = "lengths"}, %arg2: tensor<f32> {kiln.name = "lr"})
// REWARD-LABEL: func.func @eval_step(
// REWARD:        kiln.slice %{{.*}} axis = 0[0 : 2 : 1]
// REWARD-NEXT:   kiln.slice %{{.*}} axis = 0[2 : 4 : 1]
// REWARD:        kiln.reduce mean %{{.*}} axes = [0] : (tensor<2xf32>) -> tensor<f32>
// SCORE: entry        @score(tensor<?x?xi64>, tensor<?xi64>) -> (tensor<?xf32>)
// RDYNAMIC: the reward-model loss pairs the first half of a batch (chosen responses) with the second (rejected ones)
// RBERT: a score or value head and hidden_states are for the causal LMs (gpt2, llama)

// The PPO objective: the value head on every position, and the loss's
// clipped policy terms and clipped value terms over the response tokens.
// PPO:         kiln.parameter @value_head.weight : tensor<1x64xf32>
// PPO:         kiln.parameter @value_head.bias : tensor<1xf32>
// PPO-LABEL: func.func @values(%arg0: tensor<?x?xi64> {kiln.max_shape = array<i64: -1, 128>, kiln.name = "input_ids"}) -> (tensor<?x?xf32> {kiln.name = "values"})
// PPO:         kiln.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<?x?x64xf32>, tensor<1x64xf32>) -> tensor<?x?x1xf32>
// PPO-LABEL: func.func @train_step(
// PPO-SAME:    kiln.name = "sample_logprobs"
// PPO-SAME:    kiln.name = "advantages"
// PPO-SAME:    kiln.name = "returns"
// PPO-SAME:    kiln.name = "sample_values"
// PPO-SAME:    kiln.name = "clip"
// PPO-SAME:    kiln.name = "value_clip"
// PPO-SAME:    kiln.name = "vf_coef"
// PPO-LABEL: func.func @eval_step(
// PPO:         %[[RATIO:.*]] = kiln.exp
// PPO:         kiln.max %[[RATIO]]
// PPO:         kiln.neg %arg3
// PPO:         kiln.sub %{{.*}}, %arg5

// Distillation: the mixed divergence ((1 - reverse) p_t - reverse p_s)
// (lt - ls) over the vocabulary at temperature T, averaged over the target
// tokens, times alpha T^2, plus (1 - alpha) times the cross-entropy; one
// trunk (one attention per layer) even with the hidden-state term.
// DISTILL-LABEL: func.func @train_step(%arg0: tensor<2x8xi64> {kiln.name = "input_ids"}, %arg1: tensor<2x8xi64> {kiln.name = "targets"}, %arg2: tensor<2x8x1000xf32> {kiln.name = "teacher_logits"}, %arg3: tensor<f32> {kiln.name = "alpha"}, %arg4: tensor<f32> {kiln.name = "temperature"}, %arg5: tensor<f32> {kiln.name = "reverse"}, %arg6: tensor<f32> {kiln.name = "lr"})
// DISTILL-LABEL: func.func @eval_step(
// DISTILL:         %[[LOGITS:.*]] = kiln.matmul %{{.*}} transpose_rhs : (tensor<2x8x64xf32>, tensor<1000x64xf32>) -> tensor<2x8x1000xf32>
// DISTILL:         %[[S:.*]] = kiln.div %[[LOGITS]], %arg4
// DISTILL-NEXT:    %[[T:.*]] = kiln.div %arg2, %arg4
// DISTILL-NEXT:    %[[LS:.*]] = kiln.log_softmax %[[S]] axis = -1
// DISTILL-NEXT:    %[[LT:.*]] = kiln.log_softmax %[[T]] axis = -1
// DISTILL-NEXT:    %[[FW:.*]] = kiln.sub %{{.*}}, %arg5
// DISTILL-NEXT:    %[[PT:.*]] = kiln.exp %[[LT]]
// DISTILL-NEXT:    %[[WT:.*]] = kiln.mul %[[FW]], %[[PT]]
// DISTILL-NEXT:    %[[PS:.*]] = kiln.exp %[[LS]]
// DISTILL-NEXT:    %[[WS:.*]] = kiln.mul %arg5, %[[PS]]
// DISTILL-NEXT:    %[[W:.*]] = kiln.sub %[[WT]], %[[WS]]
// DISTILL-NEXT:    %[[GAP:.*]] = kiln.sub %[[LT]], %[[LS]]
// DISTILL-NEXT:    %[[TERMS:.*]] = kiln.mul %[[W]], %[[GAP]]
// DISTILL-NEXT:    kiln.reduce sum %[[TERMS]] axes = [2]
// DISTILL:         kiln.cross_entropy %[[LOGITS]], %arg1 reduction = mean
// DISTILL:         %[[T2:.*]] = kiln.mul %arg4, %arg4
// DISTILL-NEXT:    kiln.mul %arg3, %[[T2]]
// HIDDEN:        kiln.parameter @distill_projection.weight : tensor<96x64xf32>
// HIDDEN-LABEL: func.func @hidden_states(%arg0: tensor<2x8xi64> {kiln.name = "input_ids"}) -> (tensor<2x8x96xf32> {kiln.name = "hidden"})
// HIDDEN-LABEL: func.func @train_step(
// HIDDEN-SAME:   %arg6: tensor<2x8x96xf32> {kiln.name = "teacher_hidden"}, %arg7: tensor<f32> {kiln.name = "hidden_coef"}
// HIDDEN-LABEL: func.func @eval_step(
// HIDDEN-COUNT-2: kiln.attention
// HIDDEN-NOT:    kiln.attention
// HIDDEN:        %[[D:.*]] = kiln.sub %{{.*}}, %arg6 : (tensor<2x8x96xf32>, tensor<2x8x96xf32>)
// HIDDEN-NEXT:   %[[SQ:.*]] = kiln.mul %[[D]], %[[D]]
// HIDDEN-NEXT:   kiln.reduce mean %[[SQ]] axes = [2]
// BADHIDDEN: --distill-hidden 'l1': expected none, cosine or mse
// NODISTILL: --distill-hidden needs --objective distill
// HBERT: a score or value head and hidden_states are for the causal LMs (gpt2, llama)
