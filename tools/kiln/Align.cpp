//===- Align.cpp - kiln task and kiln judge -------------------------------===//
//
// The commands around alignment that are not training loops: generating a
// task with a programmatic judge, and measuring a model's success rate on
// it.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Train/Metrics.h"
#include "kiln/Train/Pretrain.h"
#include "kiln/Train/Tasks.h"
#include "kiln/Train/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace kiln::driver {

namespace {

const char kTaskUsage[] =
    R"(USAGE: kiln task arithmetic|sorting --out DIR [options]

Writes a task whose answers a program checks, as JSON lines:

  DIR/sft.jsonl      demonstrations {"prompt", "response"} for kiln sft,
                     --noise of them wrong on purpose
  DIR/pairs.jsonl    {"prompt", "chosen", "rejected"} (right and wrong
                     answers) for kiln dpo
  DIR/prompts.jsonl  {"prompt", "answer"} for reinforcement learning
  DIR/test.jsonl     held-out {"prompt", "answer"}: combinations that never
                     appear in the other files, for kiln judge

  arithmetic  "23+58="        -> "81"       (operands 0..--max-operand)
  sorting     "sort 5 2 9 7:" -> "2 5 7 9"  (3..--max-length digits)

OPTIONS:
  --out DIR               where to write (required)
  --demonstrations N      lines of sft.jsonl (default 4000)
  --pairs N               lines of pairs.jsonl (default 4000)
  --prompts N             lines of prompts.jsonl (default 2000)
  --test N                lines of test.jsonl (default 400)
  --noise F               share of wrong demonstrations (default 0.3)
  --max-operand N         arithmetic operands (default 99)
  --max-length N          sorting list length (default 5)
  --seed S                (default 0)
  -h, --help              this text
)";

const char kJudgeUsage[] =
    R"(USAGE: kiln judge NAME.kiln --data FILE.jsonl (--run RUN_DIR | --tokenizer MODEL) [options]

Measures a model's success rate on {"prompt", "answer"} lines (kiln task's
test.jsonl): samples an answer to every prompt through the artifact's KV
cache (kiln-compile --kv-cache; up to a line break or the end token) and
judges it right when, without surrounding spaces, it equals the answer.
Greedy by default, so the rate is the model's, not the sampler's luck.

OPTIONS:
  --data FILE.jsonl     the prompts and answers (required)
  --run RUN_DIR         the run's tokenizer and, for a training artifact, the
                        model's parameters of its checkpoint
  --tokenizer MODEL     a SentencePiece model (instead of --run)
  --checkpoint FILE     parameters to load (training artifacts)
  --samples K           answers per prompt (default 1)
  --temperature T       (default 0: greedy); --top-k K, --top-p P as kiln
                        generate
  --max-tokens N        answer length limit (default 16)
  --seed S              sampling seed (default 0)
  --limit N             only the first N prompts
  --show N              print N judged answers
  --json                one JSON object: correct, samples, prompts, rate,
                        seconds
  -h, --help            this text
)";

const char kLabelUsage[] =
    R"(USAGE: kiln label NAME.kiln --prompts FILE.jsonl --out PAIRS.jsonl (--run RUN_DIR | --tokenizer MODEL) [options]

Makes preference pairs ({"prompt", "chosen", "rejected"} lines, which kiln
dpo and kiln reward read) from the model's own answers:

- by a person (the default): for each prompt (JSON lines with a "prompt"),
  two answers are sampled and shown; type 1 or 2 for the better one, s to
  skip, q to quit. Each choice is appended to PAIRS.jsonl at once, so an
  interrupted session keeps what was labelled (run it again with --skip N
  to go on).
