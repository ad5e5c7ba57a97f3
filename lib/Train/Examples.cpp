//===- Examples.cpp - Prompt/response examples for fine-tuning ------------===//

#include "kiln/Train/Examples.h"

#include "JsonLines.h"
#include "Random.h"

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Train/Generate.h"
#include "kiln/Train/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

using namespace kiln::train;
using json = nlohmann::json;
namespace runtime = kiln::runtime;

namespace {

constexpr char kSamplerStateTag[] = "kiln-example-sampler";
constexpr int kSamplerStateVersion = 1;
constexpr int64_t kIgnoreIndex = -100;

uint64_t epochSeed(uint64_t seed, int64_t epoch) {
  // splitmix64 of the pair: neighbouring seeds and epochs give unrelated
  // permutations.
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(epoch + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

} // namespace

Expected<std::vector<PromptResponse>>
kiln::train::readPromptResponses(const std::string &path) {
  std::vector<PromptResponse> examples;
  Status status = forEachJsonObject(
      path, "prompt/response file",
      [&](const json &value, const std::string &where) {
        PromptResponse example;
        if (Status s = readStringFields(
                value, where,
                {{"prompt", &example.prompt}, {"response", &example.response}},
                "{\"prompt\": ..., \"response\": ...}");
            !s)
          return s;
        if (example.response.empty())
          return Status::error(where + ": the response is empty (there is "
                                       "nothing to learn from it)");
        examples.push_back(std::move(example));
        return Status::ok();
      });
  if (!status)
    return status;
  if (examples.empty())
    return Status::error("'" + path + "' has no examples (JSON lines of "
                         "{\"prompt\": ..., \"response\": ...})");
  return examples;
}

Example kiln::train::encodeExample(const Tokenizer &tokenizer,
                                   const PromptResponse &text) {
  Example example;
  example.tokens = promptTokens(tokenizer, text.prompt);
  example.promptTokens = static_cast<int64_t>(example.tokens.size());
  std::vector<int32_t> response = tokenizer.encode(text.response);
  example.tokens.insert(example.tokens.end(), response.begin(), response.end());
  if (tokenizer.eosId() >= 0)
    example.tokens.push_back(tokenizer.eosId());
  return example;
}

std::string kiln::train::trainExamplesPath(const std::string &runDir) {
  return runDir + "/train.examples.jsonl";
}
std::string kiln::train::valExamplesPath(const std::string &runDir) {
  return runDir + "/val.examples.jsonl";
}

namespace {
json exampleJson(const Example &example) {
  return {{"prompt_tokens", example.promptTokens}, {"tokens", example.tokens}};
}

/// One example object of a line; the error names `where`.
Expected<Example> exampleFromJson(const json &value, int64_t vocabSize,
                                  const std::string &where) {
  if (!value.is_object())
    return Status::error(where + " is not a tokenized example "
                                 "({\"prompt_tokens\": n, \"tokens\": [...]})");
  auto n = value.find("prompt_tokens");
  auto ids = value.find("tokens");
  if (n == value.end() || !n->is_number_integer() || ids == value.end() ||
      !ids->is_array())
    return Status::error(where + " is not a tokenized example "
                                 "({\"prompt_tokens\": n, \"tokens\": [...]})");
  Example example;
  example.promptTokens = n->get<int64_t>();
  for (const json &id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= vocabSize)
      return Status::error(where + ": token " + id.dump() +
                           " is not an id below the vocabulary size " +
                           std::to_string(vocabSize));
    example.tokens.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  if (example.promptTokens < 1 ||
      example.promptTokens >= static_cast<int64_t>(example.tokens.size()))
    return Status::error(where + ": prompt_tokens " +
                         std::to_string(example.promptTokens) +
                         " leaves no prompt or no response in " +
                         std::to_string(example.tokens.size()) + " tokens");
  return example;
}
} // namespace

Status kiln::train::writeExamples(const std::string &path,
                                  const std::vector<Example> &examples) {
  std::string text;
  for (const Example &example : examples)
    text += exampleJson(example).dump() + "\n";
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, text.data(), text.size(), path);
  });
}

