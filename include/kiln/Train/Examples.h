//===- Examples.h - Prompt/response examples for fine-tuning ----*- C++ -*-===//
//
// The data of `kiln sft` (and of the preference methods after it): JSON
// lines of a prompt and a response, tokenized once into the run directory,
// drawn in shuffled epochs. Each example becomes one row of a batch whose
// targets are -100 (ignored by the loss) wherever the next token is still
// part of the prompt, so train_step's mean cross-entropy is over the
// response tokens only.
//
//   {"prompt": "2+3=", "response": "5"}
//
// The row of an example with prompt tokens p1..pn and response tokens
// r1..rm (then the end-of-text token, when the tokenizer has one) is
//
//   input_ids  p1  ... pn  r1 ... rm          pad ...
//   targets   -100 ... r1  r2 ... rm  </s>   -100 ...
//
// so the model learns to continue a prompt with its response and to stop.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_EXAMPLES_H
#define KILN_TRAIN_EXAMPLES_H

#include "kiln/Runtime/Status.h"
#include "kiln/Train/TokenData.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::train {

/// One line of a prompt/response file.
struct PromptResponse {
  std::string prompt;
  std::string response;
};

/// Reads JSON lines of {"prompt": text, "response": text} (other keys are
/// ignored; blank lines are skipped). Errors name the file and line: not
/// JSON, not an object, a missing or non-string prompt or response, an
/// empty response, no examples at all.
Expected<std::vector<PromptResponse>>
readPromptResponses(const std::string &path);

/// A tokenized example: `tokens` is the prompt's tokens then the
/// response's (and end-of-text); the first `promptTokens` are the prompt.
struct Example {
  int64_t promptTokens = 0;
  std::vector<int32_t> tokens;
};

/// Tokenizes one example as the header describes (the prompt through
/// promptTokens(), so generation sees the same prompt tokens).
Example encodeExample(const Tokenizer &tokenizer, const PromptResponse &text);

/// `<runDir>/train.examples.jsonl` and `<runDir>/val.examples.jsonl`.
std::string trainExamplesPath(const std::string &runDir);
std::string valExamplesPath(const std::string &runDir);

/// Writes examples as JSON lines {"prompt_tokens": n, "tokens": [...]},
/// atomically.
Status writeExamples(const std::string &path,
                     const std::vector<Example> &examples);
/// Reads what writeExamples wrote, checking every id is below `vocabSize`
/// and every example has at least one prompt and one response token.
Expected<std::vector<Example>> readExamples(const std::string &path,
                                            int64_t vocabSize);

/// Fills row `row` of `batch` (whose batch and seq are set and whose
/// vectors are sized) with `example`, padded with `padId` and target -100.
/// The example must have at most seq + 1 tokens.
void fillExampleRow(const Example &example, int64_t row, int64_t padId,
                    Batch &batch);

/// Checks every example fits a row of `seq` positions (seq + 1 tokens);
/// the error names the longest one and the --seq it needs. `what` names
/// the data ("training example").
Status checkExamplesFit(const std::vector<Example> &examples, int64_t seq,
                        const std::string &what);

/// Batches of the examples in order, the last one filled up with rows whose
/// targets are all -100 (the loss ignores them).
std::vector<Batch> exampleBatches(const std::vector<Example> &examples,
                                  int64_t batch, int64_t seq, int64_t padId);

/// Indices of `count` items drawn `group` at a time in epochs, each a fresh
/// permutation (Fisher–Yates with a std::mt19937_64 seeded from the seed
/// and the epoch, reduced by rejection sampling). A group may span two
/// epochs. The state is the number of groups drawn.
class EpochOrder {
public:
  EpochOrder() = default;
  EpochOrder(int64_t count, int64_t group, uint64_t seed)
      : count_(count), group_(group), seed_(seed) {}
  std::vector<int64_t> next();
  int64_t drawn() const { return drawn_; }
  void setDrawn(int64_t drawn) { drawn_ = drawn; }
  /// Items drawn / count.
  double epochs() const;
  int64_t count() const { return count_; }
  int64_t group() const { return group_; }
  uint64_t seed() const { return seed_; }

private:
  const std::vector<int64_t> &order(int64_t epoch);

