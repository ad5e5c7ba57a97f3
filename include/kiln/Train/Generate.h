//===- Generate.h - Sampling text from a language-model artifact -*- C++ -*-===//
//
// `kiln generate`: tokenize a prompt, run the artifact's forward on the
// context, sample the next token from the last position's logits
// (temperature, top-k, top-p), append, repeat. Artifacts compiled for fixed
// [batch, seq] inputs are fed the prompt in row 0, left-aligned and padded:
// with a causal model the padding after a position does not change it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_GENERATE_H
#define KILN_TRAIN_GENERATE_H

#include "kiln/Runtime/Status.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kiln::runtime {
class Artifact;
} // namespace kiln::runtime

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

struct GenerateOptions {
  std::string prompt;
  int64_t maxTokens = 100;
  SamplingOptions sampling;
  uint64_t seed = 0;
};

/// The prompt followed by up to maxTokens sampled tokens, decoded.
runtime::Expected<std::string> generateText(const runtime::Artifact &artifact,
                                            const Tokenizer &tokenizer,
                                            const GenerateOptions &options);

} // namespace kiln::train

#endif // KILN_TRAIN_GENERATE_H
