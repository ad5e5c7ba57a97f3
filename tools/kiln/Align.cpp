//===- Align.cpp - kiln task and kiln judge -------------------------------===//
//
// The commands around alignment that are not training loops: generating a
// task with a programmatic judge, and measuring a model's success rate on
// it.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Train/Pretrain.h"
#include "kiln/Train/Tasks.h"
#include "kiln/Train/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
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

double parseReal(const std::string &option, const std::string &text) {
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(value))
    fail("option " + option + " needs a number, not '" + text + "'");
  return value;
}

} // namespace

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
    t.noise = parseReal("--noise", o.values["--noise"]);
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
  std::string tokenizerPath, checkpoint;
  if (o.values.count("--run")) {
    tokenizerPath = kiln::train::tokenizerModelPath(o.values["--run"]);
    checkpoint = kiln::train::checkpointPath(o.values["--run"]);
  }
  if (o.values.count("--tokenizer"))
    tokenizerPath = o.values["--tokenizer"];
  if (o.values.count("--checkpoint"))
    checkpoint = o.values["--checkpoint"];
  if (tokenizerPath.empty())
    fail("'kiln judge' needs a tokenizer: --run RUN_DIR or --tokenizer MODEL");
  Expected<kiln::train::Tokenizer> tokenizer =
      kiln::train::Tokenizer::load(tokenizerPath);
  if (!tokenizer)
    fail(tokenizer.message());
  Expected<std::vector<kiln::train::PromptAnswer>> prompts =
      kiln::train::readPromptAnswers(o.values["--data"]);
  if (!prompts)
    fail(prompts.message());
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  if (!checkpoint.empty()) {
    if (!artifact->writesParameters()) {
      if (o.values.count("--checkpoint"))
        fail("'" + o.artifact + "' is an inference artifact: it keeps the "
             "weights it was compiled with (kiln-compile --weights)");
      std::fprintf(stderr,
                   "kiln judge: '%s' is an inference artifact: using the "
                   "weights it was compiled with, not %s\n",
                   o.artifact.c_str(), checkpoint.c_str());
    } else if (Status s = artifact->loadParameters(
                   checkpoint, /*requireAll=*/true,
                   Artifact::LoadSelection::ModelOnly);
               !s) {
      fail(s.message());
    }
  }
  kiln::train::JudgeOptions j;
  j.sampling.maxTokens = 16;
  j.sampling.sampling.temperature = 0;
  if (o.values.count("--samples"))
    j.samples = parseCount("--samples", o.values["--samples"], 1);
  if (o.values.count("--temperature"))
    j.sampling.sampling.temperature =
        parseReal("--temperature", o.values["--temperature"]);
  if (o.values.count("--top-k"))
    j.sampling.sampling.topK = parseCount("--top-k", o.values["--top-k"], 0);
  if (o.values.count("--top-p"))
    j.sampling.sampling.topP = parseReal("--top-p", o.values["--top-p"]);
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
      kiln::train::judgePrompts(*artifact, *tokenizer, *prompts, j);
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
