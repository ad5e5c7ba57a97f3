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

/// How `buildTrainingEntryPoints` trains (kiln-optimizer's options).
struct TrainingOptions {
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

/// Turns an inference module into a training one: adds the language-model
/// loss when the module has no `@loss` (see addLanguageModelLoss), then
/// `train_step(inputs..., targets, lr) -> (loss, grad_norm)` and
/// `eval_step(inputs..., targets) -> loss` (kiln-autodiff and
/// kiln-optimizer), and inlines the helpers, so the module's entry points
/// are `forward`, `train_step` and `eval_step`.
llvm::Error buildTrainingEntryPoints(ModuleOp module,
                                     const TrainingOptions &options);

} // namespace mlir::kiln

#endif // KILN_COMPILER_TRAININGGRAPH_H
