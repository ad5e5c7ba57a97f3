//===- Train.cpp - kiln pretrain, plot and generate ----------------------===//
//
// The commands over libkiln_train: pretrain, plot and generate.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Train/Corpus.h"
#include "kiln/Train/Eval.h"
#include "kiln/Train/Generate.h"
#include "kiln/Train/Pretrain.h"
#include "kiln/Train/TokenData.h"
#include "kiln/Train/Tokenizer.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace kiln::driver {

namespace {

const char kPretrainUsage[] =
    R"(USAGE: kiln pretrain NAME.kiln --out RUN_DIR [options]
       kiln pretrain --resume --out RUN_DIR [--steps N] [NAME.kiln options]

Pretrains a language model from a training artifact (kiln-compile --mode
train) on a text corpus. Trains a SentencePiece tokenizer on the corpus
(unless --tokenizer is given), tokenizes it once into RUN_DIR, holds out the
last --val-fraction for evaluation, and runs --steps optimizer steps with the
learning rate from the schedule. Writes RUN_DIR/metrics.jsonl (one JSON
object per step: loss, lr, grad_norm, tokens/s, MFU, energy; eval loss and
perplexity every --eval-every steps), RUN_DIR/checkpoint.safetensors every
--checkpoint-every steps and at the end (atomically), and RUN_DIR/loss.png.
--resume continues the run in RUN_DIR from its checkpoint with exactly the
losses an uninterrupted run gives: the options come from RUN_DIR/run.json,
so the original command line plus --resume works; an option given with a
different value than the run was started with is refused (--steps may
change, to extend the run).

With --task clip it trains a CLIP model (a clip config compiled with
--mode train --objective contrastive) on an image-caption set instead:
--data DIR holds train.jsonl, val.jsonl and optionally novel.jsonl, lines of
{"image": FILE, "caption": TEXT} ('kiln shapes' writes such a set). The
tokenizer is trained on the training captions; each caption ends in the
text tower's eos_token_id; each evaluation adds the held-out contrastive
loss and zero-shot retrieval (image to text and text to image, top-1 and
top-5, with chance) on val and novel to metrics.jsonl.

With --task caption it trains a captioner (a llava or vision-encoder-decoder
config compiled with --mode train) on the same kind of set: each caption follows its image
(the image tokens are the decoder's prefix) between the tokenizer's <s>
and </s>, and the loss is the cross-entropy of its tokens. Each evaluation
adds the held-out caption loss and perplexity, and greedy captions of
every val and novel image: the share equal to the reference and the share
of words right.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --task text|clip|caption
                          next-token pretraining on text (default),
                          contrastive image-caption training, or captioning
  --data FILE_OR_DIR      text file or directory of them (default: Debian's
                          fortunes, /usr/share/games/fortunes); with --task
                          clip or caption, the image-caption set's directory
  --steps N               optimizer steps (default 1000)
  --batch B, --seq T      batch and sequence length (default: the artifact's)
  --lr LR                 peak learning rate (default 3e-4)
  --min-lr LR             where the decay ends (default lr/10 for cosine, 0
                          for linear)
  --warmup N              linear warmup steps (default 0)
  --schedule KIND         cosine (default), linear or constant
  --seed S                data order and tokenizer seed (default 0)
  --eval-every N          steps between evaluations (default 100; 0: end)
  --eval-batches N        held-out batches per evaluation (default 8)
  --checkpoint-every N    steps between checkpoints (default 500; 0: end)
  --tokenizer MODEL       a SentencePiece model to use instead of training one
  --vocab-size N          pieces of the trained tokenizer (default: the
                          model's vocabulary)
  --val-fraction F        held-out share of the tokens (default 0.05)
  --peak-gflops G         the machine's FMA peak, for MFU (default 520: 2 Zen 5
                          cores, fp32)
  --watts W               power draw, for the energy estimate (default 65)
  --log-every N           progress line every N steps when not on a terminal
                          (default 10)
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kSftUsage[] =
    R"(USAGE: kiln sft NAME.kiln --data FILE.jsonl --out RUN_DIR [--init RUN_DIR] [options]
       kiln sft --resume --out RUN_DIR [--steps N] [NAME.kiln options]

Supervised fine-tuning of a language model from a training artifact
(kiln-compile --mode train) on prompt/response pairs, one JSON object per
line:

  {"prompt": "Q: 2+3=? A:", "response": " 5"}

Each example is one row of a batch: the prompt's tokens, the response's and
the end-of-text token, padded to the sequence length. The loss is the
next-token cross-entropy over the response tokens only (the prompt and the
padding are ignored, target -100), so the model learns to answer, not to
write prompts. Examples are drawn in shuffled epochs. --init starts from a
pretraining (or earlier fine-tuning) run's parameters and tokenizer; the
optimizer starts afresh. The run directory holds what kiln pretrain's does
(run.json, checkpoint.safetensors, metrics.jsonl with the held-out response
loss and the epoch, loss.png, tokenizer.model) and the tokenized examples
(train.examples.jsonl, val.examples.jsonl), so kiln generate --run RUN_DIR
samples from the fine-tuned model and --resume repeats an uninterrupted
run bit for bit.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --data FILE.jsonl       prompt/response lines (required)
  --val-data FILE.jsonl   held-out lines (default: --val-fraction of --data,
                          chosen by a seeded shuffle)
  --init RUN_DIR|FILE     start from a run's checkpoint (and its tokenizer),
                          or from a checkpoint/weights .safetensors file
  --steps N               optimizer steps (default 1000)
  --batch B, --seq T      batch and sequence length (default: the artifact's);
                          an example longer than T + 1 tokens is an error
  --lr LR                 peak learning rate (default 1e-4)
  --min-lr LR             where the decay ends (default lr/10 for cosine, 0
                          for linear)
  --warmup N              linear warmup steps (default 0)
  --schedule KIND         cosine (default), linear or constant
  --seed S                example order, split and tokenizer seed (default 0)
  --eval-every N          steps between evaluations (default 100; 0: end)
  --eval-batches N        held-out batches per evaluation (default 8)
  --checkpoint-every N    steps between checkpoints (default 500; 0: end)
  --tokenizer MODEL       a SentencePiece model (default: --init's, else one
                          trained on the examples)
  --vocab-size N          pieces of a trained tokenizer (default: the
                          model's vocabulary)
  --val-fraction F        held-out share of --data (default 0.1)
  --peak-gflops G         the machine's FMA peak, for MFU (default 520)
  --watts W               power draw, for the energy estimate (default 65)
  --log-every N           progress line every N steps when not on a terminal
                          (default 10)
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kDpoUsage[] =
    R"(USAGE: kiln dpo NAME.kiln --data FILE.jsonl --out RUN_DIR --init RUN_DIR [options]
       kiln dpo --resume --out RUN_DIR [--steps N] [NAME.kiln options]

Direct preference optimization (Rafailov et al., 2023) of a language model
on preference pairs, one JSON object per line:

  {"prompt": "12+30=", "chosen": "42", "rejected": "41"}

NAME.kiln is compiled with kiln-compile --mode train --objective dpo and a
static, even --batch B: each step takes B/2 pairs (chosen rows, then
rejected rows, laid out as kiln sft's examples). The reference is the model
the run starts from (--init, usually a kiln sft run): before the first step
every pair's summed response log-probability under it is computed once and
kept in RUN_DIR/{train,val}.pairs.jsonl, so no second model is held. The
loss is -log sigmoid(beta * ((s_c - r_c) - (s_r - r_r))), s the policy's
summed response log-probability, r the reference's. metrics.jsonl adds the
held-out preference accuracy (the share of pairs whose margin is
positive), the mean margin and the implicit rewards beta * (s - r) of the
chosen and rejected responses; the step-0 loss is log 2. The run directory
and --resume are kiln sft's.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --data FILE.jsonl       preference lines (required)
  --val-data FILE.jsonl   held-out lines (default: --val-fraction of --data)
  --init RUN_DIR|FILE     the starting parameters and the reference (a run's
                          checkpoint and tokenizer, or a .safetensors file)
  --beta B                preference strength (default 0.1)
  --nll-coef A            add A x the chosen responses' mean negative
                          log-likelihood per token to the loss (iterative
                          RPO; default 0: plain DPO)
  --steps N               optimizer steps (default 1000)
  --batch B, --seq T      rows (pairs x 2) and sequence length (default: the
                          artifact's)
  --lr LR                 peak learning rate (default 1e-5)
  --min-lr, --warmup, --schedule, --seed, --eval-every, --eval-batches,
  --checkpoint-every, --tokenizer, --vocab-size, --val-fraction (default
  0.1), --peak-gflops, --watts, --log-every: as kiln sft
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kGrpoUsage[] =
    R"(USAGE: kiln grpo NAME.kiln --data FILE.jsonl --out RUN_DIR --init RUN_DIR [options]
       kiln grpo --resume --out RUN_DIR [--steps N] [NAME.kiln options]

Group-relative policy optimization (Shao et al., 2024) against a
programmatic judge, on prompts with answers, one JSON object per line
(kiln task's prompts.jsonl):

  {"prompt": "23+58=", "answer": "81"}

NAME.kiln is compiled with kiln-compile --mode train --objective grpo
--kv-cache N and a static --batch B = prompts per step x --group. Each step
samples --group answers to each of B/group prompts through the artifact's
own KV cache (the current policy; temperature --temperature, up to
--max-tokens tokens or a line break), rewards each 1 when the judge finds
it right and 0 otherwise, normalizes the rewards within each group (the
advantages; a group whose answers are all right or all wrong teaches
nothing), and takes one train_step on the clipped surrogate with a KL
penalty (weight --kl-coef) to the reference: the starting model (--init),
held as one frozen copy of the weights without optimizer state. The
held-out success rate (greedy answers to --val-data, judged) is evaluated
every --eval-every steps; metrics.jsonl records per step the mean reward,
the KL to the reference, the sampled tokens' entropy estimate, the
response length and the share of rows that carry a learning signal.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --data FILE.jsonl       training prompts with answers (required)
  --val-data FILE.jsonl   held-out prompts (kiln task's test.jsonl; default:
                          --val-fraction of --data)
  --init RUN_DIR|FILE     the starting parameters and the reference
  --group G               samples per prompt (default 8)
  --kl-coef K             weight of the KL penalty (default 0.04)
  --clip E                ratio clip (default 0.2)
  --temperature T         rollout sampling temperature (default 1.0)
  --max-tokens N          longest answer (default 16)
  --reward-model RM.kiln  reward the answers with a reward model's score
                          (kiln reward) instead of the judge; the judge's
                          verdicts are still recorded (success)
  --reward-checkpoint RUN_DIR|FILE  the reward model's parameters
  --steps N               optimizer steps (default 1000)
  --lr LR                 peak learning rate (default 1e-5)
  --eval-batches N        held-out prompts judged: N x batch (default 8)
  --batch, --seq, --min-lr, --warmup, --schedule, --seed, --eval-every,
  --checkpoint-every, --tokenizer, --vocab-size, --val-fraction,
  --peak-gflops, --watts, --log-every: as kiln sft
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kRewardUsage[] =
    R"(USAGE: kiln reward NAME.kiln --data FILE.jsonl --out RUN_DIR [--init RUN_DIR] [options]
       kiln reward --resume --out RUN_DIR [--steps N] [NAME.kiln options]

Trains a reward model on preference pairs (kiln dpo's JSON lines: prompt,
chosen, rejected). NAME.kiln is compiled with kiln-compile --mode train
--objective reward and a static, even --batch B: the language model with a
score head (score.weight, a linear map of the final hidden state of each
response's last token to one number; the end token, as transformers'
*ForSequenceClassification scores the last token). Each step takes B/2
pairs, chosen responses in the first half of the rows, and minimizes the
Bradley-Terry loss -log sigmoid(score_chosen - score_rejected). --init
starts the trunk from a language-model run (its score head starts afresh).
metrics.jsonl records the held-out loss, the pairwise accuracy (the share
of held-out pairs whose chosen response scores higher) and the mean margin.
The run directory and --resume are kiln dpo's.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --data FILE.jsonl       preference lines (required)
  --val-data FILE.jsonl   held-out lines (default: --val-fraction of --data)
  --init RUN_DIR|FILE     starting parameters (those the file has)
  --steps N               optimizer steps (default 1000)
  --lr LR                 peak learning rate (default 1e-4)
  --batch, --seq, --min-lr, --warmup, --schedule, --seed, --eval-every,
  --eval-batches, --checkpoint-every, --tokenizer, --vocab-size,
  --val-fraction, --peak-gflops, --watts, --log-every: as kiln sft
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kPpoUsage[] =
    R"(USAGE: kiln ppo NAME.kiln --data FILE.jsonl --out RUN_DIR --init RUN_DIR [options]
       kiln ppo --resume --out RUN_DIR [--steps N] [NAME.kiln options]

Proximal policy optimization (Schulman et al., 2017, as TRL runs it for
language models) against a programmatic judge, on prompts with answers
(kiln task's prompts.jsonl). NAME.kiln is compiled with kiln-compile --mode
train --objective ppo --kv-cache N and a static --batch B: the policy with
a value head (values(input_ids) -> values) sharing its trunk. Each step
samples --group answers to each of B/group prompts through the artifact's
own KV cache; the judge scores each answer (1 right, 0 wrong) at its last
token, every answer token is rewarded -kl_coef x (log p - log p_ref) (the
KL penalty to the reference: the starting model, one frozen copy of the
weights), the advantages come from the value head's estimates by GAE
(--gamma, --lambda) and are whitened over the batch, and --ppo-epochs
passes of --ppo-minibatches updates each are taken on the batch with the
clipped policy loss plus --vf-coef
x the clipped value loss. metrics.jsonl adds the reward, the KL, the KL
penalty per answer and the entropy estimate; rollouts.jsonl keeps every
answer. The held-out success rate (--val-data, greedy, judged) is
evaluated every --eval-every steps. The run directory and --resume are
kiln grpo's.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --data FILE.jsonl       training prompts with answers (required)
  --val-data FILE.jsonl   held-out prompts (default: --val-fraction of --data)
  --init RUN_DIR|FILE     the starting parameters (a language-model run; the
                          value head starts afresh) and the reference
  --group G               answers per prompt (default 1)
  --ppo-epochs K          passes over each batch of rollouts (default 4)
  --ppo-minibatches M     minibatches of rows per pass (default 1); each
                          is a train_step on the batch with the other
                          rows' targets -100, so M costs M full steps
  --kl-coef K             KL penalty per token (default 0.05)
  --clip E                policy ratio clip (default 0.2)
  --value-clip E          value clip (default 0.2)
  --vf-coef C             value loss weight (default 0.1)
  --gamma G, --lambda L   GAE's discount and lambda (default 1, 0.95)
  --temperature T         rollout temperature (default 1.0)
  --max-tokens N          longest answer (default 16)
  --reward-model RM.kiln  reward the answers with a reward model's score
                          (kiln reward) instead of the judge; the judge's
                          verdicts are still recorded (success)
  --reward-checkpoint RUN_DIR|FILE  the reward model's parameters
  --steps N               batches of rollouts (default 1000)
  --lr LR                 peak learning rate (default 1e-5)
  --batch, --seq, --min-lr, --warmup, --schedule, --seed, --eval-every,
  --eval-batches, --checkpoint-every, --tokenizer, --vocab-size,
  --val-fraction, --peak-gflops, --watts, --log-every: as kiln grpo
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kDistillUsage[] =
    R"(USAGE: kiln distill STUDENT.kiln --teacher TEACHER.kiln --out RUN_DIR [options]
       kiln distill --student STUDENT.kiln --teacher TEACHER.kiln --out RUN_DIR [options]
       kiln distill --resume --out RUN_DIR [--steps N] [STUDENT.kiln options]

Knowledge distillation (Hinton et al., 2015) from a compiled teacher into a
compiled student on a text corpus. STUDENT.kiln is compiled with
kiln-compile --mode train --objective distill; TEACHER.kiln is any artifact
with forward(input_ids) -> logits over the same vocabulary (an inference
artifact, possibly quantized, or a training artifact whose parameters come
from --teacher-checkpoint). Each step the teacher runs on the batch (or its
outputs come from RUN_DIR/teacher.cache, --cache-teacher) and train_step
minimizes

  alpha T^2 [(1 - r) KL(p_t || p_s) + r KL(p_s || p_t)] + (1 - alpha) CE

per token, p = softmax(logits / T), r = --reverse (1: MiniLLM's reverse
KL), CE the next-token cross-entropy; a student compiled with
--distill-hidden adds --hidden-coef x its hidden-state term against the
teacher's hidden_states. The training data are fixed windows of --seq + 1
tokens drawn in shuffled epochs. The held-out loss is the student's
cross-entropy on the windows kiln pretrain evaluates (the number a student
trained alone reports; --alpha 0 trains one on the same windows without
running the teacher); eval_kl is KL(teacher || student) at temperature 1.
The run directory, metrics.jsonl, checkpoints, loss.png and --resume are
kiln pretrain's.

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --teacher T.kiln        the teacher artifact (required)
  --teacher-checkpoint RUN_DIR|FILE  the teacher's parameters (a training
                          artifact's run or checkpoint); a run directory also
                          gives the tokenizer, which the student shares
  --alpha A               weight of the soft term (default 0.5; 0: the hard
                          cross-entropy alone)
  --temperature T         softening temperature (default 2)
  --reverse R             share of reverse KL in the divergence (default 0)
  --hidden-coef C         weight of the hidden-state term (default 1; a
                          student compiled with --distill-hidden)
  --cache-teacher         compute the teacher's outputs for every training
                          window once, into RUN_DIR/teacher.cache (its size
                          is printed first), instead of on every batch
  --init-from-teacher     start the student from the teacher's parameters:
                          student layer i takes teacher layer i x Lt / Ls
                          (every other layer for half the depth), the rest
                          by name; the widths must match
  --init RUN_DIR|FILE     start from these parameters instead
  --data FILE_OR_DIR      text corpus (default: Debian's fortunes)
  --tokenizer MODEL       the tokenizer (default: the teacher run's)
  --steps N               optimizer steps (default 1000)
  --lr LR                 peak learning rate (default 3e-4)
  --batch, --seq, --min-lr, --warmup, --schedule, --seed, --eval-every,
  --eval-batches, --checkpoint-every, --vocab-size, --val-fraction,
  --peak-gflops, --watts, --log-every: as kiln pretrain
  --resume                continue the run in --out
  -h, --help              this text
)";

const char kPlotUsage[] =
    R"(USAGE: kiln plot RUN_DIR
       kiln plot RUN_DIR --compare RUN_DIR2[,RUN_DIR3...] --out FILE.png [--metric KEY]

Draws the train and eval loss curves of a run (its metrics.jsonl) into
RUN_DIR/loss.png and prints the path. With --compare, draws one curve per
run of --metric (default eval_loss; any number in metrics.jsonl: loss,
eval_ppl, eval_kl, ...) into FILE.png, each named by its directory.

OPTIONS:
  --compare DIRS        more runs, comma-separated
  --metric KEY          the metric compared (default eval_loss)
  --out FILE.png        where the comparison goes
  -h, --help            this text
)";

const char kGenerateUsage[] =
    R"(USAGE: kiln generate NAME.kiln --prompt TEXT [--run RUN_DIR] [options]

Samples a continuation of TEXT from a language-model artifact, one token
at a time, each drawn from the last position's logits. An artifact compiled
with --kv-cache prefills the prompt once and runs one decode_step per token
(its cache keeps every layer's keys and values); otherwise forward reruns
the whole context for every token. With --run, the tokenizer and the
trained parameters come from a pretraining run directory.

OPTIONS:
  --prompt TEXT         the text to continue (required)
  --run RUN_DIR         use RUN_DIR/tokenizer.model and (for a training
                        artifact) RUN_DIR/checkpoint.safetensors; an
                        inference artifact keeps the weights it was
                        compiled with (kiln-compile --weights
                        RUN_DIR/checkpoint.safetensors)
  --tokenizer MODEL     a SentencePiece model (instead of --run)
  --checkpoint FILE     parameters to load (training artifacts)
  --max-tokens N        tokens to generate (default 100)
  --temperature T       0 is greedy (default 0.8)
  --top-k K             sample among the K most likely tokens (default 40;
                        0: all)
  --top-p P             and within probability mass P (default 0.95)
  --samples N           independent samples (default 1)
  --seed S              sampling seed (default 0)
  --stop TEXT           end a sample where TEXT appears (KV cache only)
  --logprobs            print each sample's tokens with their
                        log-probabilities (KV cache only)
  --json                one JSON object per sample: sample, seed, prompt,
                        text (the continuation), tokens, logprobs, finish
                        (length, eos or stop) (KV cache only)
  --no-cache            rerun forward on the context for every token even
                        when the artifact has a KV cache

With a KV cache the --samples are drawn side by side as rows of one batch;
sample i always uses seed S + i.
  -h, --help            this text
)";

const char kEvalUsage[] =
    R"(USAGE: kiln eval NAME.kiln (--run RUN_DIR | --tokens FILE) [options]

The held-out loss of a language-model artifact: the mean next-token
cross-entropy (nats) of its forward logits, and the perplexity exp(loss),
over evenly spaced windows of a token file (the ones kiln pretrain
evaluates on). Every variant of a model (f32, quantized with kiln-compile
--quantize, pruned) is judged on the same windows.

OPTIONS:
  --run RUN_DIR         the held-out windows of a pretraining run
                        (RUN_DIR/val.tokens, its batch, seq and eval
                        batches: with the run's checkpoint the loss is the
                        run's final eval loss); the parameters stay the
                        artifact's own unless --checkpoint is given
  --tokens FILE         a token file (instead of --run)
  --checkpoint FILE     parameters to load first (training artifacts, e.g.
                        RUN_DIR/checkpoint.safetensors)
  --batches N           calls of the forward (default 16, or the run's)
  --batch B, --seq S    windows per call and tokens per window (default:
                        the artifact's static input shape, else the run's,
                        else 4 and min(128, its maximum sequence length))
  --json                print one JSON object instead of a line
  -h, --help            this text
)";

const char kCalibrateUsage[] =
    R"(USAGE: kiln calibrate NAME.kiln (--run RUN_DIR | --tokens FILE) --out FILE [options]

Activation statistics for static int8 quantization: runs the artifact's
calibrate entry point (kiln-compile MODEL --mode calibrate) over evenly
spaced windows of a token file and writes, per linear layer, the largest
|input| of each input channel (<weight>.input_absmax, f32 [in]) to a
safetensors file that kiln-compile --quantize int8-static --calibration
FILE reads (docs/quantization.md). With --range percentile or mse it also
bins each layer's |input| (2048 bins over [0, max]) and writes the
clipping threshold int8-static uses (<weight>.input_range, f32 [1]).
Language models (gpt2, llama) and encoders (bert: token_type_ids are
given as zeros and attention_mask as ones, each window being whole text).

OPTIONS:
  --out FILE            the calibration file to write (.safetensors)
  --range METHOD        the int8-static range: minmax (the largest |input|,
                        the default), percentile (the |input| below which
                        --percentile percent of the values lie) or mse (the
                        threshold that minimizes the expected squared
                        quantization error); percentile and mse need an
                        artifact compiled with --calibration-histogram
  --percentile P        for --range percentile, in (0, 100] (default 99.99)
  --run RUN_DIR         windows of a pretraining run's training split
                        (RUN_DIR/train.tokens, evenly spaced; its batch and
                        seq), so kiln eval's held-out windows stay unseen
  --tokens FILE         a token file (instead of --run)
  --checkpoint FILE     parameters to load first (a training run's
                        RUN_DIR/checkpoint.safetensors, when the artifact
                        was compiled without --weights)
  --batches N           calls (default 16)
  --batch B, --seq S    windows per call and tokens per window (default:
                        the artifact's static input shape, else the run's,
                        else 4 and min(128, its maximum sequence length))
  -h, --help            this text
)";

} // namespace

/// kiln pretrain and kiln sft: one training loop (kiln::train::pretrain)
/// over a corpus or over prompt/response examples.
static int trainCommand(const std::string &task, int argc, char **argv) {
  bool distill = task == "distill";
  bool sft = task != "pretrain" && !distill;
  bool dpo = task == "dpo";
  bool grpo = task == "grpo";
  bool reward = task == "reward";
  bool ppo = task == "ppo";
  std::vector<std::string> settings = {
      "--data",       "--batch",        "--seq",          "--lr",
      "--min-lr",     "--warmup",       "--schedule",     "--seed",
      "--eval-every", "--eval-batches", "--checkpoint-every", "--tokenizer",
      "--vocab-size", "--val-fraction"};
  if (sft)
    settings.insert(settings.end(), {"--val-data", "--init"});
  if (dpo)
    settings.insert(settings.end(), {"--beta", "--nll-coef"});
  if (grpo || ppo)
    settings.insert(settings.end(), {"--group", "--kl-coef", "--clip",
                                     "--temperature", "--max-tokens",
                                     "--reward-model", "--reward-checkpoint"});
  if (ppo)
    settings.insert(settings.end(), {"--ppo-epochs", "--ppo-minibatches",
                                     "--value-clip",
                                     "--vf-coef", "--gamma", "--lambda"});
  if (distill)
    settings.insert(settings.end(),
                    {"--teacher", "--teacher-checkpoint", "--alpha",
                     "--temperature", "--reverse", "--hidden-coef", "--init"});
  std::vector<std::string> flags = {"--resume"};
  if (distill)
    flags.insert(flags.end(), {"--cache-teacher", "--init-from-teacher"});
  std::vector<std::string> allowed = {"--out", "--steps", "--peak-gflops",
                                      "--watts", "--log-every"};
  allowed.insert(allowed.end(), settings.begin(), settings.end());
  if (distill)
    allowed.push_back("--student");
  if (task == "pretrain")
    allowed.push_back("--task");
  Options o = parseOptions(task, argc, argv, 2, allowed,
                           distill  ? kDistillUsage
                           : ppo    ? kPpoUsage
                           : grpo   ? kGrpoUsage
                           : reward ? kRewardUsage
                           : dpo ? kDpoUsage
                           : sft ? kSftUsage
                                 : kPretrainUsage,
                           flags, /*artifactRequired=*/false);
  if (o.values.count("--student")) {
    // kiln distill --student S.kiln: the artifact by name.
    if (!o.artifact.empty())
      fail("give the student once: STUDENT.kiln or --student, not both");
    o.artifact = o.values["--student"];
  }
  kiln::train::PretrainOptions p;
  p.task = task;
  if (o.values.count("--task")) {
    const std::string &kind = o.values["--task"];
    if (kind == "clip" || kind == "caption")
      p.task = kind;
    else if (kind != "text")
      fail("--task '" + kind +
           "': expected text (next-token pretraining), "
           "clip (contrastive image-caption training) or caption "
           "(captioning)");
  }
  p.resume = o.has("--resume");
  if (!o.values.count("--out"))
    fail("'kiln " + task + "' needs --out RUN_DIR; see 'kiln " + task +
         " --help'");
  p.runDir = o.values["--out"];
  if (o.artifact.empty() && !p.resume)
    fail("'kiln " + task + "' needs a training artifact (NAME.kiln); see "
         "'kiln " + task + " --help'");
  if (sft && !p.resume && !o.values.count("--data"))
    fail("'kiln " + task + "' needs --data FILE.jsonl (JSON lines of " +
         (dpo || reward ? "{\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}"
          : grpo || ppo ? "{\"prompt\": ..., \"answer\": ...}"
                 : "{\"prompt\": ..., \"response\": ...}") +
         "); see 'kiln " + task + " --help'");
  if (sft) {
    p.schedule.lr = dpo || grpo || ppo ? 1e-5 : 1e-4;
    if (ppo) {
      p.group = 1;
      p.klCoef = 0.05;
    }
    p.valFraction = 0.1;
  }
  if (distill) {
    p.temperature = 2.0;
    if (!p.resume && !o.values.count("--teacher"))
      fail("'kiln distill' needs --teacher T.kiln; see 'kiln distill --help'");
    if (o.values.count("--teacher"))
      p.teacher = o.values["--teacher"];
    if (o.values.count("--teacher-checkpoint"))
      p.teacherCheckpoint = o.values["--teacher-checkpoint"];
    for (auto [name, out] : {std::pair{"--alpha", &p.alpha},
                             std::pair{"--reverse", &p.reverse},
                             std::pair{"--hidden-coef", &p.hiddenCoef}})
      if (o.values.count(name))
        *out = parseNumber(name, o.values[name]);
    p.cacheTeacher = o.has("--cache-teacher");
    p.initFromTeacher = o.has("--init-from-teacher");
  }
  if (o.values.count("--group"))
    p.group = parseCount("--group", o.values["--group"], ppo ? 1 : 2);
  if (o.values.count("--reward-model"))
    p.rewardModel = o.values["--reward-model"];
  if (o.values.count("--reward-checkpoint"))
    p.rewardCheckpoint = o.values["--reward-checkpoint"];
  if (!p.rewardCheckpoint.empty() && p.rewardModel.empty() && !p.resume)
    fail("--reward-checkpoint needs --reward-model");
  if (o.values.count("--ppo-epochs"))
    p.ppoEpochs = parseCount("--ppo-epochs", o.values["--ppo-epochs"], 1);
  if (o.values.count("--ppo-minibatches"))
    p.ppoMinibatches =
        parseCount("--ppo-minibatches", o.values["--ppo-minibatches"], 1);
  for (auto [name, out] : {std::pair{"--value-clip", &p.valueClip},
                           std::pair{"--vf-coef", &p.vfCoef},
                           std::pair{"--gamma", &p.gamma},
                           std::pair{"--lambda", &p.lambda}})
    if (o.values.count(name))
      *out = parseNumber(name, o.values[name]);
  if (o.values.count("--max-tokens"))
    p.maxTokens = parseCount("--max-tokens", o.values["--max-tokens"], 1);
  for (auto [name, out] : {std::pair{"--kl-coef", &p.klCoef},
                           std::pair{"--clip", &p.clip},
                           std::pair{"--temperature", &p.temperature}})
    if (o.values.count(name))
      *out = parseNumber(name, o.values[name]);
  if (o.values.count("--nll-coef")) {
    p.nllCoef = parseNumber("--nll-coef", o.values["--nll-coef"]);
    if (p.nllCoef < 0)
      fail("--nll-coef must be at least 0");
  }
  if (o.values.count("--beta")) {
    p.beta = parseNumber("--beta", o.values["--beta"]);
    if (p.beta <= 0)
      fail("--beta must be positive");
  }
  p.artifact = o.artifact;
  // The run's settings are parsed the same way in both modes: a resumed run
  // takes them from RUN_DIR/run.json and checks the ones given here against
  // it, so the original command plus --resume works.
  if (!o.artifact.empty())
    p.givenSettings.push_back("artifact");
  for (const char *flag : {"--cache-teacher", "--init-from-teacher"})
    if (distill && o.has(flag)) {
      std::string key = std::string(flag).substr(2);
      std::replace(key.begin(), key.end(), '-', '_');
      p.givenSettings.push_back(key);
    }
  for (const std::string &name : settings)
    if (o.values.count(name)) {
      std::string key = name.substr(2);
      std::replace(key.begin(), key.end(), '-', '_');
      p.givenSettings.push_back(key);
    }
  auto count = [&](const char *name, int64_t fallback, int64_t minimum) {
    return o.values.count(name) ? parseCount(name, o.values[name], minimum)
                                : fallback;
  };
  p.data = o.values.count("--data") ? o.values["--data"] : "";
  if ((p.task == "clip" || p.task == "caption") && !p.resume && p.data.empty())
    fail("'kiln pretrain --task " + p.task +
         "' needs --data DIR (train.jsonl, "
         "val.jsonl and optionally novel.jsonl of {\"image\", \"caption\"} "
         "lines; 'kiln shapes --out DIR' writes one)");
  // 0 on --resume: continue up to the recorded count.
  p.steps = count("--steps", p.resume ? 0 : 1000, 1);
  p.batch = count("--batch", 0, 1);
  p.seq = count("--seq", 0, 1);
  p.schedule.warmupSteps = count("--warmup", 0, 0);
  p.seed = static_cast<uint64_t>(count("--seed", 0, 0));
  p.evalEvery = count("--eval-every", 100, 0);
  p.evalBatches = count("--eval-batches", 8, 1);
  p.checkpointEvery = count("--checkpoint-every", 500, 0);
  p.vocabSize = static_cast<int>(count("--vocab-size", 0, 1));
  if (o.values.count("--lr"))
    p.schedule.lr = parseNumber("--lr", o.values["--lr"]);
  if (o.values.count("--min-lr"))
    p.schedule.minLr = parseNumber("--min-lr", o.values["--min-lr"]);
  if (o.values.count("--schedule")) {
    auto kind = kiln::train::parseScheduleKind(o.values["--schedule"]);
    if (!kind)
      fail(kind.message());
    p.schedule.kind = *kind;
  }
  if (o.values.count("--tokenizer"))
    p.tokenizer = o.values["--tokenizer"];
  if (o.values.count("--val-data"))
    p.valData = o.values["--val-data"];
  if (o.values.count("--init"))
    p.init = o.values["--init"];
  if (o.values.count("--val-fraction"))
    p.valFraction = parseNumber("--val-fraction", o.values["--val-fraction"]);
  if (o.values.count("--peak-gflops"))
    p.peakGflops = parseNumber("--peak-gflops", o.values["--peak-gflops"]);
  if (o.values.count("--watts"))
    p.watts = parseNumber("--watts", o.values["--watts"]);
  if (o.values.count("--log-every"))
    p.logEvery = parseCount("--log-every", o.values["--log-every"], 1);
  if (p.peakGflops <= 0 || p.watts < 0)
    fail("--peak-gflops must be positive and --watts non-negative");
  if (Status s = kiln::train::pretrain(p, stderr); !s)
    fail(s.message());
  return 0;
}

int pretrainCommand(int argc, char **argv) {
  return trainCommand("pretrain", argc, argv);
}

int sftCommand(int argc, char **argv) { return trainCommand("sft", argc, argv); }

int dpoCommand(int argc, char **argv) { return trainCommand("dpo", argc, argv); }

int rewardCommand(int argc, char **argv) {
  return trainCommand("reward", argc, argv);
}

int ppoCommand(int argc, char **argv) { return trainCommand("ppo", argc, argv); }

int distillCommand(int argc, char **argv) {
  return trainCommand("distill", argc, argv);
}

int grpoCommand(int argc, char **argv) {
  return trainCommand("grpo", argc, argv);
}

int plotCommand(int argc, char **argv) {
  Options o = parseOptions("plot", argc, argv, 2,
                           {"--compare", "--metric", "--out"}, kPlotUsage);
  if (o.values.count("--compare")) {
    if (!o.values.count("--out"))
      fail("'kiln plot --compare' needs --out FILE.png");
    std::vector<std::string> runs = {o.artifact};
    std::string list = o.values["--compare"];
    for (size_t start = 0; start <= list.size();) {
      size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start)
        runs.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    std::string metric =
        o.values.count("--metric") ? o.values["--metric"] : "eval_loss";
    if (Status s = kiln::train::plotRuns(runs, metric, o.values["--out"]); !s)
      fail(s.message());
    std::printf("%s\n", o.values["--out"].c_str());
    return 0;
  }
  if (o.values.count("--metric") || o.values.count("--out"))
    fail("--metric and --out go with --compare");
  std::string png;
  if (Status s = kiln::train::plotRun(o.artifact, &png); !s)
    fail(s.message());
  std::printf("%s\n", png.c_str());
  return 0;
}

kiln::train::Tokenizer loadModel(Options &o, Artifact &artifact,
                                 const char *command, bool requireAll) {
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
    fail(std::string("'kiln ") + command +
         "' needs a tokenizer: --run RUN_DIR or --tokenizer MODEL");
  Expected<kiln::train::Tokenizer> tokenizer =
      kiln::train::Tokenizer::load(tokenizerPath);
  if (!tokenizer)
    fail(tokenizer.message());
  if (!checkpoint.empty()) {
    if (!artifact.writesParameters()) {
      if (o.values.count("--checkpoint"))
        fail("'" + o.artifact + "' is an inference artifact: it keeps the "
             "weights it was compiled with (kiln-compile --weights)");
      std::fprintf(stderr,
                   "kiln %s: '%s' is an inference artifact: using the "
                   "weights it was compiled with, not %s\n",
                   command, o.artifact.c_str(), checkpoint.c_str());
    } else if (Status s = artifact.loadParameters(
                   checkpoint, requireAll, Artifact::LoadSelection::ModelOnly);
               !s) {
      fail(s.message());
    }
  }
  return tokenizer.take();
}

int generateCommand(int argc, char **argv) {
  Options o = parseOptions(
      "generate", argc, argv, 2,
      {"--prompt", "--run", "--tokenizer", "--checkpoint", "--max-tokens",
       "--temperature", "--top-k", "--top-p", "--samples", "--seed", "--stop"},
      kGenerateUsage, {"--no-cache", "--logprobs", "--json"});
  if (!o.values.count("--prompt"))
    fail("'kiln generate' needs --prompt TEXT; see 'kiln generate --help'");
  std::unique_ptr<Artifact> artifact =
      openArtifact(o.artifact, Artifact::OpenMode::Resident);
  // A checkpoint of another objective (a PPO run's value head, a reward
  // model's score head) samples as well.
  kiln::train::Tokenizer tokenizer =
      loadModel(o, *artifact, "generate", /*requireAll=*/false);
  kiln::train::GenerateOptions g;
  g.prompt = o.values["--prompt"];
  if (o.values.count("--max-tokens"))
    g.maxTokens = parseCount("--max-tokens", o.values["--max-tokens"], 0);
  if (o.values.count("--temperature"))
    g.sampling.temperature =
        parseNumber("--temperature", o.values["--temperature"]);
  if (o.values.count("--top-k"))
    g.sampling.topK = parseCount("--top-k", o.values["--top-k"], 0);
  if (o.values.count("--top-p"))
    g.sampling.topP = parseNumber("--top-p", o.values["--top-p"]);
  int64_t samples =
      o.values.count("--samples") ? parseCount("--samples", o.values["--samples"], 1) : 1;
  uint64_t seed = o.values.count("--seed")
                      ? static_cast<uint64_t>(parseCount("--seed", o.values["--seed"], 0))
                      : 0;
  bool cached = !o.has("--no-cache") &&
                kiln::train::KVCacheDecoder::isAvailable(*artifact);
  if ((o.values.count("--stop") || o.has("--logprobs") || o.has("--json")) &&
      !cached)
    fail("--stop, --logprobs and --json need an artifact with a KV cache "
         "(kiln-compile --kv-cache) and no --no-cache");
  if (cached) {
    kiln::train::BatchOptions batch;
    batch.maxTokens = g.maxTokens;
    batch.sampling = g.sampling;
    batch.seed = seed;
    if (o.values.count("--stop"))
      batch.stop.push_back(o.values["--stop"]);
    std::vector<int32_t> prompt =
        kiln::train::promptTokens(tokenizer, g.prompt);
    Expected<std::vector<kiln::train::Sample>> drawn =
        kiln::train::sampleBatch(*artifact, tokenizer, prompt, samples, batch);
    if (!drawn)
      fail(drawn.message());
    std::string promptText = tokenizer.decode(prompt);
    for (size_t i = 0; i < drawn->size(); ++i) {
      const kiln::train::Sample &sample = (*drawn)[i];
      if (o.has("--json")) {
        nlohmann::ordered_json line = {
            {"sample", i + 1},
            {"seed", seed + i},
            {"prompt", promptText},
            {"text", sample.text},
            {"tokens", sample.tokens},
            {"logprobs", sample.logProbs},
            {"finish", sample.finish}};
        std::printf("%s\n",
                    line.dump(-1, ' ', false,
                              nlohmann::ordered_json::error_handler_t::replace)
                        .c_str());
        continue;
      }
      if (samples > 1 || o.has("--logprobs")) {
        double total = 0;
        for (double lp : sample.logProbs)
          total += lp;
        std::printf("--- sample %zu (%zu tokens, log-prob %.4f, %s)\n", i + 1,
                    sample.tokens.size(), total, sample.finish.c_str());
      }
      std::printf("%s%s\n", promptText.c_str(), sample.text.c_str());
      if (o.has("--logprobs"))
        for (size_t t = 0; t < sample.tokens.size(); ++t) {
          // The piece on one line: line breaks and tabs escaped.
          std::string piece;
          for (char c : tokenizer.decode({sample.tokens[t]}))
            piece += c == '\n' ? "\\n" : c == '\t' ? "\\t" : std::string(1, c);
          std::printf("  %6d %9.4f %s\n", sample.tokens[t], sample.logProbs[t],
                      piece.c_str());
        }
    }
    return 0;
  }
  for (int64_t i = 0; i < samples; ++i) {
    g.seed = seed + static_cast<uint64_t>(i);
    Expected<std::string> text = kiln::train::generateText(*artifact, tokenizer, g);
    if (!text)
      fail(text.message());
    if (samples > 1)
      std::printf("--- sample %lld\n", static_cast<long long>(i + 1));
    std::printf("%s\n", text->c_str());
  }
  return 0;
}

/// The windows of `kiln eval` and `kiln calibrate`: --run RUN_DIR (its
/// held-out split, or with `trainSplit` its training split; its batch and
/// seq, and for eval its eval batches) or --tokens FILE; --batches,
/// --batch, --seq.
static kiln::train::EvalOptions windowOptions(Options &o, const char *command,
                                              bool trainSplit) {
  kiln::train::EvalOptions e;
  if (o.values.count("--run") == o.values.count("--tokens"))
    fail(std::string("'kiln ") + command + "' needs " +
         (trainSplit ? "calibration" : "held-out") +
         " tokens: --run RUN_DIR or --tokens FILE (one of them); see 'kiln " +
         command + " --help'");
  if (o.values.count("--run")) {
    const std::string &run = o.values["--run"];
    // Calibration reads the training split: the held-out windows stay
    // unseen for kiln eval.
    e.tokens = trainSplit ? kiln::train::trainTokensPath(run)
                          : kiln::train::valTokensPath(run);
    auto options = kiln::train::loadRunOptions(run);
    if (!options)
      fail(options.message());
    e.defaultBatch = options->batch;
    e.defaultSeq = options->seq;
    if (!trainSplit)
      e.batches = options->evalBatches;
  } else {
    e.tokens = o.values["--tokens"];
  }
  if (o.values.count("--batches"))
    e.batches = parseCount("--batches", o.values["--batches"], 1);
  if (o.values.count("--batch"))
    e.batch = parseCount("--batch", o.values["--batch"], 1);
  if (o.values.count("--seq"))
    e.seq = parseCount("--seq", o.values["--seq"], 1);
  return e;
}

/// --checkpoint FILE: parameters loaded into `artifact` first.
static void loadCheckpoint(Options &o, Artifact &artifact) {
  if (o.values.count("--checkpoint"))
    if (Status s = artifact.loadParameters(o.values["--checkpoint"],
                                           /*requireAll=*/false,
                                           Artifact::LoadSelection::ModelOnly);
        !s)
      fail(s.message());
}

int evalCommand(int argc, char **argv) {
  Options o = parseOptions(
      "eval", argc, argv, 2,
      {"--run", "--tokens", "--checkpoint", "--batches", "--batch", "--seq"},
      kEvalUsage, {"--json"});
  kiln::train::EvalOptions e = windowOptions(o, "eval", /*trainSplit=*/false);
  std::unique_ptr<Artifact> artifact =
      openArtifact(o.artifact, Artifact::OpenMode::Resident);
  loadCheckpoint(o, *artifact);
  Expected<kiln::train::EvalResult> r =
      kiln::train::evaluateLanguageModel(*artifact, e);
  if (!r)
    fail(r.message());
  if (o.has("--json"))
    std::printf("{\"loss\": %.17g, \"perplexity\": %.17g, \"tokens\": %lld, "
                "\"batch\": %lld, \"seq\": %lld, \"batches\": %lld, "
                "\"seconds\": %.6f}\n",
                r->loss, r->perplexity, static_cast<long long>(r->tokens),
                static_cast<long long>(r->batch),
                static_cast<long long>(r->seq),
                static_cast<long long>(r->batches), r->seconds);
  else
    std::printf("eval: loss %.4f, perplexity %.2f over %lld tokens (%lld "
                "calls of %lldx%lld) in %.1f s\n",
                r->loss, r->perplexity, static_cast<long long>(r->tokens),
                static_cast<long long>(r->batches),
                static_cast<long long>(r->batch),
                static_cast<long long>(r->seq), r->seconds);
  return 0;
}

int calibrateCommand(int argc, char **argv) {
  Options o =
      parseOptions("calibrate", argc, argv, 2,
                   {"--run", "--tokens", "--checkpoint", "--batches", "--batch",
                    "--seq", "--out", "--range", "--percentile"},
                   kCalibrateUsage);
  if (!o.values.count("--out"))
    fail("'kiln calibrate' needs --out FILE.safetensors, the file to write");
  kiln::train::RangeOptions range;
  if (o.values.count("--range")) {
    Expected<kiln::train::RangeMethod> method =
        kiln::train::parseRangeMethod(o.values["--range"]);
    if (!method)
      fail(method.message());
    range.method = *method;
  }
  if (o.values.count("--percentile")) {
    if (range.method != kiln::train::RangeMethod::Percentile)
      fail("--percentile needs --range percentile");
    range.percentile = parseNumber("--percentile", o.values["--percentile"]);
    if (!(range.percentile > 0 && range.percentile <= 100))
      fail("--percentile " + o.values["--percentile"] +
           ": expected a percentage in (0, 100]");
  }
  kiln::train::EvalOptions e =
      windowOptions(o, "calibrate", /*trainSplit=*/true);
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  loadCheckpoint(o, *artifact);
  Expected<kiln::train::CalibrationResult> r =
      kiln::train::calibrateLanguageModel(*artifact, e, o.values["--out"],
                                          range);
  if (!r)
    fail(r.message());
  std::printf(
      "calibrate: %lld layers over %lld tokens (%lld calls of "
      "%lldx%lld) in %.1f s -> %s\n",
      static_cast<long long>(r->layers), static_cast<long long>(r->tokens),
      static_cast<long long>(r->batches), static_cast<long long>(r->batch),
      static_cast<long long>(r->seq), r->seconds, o.values["--out"].c_str());
  return 0;
}

} // namespace kiln::driver
