//===- Generate.h - Sampling text from a language-model artifact -*- C++ -*-===//
//
// `kiln generate`: tokenize a prompt, run the artifact on it, sample the
// next token from the last position's logits (temperature, top-k, top-p),
// append, repeat. With the KV-cache entry points (kiln-compile --kv-cache)
// sampleBatch prefills the prompt once and each token costs one
// decode_step; generateText reruns forward on the whole context for every
// token, feeding artifacts compiled for fixed [batch, seq] inputs the
// prompt in row 0, left-aligned and padded: with a causal model the padding
// after a position does not change it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_GENERATE_H
#define KILN_TRAIN_GENERATE_H

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/SafeTensors.h"
#include "kiln/Runtime/Status.h"
#include "kiln/Runtime/Tensor.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kiln::train {

class Tokenizer;

struct SamplingOptions {
  /// 0 picks the most likely token (greedy).
  double temperature = 0.8;
  /// Keep the k most likely tokens (0: all).
  int64_t topK = 40;
  /// Keep the smallest set of tokens whose probability reaches p (1: all).
  double topP = 0.95;
};

/// Draws a token id from `logits` (one row of the vocabulary). Errors on an
/// empty row, non-finite logits, or options out of range.
runtime::Expected<int64_t> sampleToken(const std::vector<float> &logits,
                                       const SamplingOptions &options,
                                       std::mt19937_64 &rng);

/// The KV-cache entry points of a language-model artifact (kiln-compile
/// --kv-cache: `prefill` and `decode_step`) with the cache they update, for
/// `rows` sequences generated side by side, each at its own length.
class KVCacheDecoder {
public:
  /// Whether `artifact` has the entry points.
  static bool isAvailable(const runtime::Artifact &artifact);
  /// The rows a decoder of `artifact` must have (its static batch), or 0
  /// when the batch is dynamic (any number).
  static int64_t staticRows(const runtime::Artifact &artifact);
  /// A decoder with an empty (zeroed) cache of `rows` rows. Errors when the
  /// entry points are missing or do not have the shapes kiln-compile
  /// gives them, or `rows` does not fit a static batch.
  static runtime::Expected<KVCacheDecoder>
  create(const runtime::Artifact &artifact, int64_t rows);

  int64_t rows() const { return rows_; }
  /// Tokens a row can hold.
  int64_t slots() const { return slots_; }
  int64_t vocab() const { return vocab_; }
  /// Tokens each row holds.
  const std::vector<int64_t> &lengths() const { return lengths_; }
  /// The longest prompt prefill takes: slots(), or the static sequence
  /// length the artifact was compiled with.
  int64_t maxPrompt() const { return prefillSeq_ ? prefillSeq_ : slots_; }

  /// Starts every row afresh with its prompt (1 to maxPrompt() tokens) and
  /// returns each row's next-token logits, `rows x vocab`.
  runtime::Expected<std::vector<float>>
  prefill(const std::vector<std::vector<int32_t>> &prompts);
  /// Appends `tokens[r]` to row r (which must have room) and returns the
  /// next-token logits, `rows x vocab`.
  runtime::Expected<std::vector<float>>
  step(const std::vector<int64_t> &tokens);

private:
  KVCacheDecoder() = default;
  runtime::Expected<std::vector<float>>
  run(const std::string &entry, const runtime::NamedTensor &ids,
      const runtime::NamedTensor &rows);

  const runtime::Artifact *artifact_ = nullptr;
  int64_t rows_ = 0, slots_ = 0, vocab_ = 0;
  /// prefill's static sequence length (its input is padded to it), or 0.
  int64_t prefillSeq_ = 0;
  std::vector<int64_t> lengths_;
  /// One per cache input of the entry points, in their order.
  std::vector<std::string> cacheNames_;
  std::vector<runtime::OwnedTensor> caches_;
};

/// The tokens of a prompt: `text` encoded, or the begin token (id 0 without
/// one) when it encodes to nothing.
std::vector<int32_t> promptTokens(const Tokenizer &tokenizer,
                                  const std::string &text);

/// Log-probability of `token` under `logits` (log-softmax at temperature
/// 1, in double precision): what the model assigns to it, whatever the
/// sampling options.
double tokenLogProb(const float *logits, int64_t vocab, int64_t token);

/// One sampled continuation.
struct Sample {
  /// The generated tokens (without the prompt, without a final end token
  /// or stop text).
  std::vector<int32_t> tokens;
  /// tokenLogProb of each generated token, given the prompt and the tokens
  /// before it.
  std::vector<double> logProbs;
  /// The text the generated tokens add after the prompt, cut before a stop
  /// string.
  std::string text;
  /// "length" (maxTokens reached), "eos" (the end token), "stop" (a stop
  /// string appeared).
  std::string finish;
};

struct BatchOptions {
  int64_t maxTokens = 100;
  SamplingOptions sampling;
  /// Sample i draws from a generator seeded with seed + i, so a sample does
  /// not depend on the others in its batch.
  uint64_t seed = 0;
  /// A sample stops when its text contains one of these.
  std::vector<std::string> stop;
};

/// A continuation of each prompt (row i seeded with options.seed + i),
/// decoded side by side as rows of a KV cache (the artifact needs
/// kiln-compile --kv-cache): all at once when the batch is dynamic, in
/// groups of the static batch otherwise (a short last group is filled
/// with rows whose samples are dropped). Each prompt must fit prefill and
/// leave room in the cache for one token; when a row is full, every row is
/// refilled with the last half of its text.
runtime::Expected<std::vector<Sample>>
samplePrompts(const runtime::Artifact &artifact, const Tokenizer &tokenizer,
              const std::vector<std::vector<int32_t>> &prompts,
              const BatchOptions &options);

/// `count` samples continuing one prompt (samplePrompts of `count` copies).
runtime::Expected<std::vector<Sample>>
sampleBatch(const runtime::Artifact &artifact, const Tokenizer &tokenizer,
            const std::vector<int32_t> &prompt, int64_t count,
            const BatchOptions &options);

struct GenerateOptions {
  std::string prompt;
  int64_t maxTokens = 100;
  SamplingOptions sampling;
  uint64_t seed = 0;
};

/// The prompt followed by up to maxTokens sampled tokens, decoded; forward
/// runs on the context for every token (sampleBatch is the KV-cache path).
runtime::Expected<std::string> generateText(const runtime::Artifact &artifact,
                                            const Tokenizer &tokenizer,
                                            const GenerateOptions &options);

} // namespace kiln::train

#endif // KILN_TRAIN_GENERATE_H