Expected<std::vector<Example>>
kiln::train::readExamples(const std::string &path, int64_t vocabSize) {
  std::vector<Example> examples;
  Status status = forEachJsonObject(
      path, "example file", [&](const json &value, const std::string &where) {
        Expected<Example> example = exampleFromJson(value, vocabSize, where);
        if (!example)
          return example.status();
        examples.push_back(example.take());
        return Status::ok();
      });
  if (!status)
    return status;
  return examples;
}

void kiln::train::fillExampleRow(const Example &example, int64_t row,
                                 int64_t padId, Batch &batch) {
  int64_t *inputs = batch.inputs.data() + row * batch.seq;
  int64_t *targets = batch.targets.data() + row * batch.seq;
  int64_t n = static_cast<int64_t>(example.tokens.size());
  for (int64_t t = 0; t < batch.seq; ++t) {
    inputs[t] = t < n ? example.tokens[static_cast<size_t>(t)] : padId;
    // targets[t] is the token after inputs[t]: learned only when it is a
    // response token.
    targets[t] = t + 1 < n && t + 1 >= example.promptTokens
                     ? example.tokens[static_cast<size_t>(t + 1)]
                     : kIgnoreIndex;
  }
}

Status kiln::train::checkExamplesFit(const std::vector<Example> &examples,
                                     int64_t seq, const std::string &what) {
  size_t longest = 0;
  for (size_t i = 1; i < examples.size(); ++i)
    if (examples[i].tokens.size() > examples[longest].tokens.size())
      longest = i;
  if (!examples.empty() &&
      static_cast<int64_t>(examples[longest].tokens.size()) > seq + 1) {
    const Example &e = examples[longest];
    return Status::error(
        what + " " + std::to_string(longest + 1) + " is " +
        std::to_string(e.tokens.size()) + " tokens (prompt " +
        std::to_string(e.promptTokens) + "), longer than the model's " +
        std::to_string(seq) + "-token sequence allows (seq + 1 tokens); give "
        "--seq " + std::to_string(e.tokens.size() - 1) +
        " with an artifact that takes it, or shorten the example");
  }
  return Status::ok();
}

std::vector<Batch>
kiln::train::exampleBatches(const std::vector<Example> &examples,
                            int64_t batch, int64_t seq, int64_t padId) {
  std::vector<Batch> batches;
  int64_t count = static_cast<int64_t>(examples.size());
  for (int64_t first = 0; first < count; first += batch) {
    Batch b;
    b.batch = batch;
    b.seq = seq;
    b.inputs.assign(static_cast<size_t>(batch * seq), padId);
    b.targets.assign(static_cast<size_t>(batch * seq), kIgnoreIndex);
    for (int64_t row = 0; row < batch && first + row < count; ++row)
      fillExampleRow(examples[static_cast<size_t>(first + row)], row, padId, b);
    batches.push_back(std::move(b));
  }
  return batches;
}

//===----------------------------------------------------------------------===//
// EpochOrder and ExampleSampler
//===----------------------------------------------------------------------===//

const std::vector<int64_t> &EpochOrder::order(int64_t epoch) {
  if (epoch != orderEpoch_) {
    order_.resize(static_cast<size_t>(count_));
    for (int64_t i = 0; i < count_; ++i)
      order_[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(epochSeed(seed_, epoch));
    for (int64_t i = count_ - 1; i > 0; --i)
      std::swap(order_[static_cast<size_t>(i)],
                order_[detail::uniformBelow(rng, static_cast<uint64_t>(i + 1))]);
    orderEpoch_ = epoch;
  }
  return order_;
}

std::vector<int64_t> EpochOrder::next() {
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < group_; ++i) {
    int64_t position = drawn_ * group_ + i;
    indices.push_back(order(position / count_)[static_cast<size_t>(position % count_)]);
  }
  ++drawn_;
  return indices;
}

double EpochOrder::epochs() const {
  return static_cast<double>(drawn_ * group_) / static_cast<double>(count_);
}

