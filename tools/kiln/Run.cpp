//===- Run.cpp - kiln run: an entry point on .npy inputs -----------------===//
//
// Runs an entry point of an artifact on .npy inputs, optionally several
// times with parameters loaded from and saved to a checkpoint.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Runtime/File.h"

#include <cstdio>

namespace kiln::driver {

namespace {

const char kRunUsage[] =
    R"(USAGE: kiln run NAME.kiln [--entry NAME] --input NAME=FILE.npy ... [--output-dir DIR]

Runs an entry point of the artifact on .npy inputs. For each output prints
"NAME: DTYPE [SHAPE]" (and " = VALUE" for a single element), and with
--output-dir writes it to DIR/NAME.npy (atomically; DIR is created if
needed).

Inputs an entry point updates in place (the KV cache of prefill and
decode_step, kiln-compile --kv-cache) are read from their files and, with
--output-dir, written back to DIR/NAME.npy after the last call, so that
calls can be chained.

numpy has no bf16 type: a BF16 input (the KV cache of a --dtype bf16
artifact) is read from an f32 .npy file and rounded to bf16 (to nearest,
ties to even), and BF16 outputs and in-place inputs are written as f32
.npy files (exactly), so files can be passed from one call to the next.

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

} // namespace

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
  std::vector<Artifact::InPlaceTensor> inPlace =
      takeInPlaceInputs(entry, inputs, arrays);
  if (!options.outputDir.empty())
    if (Status s = makeDirectories(options.outputDir); !s)
      fail(s.message());
  for (int64_t call = 0; call < options.repeat; ++call) {
    std::vector<OwnedTensor> outputs =
        runOnce(*artifact, entry, inputs, inPlace);
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
        if (Status s = writeNpyWidened(path, outputs[i].view()); !s)
          fail("output '" + name + "': " + s.message());
        line += " -> " + path;
      }
      std::printf("%s\n", line.c_str());
    }
  }
  for (const Artifact::InPlaceTensor &tensor : inPlace) {
    std::string line = tensor.name + ": " + dtypeName(tensor.dtype) + " " +
                       formatShape(tensor.shape) + " (updated in place)";
    if (!options.outputDir.empty()) {
      std::string path = options.outputDir + "/" + fileNameFor(tensor.name);
      if (Status s =
              writeNpyWidened(path, {tensor.dtype, tensor.shape, tensor.data});
          !s)
        fail("input '" + tensor.name + "': " + s.message());
      line += " -> " + path;
    }
    std::printf("%s\n", line.c_str());
  }
  if (!options.saveParameters.empty()) {
    if (Status s = artifact->saveParameters(options.saveParameters); !s)
      fail(s.message());
    std::printf("parameters -> %s\n", options.saveParameters.c_str());
  }
  return 0;
}

} // namespace kiln::driver
