//===- TrainingGraph.h - Training entry points from a model -----*- C++ -*-===//
//
// The one place that turns a model into a training graph: the objective
// (today the language-model loss; the RLHF and distillation objectives
// join it here) and the `train_step`/`eval_step` entry points built from
// it by kiln-autodiff and kiln-optimizer. kiln-compile --mode train calls
// buildTrainingEntryPoints.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_TRAININGGRAPH_H
#define KILN_COMPILER_TRAININGGRAPH_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::kiln {

/// Adds `func.func @loss(<forward's inputs>, targets) -> tensor<f32>`, the
/// mean next-token cross-entropy of `forward`'s logits `[..., vocab]`
/// against integer `targets` (logits' shape without the vocab dim; -100 is
/// ignored, as in torch). Fails, naming the problem, when there is no
/// `forward` or it does not return exactly one float logits tensor. A module
/// that already has `@loss` is left unchanged.
llvm::Error addLanguageModelLoss(ModuleOp module);

/// Adds `func.func @token_logprobs(<forward's inputs>, targets) ->
/// logprobs`: the log-probability the model gives each target token,
/// `log_softmax(logits)[target]` (0 where the target is -100), shape of
/// the targets. The preference and policy methods score sequences with it
/// (a reference model's log-probabilities, those of the samples).
llvm::Error addTokenLogProbs(ModuleOp module);

/// Adds the DPO loss `@loss(<forward's inputs>, targets,
/// reference_logprobs, beta, nll_coef)`. The batch holds pairs: rows [0, P) are the
/// chosen responses, rows [P, 2P) the rejected ones to the same prompts;
/// targets are -100 except on response tokens. With s the summed response
/// log-probability of a row under the model and r the same under the
/// reference (`reference_logprobs`, [2P]), the loss is
/// `mean_p softplus(-beta * ((s_p - r_p) - (s_{P+p} - r_{P+p})))`, i.e.
/// -log sigmoid of the margin, plus nll_coef times the chosen responses'
/// mean negative log-likelihood per token (Pang et al. 2024's iterative
/// RPO; 0 is plain DPO). Needs a static, even batch.
llvm::Error addPreferenceLoss(ModuleOp module);

/// Adds the GRPO loss `@loss(<forward's inputs>, targets,
/// sample_logprobs, reference_logprobs, advantages, kl_coef, clip)`. Per
/// response token (targets not -100), with l the model's log-probability,
/// o the one the sample was drawn with and q the reference's:
/// ratio = exp(l - o), surrogate = min(ratio * A, clamp(ratio, 1 - clip,
/// 1 + clip) * A) with A the row's advantage, and the k3 estimate of
/// KL(model || reference) exp(q - l) - (q - l) - 1. The loss is the mean
/// over rows of the mean over each row's response tokens of
/// -(surrogate - kl_coef * kl).
llvm::Error addPolicyLoss(ModuleOp module);

/// Adds the Bradley–Terry reward-model loss `@loss(input_ids, lengths)`
/// on the module's `score(input_ids, lengths) -> scores` (BuildOptions::
/// scoreHead): rows [0, P) are the chosen responses, [P, 2P) the rejected
/// ones, and the loss is `mean_p softplus(-(score_p - score_{P+p}))`, i.e.
/// -log sigmoid of the score margin. Needs a static, even batch.
llvm::Error addRewardLoss(ModuleOp module);

/// Adds the PPO loss `@loss(input_ids, targets, sample_logprobs,
/// advantages, returns, sample_values, clip, value_clip, vf_coef)` on
/// `forward` and the value head's `values(input_ids)` (BuildOptions::
/// valueHead). Over the response tokens (targets not -100), with l the
/// model's log-probability, o the sample's, A the advantage, v the value,
/// u the sample's value and R the return: the policy loss
/// mean(max(-A·ratio, -A·clamp(ratio, 1 - clip, 1 + clip))), ratio =
/// exp(l - o), plus vf_coef times the clipped value loss
/// mean(0.5·max((v - R)², (u + clamp(v - u, -value_clip, value_clip) -
/// R)²)), as the PPO paper and TRL define them.
llvm::Error addPPOLoss(ModuleOp module);

