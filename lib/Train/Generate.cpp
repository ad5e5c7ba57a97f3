//===- Generate.cpp - Sampling text from a language-model artifact --------===//
//
// sampleBatch uses the KV-cache entry points: the prompt is prefilled once
// and every token costs one decode_step. generateText reruns forward on the
// whole (sliding) context for every token.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Generate.h"
#include "kiln/Train/Eval.h"

#include "kiln/Runtime/Artifact.h"
#include "kiln/Train/Tokenizer.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <numeric>

using namespace kiln::train;
namespace runtime = kiln::runtime;
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

//===----------------------------------------------------------------------===//
// KVCacheDecoder
//===----------------------------------------------------------------------===//

namespace {
constexpr const char *kPrefill = "prefill";
constexpr const char *kDecodeStep = "decode_step";
} // namespace

bool KVCacheDecoder::isAvailable(const Artifact &artifact) {
  return artifact.findEntryPoint(kPrefill) &&
         artifact.findEntryPoint(kDecodeStep);
}

int64_t KVCacheDecoder::staticRows(const Artifact &artifact) {
  const runtime::EntryPointSpec *prefill = artifact.findEntryPoint(kPrefill);
  if (!prefill || prefill->outputs.empty() || prefill->outputs[0].rank() != 2)
    return 0;
  int64_t batch = prefill->outputs[0].shape[0];
  return batch == runtime::kDynamicDim ? 0 : batch;
}

Expected<KVCacheDecoder> KVCacheDecoder::create(const Artifact &artifact,
                                                int64_t rows) {
  const runtime::EntryPointSpec *prefill = artifact.findEntryPoint(kPrefill);
  const runtime::EntryPointSpec *decode = artifact.findEntryPoint(kDecodeStep);
  std::string where = "'" + artifact.dir() + "'";
  if (!prefill || !decode)
    return Status::error(where + " has no KV-cache entry points (prefill, "
                                 "decode_step): compile it with kiln-compile "
                                 "--kv-cache");
  auto bad = [&](const std::string &what) {
    return Status::error(where + ": " + what +
                         " (not the KV-cache entry points kiln-compile "
                         "--kv-cache builds)");
  };
  // prefill(input_ids [B, S], lengths [B], cache...) and
  // decode_step(input_ids [B, 1], positions [B], cache...), both -> logits
  // [B, V]; the same caches, updated in place.
  if (prefill->inputs.size() < 3 ||
      prefill->inputs.size() != decode->inputs.size() ||
      prefill->outputs.size() != 1 || decode->outputs.size() != 1)
    return bad("unexpected inputs or outputs");
  const runtime::TensorSpec &logits = prefill->outputs[0];
  if (logits.dtype != DType::F32 || logits.rank() != 2 ||
      logits.shape[1] == runtime::kDynamicDim ||
      decode->outputs[0].shape != logits.shape)
    return bad("logits are not f32 [batch, vocab]");
  int64_t batch = logits.shape[0];
  if (rows < 1 || (batch != runtime::kDynamicDim && rows != batch))
    return Status::error(where + ": its KV cache holds " +
                         (batch == runtime::kDynamicDim
                              ? std::string("at least 1 row")
                              : std::to_string(batch) + " rows") +
                         ", not " + std::to_string(rows));
  const std::vector<std::string> leading[2] = {{"input_ids", "lengths"},
                                               {"input_ids", "positions"}};
  const runtime::EntryPointSpec *entries[2] = {prefill, decode};
  for (int e = 0; e < 2; ++e)
    for (size_t i = 0; i < 2; ++i) {
      const runtime::TensorSpec &spec = entries[e]->inputs[i];
      if (spec.name != leading[e][i] || spec.dtype != DType::I64 ||
          spec.inPlace || spec.shape.empty() || spec.shape[0] != batch)
        return bad(entries[e]->name + " input " + std::to_string(i));
    }
  KVCacheDecoder decoder;
  decoder.artifact_ = &artifact;
  decoder.rows_ = rows;
  decoder.vocab_ = logits.shape[1];
  const runtime::TensorSpec &prefillIds = prefill->inputs[0];
  if (prefillIds.rank() != 2 || decode->inputs[0].rank() != 2)
    return bad("input_ids are not [batch, seq]");
  if (prefillIds.shape[1] != runtime::kDynamicDim)
    decoder.prefillSeq_ = prefillIds.shape[1];
  for (size_t i = 2; i < prefill->inputs.size(); ++i) {
    const runtime::TensorSpec &spec = prefill->inputs[i];
    const runtime::TensorSpec &other = decode->inputs[i];
    if (!spec.inPlace || !other.inPlace || spec.name != other.name ||
        spec.dtype != other.dtype || spec.shape != other.shape ||
        spec.rank() != 4 || spec.shape[0] != batch ||
        std::any_of(spec.shape.begin() + 1, spec.shape.end(),
                    [](int64_t d) { return d < 1; }))
      return bad("cache input '" + spec.name + "'");
    if (decoder.slots_ && spec.shape[2] != decoder.slots_)
      return bad("caches of different lengths");
    decoder.slots_ = spec.shape[2];
    std::vector<int64_t> shape = spec.shape;
    shape[0] = rows;
    runtime::OwnedTensor cache = runtime::OwnedTensor::allocate(spec.dtype, shape);
    // Slots a row has not filled are never attended to, but zeros keep a
    // decomposed attention's masked products finite.
    std::memset(cache.data(), 0, cache.byteSize());
    decoder.cacheNames_.push_back(spec.name);
    decoder.caches_.push_back(std::move(cache));
  }
  decoder.lengths_.assign(static_cast<size_t>(rows), 0);
  return decoder;
}

