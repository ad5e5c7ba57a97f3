//===- Tasks.cpp - Generated tasks with a programmatic judge --------------===//

#include "kiln/Train/Tasks.h"

#include "Random.h"

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Train/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <set>

using namespace kiln::train;
using json = nlohmann::json;
namespace runtime = kiln::runtime;
using runtime::Expected;
using runtime::Status;

namespace {

/// One problem of a task: its prompt, its answer, and whether it belongs
/// to the held-out combinations.
struct Problem {
  std::string prompt;
  std::string answer;
  bool heldOut = false;
};

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// One held-out combination in ten, fixed by the operands alone (not the
/// seed), so every run of the task holds out the same ones.
bool heldOutKey(uint64_t key) { return mix(key + 0x9e3779b97f4a7c15ull) % 10 == 0; }

class Task {
public:
  virtual ~Task() = default;
  virtual Problem draw(std::mt19937_64 &rng) const = 0;
  /// A wrong answer to `problem`, different from the right one.
  virtual std::string wrong(const Problem &problem,
                            std::mt19937_64 &rng) const = 0;
  /// How many distinct problems there are (to refuse impossible counts).
  virtual double space() const = 0;
};

class Arithmetic final : public Task {
public:
  explicit Arithmetic(int64_t max) : max(max) {}
  Problem draw(std::mt19937_64 &rng) const override {
    int64_t a = static_cast<int64_t>(detail::uniformBelow(rng, max + 1));
    int64_t b = static_cast<int64_t>(detail::uniformBelow(rng, max + 1));
    return {std::to_string(a) + "+" + std::to_string(b) + "=",
            std::to_string(a + b),
            heldOutKey(static_cast<uint64_t>(a * 1000003 + b))};
  }
  std::string wrong(const Problem &problem,
                    std::mt19937_64 &rng) const override {
    // Near misses a careless adder makes: off by one or two, or by ten.
    static const int64_t offsets[] = {-10, -2, -1, 1, 2, 10};
    int64_t right = std::stoll(problem.answer);
    int64_t value = right;
    while (value == right || value < 0)
      value = right + offsets[detail::uniformBelow(rng, 6)];
    return std::to_string(value);
  }
  double space() const override {
    return static_cast<double>(max + 1) * static_cast<double>(max + 1);
  }

private:
  int64_t max;
};

class Sorting final : public Task {
public:
  explicit Sorting(int64_t maxLength) : maxLength(maxLength) {}
  Problem draw(std::mt19937_64 &rng) const override {
    int64_t length =
        3 + static_cast<int64_t>(detail::uniformBelow(rng, maxLength - 2));
    std::vector<int> digits;
    uint64_t key = static_cast<uint64_t>(length);
    for (int64_t i = 0; i < length; ++i) {
      digits.push_back(static_cast<int>(detail::uniformBelow(rng, 10)));
      key = key * 11 + static_cast<uint64_t>(digits.back());
    }
    Problem problem;
    problem.prompt = "sort " + join(digits) + ":";
    std::sort(digits.begin(), digits.end());
    problem.answer = join(digits);
    problem.heldOut = heldOutKey(key);
    return problem;
  }
  std::string wrong(const Problem &problem,
                    std::mt19937_64 &rng) const override {
    // The sorted list with two neighbours swapped, or a digit dropped.
    std::vector<std::string> digits;
    for (size_t i = 0; i < problem.answer.size(); i += 2)
      digits.push_back(problem.answer.substr(i, 1));
    for (int attempt = 0; attempt < 16; ++attempt) {
      std::vector<std::string> changed = digits;
      size_t i = detail::uniformBelow(rng, digits.size() - 1);
      if (detail::uniformBelow(rng, 3) == 0)
        changed.erase(changed.begin() + static_cast<ptrdiff_t>(i));
      else
        std::swap(changed[i], changed[i + 1]);
      std::string text;
      for (const std::string &d : changed)
        text += (text.empty() ? "" : " ") + d;
      if (text != problem.answer)
        return text;
    }
    return problem.answer + " 0"; // All digits equal: one too many.
  }
  double space() const override {
    double total = 0;
    for (int64_t length = 3; length <= maxLength; ++length)
      total += std::pow(10.0, static_cast<double>(length));
    return total;
  }

private:
  static std::string join(const std::vector<int> &digits) {
    std::string text;
    for (int d : digits)
      text += (text.empty() ? "" : " ") + std::to_string(d);
    return text;
  }
  int64_t maxLength;
};

Status writeLines(const std::string &path, const std::vector<json> &lines) {
  std::string text;
  for (const json &line : lines)
    text += line.dump() + "\n";
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, text.data(), text.size(), path);
  });
}

} // namespace

