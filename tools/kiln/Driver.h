//===- Driver.h - What the kiln driver's commands share ------------*- C++ -*-===//
//
// The `kiln` driver (kiln.cpp dispatches; one file per command: Run.cpp,
// Bench.cpp, Info.cpp, Train.cpp for pretrain, plot, generate and eval) parses its
// command line by hand, as it links no LLVM. Every error is one line
// "kiln: error: ..." and exit status 1 (fail).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TOOLS_KILN_DRIVER_H
#define KILN_TOOLS_KILN_DRIVER_H

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/Npy.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::train {
class Tokenizer;
} // namespace kiln::train

namespace kiln::driver {

using namespace kiln::runtime;

/// Prints "kiln: error: MESSAGE" (one line) and exits with status 1.
[[noreturn]] void fail(const std::string &message);

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
  bool has(const std::string &name) const;
  int64_t warmup = 3;
  int64_t iters = 20;
};

/// `text` as a finite number, or fail naming `option`.
double parseNumber(const std::string &option, const std::string &text);

/// `text` as an integer of at least `minimum`, or fail naming `option`.
int64_t parseCount(const std::string &option, const std::string &text,
                   int64_t minimum);

/// Parses argv[first..] for `command`; `allowed` lists its value options,
/// `booleans` its flags; --help prints `usage` and exits.
Options parseOptions(const std::string &command, int argc, char **argv,
                     int first, const std::vector<std::string> &allowed,
                     const char *usage,
                     const std::vector<std::string> &booleans = {},
                     bool artifactRequired = true);

/// Artifact::open, or fail with its message. Commands that call the
/// artifact many times (bench, generate, eval) open it Resident.
std::unique_ptr<Artifact>
openArtifact(const std::string &dir,
             Artifact::OpenMode mode = Artifact::OpenMode::Full);

/// The entry point `requested`, else `forward`, else the only one.
const EntryPointSpec &chooseEntry(const Artifact &artifact,
                                  const std::string &requested);

/// Reads the --input files. The arrays own the bytes the views point to.
/// numpy has no bf16: an f32 file given for a BF16 input is rounded to
/// bf16 (to nearest, ties to even) as it is read.
std::vector<NamedTensor> readInputs(const EntryPointSpec &entry,
                                    const std::vector<std::string> &specs,
                                    std::vector<NpyArray> &arrays);

/// Moves the inputs `entry` updates in place (a KV cache) out of `inputs`:
/// they are returned writable, pointing into the bytes of `arrays`.
std::vector<Artifact::InPlaceTensor>
takeInPlaceInputs(const EntryPointSpec &entry, std::vector<NamedTensor> &inputs,
                  std::vector<NpyArray> &arrays);

/// Runs `entry` once, or fails with the run's message.
std::vector<OwnedTensor>
runOnce(const Artifact &artifact, const EntryPointSpec &entry,
        const std::vector<NamedTensor> &inputs,
        const std::vector<Artifact::InPlaceTensor> &inPlace = {});

/// An output name as a file name: '/' and leading dots would escape DIR.
std::string fileNameFor(std::string name);

/// writeNpy, with a BF16 tensor widened to f32 (exactly; numpy has no
/// bf16).
Status writeNpyWidened(const std::string &path, const TensorView &view);

/// The value of a one-element tensor, with enough digits to round-trip.
std::string formatScalar(const OwnedTensor &tensor);

/// --run RUN_DIR / --tokenizer MODEL / --checkpoint FILE of the commands
/// that use a trained language model: the tokenizer (or fail), and the
/// model's parameters of the checkpoint loaded into a training artifact
/// (LoadSelection::ModelOnly). An inference artifact keeps the weights it
/// was compiled with: --run then gives only the tokenizer (a note on
/// stderr), and --checkpoint is refused.
kiln::train::Tokenizer loadModel(Options &o, Artifact &artifact,
                                 const char *command, bool requireAll);

// The commands: argv[1] is the command's name.
int runCommand(int argc, char **argv);
int benchCommand(int argc, char **argv);
int infoCommand(int argc, char **argv);
int pretrainCommand(int argc, char **argv);
int sftCommand(int argc, char **argv);
int dpoCommand(int argc, char **argv);
int grpoCommand(int argc, char **argv);
int ppoCommand(int argc, char **argv);
int distillCommand(int argc, char **argv);
int rewardCommand(int argc, char **argv);
int taskCommand(int argc, char **argv);
int judgeCommand(int argc, char **argv);
int labelCommand(int argc, char **argv);
int plotCommand(int argc, char **argv);
int generateCommand(int argc, char **argv);
int evalCommand(int argc, char **argv);
int calibrateCommand(int argc, char **argv);
int shapesCommand(int argc, char **argv);
int embedCommand(int argc, char **argv);
int captionCommand(int argc, char **argv);

} // namespace kiln::driver

#endif // KILN_TOOLS_KILN_DRIVER_H
