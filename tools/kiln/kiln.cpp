//===- kiln.cpp - Run, benchmark and inspect Kiln artifacts ---------------===//
//
// The `kiln` driver: `kiln run`, `kiln bench` and `kiln info` over
// libkiln_runtime. It links nothing else (no LLVM, no MLIR): an artifact
// plus this tool and the library is a deployment. So the command line is
// parsed by hand. Every error is one line "kiln: error: ..." and exit 1.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/Npy.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
         Times an entry point: latency percentiles, tokens/s, GFLOP/s.
  info   NAME.kiln
         Prints the manifest: target, parameters, entry points.

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
and GFLOP/s when the manifest gives the entry point's cost in flops and its
inputs have static shapes. Throughputs use the p50 latency.

OPTIONS:
  --entry NAME          entry point to run (default: forward, or the only one)
  --input NAME=FILE     a .npy file for the input NAME; once per input
  --warmup N            calls before timing (default 3)
  --iters N             timed calls (default 20)
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
                     const char *usage) {
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
      else if (name == "--warmup")
        options.warmup = parseCount(name, value, 0);
      else if (name == "--iters")
        options.iters = parseCount(name, value, 1);
      continue;
    }
    if (!options.artifact.empty())
      fail("unexpected argument '" + arg + "' (the artifact is '" +
           options.artifact + "')");
    options.artifact = arg;
  }
  if (options.artifact.empty())
    fail("'kiln " + command + "' needs an artifact (NAME.kiln); see 'kiln " +
         command + " --help'");
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

void makeDirectories(const std::string &dir) {
  std::string prefix;
  size_t at = 0;
  while (at != std::string::npos) {
    at = dir.find('/', at + 1);
    prefix = dir.substr(0, at);
    if (prefix.empty())
      continue;
    if (::mkdir(prefix.c_str(), 0777) != 0 && errno != EEXIST)
      fail("cannot create directory '" + prefix + "': " + std::strerror(errno));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail("'" + dir + "' is not a directory");
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
    makeDirectories(options.outputDir);
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

  if (!entry.flops)
    std::printf("GFLOP/s: n/a (the manifest gives no cost)\n");
  else if (!entry.hasStaticInputs())
    std::printf("GFLOP/s: n/a (dynamic shapes)\n");
  else
    std::printf("GFLOP/s: %.3f (%.6g flops per call)\n",
                *entry.flops / (p50 / 1000.0) / 1e9, *entry.flops);
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
  uint64_t elements = 0, bytes = 0;
  for (const ParameterSpec &p : m.parameters) {
    elements += static_cast<uint64_t>(numElements(p.shape));
    bytes += static_cast<uint64_t>(numElements(p.shape)) * dtypeSize(p.dtype);
  }
  std::printf("weights: %s (%zu parameters, %llu elements, %llu bytes)\n",
              m.weights.c_str(), m.parameters.size(),
              static_cast<unsigned long long>(elements),
              static_cast<unsigned long long>(bytes));
  for (const ParameterSpec &p : m.parameters)
    std::printf("  %s %s %s%s\n", p.name.c_str(), dtypeName(p.dtype),
                formatShape(p.shape).c_str(),
                p.trainable ? " trainable" : "");
  std::printf("entry points: %zu\n", m.entryPoints.size());
  for (const EntryPointSpec &e : m.entryPoints) {
    std::printf("  %s (symbol %s)\n", e.name.c_str(), e.symbol.c_str());
    std::printf("    inputs: %s\n", describeSpecs(e.inputs).c_str());
    std::printf("    outputs: %s\n", describeSpecs(e.outputs).c_str());
    std::printf("    parameters: %zu\n", e.parameters.size());
    if (e.flops)
      std::printf("    cost: %.6g flops%s\n", *e.flops,
                  e.hasStaticInputs() ? "" : " (inputs have dynamic dims)");
  }
  std::fflush(stdout);
  (void)openArtifact(options.artifact);
  std::printf("loads: ok\n");
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
  fail("unknown command '" + command + "' (commands: run, bench, info; see " +
       "'kiln --help')");
}