/// The hidden-state term of the distillation loss.
enum class HiddenStateTerm { None, Cosine, MSE };

/// Adds the knowledge-distillation loss `@loss(<forward's inputs>, targets,
/// teacher_logits, alpha, temperature, reverse[, teacher_hidden,
/// hidden_coef])`. Over the target tokens (not -100), with p_t =
/// softmax(teacher_logits / T), p_s = softmax(logits / T) and λ =
/// `reverse`: the divergence (1 - λ)·KL(p_t || p_s) + λ·KL(p_s || p_t)
/// (λ = 0: Hinton et al.'s forward KL; 1: the reverse KL of MiniLLM) per
/// token, averaged over the tokens; the loss is alpha·T²·that + (1 -
/// alpha)·(the next-token cross-entropy on targets). With a hidden-state
/// term, the model's `hidden_states(input_ids)` (BuildOptions::
/// hiddenStates, projected to the teacher's width when they differ) are
/// compared with `teacher_hidden` per token, 1 - cosine similarity or the
/// mean squared error over the width, averaged over the tokens and added
/// times `hidden_coef`.
llvm::Error addDistillationLoss(ModuleOp module, HiddenStateTerm hidden);

/// Adds CLIP's symmetric contrastive (InfoNCE) loss `@loss(<forward's
/// inputs>)` on a `forward` that returns `logits_per_image` `[B, B]` and
/// `logits_per_text` `[B, B]` (the clip family): row i's image and text are
/// a pair, and the loss is the mean of the cross-entropy of each text's
/// scores against its image and of each image's against its text,
/// `(CE(logits_per_text, i) + CE(logits_per_image, i)) / 2`, as
/// transformers' CLIPModel computes it with `return_loss`.
llvm::Error addContrastiveLoss(ModuleOp module);

/// What `buildTrainingEntryPoints` trains the model for.
enum class TrainingObjective {
  /// Next-token cross-entropy (pretraining, SFT): addLanguageModelLoss.
  LanguageModel,
  /// DPO: addPreferenceLoss, and token_logprobs.
  Preference,
  /// GRPO: addPolicyLoss, and token_logprobs.
  Policy,
  /// A reward model: addRewardLoss (the model needs a score head).
  Reward,
  /// PPO: addPPOLoss and token_logprobs (the model needs a value head).
  PPO,
  /// Knowledge distillation: addDistillationLoss.
  Distillation,
  /// CLIP's contrastive loss: addContrastiveLoss.
  Contrastive,
};

/// "lm", "dpo", "grpo", "reward", "ppo" or "distill"; nullopt for anything
/// else.
std::optional<TrainingObjective> parseTrainingObjective(llvm::StringRef name);
llvm::StringRef trainingObjectiveName(TrainingObjective objective);

/// How `buildTrainingEntryPoints` trains (kiln-optimizer's options).
struct TrainingOptions {
  TrainingObjective objective = TrainingObjective::LanguageModel;
  /// Distillation: the hidden-state term (the model needs hidden_states).
  HiddenStateTerm hiddenTerm = HiddenStateTerm::None;
  /// "adamw" or "sgd".
  std::string optimizer = "adamw";
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  double weightDecay = 0.01;
  int64_t decayMinRank = 2;
  double momentum = 0.9;
  /// Global-norm clipping; 0 disables it.
  double maxGradNorm = 1.0;
  /// Composites differentiated through their fused gradient rule
  /// (kiln.attention -> kiln.attention_grad); must match the compile
  /// options' `keep`, which lowers those ops.
  std::vector<std::string> keep;
};

/// Turns an inference module into a training one: adds the objective's
/// loss when the module has no `@loss` (see addLanguageModelLoss and the
/// others above), then `train_step(<loss inputs>, lr) -> (loss, grad_norm)`
/// and `eval_step(<loss inputs>) -> loss` (kiln-autodiff and
/// kiln-optimizer), and inlines the helpers, so the module's entry points
/// are `forward`, `train_step` and `eval_step` (and `token_logprobs` for
/// the preference and policy objectives).
llvm::Error buildTrainingEntryPoints(ModuleOp module,
                                     const TrainingOptions &options);

} // namespace mlir::kiln

#endif // KILN_COMPILER_TRAININGGRAPH_H
