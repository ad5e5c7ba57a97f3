//===- kiln.cpp - Run, benchmark and inspect Kiln artifacts ---------------===//
//
// The `kiln` driver: `kiln run`, `kiln bench` and `kiln info` over
// libkiln_runtime, and `kiln pretrain`, `kiln plot`, `kiln generate` and `kiln eval` over
// libkiln_train. It links no LLVM and no MLIR: an artifact plus this tool
// and the two libraries is a deployment. This file dispatches to the
// commands (one file each; what they share is in Driver.h).
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include <cstdio>
#include <string>

using namespace kiln::driver;

namespace {

const char kUsage[] =
    R"(OVERVIEW: run, benchmark and inspect Kiln artifacts (NAME.kiln directories
written by kiln-compile)

USAGE: kiln <command> [options]

COMMANDS:
  run    NAME.kiln --input NAME=FILE.npy ... [--output-dir DIR]
         Runs an entry point and writes one DIR/<output>.npy per output.
  bench  NAME.kiln --input NAME=FILE.npy ... [--warmup N] [--iters N]
         Times an entry point: latency percentiles, tokens/s, GFLOP/s, GB/s.
  info   NAME.kiln
         Prints the manifest: target, parameters, entry points.
  pretrain NAME.kiln --out RUN_DIR [--data FILE_OR_DIR] [--steps N] ...
         Pretrains a training artifact (kiln-compile --mode train) on text.
  sft    NAME.kiln --data FILE.jsonl --out RUN_DIR [--init RUN_DIR] ...
         Fine-tunes on prompt/response pairs (loss on the responses).
  dpo    NAME.kiln --data FILE.jsonl --out RUN_DIR --init RUN_DIR ...
         Direct preference optimization on chosen/rejected pairs.
  reward NAME.kiln --data pairs.jsonl --out RUN_DIR ...
         Trains a reward model (score head, Bradley-Terry) on pairs.
  grpo   NAME.kiln --data prompts.jsonl --out RUN_DIR --init RUN_DIR ...
         Group-relative policy optimization against the task's judge.
  ppo    NAME.kiln --data prompts.jsonl --out RUN_DIR --init RUN_DIR ...
         Proximal policy optimization with a value head, GAE and a KL penalty.
  distill S.kiln --teacher T.kiln --out RUN_DIR [--teacher-checkpoint RUN_DIR] ...
         Knowledge distillation from a compiled teacher into a student.
  task   arithmetic|sorting --out DIR
         Writes a task with a programmatic judge (demonstrations, pairs,
         prompts, held-out prompts).
  judge  NAME.kiln --data test.jsonl --run RUN_DIR
         A model's success rate on prompts with checkable answers.
  label  NAME.kiln --prompts FILE.jsonl --out PAIRS.jsonl [--judge] ...
         Preference pairs from the model's answers, by a person or the judge.
  plot   RUN_DIR
         Writes RUN_DIR/loss.png from the run's metrics.
  generate NAME.kiln --prompt TEXT [--run RUN_DIR] [--max-tokens N] ...
         Samples text from a (trained) language-model artifact.
  eval   NAME.kiln (--run RUN_DIR | --tokens FILE) [--checkpoint FILE] ...
         Held-out loss and perplexity of a language-model artifact.
  calibrate NAME.kiln (--run RUN_DIR | --tokens FILE) --out FILE ...
         Activation ranges for --quantize int8-static (--mode calibrate).
  shapes --out DIR [--train N] [--image-size N] ...
         Writes a generated image-caption set (shapes, colours, counts).
  embed  NAME.kiln --run RUN_DIR (--image FILE | --text TEXT) --against FILE
         Embeds an image or a caption with a CLIP artifact; prints the
         nearest captions or images.
  caption NAME.kiln --run RUN_DIR (--image FILE | --images FILE.jsonl)
         Captions images with a captioner (llava, vision-encoder-decoder).

Run 'kiln <command> --help' for the options of a command.
)";

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    fail("no command given; see 'kiln --help'");
  std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "run")
    return runCommand(argc, argv);
  if (command == "bench")
    return benchCommand(argc, argv);
  if (command == "info")
    return infoCommand(argc, argv);
  if (command == "pretrain")
    return pretrainCommand(argc, argv);
  if (command == "sft")
    return sftCommand(argc, argv);
  if (command == "dpo")
    return dpoCommand(argc, argv);
  if (command == "grpo")
    return grpoCommand(argc, argv);
  if (command == "ppo")
    return ppoCommand(argc, argv);
  if (command == "reward")
    return rewardCommand(argc, argv);
  if (command == "distill")
    return distillCommand(argc, argv);
  if (command == "task")
    return taskCommand(argc, argv);
  if (command == "judge")
    return judgeCommand(argc, argv);
  if (command == "label")
    return labelCommand(argc, argv);
  if (command == "plot")
    return plotCommand(argc, argv);
  if (command == "generate")
    return generateCommand(argc, argv);
  if (command == "eval")
    return evalCommand(argc, argv);
  if (command == "calibrate")
    return calibrateCommand(argc, argv);
  if (command == "shapes")
    return shapesCommand(argc, argv);
  if (command == "embed")
    return embedCommand(argc, argv);
  if (command == "caption")
    return captionCommand(argc, argv);
  fail("unknown command '" + command + "' (commands: run, bench, info, " +
       "pretrain, sft, dpo, reward, grpo, ppo, distill, task, judge, label, "
       "plot, generate, eval, calibrate, shapes, embed, caption; see 'kiln "
       "--help')");
}
