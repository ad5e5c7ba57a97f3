//===- Examples.cpp - Prompt/response examples for fine-tuning ------------===//

#include "kiln/Train/Examples.h"

#include "Random.h"

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Train/Generate.h"
#include "kiln/Train/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

using namespace kiln::train;
using json = nlohmann::json;
namespace runtime = kiln::runtime;

namespace {

constexpr char kSamplerStateTag[] = "kiln-example-sampler";
constexpr int kSamplerStateVersion = 1;
constexpr int64_t kIgnoreIndex = -100;

/// Calls `line(number, text)` for each non-blank line of `text`; stops at
/// the first error.
template <typename Fn>
Status forEachLine(const std::string &text, Fn &&line) {
  size_t start = 0;
  int64_t number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    ++number;
    std::string_view view(text.data() + start, end - start);
    if (!view.empty() && view.back() == '\r')
      view.remove_suffix(1);
    if (view.find_first_not_of(" \t") != std::string_view::npos)
      if (Status s = line(number, view); !s)
        return s;
    start = end + 1;
  }
  return Status::ok();
}

/// Parses one JSON line; the error names `path:number`.
Expected<json> parseLine(const std::string &path, int64_t number,
                         std::string_view text) {
  std::string where = "'" + path + "' line " + std::to_string(number);
  if (Status s = runtime::checkJsonNesting(text, where); !s)
    return s;
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded())
    return Status::error(where + " is not JSON");
  if (!value.is_object())
    return Status::error(where + " is not a JSON object");
  return value;
}

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
  Expected<std::string> text = runtime::readFile(path, "prompt/response file");
  if (!text)
    return text.status();
  std::vector<PromptResponse> examples;
  Status status = forEachLine(*text, [&](int64_t number, std::string_view line) {
    Expected<json> value = parseLine(path, number, line);
    if (!value)
      return value.status();
    std::string where = "'" + path + "' line " + std::to_string(number);
    PromptResponse example;
    for (auto [key, out] : {std::pair{"prompt", &example.prompt},
                            std::pair{"response", &example.response}}) {
      auto it = value->find(key);
      if (it == value->end() || !it->is_string())
        return Status::error(where + ": \"" + key +
                             "\" is missing or not a string (each line is "
                             "{\"prompt\": ..., \"response\": ...})");
      *out = it->get<std::string>();
    }
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

Status kiln::train::writeExamples(const std::string &path,
                                  const std::vector<Example> &examples) {
  std::string text;
  for (const Example &example : examples)
    text += json{{"prompt_tokens", example.promptTokens},
                 {"tokens", example.tokens}}
                .dump() +
            "\n";
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, text.data(), text.size(), path);
  });
}

Expected<std::vector<Example>>
kiln::train::readExamples(const std::string &path, int64_t vocabSize) {
  Expected<std::string> text = runtime::readFile(path, "example file");
  if (!text)
    return text.status();
  std::vector<Example> examples;
  Status status = forEachLine(*text, [&](int64_t number, std::string_view line) {
    Expected<json> value = parseLine(path, number, line);
    if (!value)
      return value.status();
    std::string where = "'" + path + "' line " + std::to_string(number);
    auto n = value->find("prompt_tokens");
    auto ids = value->find("tokens");
    if (n == value->end() || !n->is_number_integer() || ids == value->end() ||
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
    examples.push_back(std::move(example));
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
// ExampleSampler
//===----------------------------------------------------------------------===//

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
  sampler.examples_ = std::move(examples);
  sampler.batch_ = batch;
  sampler.seq_ = seq;
  sampler.padId_ = padId;
  sampler.seed_ = seed;
  return sampler;
}

const std::vector<int64_t> &ExampleSampler::order(int64_t epoch) {
  if (epoch != orderEpoch_) {
    int64_t n = static_cast<int64_t>(examples_.size());
    order_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      order_[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(epochSeed(seed_, epoch));
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order_[static_cast<size_t>(i)],
                order_[detail::uniformBelow(rng, static_cast<uint64_t>(i + 1))]);
    orderEpoch_ = epoch;
  }
  return order_;
}

Batch ExampleSampler::next() {
  Batch batch;
  batch.batch = batch_;
  batch.seq = seq_;
  batch.inputs.resize(static_cast<size_t>(batch_ * seq_));
  batch.targets.resize(static_cast<size_t>(batch_ * seq_));
  int64_t n = static_cast<int64_t>(examples_.size());
  for (int64_t row = 0; row < batch_; ++row) {
    int64_t position = drawn_ * batch_ + row;
    const std::vector<int64_t> &epochOrder = order(position / n);
    fillExampleRow(examples_[static_cast<size_t>(epochOrder[position % n])],
                   row, padId_, batch);
  }
  ++drawn_;
  return batch;
}

double ExampleSampler::epochs() const {
  return static_cast<double>(drawn_ * batch_) /
         static_cast<double>(examples_.size());
}

std::string ExampleSampler::saveState() const {
  std::ostringstream out;
  out << kSamplerStateTag << ' ' << kSamplerStateVersion << ' ' << batch_ << ' '
      << seq_ << ' ' << examples_.size() << ' ' << seed_ << ' ' << drawn_;
  return out.str();
}

Status ExampleSampler::restoreState(const std::string &state) {
  std::istringstream in(state);
  std::string tag;
  int version = 0;
  int64_t batch = 0, seq = 0, count = 0, drawn = 0;
  uint64_t seed = 0;
  in >> tag >> version;
  if (!in || tag != kSamplerStateTag)
    return Status::error("not an example sampler state (it does not start "
                         "with \"kiln-example-sampler\")");
  if (version != kSamplerStateVersion)
    return Status::error("example sampler state version " +
                         std::to_string(version) + " is not supported (" +
                         std::to_string(kSamplerStateVersion) + " is)");
  in >> batch >> seq >> count >> seed >> drawn;
  if (in.fail() || drawn < 0)
    return Status::error("the example sampler state is truncated or "
                         "malformed");
  in >> std::ws;
  if (!in.eof())
    return Status::error("the example sampler state has trailing text");
  if (batch != batch_ || seq != seq_ ||
      count != static_cast<int64_t>(examples_.size()) || seed != seed_)
    return Status::error(
        "the example sampler state was saved for batch " +
        std::to_string(batch) + " x seq " + std::to_string(seq) + " over " +
        std::to_string(count) + " examples with seed " + std::to_string(seed) +
        "; this sampler draws batch " + std::to_string(batch_) + " x seq " +
        std::to_string(seq_) + " over " + std::to_string(examples_.size()) +
        " examples with seed " + std::to_string(seed_));
  drawn_ = drawn;
  return Status::ok();
}