  int64_t count_ = 0, group_ = 0;
  uint64_t seed_ = 0;
  int64_t drawn_ = 0;
  int64_t orderEpoch_ = -1;
  std::vector<int64_t> order_;
};

/// Saves and restores an EpochOrder's state as one line,
/// "<tag> 1 <group> <seq> <count> <seed> <drawn>"; restoring checks every
/// field but the count of groups drawn. `what` names the data in errors
/// ("example").
std::string saveEpochState(const std::string &tag, const EpochOrder &order,
                           int64_t seq);
Status restoreEpochState(const std::string &tag, const std::string &what,
                         const std::string &state, int64_t seq,
                         EpochOrder &order);

/// Draws batches of examples in epochs (EpochOrder, one example per row).
/// The state is the number of batches drawn, so a checkpoint stores one
/// line and a resumed run sees the same batches.
class ExampleSampler {
public:
  /// Errors when batch or seq is not positive, there are no examples, or
  /// one does not fit seq.
  static Expected<ExampleSampler> create(std::vector<Example> examples,
                                         int64_t batch, int64_t seq,
                                         int64_t padId, uint64_t seed);

  Batch next();
  int64_t batchesDrawn() const { return order_.drawn(); }
  /// Epochs completed, as a fraction (examples drawn / examples).
  double epochs() const { return order_.epochs(); }

  /// "kiln-example-sampler 1 <batch> <seq> <examples> <seed> <drawn>".
  std::string saveState() const;
  /// Continues from a saved state; errors, leaving this sampler unchanged,
  /// when it is not one or was saved for another batch, seq, example count
  /// or seed.
  Status restoreState(const std::string &state);

  const std::vector<Example> &examples() const { return examples_; }

private:
  ExampleSampler() = default;

  std::vector<Example> examples_;
  int64_t seq_ = 0, padId_ = 0;
  EpochOrder order_;
};

//===----------------------------------------------------------------------===//
// Preference pairs (kiln dpo, kiln reward)
//===----------------------------------------------------------------------===//

/// One line of a preference file: two responses to a prompt, the first
/// preferred.
struct PreferencePair {
  std::string prompt;
  std::string chosen;
  std::string rejected;
};

/// Reads JSON lines of {"prompt": text, "chosen": text, "rejected": text}.
/// Errors as readPromptResponses, and a pair whose responses are identical
/// (nothing to prefer) or empty.
Expected<std::vector<PreferencePair>>
readPreferencePairs(const std::string &path);

/// A tokenized pair, and the reference model's summed response
/// log-probability of each response (DPO's r_c and r_r; NaN until
/// computed).
struct PairExample {
  Example chosen, rejected;
  double referenceChosen = 0, referenceRejected = 0;
};

/// `<runDir>/train.pairs.jsonl` and `<runDir>/val.pairs.jsonl`.
std::string trainPairsPath(const std::string &runDir);
std::string valPairsPath(const std::string &runDir);

/// JSON lines {"chosen": {"prompt_tokens", "tokens"}, "rejected": {...},
/// "reference": [r_c, r_r]}, written atomically; reading checks ids and
/// lengths as readExamples, and finite references.
Status writePairs(const std::string &path, const std::vector<PairExample> &pairs);
Expected<std::vector<PairExample>> readPairs(const std::string &path,
                                             int64_t vocabSize);

/// The batch of `pairs` (at most batch / 2 of them): rows [0, P) the chosen
/// responses, [P, 2P) the rejected ones (P = batch / 2; missing pairs are
/// rows of ignored targets), the extra input reference_logprobs per row,
/// and each row's length (at most seq).
Batch pairBatch(const std::vector<const PairExample *> &pairs, int64_t batch,
                int64_t seq, int64_t padId);

} // namespace kiln::train

#endif // KILN_TRAIN_EXAMPLES_H
