//===- kiln.cpp - Run, benchmark and inspect Kiln artifacts ---------------===//
//
// The `kiln` driver: `kiln run`, `kiln bench` and `kiln info` over
// libkiln_runtime, and `kiln pretrain`, `kiln plot` and `kiln generate` over
// libkiln_train. It links no LLVM and no MLIR: an artifact plus this tool
// and the two libraries is a deployment. So the command line is parsed by
// hand. Every error is one line "kiln: error: ..." and exit 1.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/CudaTarget.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Npy.h"
#include "kiln/Train/Corpus.h"
#include "kiln/Train/Generate.h"
#include "kiln/Train/Pretrain.h"
#include "kiln/Train/Tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sys/stat.h>

using namespace kiln::runtime;

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
  plot   RUN_DIR
         Writes RUN_DIR/loss.png from the run's metrics.
  generate NAME.kiln --prompt TEXT [--run RUN_DIR] [--max-tokens N] ...
         Samples text from a (trained) language-model artifact.

Run 'kiln <command> --help' for the options of a command.
)";

const char kRunUsage[] =
    R"(USAGE: kiln run NAME.kiln [--entry NAME] --input NAME=FILE.npy ... [--output-dir DIR]

Runs an entry point of the artifact on .npy inputs. For each output prints
"NAME: DTYPE [SHAPE]" (and " = VALUE" for a single element), and with
--output-dir writes it to DIR/NAME.npy (atomically; DIR is created if
needed).

Training artifacts (kiln-compile --mode train) update their parameters in
place when train_step runs; --repeat runs it several times, and the
parameters and optimizer state can be loaded from and saved to a
safetensors checkpoint.

OPTIONS:
  --entry NAME          entry point to run (default: forward, or the only one)
  --input NAME=FILE     a .npy file for the input NAME; once per input. NAME=
                        may be left out when the entry point has one input
  --output-dir DIR      where to write the outputs (of the last call)
  --repeat N            call the entry point N times (default 1), printing
                        the outputs of each call
  --load-parameters F   before running, copy every parameter and optimizer
                        state from the safetensors file F (all must be there)
  --save-parameters F   after running, write every parameter and optimizer
                        state to the safetensors file F (atomically)
  -h, --help            this text
)";

const char kBenchUsage[] =
    R"(USAGE: kiln bench NAME.kiln [--entry NAME] --input NAME=FILE.npy ... [--warmup N] [--iters N]

Runs an entry point N times after some warm-up calls and prints the latency
(p50, p90, p99, min, mean, in ms); tokens/s when the first input is an
integer [batch, seq] (or [seq]) tensor, counting batch*seq tokens per call;
and GFLOP/s and GB/s from the entry point's cost in the manifest: its
"cost" for static input shapes, its "cost_model" evaluated at the inputs'
shapes for dynamic ones (GB/s counts the compiler's unfused estimate of the
bytes moved). Throughputs use the p50 latency.

OPTIONS:
  --entry NAME          entry point to run (default: forward, or the only one)
  --input NAME=FILE     a .npy file for the input NAME; once per input
  --warmup N            calls before timing (default 3)
  --iters N             timed calls (default 20)
  -h, --help            this text
)";

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

OPTIONS:
  --out RUN_DIR           the run directory (required)
  --data FILE_OR_DIR      text file or directory of them (default: Debian's
                          fortunes, /usr/share/games/fortunes)
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

const char kPlotUsage[] =
    R"(USAGE: kiln plot RUN_DIR

Draws the train and eval loss curves of a pretraining run (its
metrics.jsonl) into RUN_DIR/loss.png and prints the path.

OPTIONS:
  -h, --help            this text
)";

const char kGenerateUsage[] =
    R"(USAGE: kiln generate NAME.kiln --prompt TEXT [--run RUN_DIR] [options]

Samples a continuation of TEXT from a language-model artifact: its forward
is run on the context and the next token drawn from the last position's
logits, one token at a time. With --run, the tokenizer and the trained
parameters come from a pretraining run directory.

OPTIONS:
  --prompt TEXT         the text to continue (required)
  --run RUN_DIR         use RUN_DIR/tokenizer.model and
                        RUN_DIR/checkpoint.safetensors
  --tokenizer MODEL     a SentencePiece model (instead of --run)
  --checkpoint FILE     parameters to load (training artifacts)
  --max-tokens N        tokens to generate (default 100)
  --temperature T       0 is greedy (default 0.8)
  --top-k K             sample among the K most likely tokens (default 40;
                        0: all)
  --top-p P             and within probability mass P (default 0.95)
  --samples N           independent samples (default 1)
  --seed S              sampling seed (default 0)
  -h, --help            this text
)";