std::string kiln::train::saveEpochState(const std::string &tag,
                                        const EpochOrder &order, int64_t seq) {
  std::ostringstream out;
  out << tag << ' ' << kSamplerStateVersion << ' ' << order.group() << ' '
      << seq << ' ' << order.count() << ' ' << order.seed() << ' '
      << order.drawn();
  return out.str();
}

Status kiln::train::restoreEpochState(const std::string &tag,
                                      const std::string &what,
                                      const std::string &state, int64_t seq,
                                      EpochOrder &order) {
  std::istringstream in(state);
  std::string read;
  int version = 0;
  int64_t group = 0, savedSeq = 0, count = 0, drawn = 0;
  uint64_t seed = 0;
  in >> read >> version;
  if (!in || read != tag)
    return Status::error(std::string("not ") +
                         (what == "example" ? "an " : "a ") + what +
                         " sampler state (it does not start with \"" + tag +
                         "\")");
  if (version != kSamplerStateVersion)
    return Status::error(what + " sampler state version " +
                         std::to_string(version) + " is not supported (" +
                         std::to_string(kSamplerStateVersion) + " is)");
  in >> group >> savedSeq >> count >> seed >> drawn;
  if (in.fail() || drawn < 0)
    return Status::error("the " + what + " sampler state is truncated or "
                         "malformed");
  in >> std::ws;
  if (!in.eof())
    return Status::error("the " + what + " sampler state has trailing text");
  if (group != order.group() || savedSeq != seq || count != order.count() ||
      seed != order.seed())
    return Status::error(
        "the " + what + " sampler state was saved for groups of " +
        std::to_string(group) + " x seq " + std::to_string(savedSeq) +
        " over " + std::to_string(count) + " " + what + "s with seed " +
        std::to_string(seed) + "; this sampler draws groups of " +
        std::to_string(order.group()) + " x seq " + std::to_string(seq) +
        " over " + std::to_string(order.count()) + " " + what +
        "s with seed " + std::to_string(order.seed()));
  order.setDrawn(drawn);
  return Status::ok();
}

Expected<ExampleSampler>
ExampleSampler::create(std::vector<Example> examples, int64_t batch,
                       int64_t seq, int64_t padId, uint64_t seed) {
  if (batch <= 0 || seq <= 0)
    return Status::error("batch and seq must be positive");
  if (examples.empty())
    return Status::error("there are no examples to draw from");
  if (Status s = checkExamplesFit(examples, seq, "example"); !s)
    return s;
  ExampleSampler sampler;
  sampler.order_ =
      EpochOrder(static_cast<int64_t>(examples.size()), batch, seed);
  sampler.examples_ = std::move(examples);
  sampler.seq_ = seq;
  sampler.padId_ = padId;
  return sampler;
}

Batch ExampleSampler::next() {
  Batch batch;
  batch.batch = order_.group();
  batch.seq = seq_;
  batch.inputs.resize(static_cast<size_t>(batch.batch * seq_));
  batch.targets.resize(static_cast<size_t>(batch.batch * seq_));
  std::vector<int64_t> rows = order_.next();
  for (size_t row = 0; row < rows.size(); ++row)
    fillExampleRow(examples_[static_cast<size_t>(rows[row])],
                   static_cast<int64_t>(row), padId_, batch);
  return batch;
}

std::string ExampleSampler::saveState() const {
  return saveEpochState(kSamplerStateTag, order_, seq_);
}

Status ExampleSampler::restoreState(const std::string &state) {
  return restoreEpochState(kSamplerStateTag, "example", state, seq_, order_);
}

//===----------------------------------------------------------------------===//
// Preference pairs
//===----------------------------------------------------------------------===//

Expected<std::vector<PreferencePair>>
kiln::train::readPreferencePairs(const std::string &path) {
  std::vector<PreferencePair> pairs;
  Status status = forEachJsonObject(
      path, "preference file",
      [&](const json &value, const std::string &where) {
        PreferencePair pair;
        if (Status s = readStringFields(
                value, where,
                {{"prompt", &pair.prompt},
                 {"chosen", &pair.chosen},
                 {"rejected", &pair.rejected}},
                "{\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}");
            !s)
          return s;
        if (pair.chosen.empty() || pair.rejected.empty())
          return Status::error(where + ": a response is empty");
        if (pair.chosen == pair.rejected)
          return Status::error(where +
                               ": the chosen and rejected responses are "
                               "the same (there is nothing to prefer)");
        pairs.push_back(std::move(pair));
        return Status::ok();
      });
  if (!status)
    return status;
  if (pairs.empty())
    return Status::error("'" + path + "' has no pairs (JSON lines of "
                         "{\"prompt\": ..., \"chosen\": ..., "
                         "\"rejected\": ...})");
  return pairs;
}

