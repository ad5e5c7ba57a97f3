//===- ModelBuilder.h - Model configs to kiln IR ----------------*- C++ -*-===//
//
// Builds kiln IR for well-known model families from Hugging Face style
// configs (the `config.json` a checkpoint ships with). Parameters are named
// exactly as in the family's torch `state_dict`, so weights load by name.
// The families: `gpt2` (GPT2LMHeadModel), `llama` (LlamaForCausalLM),
// `bert` (BertModel with pooler), `marian` (MarianMTModel), `vit`
// (ViTModel), `clip` (CLIPModel; `clip_text_model` and `clip_vision_model`
// its towers), `transformer` (torch.nn.Transformer with embeddings,
// positional encoding and a generator), `rnn` (a torch.nn.GRU or LSTM
// text encoder) and `cnn` (conv/pool stacks).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_MODELS_MODELBUILDER_H
#define KILN_MODELS_MODELBUILDER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kiln {

/// The element type a model computes in. With `bf16` or `f16` (mixed
/// precision) the parameters stay f32 master weights: each parameter read is
/// cast to the compute type where it is used, activations are in the compute
/// type, and the entry point's float outputs are cast back to f32.
enum class ComputeType { f32, bf16, f16 };

/// `"f32"`, `"bf16"`, `"f16"`; std::nullopt for anything else.
std::optional<ComputeType> parseComputeType(llvm::StringRef name);
llvm::StringRef getComputeTypeName(ComputeType type);
/// The MLIR float type of `type`.
FloatType getComputeElementType(MLIRContext &context, ComputeType type);

/// Shapes of the entry point's inputs and the compute type. A size of
/// `ShapedType::kDynamic` (or 0) leaves the dimension dynamic (`?`) in the
/// built graph.
struct BuildOptions {
  int64_t batch = ShapedType::kDynamic;
  int64_t seq = ShapedType::kDynamic;
  ComputeType compute = ComputeType::f32;
  /// Causal LMs (gpt2, llama): `forward` also takes `attention_mask`
  /// (i64 `[B, S]`, nonzero for a real token; keys where it is 0 are hidden,
  /// as transformers' `attention_mask`), after `input_ids`.
  bool attentionMask = false;
  /// Causal LMs: `forward` also takes `position_ids` (i64 `[B, S]`) instead
  /// of positions `0..S-1`, last (for left-padded batches:
  /// `cumsum(attention_mask) - 1`, as transformers' `generate` computes).
  bool positionIds = false;
  /// Causal LMs: also build `prefill` and `decode_step` with a KV cache of
  /// this many slots per row (0: none; kKVCacheMax: the model's position
  /// limit; never more than it), for generation that does not rerun the
  /// context (docs/generation.md).
  int64_t kvCache = 0;
  static constexpr int64_t kKVCacheMax = -1;
  /// Causal LMs: also build `score(input_ids [B, S], lengths [B]) -> scores
  /// [B]`, a linear head `score.weight` [1, E] (no bias, as transformers'
  /// *ForSequenceClassification) on the final hidden state of each row's
  /// last token (lengths[b] - 1): a reward model's scalar.
  bool scoreHead = false;
  /// Causal LMs: also build `values(input_ids [B, S]) -> values [B, S]`, a
  /// linear head `value_head.weight` [1, E] and `value_head.bias` [1] on
  /// every position's final hidden state: PPO's value estimates.
  bool valueHead = false;
  /// Causal LMs: also build `hidden_states(input_ids [B, S]) -> hidden
  /// [B, S, E]`, every position's final hidden state (after the last
  /// norm, what the LM head reads): a distillation teacher's, or a
  /// student's for the hidden-state term.
  bool hiddenStates = false;
  /// Causal LMs with hiddenStates: project the hidden states to this width
  /// through a learned `distill_projection.weight` [P, E] (no bias; 0: no
  /// projection), so a student's match a wider teacher's.
  int64_t hiddenProjection = 0;
  /// The module will be trained: config keys that change only training
  /// (dropout rates) must then be honoured or refused too.
  bool training = false;
  /// Receives warnings (config keys no table lists). By default they are
  /// printed to stderr.
  std::function<void(const std::string &)> warn = defaultWarningHandler;

  static void defaultWarningHandler(const std::string &message);
};

/// What a family does with one config key (docs/reference/ModelConfigKeys.md).
enum class ConfigKeyUse {
  /// The model is built as the key says.
  Honoured,
  /// Cannot change the outputs or gradients of the entry points (generation
  /// settings, token ids, bookkeeping, heads Kiln does not build).
  Inert,
  /// Only `defaultValue` (or null) is built; any other value is an error.
  DefaultOnly,
  /// A dropout rate: the graphs compute without dropout, so any rate is
  /// accepted for inference and a nonzero one refused for training.
  Dropout,
};

struct ConfigKeyInfo {
  llvm::StringRef name;
  ConfigKeyUse use;
  /// JSON text of the only value a DefaultOnly key may have.
  llvm::StringRef defaultValue;
  llvm::StringRef note;
};

/// Every key `modelType` knows (for the Hugging Face families, the common
/// PretrainedConfig attributes included), sorted by name; empty for an
/// unknown model type.
std::vector<ConfigKeyInfo> getConfigKeys(llvm::StringRef modelType);

/// Prints the key tables of every family as Markdown.
void printConfigKeyReference(llvm::raw_ostream &os);

/// Builds the module for `config`; its `model_type` key selects the family.
/// The module holds the `kiln.parameter`s (always f32) and a `func.func
/// @forward` (float results always f32), and has been verified. Unknown model types, missing or ill-typed keys and
/// inconsistent sizes are errors whose message names the key.
llvm::Expected<OwningOpRef<ModuleOp>>
buildModel(MLIRContext &context, const llvm::json::Object &config,
           const BuildOptions &options = {});

/// Reads and parses a JSON config file; fails with the path in the message
/// when the file is missing, is not JSON, or is not a JSON object.
llvm::Expected<llvm::json::Object> loadModelConfig(llvm::StringRef path);

/// The model types `buildModel` knows, for help texts and messages.
std::vector<llvm::StringRef> getSupportedModelTypes();

} // namespace mlir::kiln

#endif // KILN_MODELS_MODELBUILDER_H