Expected<std::vector<float>>
KVCacheDecoder::run(const std::string &entry, const runtime::NamedTensor &ids,
                    const runtime::NamedTensor &rows) {
  std::vector<Artifact::InPlaceTensor> caches;
  for (size_t i = 0; i < caches_.size(); ++i)
    caches.push_back({cacheNames_[i], caches_[i].dtype(), caches_[i].shape(),
                      caches_[i].data()});
  auto outputs = artifact_->run(entry, {ids, rows}, caches);
  if (!outputs)
    return outputs.status();
  const runtime::OwnedTensor &logits = outputs->front();
  if (logits.shape() != std::vector<int64_t>{rows_, vocab_})
    return Status::error(entry + " returned logits of shape " +
                         runtime::formatShape(logits.shape()));
  return std::vector<float>(logits.as<float>(),
                            logits.as<float>() + logits.numElements());
}

Expected<std::vector<float>>
KVCacheDecoder::prefill(const std::vector<std::vector<int32_t>> &prompts) {
  if (static_cast<int64_t>(prompts.size()) != rows_)
    return Status::error("prefill: " + std::to_string(prompts.size()) +
                         " prompts for a cache of " + std::to_string(rows_) +
                         " rows");
  int64_t longest = 0;
  for (const std::vector<int32_t> &prompt : prompts) {
    if (prompt.empty() || static_cast<int64_t>(prompt.size()) > maxPrompt())
      return Status::error(
          "prefill: a prompt of " + std::to_string(prompt.size()) +
          " tokens; it takes 1 to " + std::to_string(maxPrompt()) +
          (prefillSeq_ ? " (the sequence length the artifact was compiled "
                         "with)"
                       : " (the cache's slots)"));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompt.size()));
  }
  // A static sequence length takes every prompt padded to it.
  if (prefillSeq_)
    longest = prefillSeq_;
  // Right-padded: under the causal mask padding after a token does not
  // change it, and the slots it fills are overwritten before a row attends
  // to them.
  std::vector<int64_t> ids(static_cast<size_t>(rows_ * longest), 0);
  std::vector<int64_t> lengths(static_cast<size_t>(rows_));
  for (int64_t r = 0; r < rows_; ++r) {
    const std::vector<int32_t> &prompt = prompts[static_cast<size_t>(r)];
    std::copy(prompt.begin(), prompt.end(),
              ids.begin() + static_cast<ptrdiff_t>(r * longest));
    lengths[static_cast<size_t>(r)] = static_cast<int64_t>(prompt.size());
  }
  auto logits =
      run(kPrefill, {"input_ids", TensorView{DType::I64, {rows_, longest}, ids.data()}},
          {"lengths", TensorView{DType::I64, {rows_}, lengths.data()}});
  if (logits)
    lengths_ = lengths;
  return logits;
}