- by the judge (--judge): prompts with answers (kiln task's prompts.jsonl);
  --samples answers to each are drawn and judged, and each prompt with
  right and wrong answers gives pairs of a right one with distinct wrong
  ones (at most --pairs-per-prompt). These are on-policy pairs: the
  rejected answers are the mistakes this model makes.

OPTIONS:
  --prompts FILE.jsonl  the prompts (required)
  --out PAIRS.jsonl     where the pairs are appended (required)
  --run RUN_DIR         the tokenizer and (training artifact) the parameters
  --tokenizer MODEL     a SentencePiece model (instead of --run)
  --checkpoint FILE     parameters to load (training artifacts)
  --judge               label with the judge instead of a person
  --samples K           answers per prompt with --judge (default 4)
  --pairs-per-prompt N  (default 2)
  --temperature T       sampling temperature (default 1.0)
  --max-tokens N        answer length limit (default 16)
  --seed S              sampling seed (default 0)
  --skip N              start after the first N prompts
  --limit N             at most N prompts
  -h, --help            this text
)";


} // namespace

int labelCommand(int argc, char **argv) {
  Options o = parseOptions(
      "label", argc, argv, 2,
      {"--prompts", "--out", "--run", "--tokenizer", "--checkpoint",
       "--samples", "--pairs-per-prompt", "--temperature", "--max-tokens",
       "--seed", "--skip", "--limit"},
      kLabelUsage, {"--judge"});
  if (!o.values.count("--prompts") || !o.values.count("--out"))
    fail("'kiln label' needs --prompts FILE.jsonl and --out PAIRS.jsonl; see "
         "'kiln label --help'");
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  kiln::train::Tokenizer tokenizer =
      loadModel(o, *artifact, "label", /*requireAll=*/true);
  kiln::train::BatchOptions sampling;
  sampling.maxTokens = 16;
  sampling.sampling.temperature = 1.0;
  sampling.sampling.topK = 0;
  sampling.sampling.topP = 1.0;
  if (o.values.count("--temperature"))
    sampling.sampling.temperature =
        parseNumber("--temperature", o.values["--temperature"]);
  if (o.values.count("--max-tokens"))
    sampling.maxTokens = parseCount("--max-tokens", o.values["--max-tokens"], 1);
  if (o.values.count("--seed"))
    sampling.seed =
        static_cast<uint64_t>(parseCount("--seed", o.values["--seed"], 0));
  int64_t skip = o.values.count("--skip")
                     ? parseCount("--skip", o.values["--skip"], 0)
                     : 0;
  int64_t limit = o.values.count("--limit")
                      ? parseCount("--limit", o.values["--limit"], 1)
                      : 0;
  Expected<kiln::train::MetricsWriter> out =
      kiln::train::MetricsWriter::open(o.values["--out"]);
  if (!out)
    fail(out.message());
  auto write = [&](const kiln::train::PreferencePair &pair) {
    kiln::train::MetricsRow row;
    row.set("prompt", pair.prompt)
        .set("chosen", pair.chosen)
        .set("rejected", pair.rejected);
    if (Status s = out->write(row); !s)
      fail(s.message());
  };

  if (o.has("--judge")) {
    Expected<std::vector<kiln::train::PromptAnswer>> prompts =
        kiln::train::readPromptAnswers(o.values["--prompts"]);
    if (!prompts)
      fail(prompts.message());
    std::vector<kiln::train::PromptAnswer> picked(
        prompts->begin() + std::min<int64_t>(skip, prompts->size()),
        prompts->end());
    if (limit && static_cast<int64_t>(picked.size()) > limit)
      picked.resize(static_cast<size_t>(limit));
    int64_t samples = o.values.count("--samples")
                          ? parseCount("--samples", o.values["--samples"], 2)
                          : 4;
    int64_t perPrompt =
        o.values.count("--pairs-per-prompt")
            ? parseCount("--pairs-per-prompt", o.values["--pairs-per-prompt"], 1)
            : 2;
    Expected<kiln::train::JudgedPairs> judged = kiln::train::labelWithJudge(
        *artifact, tokenizer, picked, samples, perPrompt, sampling);
    if (!judged)
      fail(judged.message());
    for (const kiln::train::PreferencePair &pair : judged->pairs)
      write(pair);
    std::printf("label: %lld answers to %lld prompts, %lld right (%.1f%%); "
                "%zu pairs -> %s\n",
                static_cast<long long>(judged->answers),
                static_cast<long long>(judged->prompts),
                static_cast<long long>(judged->right),
                100.0 * static_cast<double>(judged->right) /
                    static_cast<double>(std::max<int64_t>(judged->answers, 1)),
                judged->pairs.size(), o.values["--out"].c_str());
    return 0;
  }

  // A person labels: prompts need no answers.
  Expected<std::vector<kiln::train::PromptAnswer>> lines =
      kiln::train::readPromptAnswers(o.values["--prompts"],
                                     /*needAnswers=*/false);
  if (!lines)
    fail(lines.message());
  std::vector<std::string> prompts;
  for (const kiln::train::PromptAnswer &line : *lines)
    prompts.push_back(line.prompt);
  int64_t done = 0, labelled = 0;
  for (size_t p = static_cast<size_t>(skip); p < prompts.size(); ++p) {
    if (limit && done >= limit)
      break;
    ++done;
    std::vector<int32_t> prompt =
        kiln::train::promptTokens(tokenizer, prompts[p]);
    kiln::train::BatchOptions options = sampling;
    options.seed = sampling.seed + 2 * static_cast<uint64_t>(p);
    options.stop.push_back("\n");
    Expected<std::vector<kiln::train::Sample>> two =
        kiln::train::sampleBatch(*artifact, tokenizer, prompt, 2, options);
    if (!two)
      fail(two.message());
    const std::string &a = (*two)[0].text, &b = (*two)[1].text;
    std::printf("[%zu/%zu] %s\n", p + 1, prompts.size(), prompts[p].c_str());
    if (a == b) {
      std::printf("  (the two answers are the same: skipped)\n  %s\n",
                  a.c_str());
      continue;
    }
    std::printf("  1: %s\n  2: %s\n", a.c_str(), b.c_str());
    bool quit = false;
    while (true) {
      std::printf("which is better? [1/2, s skip, q quit]: ");
      std::fflush(stdout);
      char buffer[64];
      if (!std::fgets(buffer, sizeof buffer, stdin)) {
        quit = true;
        std::printf("\n");
        break;
      }
      std::string choice(buffer);
      while (!choice.empty() && std::isspace(static_cast<unsigned char>(choice.back())))
        choice.pop_back();
      if (choice == "1" || choice == "2") {
        bool first = choice == "1";
        write({prompts[p], first ? a : b, first ? b : a});
        ++labelled;
        break;
      }
      if (choice == "s")
        break;
      if (choice == "q") {
        quit = true;
        break;
      }
    }
    if (quit)
      break;
  }
  std::printf("label: %lld pairs appended to %s\n",
              static_cast<long long>(labelled), o.values["--out"].c_str());
  return 0;
}

