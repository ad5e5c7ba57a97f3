//===- Eval.cpp - Held-out loss and perplexity of an artifact -------------===//
//
// See Eval.h.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Eval.h"

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Train/TokenData.h"

#include "kiln/Runtime/SafeTensors.h"
#include "kiln/Runtime/Strings.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

namespace kiln::train {

using runtime::Artifact;
using runtime::DType;
using runtime::endsWith;
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

/// The held-out windows an entry point that takes only input_ids
/// [batch, seq] runs on.
struct Windows {
  std::shared_ptr<const TokenFile> data;
  std::optional<BatchSampler> sampler;
  int64_t batch = 0, seq = 0;
};

/// `value` with up to 10 significant digits and no trailing zeros (99.99,
/// not 99.989999999999995).
std::string formatNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", value);
  return text;
}

/// Inputs an encoder's entry may take besides input_ids, which kiln
/// calibrate fills for whole windows of text: token_type_ids with zeros
/// (one segment), attention_mask with ones (no padding).
bool isEncoderInput(const runtime::TensorSpec &input) {
  return (input.name == "token_type_ids" || input.name == "attention_mask") &&
         input.dtype == DType::I64 && input.rank() == 2;
}

Expected<Windows> planWindows(const EntryPointSpec &entry,
                              const EvalOptions &options, int64_t vocab,
                              const char *command, bool encoderInputs = false) {
  const runtime::TensorSpec *ids = entry.findInput("input_ids");
  bool others = std::all_of(entry.inputs.begin(), entry.inputs.end(),
                            [&](const runtime::TensorSpec &input) {
                              return &input == ids ||
                                     (encoderInputs && isEncoderInput(input));
                            });
  if (!ids || !others || ids->rank() != 2)
    return Status::error(
        std::string("'") + command + "' needs an entry '" + entry.name +
        "' that takes only input_ids [batch, seq]" +
        (encoderInputs ? " (and an encoder's token_type_ids and "
                         "attention_mask [batch, seq], which it fills)"
                       : ""));
  Expected<TokenFile> file = TokenFile::open(options.tokens);
  if (!file)
    return file.status();
  if (file->vocabSize() > vocab)
    return Status::error("'" + options.tokens + "' has token ids up to " +
                         std::to_string(file->vocabSize() - 1) +
                         ", but the artifact's vocabulary has " +
                         std::to_string(vocab) +
                         " tokens: the tokens come from another tokenizer");
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
    return Status::error(std::string(command) + " needs at least one batch");
  Windows windows;
  windows.data = std::make_shared<const TokenFile>(file.take());
  Expected<BatchSampler> sampler =
      BatchSampler::create(windows.data, *batch, *seq, 0);
  if (!sampler)
    return Status::error("held-out data: " + sampler.message());
  windows.sampler.emplace(sampler.take());
  windows.batch = *batch;
  windows.seq = *seq;
  return windows;
}
} // namespace

const runtime::ParameterSpec *findWordEmbeddings(const runtime::Manifest &m) {
  constexpr std::string_view kTable = "embeddings.word_embeddings.weight";
  for (const runtime::ParameterSpec &p : m.parameters) {
    std::string_view name = p.name;
    if (p.shape.size() == 2 && p.shape[0] > 0 && endsWith(name, kTable))
      return &p;
  }
  return nullptr;
}

Expected<LanguageModelForward>
findLanguageModelForward(const Artifact &artifact, const std::string &command) {
  const EntryPointSpec *forward = artifact.findEntryPoint(KILN_ENTRY_FORWARD);
  const runtime::TensorSpec *ids =
      forward ? forward->findInput("input_ids") : nullptr;
  const runtime::TensorSpec *logits =
      forward ? forward->findOutput("logits") : nullptr;
  if (!forward || !ids || forward->inputs.size() != 1 || ids->rank() != 2 ||
      !logits || logits->rank() != 3 ||
      logits->shape[2] == runtime::kDynamicDim)
    return Status::error(
        "'" + command + "' needs a language model whose forward takes only "
        "input_ids [batch, seq] and returns logits [batch, seq, vocab]" +
        (forward ? std::string()
                 : " (the artifact has no '" KILN_ENTRY_FORWARD
                   "' entry point; it has: " +
                       artifact.manifest().entryPointNames() + ")"));
  LanguageModelForward result;
  result.entry = forward;
  result.ids = ids;
  result.logitsIndex = static_cast<size_t>(logits - forward->outputs.data());
  result.vocab = logits->shape[2];
  return result;
}

double tokenCrossEntropy(const float *row, int64_t vocab, int64_t target) {
  double max = row[0];
  for (int64_t v = 1; v < vocab; ++v)
    max = std::max<double>(max, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v)
    sum += std::exp(static_cast<double>(row[v]) - max);
  return max + std::log(sum) - row[target];
}