const char kInfoUsage[] =
    R"(USAGE: kiln info NAME.kiln

Prints the artifact's manifest (format, target and its options, source,
compile options, parameters, entry points with their inputs, outputs and
cost), then checks that the artifact loads.

OPTIONS:
  -h, --help            this text
)";

[[noreturn]] void fail(const std::string &message) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "kiln: error: %s\n", line.c_str());
  std::exit(1);
}

/// The parsed command line of one command.
struct Options {
  std::string artifact;
  std::string entry;
  std::vector<std::string> inputs; ///< NAME=FILE or FILE
  std::string outputDir;
  std::string loadParameters, saveParameters;
  int64_t repeat = 1;
  /// Every other value option, by name ("--steps" -> "100").
  std::map<std::string, std::string> values;
  std::vector<std::string> flags;
  bool has(const std::string &name) const {
    return values.count(name) ||
           std::find(flags.begin(), flags.end(), name) != flags.end();
  }
  int64_t warmup = 3;
  int64_t iters = 20;
};

int64_t parseCount(const std::string &option, const std::string &text,
                   int64_t minimum) {
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < minimum)
    fail("option " + option + " needs an integer of at least " +
         std::to_string(minimum) + ", not '" + text + "'");
  return value;
}

/// Parses argv[first..] for `command`; `allowed` lists its value options.
Options parseOptions(const std::string &command, int argc, char **argv,
                     int first, const std::vector<std::string> &allowed,
                     const char *usage,
                     const std::vector<std::string> &booleans = {},
                     bool artifactRequired = true) {
  Options options;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (arg.size() > 1 && arg[0] == '-') {
      std::string name = arg, value;
      bool hasValue = false;
      if (size_t eq = arg.find('='); eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        hasValue = true;
      }
      if (std::find(booleans.begin(), booleans.end(), name) !=
          booleans.end()) {
        if (hasValue)
          fail("option " + name + " takes no value");
        options.flags.push_back(name);
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
        fail("unknown option '" + name + "' for 'kiln " + command +
             "' (see 'kiln " + command + " --help')");
      if (!hasValue) {
        if (i + 1 >= argc)
          fail("option " + name + " needs a value");
        value = argv[++i];
      }
      if (name == "--entry")
        options.entry = value;
      else if (name == "--input")
        options.inputs.push_back(value);
      else if (name == "--output-dir")
        options.outputDir = value;
      else if (name == "--repeat")
        options.repeat = parseCount(name, value, 1);
      else if (name == "--load-parameters")
        options.loadParameters = value;
      else if (name == "--save-parameters")
        options.saveParameters = value;
      else if (name == "--warmup" && command == "bench")
        options.warmup = parseCount(name, value, 0);
      else if (name == "--iters")
        options.iters = parseCount(name, value, 1);
      else
        options.values[name] = value;
      continue;
    }
    if (!options.artifact.empty())
      fail("unexpected argument '" + arg + "' (the artifact is '" +
           options.artifact + "')");
    options.artifact = arg;
  }
  if (options.artifact.empty() && artifactRequired)
    fail("'kiln " + command + "' needs " +
         (command == "plot" ? std::string("a run directory")
                            : std::string("an artifact (NAME.kiln)")) +
         "; see 'kiln " + command + " --help'");
  return options;
}

std::unique_ptr<Artifact> openArtifact(const std::string &dir) {
  Expected<std::unique_ptr<Artifact>> artifact = Artifact::open(dir);
  if (!artifact)
    fail(artifact.message());
  return artifact.take();
}

const EntryPointSpec &chooseEntry(const Artifact &artifact,
                                  const std::string &requested) {
  if (!requested.empty()) {
    const EntryPointSpec *entry = artifact.findEntryPoint(requested);
    if (!entry)
      fail("unknown entry point '" + requested + "'; '" + artifact.dir() +
           "' has: " + artifact.manifest().entryPointNames());
    return *entry;
  }
  if (const EntryPointSpec *entry = artifact.findEntryPoint("forward"))
    return *entry;
  if (artifact.entryPoints().size() == 1)
    return artifact.entryPoints().front();
  fail("'" + artifact.dir() + "' has no entry point 'forward'; choose one " +
       "with --entry (it has: " + artifact.manifest().entryPointNames() + ")");
}