Expected<std::vector<float>>
KVCacheDecoder::step(const std::vector<int64_t> &tokens) {
  if (static_cast<int64_t>(tokens.size()) != rows_)
    return Status::error("decode_step: " + std::to_string(tokens.size()) +
                         " tokens for a cache of " + std::to_string(rows_) +
                         " rows");
  for (int64_t length : lengths_)
    if (length < 1 || length >= slots_)
      return Status::error("decode_step: a row holds " +
                           std::to_string(length) + " tokens; it needs a "
                           "prefilled row with room (the cache holds " +
                           std::to_string(slots_) + ")");
  std::vector<int64_t> ids(tokens), positions(lengths_);
  auto logits =
      run(kDecodeStep, {"input_ids", TensorView{DType::I64, {rows_, 1}, ids.data()}},
          {"positions", TensorView{DType::I64, {rows_}, positions.data()}});
  if (logits)
    for (int64_t &length : lengths_)
      ++length;
  return logits;
}

namespace {
/// The next token from one row of logits (only ids the tokenizer knows can
/// be decoded).
Expected<int64_t> sampleRow(const float *row, int64_t vocab,
                            const Tokenizer &tokenizer,
                            const SamplingOptions &options,
                            std::mt19937_64 &rng) {
  int64_t usable = std::min<int64_t>(vocab, tokenizer.vocabSize());
  std::vector<float> candidates(row, row + usable);
  return sampleToken(candidates, options, rng);
}


/// The text `tokens` add after `prompt` (decoded together, so that a space
/// at the boundary is kept).
std::string continuationText(const Tokenizer &tokenizer,
                             const std::vector<int32_t> &prompt,
                             const std::string &promptText,
                             const std::vector<int32_t> &tokens) {
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), tokens.begin(), tokens.end());
  std::string text = tokenizer.decode(all);
  if (text.compare(0, promptText.size(), promptText) == 0)
    return text.substr(promptText.size());
  return tokenizer.decode(tokens);
}
} // namespace

std::vector<int32_t> kiln::train::promptTokens(const Tokenizer &tokenizer,
                                               const std::string &text) {
  std::vector<int32_t> tokens = tokenizer.encode(text);
  if (tokens.empty())
    tokens.push_back(static_cast<int32_t>(
        tokenizer.bosId() >= 0 ? tokenizer.bosId() : 0));
  return tokens;
}

double kiln::train::tokenLogProb(const float *logits, int64_t vocab,
                                 int64_t token) {
  double top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i)
    sum += std::exp(static_cast<double>(logits[i]) - top);
  return static_cast<double>(logits[token]) - top - std::log(sum);
}

namespace {
/// Samples one group of rows of `decoder`: rows [0, active) continue
/// their prompts and are returned; rows after them only fill a static
/// batch. Row r draws from `rngs[r]`.
Expected<std::vector<Sample>>
sampleRows(KVCacheDecoder &decoder, const Tokenizer &tokenizer,
           const std::vector<std::vector<int32_t>> &prompts, size_t active,
           std::vector<std::mt19937_64> &rngs, const BatchOptions &options) {
  size_t count = prompts.size();
  std::vector<Sample> samples(count);
  std::vector<bool> done(count, options.maxTokens == 0);
  for (size_t row = active; row < count; ++row)
    done[row] = true;
  for (Sample &sample : samples)
    sample.finish = "length";
  int64_t vocab = decoder.vocab();
  std::vector<std::string> promptTexts;
  for (const std::vector<int32_t> &prompt : prompts)
    promptTexts.push_back(tokenizer.decode(prompt));
  Expected<std::vector<float>> logits = decoder.prefill(prompts);
  for (int64_t n = 0; n < options.maxTokens; ++n) {
    if (!logits)
      return logits.status();
    std::vector<int64_t> next(count, 0);
    for (size_t row = 0; row < count; ++row) {
      if (done[row])
        continue;
      const float *rowLogits = logits->data() + static_cast<int64_t>(row) * vocab;
      Expected<int64_t> token =
          sampleRow(rowLogits, vocab, tokenizer, options.sampling, rngs[row]);
      if (!token)
        return token.status();
      Sample &sample = samples[row];
      if (*token == tokenizer.eosId()) {
        sample.finish = "eos";
        done[row] = true;
        continue;
      }
      next[row] = *token;
      sample.tokens.push_back(static_cast<int32_t>(*token));
      sample.logProbs.push_back(tokenLogProb(rowLogits, vocab, *token));
      sample.text = continuationText(tokenizer, prompts[row], promptTexts[row],
                                     sample.tokens);
      for (const std::string &stop : options.stop) {
        size_t at = stop.empty() ? std::string::npos : sample.text.find(stop);
        if (at != std::string::npos) {
          sample.text.resize(at);
          sample.finish = "stop";
          done[row] = true;
        }
      }
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }) ||
        n + 1 == options.maxTokens)
      break;
    // When a row is full, every row is refilled with the last half of its
    // text (as generateText does).
    const std::vector<int64_t> &lengths = decoder.lengths();
    if (*std::max_element(lengths.begin(), lengths.end()) >= decoder.slots()) {
      size_t keep = static_cast<size_t>(std::max<int64_t>(
          std::min(decoder.slots(), decoder.maxPrompt()) / 2, 1));
      std::vector<std::vector<int32_t>> contexts;
      for (size_t row = 0; row < count; ++row) {
        std::vector<int32_t> all = prompts[row];
        all.insert(all.end(), samples[row].tokens.begin(),
                   samples[row].tokens.end());
        size_t start = all.size() > keep ? all.size() - keep : 0;
        contexts.emplace_back(all.begin() + static_cast<ptrdiff_t>(start),
                              all.end());
      }
      logits = decoder.prefill(contexts);
    } else {
      logits = decoder.step(next);
    }
  }
  samples.resize(active);
  return samples;
}
} // namespace

