//===- Driver.cpp - The kiln driver: command line, errors, shared steps --===//
//
// What every command of the `kiln` driver shares (Driver.h).
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kiln::driver {

[[noreturn]] void fail(const std::string &message) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "kiln: error: %s\n", line.c_str());
  std::exit(1);
}

bool Options::has(const std::string &name) const {
  return values.count(name) ||
         std::find(flags.begin(), flags.end(), name) != flags.end();
}

double parseNumber(const std::string &option, const std::string &text) {
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(value))
    fail("option " + option + " needs a number, not '" + text + "'");
  return value;
}

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

Options parseOptions(const std::string &command, int argc, char **argv,
                     int first, const std::vector<std::string> &allowed,
                     const char *usage, const std::vector<std::string> &booleans,
                     bool artifactRequired) {
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

std::unique_ptr<Artifact> openArtifact(const std::string &dir,
                                       Artifact::OpenMode mode) {
  Expected<std::unique_ptr<Artifact>> artifact = Artifact::open(dir, mode);
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

namespace {
/// An F32 array as BF16, rounded.
void narrowToBF16(NpyArray &array) {
  size_t count = array.bytes.size() / sizeof(float);
  std::vector<unsigned char> narrow(count * sizeof(uint16_t));
  for (size_t i = 0; i < count; ++i) {
    float value;
    std::memcpy(&value, array.bytes.data() + i * sizeof(float), sizeof value);
    uint16_t half = floatToBF16(value);
    std::memcpy(narrow.data() + i * sizeof half, &half, sizeof half);
  }
  array.bytes = std::move(narrow);
  array.dtype = DType::BF16;
}
} // namespace

Status writeNpyWidened(const std::string &path, const TensorView &view) {
  if (view.dtype != DType::BF16)
    return writeNpy(path, view);
  int64_t count = numElements(view.shape);
  std::vector<float> wide(static_cast<size_t>(count));
  const auto *halves = static_cast<const unsigned char *>(view.data);
  for (int64_t i = 0; i < count; ++i)
    wide[static_cast<size_t>(i)] = static_cast<float>(
        loadFloatElement(DType::BF16, halves + i * dtypeSize(DType::BF16)));
  return writeNpy(path, {DType::F32, view.shape, wide.data()});
}

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
    const TensorSpec *wanted = entry.findInput(name);
    if (wanted && wanted->dtype == DType::BF16 &&
        arrays.back().dtype == DType::F32)
      narrowToBF16(arrays.back());
    inputs.push_back({name, arrays.back().view()});
  }
  return inputs;
}

std::vector<Artifact::InPlaceTensor>
takeInPlaceInputs(const EntryPointSpec &entry, std::vector<NamedTensor> &inputs,
                  std::vector<NpyArray> &arrays) {
  std::vector<Artifact::InPlaceTensor> inPlace;
  std::vector<NamedTensor> rest;
  for (NamedTensor &input : inputs) {
    const TensorSpec *spec = entry.findInput(input.name);
    auto array = std::find_if(arrays.begin(), arrays.end(), [&](NpyArray &a) {
      return a.bytes.data() == input.view.data;
    });
    if (!spec || !spec->inPlace || array == arrays.end()) {
      rest.push_back(std::move(input));
      continue;
    }
    inPlace.push_back(
        {input.name, array->dtype, array->shape, array->bytes.data()});
  }
  inputs = std::move(rest);
  return inPlace;
}

std::vector<OwnedTensor>
runOnce(const Artifact &artifact, const EntryPointSpec &entry,
        const std::vector<NamedTensor> &inputs,
        const std::vector<Artifact::InPlaceTensor> &inPlace) {
  Expected<std::vector<OwnedTensor>> outputs =
      artifact.run(entry.name, inputs, inPlace);
  if (!outputs)
    fail(outputs.message());
  return outputs.take();
}

std::string fileNameFor(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  if (name.empty() || name[0] == '.')
    name = "_" + name;
  return name + ".npy";
}

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

} // namespace kiln::driver