int taskCommand(int argc, char **argv) {
  Options o = parseOptions("task", argc, argv, 2,
                           {"--out", "--demonstrations", "--pairs", "--prompts",
                            "--test", "--noise", "--max-operand",
                            "--max-length", "--seed"},
                           kTaskUsage, {}, /*artifactRequired=*/false);
  if (o.artifact.empty())
    fail("'kiln task' needs a task: arithmetic or sorting; see 'kiln task "
         "--help'");
  if (!o.values.count("--out"))
    fail("'kiln task' needs --out DIR");
  kiln::train::TaskOptions t;
  t.kind = o.artifact;
  auto count = [&](const char *name, int64_t &out) {
    if (o.values.count(name))
      out = parseCount(name, o.values[name], 1);
  };
  count("--demonstrations", t.demonstrations);
  count("--pairs", t.pairs);
  count("--prompts", t.prompts);
  count("--test", t.test);
  count("--max-operand", t.maxOperand);
  count("--max-length", t.maxLength);
  if (o.values.count("--seed"))
    t.seed = static_cast<uint64_t>(parseCount("--seed", o.values["--seed"], 0));
  if (o.values.count("--noise"))
    t.noise = parseNumber("--noise", o.values["--noise"]);
  kiln::train::TaskSummary summary;
  if (Status s = kiln::train::writeTask(o.values["--out"], t, &summary); !s)
    fail(s.message());
  std::printf("%s: %lld demonstrations (%lld wrong), %lld pairs, %lld "
              "prompts, %lld held-out prompts -> %s\n",
              t.kind.c_str(), static_cast<long long>(summary.demonstrations),
              static_cast<long long>(summary.wrongDemonstrations),
              static_cast<long long>(summary.pairs),
              static_cast<long long>(summary.prompts),
              static_cast<long long>(summary.test), o.values["--out"].c_str());
  return 0;
}