/// Reads the --input files. The arrays own the bytes the views point to.
std::vector<NamedTensor> readInputs(const EntryPointSpec &entry,
                                    const std::vector<std::string> &specs,
                                    std::vector<NpyArray> &arrays) {
  arrays.reserve(specs.size());
  std::vector<NamedTensor> inputs;
  for (const std::string &spec : specs) {
    std::string name, file;
    size_t eq = spec.find('=');
    if (eq != std::string::npos) {
      name = spec.substr(0, eq);
      file = spec.substr(eq + 1);
    } else if (entry.inputs.size() == 1) {
      name = entry.inputs[0].name;
      file = spec;
    } else {
      fail("--input '" + spec + "' needs the form NAME=FILE.npy (entry point '" +
           entry.name + "' has several inputs)");
    }
    if (name.empty() || file.empty())
      fail("--input '" + spec + "' needs the form NAME=FILE.npy");
    Expected<NpyArray> array = readNpy(file);
    if (!array)
      fail("input '" + name + "': " + array.message());
    arrays.push_back(array.take());
    inputs.push_back({name, arrays.back().view()});
  }
  return inputs;
}

std::vector<OwnedTensor> runOnce(const Artifact &artifact,
                                 const EntryPointSpec &entry,
                                 const std::vector<NamedTensor> &inputs) {
  Expected<std::vector<OwnedTensor>> outputs = artifact.run(entry.name, inputs);
  if (!outputs)
    fail(outputs.message());
  return outputs.take();
}

/// An output name as a file name: '/' and leading dots would escape DIR.
std::string fileNameFor(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  if (name.empty() || name[0] == '.')
    name = "_" + name;
  return name + ".npy";
}

/// The value of a one-element tensor, with enough digits to round-trip.
std::string formatScalar(const OwnedTensor &tensor) {
  char text[64];
  switch (tensor.dtype()) {
  case DType::F32:
    std::snprintf(text, sizeof text, "%.9g", *tensor.as<float>());
    break;
  case DType::I64:
    std::snprintf(text, sizeof text, "%lld",
                  static_cast<long long>(*tensor.as<int64_t>()));
    break;
  case DType::I32:
    std::snprintf(text, sizeof text, "%d", *tensor.as<int32_t>());
    break;
  default:
    return "(" + std::string(dtypeName(tensor.dtype())) + ")";
  }
  return text;
}

int runCommand(int argc, char **argv) {
  Options options = parseOptions(
      "run", argc, argv, 2,
      {"--entry", "--input", "--output-dir", "--repeat", "--load-parameters",
       "--save-parameters"},
      kRunUsage);
  std::unique_ptr<Artifact> artifact = openArtifact(options.artifact);
  const EntryPointSpec &entry = chooseEntry(*artifact, options.entry);
  if (!options.loadParameters.empty())
    if (Status s = artifact->loadParameters(options.loadParameters,
                                            /*requireAll=*/true);
        !s)
      fail(s.message());
  if (!options.saveParameters.empty() && !artifact->writesParameters())
    fail("--save-parameters needs a training artifact (kiln-compile --mode "
         "train); '" + options.artifact + "' never changes its parameters");
  std::vector<NpyArray> arrays;
  std::vector<NamedTensor> inputs = readInputs(entry, options.inputs, arrays);
  if (!options.outputDir.empty())
    if (Status s = makeDirectories(options.outputDir); !s)
      fail(s.message());
  for (int64_t call = 0; call < options.repeat; ++call) {
    std::vector<OwnedTensor> outputs = runOnce(*artifact, entry, inputs);
    bool last = call + 1 == options.repeat;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string &name = entry.outputs[i].name;
      std::string line = name + ": " + dtypeName(outputs[i].dtype()) + " " +
                         formatShape(outputs[i].shape());
      if (options.repeat > 1)
        line = "[" + std::to_string(call + 1) + "] " + line;
      if (outputs[i].numElements() == 1)
        line += " = " + formatScalar(outputs[i]);
      if (last && !options.outputDir.empty()) {
        std::string path = options.outputDir + "/" + fileNameFor(name);
        if (Status s = writeNpy(path, outputs[i].view()); !s)
          fail("output '" + name + "': " + s.message());
        line += " -> " + path;
      }
      std::printf("%s\n", line.c_str());
    }
  }
  if (!options.saveParameters.empty()) {
    if (Status s = artifact->saveParameters(options.saveParameters); !s)
      fail(s.message());
    std::printf("parameters -> %s\n", options.saveParameters.c_str());
  }
  return 0;
}