std::string kiln::train::trainPairsPath(const std::string &runDir) {
  return runDir + "/train.pairs.jsonl";
}
std::string kiln::train::valPairsPath(const std::string &runDir) {
  return runDir + "/val.pairs.jsonl";
}


Status kiln::train::writePairs(const std::string &path,
                               const std::vector<PairExample> &pairs) {
  std::string text;
  for (const PairExample &pair : pairs)
    text += json{{"chosen", exampleJson(pair.chosen)},
                 {"rejected", exampleJson(pair.rejected)},
                 {"reference", {pair.referenceChosen, pair.referenceRejected}}}
                .dump() +
            "\n";
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, text.data(), text.size(), path);
  });
}

Expected<std::vector<PairExample>>
kiln::train::readPairs(const std::string &path, int64_t vocabSize) {
  std::vector<PairExample> pairs;
  Status status = forEachJsonObject(
      path, "pair file", [&](const json &value, const std::string &where) {
        PairExample pair;
        for (auto [key, out] : {std::pair{"chosen", &pair.chosen},
                                std::pair{"rejected", &pair.rejected}}) {
          auto it = value.find(key);
          if (it == value.end())
            return Status::error(where + " has no \"" + key + "\" example");
          Expected<Example> example =
              exampleFromJson(*it, vocabSize, where + " \"" + key + "\"");
          if (!example)
            return example.status();
          *out = example.take();
        }
        auto reference = value.find("reference");
        if (reference == value.end() || !reference->is_array() ||
            reference->size() != 2 || !(*reference)[0].is_number() ||
            !(*reference)[1].is_number() ||
            !std::isfinite((*reference)[0].get<double>()) ||
            !std::isfinite((*reference)[1].get<double>()))
          return Status::error(where + ": \"reference\" is not two finite "
                                       "log-probabilities");
        pair.referenceChosen = (*reference)[0].get<double>();
        pair.referenceRejected = (*reference)[1].get<double>();
        pairs.push_back(std::move(pair));
        return Status::ok();
      });
  if (!status)
    return status;
  return pairs;
}

Batch kiln::train::pairBatch(const std::vector<const PairExample *> &pairs,
                             int64_t batch, int64_t seq, int64_t padId) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  b.inputs.assign(static_cast<size_t>(batch * seq), padId);
  b.targets.assign(static_cast<size_t>(batch * seq), kIgnoreIndex);
  std::vector<float> reference(static_cast<size_t>(batch), 0.0f);
  // Rows without a pair hold one padding token.
  std::vector<int64_t> lengths(static_cast<size_t>(batch), 1);
  int64_t half = batch / 2;
  for (size_t i = 0; i < pairs.size() && static_cast<int64_t>(i) < half; ++i) {
    int64_t row = static_cast<int64_t>(i);
    fillExampleRow(pairs[i]->chosen, row, padId, b);
    fillExampleRow(pairs[i]->rejected, half + row, padId, b);
    lengths[static_cast<size_t>(row)] = std::min<int64_t>(
        seq, static_cast<int64_t>(pairs[i]->chosen.tokens.size()));
    lengths[static_cast<size_t>(half + row)] = std::min<int64_t>(
        seq, static_cast<int64_t>(pairs[i]->rejected.tokens.size()));
    reference[static_cast<size_t>(row)] =
        static_cast<float>(pairs[i]->referenceChosen);
    reference[static_cast<size_t>(half + row)] =
        static_cast<float>(pairs[i]->referenceRejected);
  }
  b.extra.push_back({"reference_logprobs", {batch}, std::move(reference)});
  b.lengths = std::move(lengths);
  return b;
}