Status kiln::train::writeTask(const std::string &dir,
                              const TaskOptions &options,
                              TaskSummary *summary) {
  std::unique_ptr<Task> task;
  if (options.kind == "arithmetic") {
    if (options.maxOperand < 9 || options.maxOperand > 999999)
      return Status::error("--max-operand must be in [9, 999999]");
    task = std::make_unique<Arithmetic>(options.maxOperand);
  } else if (options.kind == "sorting") {
    if (options.maxLength < 3 || options.maxLength > 12)
      return Status::error("--max-length must be in [3, 12]");
    task = std::make_unique<Sorting>(options.maxLength);
  } else {
    return Status::error("unknown task '" + options.kind +
                         "' (expected arithmetic or sorting)");
  }
  for (int64_t count : {options.demonstrations, options.pairs,
                        options.prompts, options.test})
    if (count < 1 || count > 10000000)
      return Status::error("the counts of a task must be in [1, 10000000]");
  if (!(options.noise >= 0 && options.noise <= 1))
    return Status::error("--noise must be in [0, 1]");
  // Held-out problems are a tenth of the space: the test set must fit in
  // it with room to spare, or drawing it would not end.
  if (static_cast<double>(options.test) > task->space() / 20)
    return Status::error("--test " + std::to_string(options.test) +
                         " is more than the task's held-out combinations "
                         "allow; raise --max-operand or --max-length");
  if (Status s = runtime::makeDirectories(dir); !s)
    return s;

  std::mt19937_64 rng(options.seed);
  auto drawTraining = [&]() {
    Problem p;
    do
      p = task->draw(rng);
    while (p.heldOut);
    return p;
  };
  TaskSummary counts;
  std::vector<json> sft, pairs, prompts, test;
  for (int64_t i = 0; i < options.demonstrations; ++i) {
    Problem p = drawTraining();
    bool wrong = detail::uniformUnit(rng) < options.noise;
    counts.wrongDemonstrations += wrong;
    sft.push_back({{"prompt", p.prompt},
                   {"response", wrong ? task->wrong(p, rng) : p.answer}});
  }
  for (int64_t i = 0; i < options.pairs; ++i) {
    Problem p = drawTraining();
    pairs.push_back({{"prompt", p.prompt},
                     {"chosen", p.answer},
                     {"rejected", task->wrong(p, rng)}});
  }
  for (int64_t i = 0; i < options.prompts; ++i) {
    Problem p = drawTraining();
    prompts.push_back({{"prompt", p.prompt}, {"answer", p.answer}});
  }
  // Distinct held-out problems.
  std::set<std::string> seen;
  while (static_cast<int64_t>(test.size()) < options.test) {
    Problem p = task->draw(rng);
    if (p.heldOut && seen.insert(p.prompt).second)
      test.push_back({{"prompt", p.prompt}, {"answer", p.answer}});
  }
  for (auto [name, lines] : {std::pair{"sft.jsonl", &sft},
                             std::pair{"pairs.jsonl", &pairs},
                             std::pair{"prompts.jsonl", &prompts},
                             std::pair{"test.jsonl", &test}})
    if (Status s = writeLines(dir + "/" + name, *lines); !s)
      return s;
  counts.demonstrations = options.demonstrations;
  counts.pairs = options.pairs;
  counts.prompts = options.prompts;
  counts.test = options.test;
  if (summary)
    *summary = counts;
  return Status::ok();
}

Expected<std::vector<PromptAnswer>>
kiln::train::readPromptAnswers(const std::string &path, bool needAnswers) {
  Expected<std::string> text = runtime::readFile(path, "prompt file");
  if (!text)
    return text.status();
  std::vector<PromptAnswer> lines;
  size_t start = 0;
  int64_t number = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos)
      end = text->size();
    ++number;
    std::string_view line(text->data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos)
      continue;
    std::string where = "'" + path + "' line " + std::to_string(number);
    if (Status s = runtime::checkJsonNesting(line, where); !s)
      return s;
    json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_object())
      return Status::error(where + " is not a JSON object");
    auto prompt = value.find("prompt");
    auto answer = value.find("answer");
    bool answered = answer != value.end() && answer->is_string();
    if (prompt == value.end() || !prompt->is_string() ||
        (!answered && (needAnswers || answer != value.end())))
      return Status::error(where + ": \"prompt\" or \"answer\" is missing "
                                   "or not a string (each line is "
                                   "{\"prompt\": ..., \"answer\": ...})");
    lines.push_back({prompt->get<std::string>(),
                     answered ? answer->get<std::string>() : std::string()});
  }
  if (lines.empty())
    return Status::error("'" + path + "' has no prompts");
  return lines;
}