double percentile(const std::vector<double> &sorted, double p) {
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::max(
      1.0, std::ceil(p / 100.0 * static_cast<double>(sorted.size()))));
  return sorted[std::min(rank, sorted.size()) - 1];
}

bool isInteger(DType dtype) {
  switch (dtype) {
  case DType::I64:
  case DType::I32:
  case DType::I16:
  case DType::I8:
  case DType::U8:
    return true;
  default:
    return false;
  }
}

int benchCommand(int argc, char **argv) {
  Options options = parseOptions("bench", argc, argv, 2,
                                 {"--entry", "--input", "--warmup", "--iters"},
                                 kBenchUsage);
  std::unique_ptr<Artifact> artifact = openArtifact(options.artifact);
  const EntryPointSpec &entry = chooseEntry(*artifact, options.entry);
  std::vector<NpyArray> arrays;
  std::vector<NamedTensor> inputs = readInputs(entry, options.inputs, arrays);

  for (int64_t i = 0; i < options.warmup; ++i)
    (void)runOnce(*artifact, entry, inputs);
  std::vector<double> ms;
  for (int64_t i = 0; i < options.iters; ++i) {
    auto start = std::chrono::steady_clock::now();
    std::vector<OwnedTensor> outputs = runOnce(*artifact, entry, inputs);
    outputs.clear(); // Freeing the results is part of a call.
    auto stop = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  double mean = 0;
  for (double t : ms)
    mean += t / static_cast<double>(ms.size());
  std::sort(ms.begin(), ms.end());
  double p50 = percentile(ms, 50);

  std::printf("%s: entry point '%s', %lld iterations after %lld warm-up\n",
              artifact->dir().c_str(), entry.name.c_str(),
              static_cast<long long>(options.iters),
              static_cast<long long>(options.warmup));
  std::printf("latency (ms): p50 %.4f  p90 %.4f  p99 %.4f  min %.4f  mean "
              "%.4f\n",
              p50, percentile(ms, 90), percentile(ms, 99), ms.front(), mean);

  // tokens/s: the first declared input, if it is an integer [batch, seq].
  const TensorSpec *first = entry.inputs.empty() ? nullptr : &entry.inputs[0];
  const NamedTensor *firstInput = nullptr;
  for (const NamedTensor &input : inputs)
    if (first && input.name == first->name)
      firstInput = &input;
  if (first && firstInput && isInteger(first->dtype) &&
      (first->rank() == 1 || first->rank() == 2)) {
    int64_t tokens = numElements(firstInput->view.shape);
    std::printf("tokens/s: %.1f (%lld tokens per call, input '%s' %s)\n",
                static_cast<double>(tokens) / (p50 / 1000.0),
                static_cast<long long>(tokens), first->name.c_str(),
                formatShape(firstInput->view.shape).c_str());
  } else {
    std::printf("tokens/s: n/a (the first input is not an integer [batch, "
                "seq] tensor)\n");
  }

  // GFLOP/s and GB/s: the static cost, or the cost model at these shapes.
  std::vector<std::vector<int64_t>> shapes;
  for (const TensorSpec &spec : entry.inputs)
    for (const NamedTensor &input : inputs)
      if (input.name == spec.name)
        shapes.push_back(input.view.shape);
  std::optional<Cost> cost = entry.costFor(shapes);
  if (cost) {
    std::string source;
    if (!entry.hasStaticInputs()) {
      source = ", cost model at ";
      for (size_t i = 0; i < entry.costModel->symbols.size(); ++i) {
        const CostSymbol &symbol = entry.costModel->symbols[i];
        const auto &[input, axis] = symbol.dims.front();
        source += (i ? ", " : "") + symbol.name + "=" +
                  std::to_string(shapes[input][axis]);
      }
    }
    std::printf("GFLOP/s: %.3f (%.6g flops per call%s)\n",
                cost->flops / (p50 / 1000.0) / 1e9, cost->flops,
                source.c_str());
    // Manifests of older compilers give flops only.
    if (cost->bytes > 0)
      std::printf("GB/s: %.3f (%.6g bytes per call, unfused estimate)\n",
                  cost->bytes / (p50 / 1000.0) / 1e9, cost->bytes);
  } else if (!entry.flops && !entry.costModel) {
    std::printf("GFLOP/s: n/a (the manifest gives no cost)\n");
  } else if (!entry.costModel) {
    std::printf("GFLOP/s: n/a (dynamic shapes and no cost model%s%s)\n",
                entry.costModelNote.empty() ? "" : ": ",
                entry.costModelNote.c_str());
  } else {
    std::printf("GFLOP/s: n/a (the input shapes give different sizes to "
                "dims the cost model ties)\n");
  }
  return 0;
}

std::string joinOptions(const std::map<std::string, std::string> &options) {
  std::string text;
  for (const auto &[key, value] : options)
    text += (text.empty() ? "" : ", ") + key + "=" + value;
  return text;
}

std::string describeSpecs(const std::vector<TensorSpec> &specs) {
  std::string text;
  for (const TensorSpec &spec : specs)
    text += (text.empty() ? "" : ", ") + spec.name + " " +
            dtypeName(spec.dtype) + " " + formatSpecShape(spec.shape);
  return text.empty() ? "none" : text;
}

/// "332416*B*S + 568*B*S^2" with the symbols' names.
std::string formatPolynomial(const CostModel &model,
                             const std::vector<CostTerm> &terms) {
  std::string text;
  for (const CostTerm &term : terms) {
    char coefficient[32];
    std::snprintf(coefficient, sizeof(coefficient), "%.10g",
                  std::abs(term.coefficient));
    if (!text.empty())
      text += term.coefficient < 0 ? " - " : " + ";
    else if (term.coefficient < 0)
      text += "-";
    text += coefficient;
    for (size_t i = 0; i < term.exponents.size(); ++i) {
      if (!term.exponents[i])
        continue;
      text += "*" + model.symbols[i].name;
      if (term.exponents[i] > 1)
        text += "^" + std::to_string(term.exponents[i]);
    }
  }
  return text.empty() ? "0" : text;
}

int infoCommand(int argc, char **argv) {
  Options options = parseOptions("info", argc, argv, 2, {}, kInfoUsage);
  Expected<Manifest> read = Manifest::read(options.artifact + "/manifest.json");
  if (!read) {
    // Artifact::open words a missing directory or manifest best.
    (void)openArtifact(options.artifact);
    fail(read.message());
  }
  const Manifest &m = *read;
  std::printf("artifact: %s\n", options.artifact.c_str());
  std::printf("format: kiln-artifact %d\n", m.formatVersion);
  std::printf("target: %s", targetName(m.target));
  if (!m.targetOptions.empty())
    std::printf(" (%s)", joinOptions(m.targetOptions).c_str());
  std::printf("\n");
  if (!m.source.empty())
    std::printf("source: %s\n", joinOptions(m.source).c_str());
  if (!m.compileOptions.empty())
    std::printf("compile options: %s\n", joinOptions(m.compileOptions).c_str());
  std::printf("module: %s\n", m.module.c_str());
  uint64_t elements = 0, bytes = 0, stateElements = 0;
  size_t states = 0;
  for (const ParameterSpec &p : m.parameters) {
    if (p.state) {
      ++states;
      stateElements += static_cast<uint64_t>(numElements(p.shape));
      continue;
    }
    elements += static_cast<uint64_t>(numElements(p.shape));
    bytes += static_cast<uint64_t>(numElements(p.shape)) * dtypeSize(p.dtype);
  }
  std::printf("weights: %s (%zu parameters, %llu elements, %llu bytes)\n",
              m.weights.c_str(), m.parameters.size() - states,
              static_cast<unsigned long long>(elements),
              static_cast<unsigned long long>(bytes));
  if (states)
    std::printf("optimizer state: %zu tensors, %llu elements (zero at the "
                "start, not in the weights file)\n",
                states, static_cast<unsigned long long>(stateElements));
  for (const ParameterSpec &p : m.parameters)
    std::printf("  %s %s %s%s\n", p.name.c_str(), dtypeName(p.dtype),
                formatShape(p.shape).c_str(),
                p.state ? " state" : (p.trainable ? " trainable" : ""));
  std::printf("entry points: %zu\n", m.entryPoints.size());
  for (const EntryPointSpec &e : m.entryPoints) {
    std::printf("  %s (symbol %s)\n", e.name.c_str(), e.symbol.c_str());
    std::printf("    inputs: %s\n", describeSpecs(e.inputs).c_str());
    std::printf("    outputs: %s\n", describeSpecs(e.outputs).c_str());
    std::printf("    parameters: %zu\n", e.parameters.size());
    if (e.flops)
      std::printf("    cost: %.6g flops%s\n", *e.flops,
                  e.hasStaticInputs() ? "" : " (inputs have dynamic dims)");
    if (e.costModel) {
      std::printf("    cost model: flops = %s\n",
                  formatPolynomial(*e.costModel, e.costModel->flops).c_str());
      std::printf("                bytes = %s\n",
                  formatPolynomial(*e.costModel, e.costModel->bytes).c_str());
    } else if (!e.costModelNote.empty()) {
      std::printf("    no cost model: %s\n", e.costModelNote.c_str());
    }
  }
  std::fflush(stdout);
  // The description needs only the manifest; loading a CUDA artifact needs
  // a driver and a device, so where there are none it is not tried.
  if (m.target == TargetKind::CUDA) {
    if (Status s = cudaDeviceStatus(); !s) {
      std::printf("loads: not checked on this machine: %s\n",
                  s.message().c_str());
      return 0;
    }
  }
  (void)openArtifact(options.artifact);
  std::printf("loads: ok\n");
  return 0;
}

double parseNumber(const std::string &option, const std::string &text) {
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(value))
    fail("option " + option + " needs a number, not '" + text + "'");
  return value;
}