Expected<EvalResult> evaluateLanguageModel(const Artifact &artifact,
                                           const EvalOptions &options) {
  Expected<LanguageModelForward> forward =
      findLanguageModelForward(artifact, "kiln eval");
  if (!forward)
    return forward.status();
  int64_t vocab = forward->vocab;
  size_t logitsIndex = forward->logitsIndex;
  Expected<Windows> windows =
      planWindows(*forward->entry, options, vocab, "kiln eval");
  if (!windows)
    return windows.status();
  BatchSampler &sampler = *windows->sampler;
  const int64_t *batch = &windows->batch, *seq = &windows->seq;

  auto start = std::chrono::steady_clock::now();
  double total = 0;
  int64_t count = 0;
  for (const Batch &b : sampler.evalBatches(options.batches)) {
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
      double loss = tokenCrossEntropy(row, vocab, b.targets[i]);
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

Expected<CalibrationResult> calibrateLanguageModel(const Artifact &artifact,
                                                   const EvalOptions &options,
                                                   const std::string &out,
                                                   const RangeOptions &range) {
  const EntryPointSpec *entry = artifact.findEntryPoint(KILN_ENTRY_CALIBRATE);
  if (!entry)
    return Status::error("the artifact has no '" KILN_ENTRY_CALIBRATE
                         "' entry point (it has: " +
                         artifact.manifest().entryPointNames() +
                         "): compile it with kiln-compile --mode calibrate");
  if (range.method == RangeMethod::Percentile &&
      !(range.percentile > 0 && range.percentile <= 100))
    return Status::error("--percentile " + formatNumber(range.percentile) +
                         ": expected a percentage in (0, 100]");
  // The vocabulary the token ids must fit: a language model's logits, or
  // an encoder's word embedding table (BERT: embeddings.word_embeddings).
  Expected<LanguageModelForward> forward =
      findLanguageModelForward(artifact, "kiln calibrate");
  int64_t vocab = 0;
  if (forward) {
    vocab = forward->vocab;
  } else if (const runtime::ParameterSpec *table =
                 findWordEmbeddings(artifact.manifest())) {
    vocab = table->shape[0];
  } else {
    return Status::error(
        "'kiln calibrate' needs a language model whose forward takes only "
        "input_ids [batch, seq] and returns logits [batch, seq, vocab], or "
        "an encoder with a word embedding table "
        "(embeddings.word_embeddings.weight [vocab, width]) whose forward "
        "takes input_ids and optionally token_type_ids and attention_mask");
  }
  // Vectors (the largest |input| per channel: kept as a max), square Gram
  // matrices (Σ x xᵀ: summed) and layer inputs (--calibration-histogram:
  // binned by |x|, for --range percentile|mse).
  enum class Kind { Absmax, Gram, Values };
  constexpr std::string_view kValues = ".input_values";
  std::vector<Kind> kinds;
  bool gram = false, values = false;
  for (const runtime::TensorSpec &output : entry->outputs) {
    bool vector = output.rank() == 1;
    bool square = output.rank() == 2 && output.shape[0] == output.shape[1];
    bool dynamic = std::count(output.shape.begin(), output.shape.end(),
                              runtime::kDynamicDim) > 0;
    std::string_view name = output.name;
    bool inputValues = name.size() > kValues.size() && endsWith(name, kValues);
    if (output.dtype == DType::F32 && inputValues) {
      kinds.push_back(Kind::Values);
      values = true;
      continue;
    }
    if (output.dtype != DType::F32 || !(vector || square) || dynamic)
      return Status::error("'" KILN_ENTRY_CALIBRATE "' output '" + output.name +
                           "' is not a static f32 vector or square matrix");
    kinds.push_back(vector ? Kind::Absmax : Kind::Gram);
    gram |= square;
  }
  bool histograms = range.method != RangeMethod::MinMax;
  if (histograms && !values)
    return Status::error(
        std::string("--range ") + rangeMethodName(range.method) +
        " needs the layers' inputs, which this artifact's "
        "'" KILN_ENTRY_CALIBRATE
        "' does not return: compile it with kiln-compile --mode calibrate "
        "--calibration-histogram");
  Expected<Windows> windows =
      planWindows(*entry, options, vocab, "kiln calibrate",
                  /*encoderInputs=*/true);
  if (!windows)
    return windows.status();

  auto start = std::chrono::steady_clock::now();
  // The largest |input| per channel over every window; the Gram matrices'
  // sums (in double: many windows of f32 partial sums); the inputs'
  // histograms.
  std::vector<std::vector<float>> largest(kinds.size());
  std::vector<std::vector<double>> sums(kinds.size());
  std::vector<std::optional<ActivationHistogram>> binned(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    const runtime::TensorSpec &output = entry->outputs[i];
    if (kinds[i] == Kind::Absmax)
      largest[i].assign(output.shape[0], 0.0f);
    else if (kinds[i] == Kind::Gram)
      sums[i].assign(output.shape[0] * output.shape[1], 0.0);
    else if (histograms)
      binned[i].emplace(range.bins);
  }
  auto notFinite = [&](size_t i, const std::string &where) {
    return Status::error("'" + entry->outputs[i].name + "' is not finite" +
                         where +
                         ": the model's activations overflow on this data");
  };
  int64_t tokens = 0;
  // An encoder's token_type_ids (zeros) and attention_mask (ones).
  std::vector<int64_t> zeros, ones;
  for (const Batch &b : windows->sampler->evalBatches(options.batches)) {
    std::vector<int64_t> shape = {b.batch, b.seq};
    zeros.assign(b.inputs.size(), 0);
    ones.assign(b.inputs.size(), 1);
    std::vector<runtime::NamedTensor> inputs;
    for (const runtime::TensorSpec &input : entry->inputs) {
      const int64_t *data = input.name == "input_ids"        ? b.inputs.data()
                            : input.name == "attention_mask" ? ones.data()
                                                             : zeros.data();
      inputs.push_back(
          {input.name, runtime::TensorView{DType::I64, shape, data}});
    }
    auto outputs = artifact.run(KILN_ENTRY_CALIBRATE, inputs);
    if (!outputs)
      return outputs.status();
    for (size_t i = 0; i < kinds.size(); ++i) {
      const runtime::OwnedTensor &tensor = (*outputs)[i];
      const float *data = tensor.as<float>();
      switch (kinds[i]) {
      case Kind::Gram:
        for (size_t c = 0; c < sums[i].size(); ++c) {
          if (!std::isfinite(data[c]))
            return notFinite(i, "");
          sums[i][c] += data[c];
        }
        break;
      case Kind::Absmax:
        for (size_t c = 0; c < largest[i].size(); ++c) {
          if (!std::isfinite(data[c]))
            return notFinite(i, " (channel " + std::to_string(c) + ")");
          largest[i][c] = std::max(largest[i][c], data[c]);
        }
        break;
      case Kind::Values: {
        if (!binned[i])
          break;
        auto count = static_cast<size_t>(tensor.numElements());
        for (size_t c = 0; c < count; ++c)
          if (!std::isfinite(data[c]))
            return notFinite(i, "");
        binned[i]->add(data, count);
        break;
      }
      }
    }
    tokens += b.batch * b.seq;
  }
  std::vector<runtime::NamedTensor> tensors;
  // The thresholds' storage, which the views point into (no reallocation).
  std::vector<float> ranges;
  ranges.reserve(kinds.size());
  int64_t layers = 0;
  for (size_t i = 0; i < kinds.size(); ++i) {
    const std::string &name = entry->outputs[i].name;
    switch (kinds[i]) {
    case Kind::Gram:
      largest[i].assign(sums[i].begin(), sums[i].end());
      tensors.push_back(
          {name, runtime::TensorView{DType::F32, entry->outputs[i].shape,
                                     largest[i].data()}});
      break;
    case Kind::Absmax:
      ++layers;
      tensors.push_back(
          {name, runtime::TensorView{DType::F32,
                                     {static_cast<int64_t>(largest[i].size())},
                                     largest[i].data()}});
      break;
    case Kind::Values: {
      if (!binned[i])
        break;
      double threshold = range.method == RangeMethod::Percentile
                             ? binned[i]->percentile(range.percentile)
                             : binned[i]->mseThreshold();
      ranges.push_back(static_cast<float>(threshold));
      tensors.push_back(
          {name.substr(0, name.size() - kValues.size()) + ".input_range",
           runtime::TensorView{DType::F32, {1}, &ranges.back()}});
      break;
    }
    }
  }
  std::string statistic = gram ? "input_absmax,input_gram" : "input_absmax";
  if (histograms)
    statistic += ",input_range";
  std::map<std::string, std::string> metadata = {
      {"kiln", "calibration"},
      {"statistic", statistic},
      {"batches", std::to_string(options.batches)},
      {"tokens", std::to_string(tokens)},
      {"tokens_file", options.tokens}};
  if (histograms) {
    metadata["range"] = rangeMethodName(range.method);
    metadata["histogram_bins"] = std::to_string(range.bins);
    if (range.method == RangeMethod::Percentile)
      metadata["percentile"] = formatNumber(range.percentile);
  }
  const auto &source = artifact.manifest().source;
  if (auto sha = source.find("sha256");
      sha != source.end() && sha->second.isString)
    metadata["source_sha256"] = sha->second.text;
  if (Status status = runtime::writeSafeTensors(out, tensors, metadata);
      !status)
    return status;
  CalibrationResult result;
  result.layers = layers;
  result.tokens = tokens;
  result.batch = windows->batch;
  result.seq = windows->seq;
  result.batches = options.batches;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return result;
}

} // namespace kiln::train