bool kiln::train::judgeAnswer(std::string_view response,
                              std::string_view answer) {
  size_t newline = response.find('\n');
  if (newline != std::string_view::npos)
    response = response.substr(0, newline);
  auto trim = [](std::string_view text) {
    size_t first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
      return std::string_view();
    size_t last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
  };
  return trim(response) == trim(answer);
}

Expected<JudgeResult> kiln::train::judgePrompts(
    const runtime::Artifact &artifact, const Tokenizer &tokenizer,
    const std::vector<PromptAnswer> &prompts, const JudgeOptions &options) {
  if (options.samples < 1)
    return Status::error("--samples must be at least 1");
  size_t count = prompts.size();
  if (options.limit > 0)
    count = std::min(count, static_cast<size_t>(options.limit));
  std::vector<std::vector<int32_t>> rows;
  for (size_t i = 0; i < count; ++i)
    for (int64_t s = 0; s < options.samples; ++s)
      rows.push_back(promptTokens(tokenizer, prompts[i].prompt));
  BatchOptions sampling = options.sampling;
  sampling.stop.push_back("\n");
  auto begin = std::chrono::steady_clock::now();
  Expected<std::vector<Sample>> samples =
      samplePrompts(artifact, tokenizer, rows, sampling);
  if (!samples)
    return samples.status();
  JudgeResult result;
  result.seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - begin)
                       .count();
  result.prompts = static_cast<int64_t>(count);
  result.samples = static_cast<int64_t>(samples->size());
  for (size_t i = 0; i < samples->size(); ++i) {
    const std::string &answer =
        prompts[i / static_cast<size_t>(options.samples)].answer;
    bool right = judgeAnswer((*samples)[i].text, answer);
    result.correct += right;
    result.responses.push_back((*samples)[i].text);
    result.verdicts.push_back(right);
  }
  return result;
}

Expected<JudgedPairs> kiln::train::labelWithJudge(
    const runtime::Artifact &artifact, const Tokenizer &tokenizer,
    const std::vector<PromptAnswer> &prompts, int64_t samples,
    int64_t perPrompt, const BatchOptions &sampling) {
  if (samples < 2 || perPrompt < 1)
    return Status::error("labelling needs at least 2 samples per prompt and "
                         "1 pair per prompt");
  std::vector<std::vector<int32_t>> rows;
  for (const PromptAnswer &line : prompts)
    for (int64_t s = 0; s < samples; ++s)
      rows.push_back(promptTokens(tokenizer, line.prompt));
  BatchOptions options = sampling;
  options.stop.push_back("\n");
  Expected<std::vector<Sample>> drawn =
      samplePrompts(artifact, tokenizer, rows, options);
  if (!drawn)
    return drawn.status();
  JudgedPairs result;
  result.prompts = static_cast<int64_t>(prompts.size());
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::string right;
    std::vector<std::string> wrong;
    for (int64_t s = 0; s < samples; ++s) {
      const Sample &sample = (*drawn)[p * static_cast<size_t>(samples) +
                                      static_cast<size_t>(s)];
      // The answer's first line without surrounding spaces, as judged.
      std::string text = sample.text.substr(0, sample.text.find('\n'));
      size_t first = text.find_first_not_of(" \t\r");
      size_t last = text.find_last_not_of(" \t\r");
      text = first == std::string::npos ? ""
                                        : text.substr(first, last - first + 1);
      ++result.answers;
      if (judgeAnswer(text, prompts[p].answer)) {
        ++result.right;
        if (right.empty())
          right = text;
      } else if (!text.empty() &&
                 std::find(wrong.begin(), wrong.end(), text) == wrong.end()) {
        wrong.push_back(text);
      }
    }
    if (right.empty())
      continue;
    for (size_t w = 0; w < wrong.size() && static_cast<int64_t>(w) < perPrompt;
         ++w)
      result.pairs.push_back({prompts[p].prompt, right, wrong[w]});
  }
  return result;
}