Expected<std::vector<Sample>>
kiln::train::samplePrompts(const Artifact &artifact, const Tokenizer &tokenizer,
                           const std::vector<std::vector<int32_t>> &prompts,
                           const BatchOptions &options) {
  if (prompts.empty())
    return Status::error("sampling needs at least one prompt");
  if (options.maxTokens < 0)
    return Status::error("--max-tokens must be at least 0");
  size_t total = prompts.size();
  int64_t fixed = KVCacheDecoder::staticRows(artifact);
  size_t group = fixed ? static_cast<size_t>(fixed) : total;
  Expected<KVCacheDecoder> decoder =
      KVCacheDecoder::create(artifact, static_cast<int64_t>(group));
  if (!decoder)
    return decoder.status();
  int64_t longest = std::min(decoder->slots() - 1, decoder->maxPrompt());
  for (size_t i = 0; i < total; ++i) {
    int64_t length = static_cast<int64_t>(prompts[i].size());
    if (length < 1)
      return Status::error("sampling needs a prompt of at least one token");
    if (length > longest)
      return Status::error(
          (total > 1 ? "prompt " + std::to_string(i + 1) : std::string("the prompt")) +
          " has " + std::to_string(length) + " tokens; the artifact takes at "
          "most " + std::to_string(longest) + " (" +
          (decoder->maxPrompt() < decoder->slots()
               ? "the sequence length it was compiled with"
               : "its KV cache holds " + std::to_string(decoder->slots()) +
                     " with the tokens generated after it") +
          ")");
  }
  std::vector<Sample> samples;
  for (size_t first = 0; first < total; first += group) {
    size_t active = std::min(group, total - first);
    std::vector<std::vector<int32_t>> rows(
        prompts.begin() + static_cast<ptrdiff_t>(first),
        prompts.begin() + static_cast<ptrdiff_t>(first + active));
    rows.resize(group, rows.front());
    std::vector<std::mt19937_64> rngs;
    for (size_t r = 0; r < group; ++r)
      rngs.emplace_back(options.seed + static_cast<uint64_t>(first + r));
    Expected<std::vector<Sample>> drawn =
        sampleRows(*decoder, tokenizer, rows, active, rngs, options);
    if (!drawn)
      return drawn.status();
    for (Sample &sample : *drawn)
      samples.push_back(std::move(sample));
  }
  return samples;
}

Expected<std::vector<Sample>>
kiln::train::sampleBatch(const Artifact &artifact, const Tokenizer &tokenizer,
                         const std::vector<int32_t> &prompt, int64_t count,
                         const BatchOptions &options) {
  if (count < 1)
    return Status::error("sampling needs at least one sample");
  return samplePrompts(
      artifact, tokenizer,
      std::vector<std::vector<int32_t>>(static_cast<size_t>(count), prompt),
      options);
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

  std::vector<int32_t> tokens = promptTokens(tokenizer, options.prompt);
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
    Expected<int64_t> next =
        sampleRow(row, vocab, tokenizer, options.sampling, rng);
    if (!next)
      return next.status();
    if (*next == tokenizer.eosId())
      break;
    tokens.push_back(static_cast<int32_t>(*next));
  }
  return tokenizer.decode(tokens);
}
