//===- Eval.cpp - Held-out loss and perplexity of an artifact -------------===//
//
// See Eval.h.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Eval.h"

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Train/TokenData.h"

#include <chrono>
#include <cmath>
#include <memory>

namespace kiln::train {

using runtime::Artifact;
using runtime::DType;
using runtime::EntryPointSpec;
using runtime::Expected;
using runtime::Status;

namespace {
/// The window size a dynamic dim takes: `given`, else `fallback` capped by
/// the dim's maximum; a static dim must equal `given` when given.
Expected<int64_t> windowDim(const runtime::TensorSpec &spec, size_t axis,
                            int64_t given, int64_t fallback,
                            const char *what) {
  int64_t dim = spec.shape[axis];
  if (dim != runtime::kDynamicDim) {
    if (given && given != dim)
      return Status::error(std::string("the artifact's forward takes ") +
                           what + " " + std::to_string(dim) + ", not " +
                           std::to_string(given) + " (compiled with --" +
                           what + " " + std::to_string(dim) + ")");
    return dim;
  }
  int64_t max = spec.maxShape.size() > axis ? spec.maxShape[axis] : -1;
  int64_t size = given ? given : (max > 0 ? std::min(fallback, max) : fallback);
  if (max > 0 && size > max)
    return Status::error(std::string(what) + " " + std::to_string(size) +
                         " is longer than the artifact's maximum " +
                         std::to_string(max));
  return size;
}
} // namespace

Expected<EvalResult> evaluateLanguageModel(const Artifact &artifact,
                                           const EvalOptions &options) {
  const EntryPointSpec *forward = artifact.findEntryPoint(KILN_ENTRY_FORWARD);
  if (!forward)
    return Status::error("the artifact has no '" KILN_ENTRY_FORWARD
                         "' entry point (it has: " +
                         artifact.manifest().entryPointNames() + ")");
  const runtime::TensorSpec *ids = forward->findInput("input_ids");
  const runtime::TensorSpec *logitsSpec = forward->findOutput("logits");
  if (!ids || forward->inputs.size() != 1 || ids->rank() != 2 ||
      !logitsSpec || logitsSpec->rank() != 3 ||
      logitsSpec->shape[2] == runtime::kDynamicDim)
    return Status::error("'kiln eval' needs a language model whose forward "
                         "takes only input_ids [batch, seq] and returns "
                         "logits [batch, seq, vocab]");
  int64_t vocab = logitsSpec->shape[2];
  size_t logitsIndex = static_cast<size_t>(logitsSpec - forward->outputs.data());

  Expected<TokenFile> file = TokenFile::open(options.tokens);
  if (!file)
    return file.status();
  if (file->vocabSize() > vocab)
    return Status::error("'" + options.tokens + "' has token ids up to " +
                         std::to_string(file->vocabSize() - 1) +
                         ", but the artifact's logits cover a vocabulary of " +
                         std::to_string(vocab) +
                         ": the tokens come from another tokenizer");
  Expected<int64_t> batch = windowDim(
      *ids, 0, options.batch, options.defaultBatch ? options.defaultBatch : 4,
      "batch");
  if (!batch)
    return batch.status();
  Expected<int64_t> seq = windowDim(
      *ids, 1, options.seq, options.defaultSeq ? options.defaultSeq : 128,
      "seq");
  if (!seq)
    return seq.status();
  if (options.batches < 1)
    return Status::error("eval needs at least one batch");
  auto data = std::make_shared<const TokenFile>(file.take());
  Expected<BatchSampler> sampler = BatchSampler::create(data, *batch, *seq, 0);
  if (!sampler)
    return Status::error("held-out data: " + sampler.message());

  auto start = std::chrono::steady_clock::now();
  double total = 0;
  int64_t count = 0;
  for (const Batch &b : sampler->evalBatches(options.batches)) {
    std::vector<int64_t> shape = {b.batch, b.seq};
    auto outputs = artifact.run(
        KILN_ENTRY_FORWARD,
        {{"input_ids", runtime::TensorView{DType::I64, shape, b.inputs.data()}}});
    if (!outputs)
      return outputs.status();
    const runtime::OwnedTensor &logits = (*outputs)[logitsIndex];
    if (logits.dtype() != DType::F32)
      return Status::error("'kiln eval' reads f32 logits");
    const float *row = logits.as<float>();
    for (int64_t i = 0; i < b.batch * b.seq; ++i, row += vocab) {
      double max = row[0];
      for (int64_t v = 1; v < vocab; ++v)
        max = std::max<double>(max, row[v]);
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(static_cast<double>(row[v]) - max);
      double loss = max + std::log(sum) - row[b.targets[i]];
      if (!std::isfinite(loss))
        return Status::error("the artifact's logits are not finite (window " +
                             std::to_string(i / b.seq) + " of a batch, "
                             "position " + std::to_string(i % b.seq) + ")");
      total += loss;
      ++count;
    }
  }
  EvalResult result;
  result.loss = total / static_cast<double>(count);
  result.perplexity = std::exp(result.loss);
  result.tokens = count;
  result.batch = *batch;
  result.seq = *seq;
  result.batches = options.batches;
  result.seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  return result;
}

} // namespace kiln::train
