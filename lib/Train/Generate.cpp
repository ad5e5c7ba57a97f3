//===- Generate.cpp - Sampling text from a language-model artifact --------===//
//
// No KV cache: every token reruns forward on the whole (sliding) context,
// which is simple and fast enough for the small models the driver trains.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Generate.h"
#include "kiln/Train/Eval.h"

#include "kiln/Runtime/Artifact.h"
#include "kiln/Train/Tokenizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace kiln::train;
using kiln::runtime::Artifact;
using kiln::runtime::DType;
using kiln::runtime::Expected;
using kiln::runtime::Status;
using kiln::runtime::TensorView;

Expected<int64_t> kiln::train::sampleToken(const std::vector<float> &logits,
                                           const SamplingOptions &options,
                                           std::mt19937_64 &rng) {
  if (logits.empty())
    return Status::error("no logits to sample from");
  if (!(options.temperature >= 0) || options.topK < 0 ||
      !(options.topP > 0 && options.topP <= 1))
    return Status::error("sampling needs temperature >= 0, top-k >= 0 and "
                         "0 < top-p <= 1");
  for (float value : logits)
    if (!std::isfinite(value))
      return Status::error("the model produced a non-finite logit");
  std::vector<int64_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  // Most likely first; ties by id, so the result is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return logits[a] > logits[b];
  });
  if (options.temperature == 0)
    return order.front();
  size_t keep = order.size();
  if (options.topK > 0)
    keep = std::min(keep, static_cast<size_t>(options.topK));
  std::vector<double> probs(keep);
  double top = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[order[i]] - top) / options.temperature);
    sum += probs[i];
  }
  // Nucleus: the smallest prefix reaching top-p of the (top-k) mass.
  double mass = 0;
  size_t nucleus = keep;
  for (size_t i = 0; i < keep; ++i) {
    mass += probs[i] / sum;
    if (mass >= options.topP) {
      nucleus = i + 1;
      break;
    }
  }
  std::discrete_distribution<size_t> pick(probs.begin(),
                                          probs.begin() + nucleus);
  return order[pick(rng)];
}

Expected<std::string> kiln::train::generateText(const Artifact &artifact,
                                                const Tokenizer &tokenizer,
                                                const GenerateOptions &options) {
  Expected<LanguageModelForward> forward =
      findLanguageModelForward(artifact, "kiln generate");
  if (!forward)
    return Status::error("'" + artifact.dir() + "': " + forward.message());
  const runtime::TensorSpec &ids = *forward->ids;
  int64_t rows = ids.shape[0] == runtime::kDynamicDim ? 1 : ids.shape[0];
  bool fixedSeq = ids.shape[1] != runtime::kDynamicDim;
  int64_t window = fixedSeq ? ids.shape[1] : 0;
  if (!fixedSeq && ids.maxShape.size() > 1 && ids.maxShape[1] > 0)
    window = ids.maxShape[1];
  if (options.maxTokens < 0)
    return Status::error("--max-tokens must be at least 0");

  std::vector<int32_t> tokens = tokenizer.encode(options.prompt);
  if (tokens.empty())
    tokens.push_back(static_cast<int32_t>(
        tokenizer.bosId() >= 0 ? tokenizer.bosId() : 0));
  std::mt19937_64 rng(options.seed);
  for (int64_t n = 0; n < options.maxTokens; ++n) {
    size_t length = tokens.size();
    size_t start = window > 0 && length > static_cast<size_t>(window)
                       ? length - static_cast<size_t>(window)
                       : 0;
    int64_t used = static_cast<int64_t>(length - start);
    int64_t seq = fixedSeq ? window : used;
    std::vector<int64_t> input(static_cast<size_t>(rows * seq), 0);
    for (int64_t i = 0; i < used; ++i)
      input[static_cast<size_t>(i)] = tokens[start + static_cast<size_t>(i)];
    auto outputs = artifact.run(
        forward->entry->name, {{ids.name, TensorView{DType::I64, {rows, seq}, input.data()}}});
    if (!outputs)
      return outputs.status();
    const runtime::OwnedTensor &logits = (*outputs)[forward->logitsIndex];
    int64_t vocab = logits.shape()[2];
    const float *row = logits.as<float>() + (used - 1) * vocab;
    // Only ids the tokenizer knows can be decoded.
    int64_t usable = std::min<int64_t>(vocab, tokenizer.vocabSize());
    std::vector<float> candidates(row, row + usable);
    Expected<int64_t> next = sampleToken(candidates, options.sampling, rng);
    if (!next)
      return next.status();
    if (*next == tokenizer.eosId())
      break;
    tokens.push_back(static_cast<int32_t>(*next));
  }
  return tokenizer.decode(tokens);
}