int judgeCommand(int argc, char **argv) {
  Options o = parseOptions(
      "judge", argc, argv, 2,
      {"--data", "--run", "--tokenizer", "--checkpoint", "--samples",
       "--temperature", "--top-k", "--top-p", "--max-tokens", "--seed",
       "--limit", "--show"},
      kJudgeUsage, {"--json"});
  if (!o.values.count("--data"))
    fail("'kiln judge' needs --data FILE.jsonl ({\"prompt\", \"answer\"} "
         "lines, such as kiln task's test.jsonl)");
  Expected<std::vector<kiln::train::PromptAnswer>> prompts =
      kiln::train::readPromptAnswers(o.values["--data"]);
  if (!prompts)
    fail(prompts.message());
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  kiln::train::Tokenizer tokenizer =
      loadModel(o, *artifact, "judge", /*requireAll=*/true);
  kiln::train::JudgeOptions j;
  j.sampling.maxTokens = 16;
  j.sampling.sampling.temperature = 0;
  if (o.values.count("--samples"))
    j.samples = parseCount("--samples", o.values["--samples"], 1);
  if (o.values.count("--temperature"))
    j.sampling.sampling.temperature =
        parseNumber("--temperature", o.values["--temperature"]);
  if (o.values.count("--top-k"))
    j.sampling.sampling.topK = parseCount("--top-k", o.values["--top-k"], 0);
  if (o.values.count("--top-p"))
    j.sampling.sampling.topP = parseNumber("--top-p", o.values["--top-p"]);
  if (o.values.count("--max-tokens"))
    j.sampling.maxTokens =
        parseCount("--max-tokens", o.values["--max-tokens"], 1);
  if (o.values.count("--seed"))
    j.sampling.seed =
        static_cast<uint64_t>(parseCount("--seed", o.values["--seed"], 0));
  if (o.values.count("--limit"))
    j.limit = parseCount("--limit", o.values["--limit"], 1);
  int64_t show =
      o.values.count("--show") ? parseCount("--show", o.values["--show"], 0) : 0;
  Expected<kiln::train::JudgeResult> r =
      kiln::train::judgePrompts(*artifact, tokenizer, *prompts, j);
  if (!r)
    fail(r.message());
  double rate = static_cast<double>(r->correct) / static_cast<double>(r->samples);
  for (int64_t i = 0; i < std::min<int64_t>(show, r->samples); ++i) {
    const auto &line = (*prompts)[static_cast<size_t>(i / j.samples)];
    std::printf("%s %s%s (answer %s)\n", r->verdicts[i] ? "right" : "wrong",
                line.prompt.c_str(), r->responses[i].c_str(),
                line.answer.c_str());
  }
  if (o.has("--json")) {
    nlohmann::ordered_json out = {{"correct", r->correct},
                                  {"samples", r->samples},
                                  {"prompts", r->prompts},
                                  {"rate", rate},
                                  {"seconds", r->seconds}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("judge: %lld/%lld right (%.1f%%) on %lld prompts in %.1f s\n",
                static_cast<long long>(r->correct),
                static_cast<long long>(r->samples), 100.0 * rate,
                static_cast<long long>(r->prompts), r->seconds);
  }
  return 0;
}

} // namespace kiln::driver