int pretrainCommand(int argc, char **argv) {
  const std::vector<std::string> settings = {
      "--data",       "--batch",        "--seq",          "--lr",
      "--min-lr",     "--warmup",       "--schedule",     "--seed",
      "--eval-every", "--eval-batches", "--checkpoint-every", "--tokenizer",
      "--vocab-size", "--val-fraction"};
  std::vector<std::string> allowed = {"--out", "--steps", "--peak-gflops",
                                      "--watts", "--log-every"};
  allowed.insert(allowed.end(), settings.begin(), settings.end());
  Options o = parseOptions("pretrain", argc, argv, 2, allowed, kPretrainUsage,
                           {"--resume"}, /*artifactRequired=*/false);
  kiln::train::PretrainOptions p;
  p.resume = o.has("--resume");
  if (!o.values.count("--out"))
    fail("'kiln pretrain' needs --out RUN_DIR; see 'kiln pretrain --help'");
  p.runDir = o.values["--out"];
  if (o.artifact.empty() && !p.resume)
    fail("'kiln pretrain' needs a training artifact (NAME.kiln); see 'kiln "
         "pretrain --help'");
  p.artifact = o.artifact;
  // The run's settings are parsed the same way in both modes: a resumed run
  // takes them from RUN_DIR/run.json and checks the ones given here against
  // it, so the original command plus --resume works.
  if (!o.artifact.empty())
    p.givenSettings.push_back("artifact");
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

int plotCommand(int argc, char **argv) {
  Options o = parseOptions("plot", argc, argv, 2, {}, kPlotUsage);
  std::string png;
  if (Status s = kiln::train::plotRun(o.artifact, &png); !s)
    fail(s.message());
  std::printf("%s\n", png.c_str());
  return 0;
}

int generateCommand(int argc, char **argv) {
  Options o = parseOptions(
      "generate", argc, argv, 2,
      {"--prompt", "--run", "--tokenizer", "--checkpoint", "--max-tokens",
       "--temperature", "--top-k", "--top-p", "--samples", "--seed"},
      kGenerateUsage);
  if (!o.values.count("--prompt"))
    fail("'kiln generate' needs --prompt TEXT; see 'kiln generate --help'");
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
    fail("'kiln generate' needs a tokenizer: --run RUN_DIR or --tokenizer "
         "MODEL");
  Expected<kiln::train::Tokenizer> tokenizer =
      kiln::train::Tokenizer::load(tokenizerPath);
  if (!tokenizer)
    fail(tokenizer.message());
  std::unique_ptr<Artifact> artifact = openArtifact(o.artifact);
  if (!checkpoint.empty())
    if (Status s = artifact->loadParameters(checkpoint, /*requireAll=*/false);
        !s)
      fail(s.message());
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
  for (int64_t i = 0; i < samples; ++i) {
    g.seed = seed + static_cast<uint64_t>(i);
    Expected<std::string> text = kiln::train::generateText(*artifact, *tokenizer, g);
    if (!text)
      fail(text.message());
    if (samples > 1)
      std::printf("--- sample %lld\n", static_cast<long long>(i + 1));
    std::printf("%s\n", text->c_str());
  }
  return 0;
}

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
  if (command == "plot")
    return plotCommand(argc, argv);
  if (command == "generate")
    return generateCommand(argc, argv);
  fail("unknown command '" + command + "' (commands: run, bench, info, " +
       "pretrain, plot, generate; see 'kiln --help')");
}
