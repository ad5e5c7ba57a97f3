//===- Tasks.h - Generated tasks with a programmatic judge ------*- C++ -*-===//
//
// Tasks whose answers a program can check, rendered as text, for showing
// that fine-tuning and alignment work: `kiln task` writes their data, the
// judge scores a response against the answer, and `kiln judge` measures a
// model's held-out success rate by sampling answers through its KV cache.
//
//   arithmetic  "23+58="        -> "81"
//   sorting     "sort 5 2 9 7:" -> "2 5 7 9"
//
// Held-out prompts are combinations that never appear in training (a fixed
// hash of the operands picks them), so success on them is generalization.
// The demonstrations are imperfect on purpose (--noise): a model that
// imitates them answers wrongly that often, which alignment can fix.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_TASKS_H
#define KILN_TRAIN_TASKS_H

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/Status.h"
#include "kiln/Train/Examples.h"
#include "kiln/Train/Generate.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::train {

class Tokenizer;

struct TaskOptions {
  /// "arithmetic" or "sorting".
  std::string kind = "arithmetic";
  /// Demonstrations (sft.jsonl), preference pairs (pairs.jsonl), training
  /// prompts for reinforcement learning (prompts.jsonl), held-out prompts
  /// (test.jsonl).
  int64_t demonstrations = 4000, pairs = 4000, prompts = 2000, test = 400;
  /// The share of demonstrations whose response is wrong.
  double noise = 0.3;
  /// arithmetic: operands in [0, maxOperand]; sorting: lists of 3 to
  /// `maxLength` digits.
  int64_t maxOperand = 99, maxLength = 5;
  uint64_t seed = 0;
};

struct TaskSummary {
  int64_t demonstrations = 0, wrongDemonstrations = 0, pairs = 0, prompts = 0,
          test = 0;
};

/// Writes DIR/sft.jsonl ({"prompt", "response"}), DIR/pairs.jsonl
/// ({"prompt", "chosen", "rejected"}: right and wrong answers),
/// DIR/prompts.jsonl and DIR/test.jsonl ({"prompt", "answer"}), each
/// atomically. Errors on an unknown kind, counts below 1, noise outside
/// [0, 1], or a space too small to hold the held-out share.
runtime::Status writeTask(const std::string &dir, const TaskOptions &options,
                          TaskSummary *summary);

/// A prompt and its correct answer (prompts.jsonl, test.jsonl).
struct PromptAnswer {
  std::string prompt;
  std::string answer;
};

/// Reads JSON lines of {"prompt": text, "answer": text} (without
/// `needAnswers`, the answer may be missing and is then empty); errors name
/// the line.
runtime::Expected<std::vector<PromptAnswer>>
readPromptAnswers(const std::string &path, bool needAnswers = true);

/// The judge: the response, up to its first line break and without
/// surrounding spaces, equals the answer.
bool judgeAnswer(std::string_view response, std::string_view answer);

/// What `kiln judge` measures.
struct JudgeOptions {
  BatchOptions sampling;
  /// Samples per prompt (success rate over all of them).
  int64_t samples = 1;
  /// At most this many prompts (0: all).
  int64_t limit = 0;
};

struct JudgeResult {
  int64_t prompts = 0, samples = 0, correct = 0;
  double seconds = 0;
  /// Per sample, in prompt order: the response text and its verdict.
  std::vector<std::string> responses;
  std::vector<bool> verdicts;
};

/// Samples answers to the prompts through the artifact's KV cache (stopping
/// at the end token or a line break) and judges them.
runtime::Expected<JudgeResult>
judgePrompts(const runtime::Artifact &artifact, const Tokenizer &tokenizer,
             const std::vector<PromptAnswer> &prompts,
             const JudgeOptions &options);

/// On-policy preference pairs labelled by the judge (`kiln label
/// --judge`): `samples` answers to each prompt from the model (through its
/// KV cache, with `sampling`), and for each prompt with both right and
/// wrong answers, pairs of its first right answer with each distinct wrong
/// one (at most `perPrompt`). Empty answers are never used.
struct JudgedPairs {
  std::vector<PreferencePair> pairs;
  int64_t prompts = 0, answers = 0, right = 0;
};
runtime::Expected<JudgedPairs>
labelWithJudge(const runtime::Artifact &artifact, const Tokenizer &tokenizer,
               const std::vector<PromptAnswer> &prompts, int64_t samples,
               int64_t perPrompt, const BatchOptions &sampling);

} // namespace kiln::train

#endif // KILN_TRAIN_TASKS_H
