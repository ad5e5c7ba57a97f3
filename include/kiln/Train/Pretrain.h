//===- Pretrain.h - The kiln pretrain loop ----------------------*- C++ -*-===//
//
// Pretraining a language model from a training artifact (kiln-compile
// --mode train): tokenizer and token files in the run directory, batches
// from a resumable sampler, the learning rate from a schedule, train_step
// and eval_step calls, metrics as JSON lines, atomic checkpoints of every
// parameter and optimizer state with the step and sampler state in their
// metadata, and the loss plot at the end. `--resume` continues a run with
// exactly the losses an uninterrupted run gives.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_PRETRAIN_H
#define KILN_TRAIN_PRETRAIN_H

#include "kiln/Runtime/Status.h"
#include "kiln/Train/Schedule.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln::train {

struct PretrainOptions {
  /// What the run trains on: "pretrain" (next-token loss over a text
  /// corpus), "sft" (supervised fine-tuning: JSON lines of prompt and
  /// response, the loss over the response tokens only; Examples.h) or "dpo"
  /// (JSON lines of a prompt and a chosen and a rejected response; an
  /// artifact compiled with --objective dpo) or "grpo" (JSON lines of a
  /// prompt and its answer, rewarded by the judge of Tasks.h; an artifact
  /// compiled with --objective grpo and --kv-cache) or "ppo" (the same data;
  /// --objective ppo and --kv-cache) or "distill" (a text corpus, as
  /// pretraining, and a teacher artifact; --objective distill) or "clip"
  /// (an image-caption set, ImageText.h, and a clip artifact compiled with
  /// --objective contrastive; held-out retrieval is measured).
  std::string task = "pretrain";
  /// The training artifact (entry points train_step and eval_step).
  std::string artifact;
  /// pretrain: a text file or a directory of them; empty:
  /// defaultCorpusPath(). sft: a JSON-lines file of prompts and responses.
  /// clip: a directory with train.jsonl, val.jsonl and, optionally,
  /// novel.jsonl (as `kiln shapes` writes them).
  std::string data;
  /// sft: held-out prompt/response lines; empty: the last `valFraction` of
  /// `data`'s lines, after a seeded shuffle.
  std::string valData;
  /// The parameters to start from: a run directory (its checkpoint, and its
  /// tokenizer unless `tokenizer` is given) or a checkpoint/weights file.
  /// Only the model's parameters are taken; the optimizer starts afresh.
  /// Empty: the artifact's own initial parameters.
  std::string init;
  /// dpo: the strength of the preference (train_step's beta) and the
  /// weight of the chosen responses' negative log-likelihood (nll_coef).
  double beta = 0.1, nllCoef = 0;
  /// grpo: samples per prompt, the KL penalty's weight, the ratio clip, the
  /// sampling temperature and the longest response.
  int64_t group = 8;
  double klCoef = 0.04, clip = 0.2, temperature = 1.0;
  int64_t maxTokens = 16;
  /// ppo: updates per batch of rollouts, the value clip and weight, and
  /// GAE's discount and lambda.
  int64_t ppoEpochs = 4;
  /// ppo: minibatches per pass (rows of the batch; each update is the
  /// static batch with the other rows' targets -100).
  int64_t ppoMinibatches = 1;
  /// grpo, ppo: a reward model artifact (a score head) whose scores reward
  /// the answers instead of the judge, and the run or checkpoint its
  /// parameters come from (a training artifact; empty: its own).
  std::string rewardModel, rewardCheckpoint;
  double valueClip = 0.2, vfCoef = 0.1, gamma = 1.0, lambda = 0.95;
  /// distill: the teacher artifact (forward; hidden_states for a
  /// hidden-state term) and the run or checkpoint its parameters come from
  /// (a training artifact; its run directory also gives the tokenizer).
  std::string teacher, teacherCheckpoint;
  /// distill: the weight of the soft (teacher) term against the hard
  /// cross-entropy, the share of reverse KL in the divergence, and the
  /// hidden-state term's weight; `temperature` softens both distributions.
  double alpha = 0.5, reverse = 0, hiddenCoef = 1.0;
  /// distill: keep the teacher's outputs for every training window in
  /// RUN_DIR/teacher.cache, computed once, instead of running the teacher
  /// on every batch; start the student from the teacher's layers.
  bool cacheTeacher = false, initFromTeacher = false;
  /// The run directory (created when missing).
  std::string runDir;
  /// Optimizer steps in all (a resumed run continues up to this count).
  int64_t steps = 1000;
  /// Batch and sequence length; 0 takes the artifact's static sizes.
  int64_t batch = 0, seq = 0;
  /// Peak learning rate, warmup, decay (totalSteps is set to `steps`).
  ScheduleOptions schedule;
  uint64_t seed = 0;
  /// Continue the run in runDir from its checkpoint.
  bool resume = false;
  /// The run.json keys ("artifact", "data", "lr", ...) that the command line
  /// set. On resume each must equal the value recorded when the run started
  /// (the same command plus --resume is accepted); the others are restored.
  std::vector<std::string> givenSettings;
  /// Evaluate every this many steps (and at the end); 0: only at the end.
  int64_t evalEvery = 100;
  int64_t evalBatches = 8;
  /// Checkpoint every this many steps (and at the end); 0: only at the end.
  int64_t checkpointEvery = 500;
  /// A SentencePiece model to use; empty: train one on the corpus, with
  /// `vocabSize` pieces (0: the model's vocabulary size).
  std::string tokenizer;
  int vocabSize = 0;
  double valFraction = 0.05;
  /// The machine's FMA peak for MFU, and its power draw for energy.
  double peakGflops = 520.0;
  double watts = 65.0;
  /// Progress on `log` (stderr): a live line on a terminal, one line per
  /// `logEvery` steps otherwise.
  int64_t logEvery = 10;
};

/// Runs (or resumes) a pretraining or fine-tuning run (options.task);
/// errors name the problem: a missing corpus, an empty one, a batch larger
/// than the data, an example longer than the sequence, an artifact without
/// train_step, a run directory that already holds a run (without --resume),
/// a resumed run of the other task.
runtime::Status pretrain(PretrainOptions options, std::FILE *log);

/// The files of a run directory.
std::string checkpointPath(const std::string &runDir);
/// The options a run was started with, from its run.json (its task
/// included).
runtime::Expected<PretrainOptions> loadRunOptions(const std::string &runDir);
std::string runConfigPath(const std::string &runDir);
std::string tokenizerModelPath(const std::string &runDir);
std::string lossPlotPath(const std::string &runDir);

/// Writes runDir/loss.png from runDir/metrics.jsonl (LossPlot.cpp; the
/// drawing is libkiln_plot's).
runtime::Status plotRun(const std::string &runDir, std::string *pngPath);

/// Writes `pngPath`: one curve per run of `metric` ("eval_loss", "loss",
/// any number metrics.jsonl has) against the step, named by the run
/// directory's last component, for comparing runs.
runtime::Status plotRuns(const std::vector<std::string> &runDirs,
                         const std::string &metric,
                         const std::string &pngPath);

} // namespace kiln::train

#endif // KILN_TRAIN_PRETRAIN_H
