//===- Eval.h - Held-out loss and perplexity of an artifact -----*- C++ -*-===//
//
// `kiln eval`: the mean next-token cross-entropy of a language-model
// artifact's forward logits over held-out tokens, so that every variant of
// a model (f32, quantized, pruned) is judged by the same number on the same
// windows. `kiln calibrate`: the activation statistics static quantization
// needs, gathered over windows of the same kind.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_EVAL_H
#define KILN_TRAIN_EVAL_H

#include "kiln/Runtime/Status.h"
#include "kiln/Train/ActivationHistogram.h"

#include <cstdint>
#include <string>

namespace kiln::runtime {
class Artifact;
struct EntryPointSpec;
struct Manifest;
struct ParameterSpec;
struct TensorSpec;
} // namespace kiln::runtime

namespace kiln::train {

/// A language model's forward as the driver uses it: input_ids [batch,
/// seq] only, logits [batch, seq, vocab] (vocab static) among its outputs.
struct LanguageModelForward {
  const runtime::EntryPointSpec *entry = nullptr;
  const runtime::TensorSpec *ids = nullptr;
  size_t logitsIndex = 0;
  int64_t vocab = 0;
};

/// `artifact`'s forward if it is such a language model; otherwise an error
/// naming `command` and what it needs.
runtime::Expected<LanguageModelForward>
findLanguageModelForward(const runtime::Artifact &artifact,
                         const std::string &command);

/// An encoder's word embedding table (a parameter named
/// `...embeddings.word_embeddings.weight`, [vocab, width]: BERT's), whose
/// rows the token ids index; null if the manifest has none.
const runtime::ParameterSpec *findWordEmbeddings(const runtime::Manifest &m);

struct EvalOptions {
  /// A token file (kiln pretrain's RUN_DIR/val.tokens).
  std::string tokens;
  /// Windows per call and tokens per window; 0: the artifact's static
  /// input_ids shape, or 4 and min(128, its max sequence length).
  int64_t batch = 0;
  int64_t seq = 0;
  /// The window shape used for dynamic dims when batch/seq are 0 (a run's
  /// training shape); 0: 4 and 128.
  int64_t defaultBatch = 0;
  int64_t defaultSeq = 0;
  /// Calls: batches * batch windows at evenly spaced positions spanning the
  /// file (BatchSampler::evalBatches, the windows kiln pretrain evaluates
  /// on).
  int64_t batches = 16;
};

struct EvalResult {
  /// Mean cross-entropy in nats over every predicted token.
  double loss = 0;
  double perplexity = 0;
  int64_t tokens = 0;
  int64_t batch = 0, seq = 0, batches = 0;
  double seconds = 0;
};

/// logsumexp(row) - row[target] over `vocab` logits, in double: one
/// token's next-token cross-entropy, as kiln eval averages it.
double tokenCrossEntropy(const float *row, int64_t vocab, int64_t target);

/// Runs `artifact`'s forward (input_ids [batch, seq] -> logits
/// [batch, seq, vocab]) on the held-out windows and averages
/// logsumexp(logits) - logits[target] in double. Errors name what is wrong:
/// no such entry point or output, a token id outside the logits'
/// vocabulary, shapes the artifact does not take, non-finite logits.
runtime::Expected<EvalResult> evaluateLanguageModel(
    const runtime::Artifact &artifact, const EvalOptions &options);

/// `kiln calibrate --range`: how each layer's clipping threshold is chosen.
struct RangeOptions {
  /// MinMax writes no threshold (int8-static takes the largest
  /// input_absmax); Percentile and MSE need an artifact compiled with
  /// --calibration-histogram and write `<weight>.input_range`.
  RangeMethod method = RangeMethod::MinMax;
  /// Percentile: in (0, 100].
  double percentile = 99.99;
  int64_t bins = ActivationHistogram::kDefaultBins;
};

struct CalibrationResult {
  /// Calibrated weights (one input_absmax each).
  int64_t layers = 0;
  int64_t tokens = 0;
  int64_t batch = 0, seq = 0, batches = 0;
  double seconds = 0;
};

/// Runs `artifact`'s calibrate entry point (kiln-compile --mode calibrate:
/// input_ids [batch, seq] -> one `<weight>.input_absmax` [in] vector per
/// linear layer; an encoder's token_type_ids are given as zeros and its
/// attention_mask as ones, and its vocabulary is its word embedding
/// table's) on the windows `options` selects, keeps the largest value
/// per channel, and writes them to the safetensors file `out` with metadata
/// kiln=calibration, statistic=input_absmax, batches, tokens, tokens_file
/// and source_sha256 (the artifact's source, which kiln-compile checks
/// against the model it quantizes). Gram matrices (`<weight>.input_gram`)
/// are summed. With a percentile or MSE `range`, the layers' inputs
/// (`<weight>.input_values`, from --calibration-histogram) go into one
/// |x| histogram per weight and the file also holds `<weight>.input_range`
/// (f32 [1]) with metadata range=percentile|mse, percentile (for
/// percentile) and histogram_bins.
runtime::Expected<CalibrationResult>
calibrateLanguageModel(const runtime::Artifact &artifact,
                       const EvalOptions &options, const std::string &out,
                       const RangeOptions &range = {});

} // namespace kiln::train

#endif // KILN_TRAIN_EVAL_H
