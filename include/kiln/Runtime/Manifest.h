//===- Manifest.h - The manifest.json of a Kiln artifact --------*- C++ -*-===//
//
// An artifact directory (docs/artifacts.md) describes itself in
// manifest.json: its target, its parameters (name, dtype, shape, where they
// lie in weights.safetensors) and its entry points (symbol, named inputs and
// outputs with dtypes and shapes, the parameters each receives). This is the
// parsed, validated form, and the one the compiler fills and serializes, so
// both sides of the contract share one reader and one writer. It knows
// nothing of module.so or the weights; see Artifact.h for loading them.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_MANIFEST_H
#define KILN_RUNTIME_MANIFEST_H

#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/Status.h"
#include "kiln/Runtime/Tensor.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The manifest format version this runtime reads.
constexpr int kManifestFormatVersion = KILN_ARTIFACT_FORMAT_VERSION;
/// The module.so ABI version (kiln_abi_version()) this runtime calls.
constexpr int kModuleAbiVersion = KILN_MODULE_ABI_VERSION;

/// A shape dim of -1 in a manifest is dynamic.
constexpr int64_t kDynamicDim = -1;

/// A named input or output of an entry point.
struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  /// Dims; kDynamicDim for a dynamic one.
  std::vector<int64_t> shape;
  /// Inputs only, optional: the largest size of each dim (-1: no limit),
  /// from the manifest's "max_shape".
  std::vector<int64_t> maxShape;
  /// Inputs only: the entry point updates this input in place (a KV
  /// cache), the manifest's "in_place": true. The caller passes a writable
  /// buffer (Artifact::run's `inPlace`), which holds the new value when the
  /// call returns.
  bool inPlace = false;

  size_t rank() const { return shape.size(); }
  bool isStatic() const;
};

/// "[?, 4]" for messages and listings.
std::string formatSpecShape(const std::vector<int64_t> &shape);

/// How a parameter is initialized when no weights are given: the kiln
/// dialect's init rule ("zeros", "ones", "normal" with `std`, "uniform"
/// with `low`/`high`). Informational for the runtime: kiln-compile applies
/// it when it writes the weights.
struct InitSpec {
  std::string kind;
  std::optional<double> std;
  std::optional<double> low;
  std::optional<double> high;
};

/// How a parameter holds a linear weight as the CPU matmul's column
/// panels (kiln-pack-weights): `[ceil(out / width), in, width]`, or with
/// `pairs` 2 `[ceil(out / width), in / 2, width, 2]` (AMX bf16 pairs), from
/// the weight of `shape` as the model's checkpoints hold it (`[in, out]`
/// when `inOut`, else `[out, in]`). A checkpoint gives the weight in that
/// shape. With `atLoad` the artifact's weights file holds it so too and
/// the runtime packs it when it opens the artifact; else the file holds
/// the panels.
struct PackedLayout {
  std::vector<int64_t> shape;
  bool inOut = false;
  int64_t width = 0;
  int64_t pairs = 1;
  bool atLoad = false;
  /// The weight's input and output sizes (shape is 2-D).
  int64_t in() const { return shape[inOut ? 0 : 1]; }
  int64_t out() const { return shape[inOut ? 1 : 0]; }
  /// The panels' element type: f32, or bf16 in pairs.
  DType dtype() const { return pairs == 1 ? DType::F32 : DType::BF16; }
  /// The panels' shape (the parameter's).
  std::vector<int64_t> panelShape() const;
  /// The shape of the tensor in the artifact's weights file.
  std::vector<int64_t> fileShape() const {
    return atLoad ? shape : panelShape();
  }
  /// Writes the weight at `weight` (`shape`, dtype()) as panels at
  /// `panels` (panelShape(); the padding past `out` columns zero).
  void pack(const void *weight, void *panels) const;
};

/// One entry of the manifest's parameter table.
struct ParameterSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape; ///< Always static.
  /// Where the tensor lies in the data section of the weights file, when the
  /// manifest says.
  std::optional<uint64_t> offset;
  std::optional<uint64_t> size;
  bool trainable = false;
  /// Optimizer state (`"state": true`): not in the weights file; the
  /// runtime starts it at zero.
  bool state = false;
  /// "init", when the manifest says.
  std::optional<InitSpec> init;
  /// "packed": column panels (shape is then packed->panelShape()).
  std::optional<PackedLayout> packed;
};

/// FLOPs and bytes moved by one call of an entry point.
struct Cost {
  double flops = 0;
  double bytes = 0;
};

/// One dim of an entry point's inputs: `axis` of input `input` (an index
/// into EntryPointSpec::inputs, or the function's argument number in the
/// compiler, which are the same).
struct InputDim {
  size_t input = 0;
  size_t axis = 0;
  bool operator==(const InputDim &other) const {
    return input == other.input && axis == other.axis;
  }
};

/// One dynamic size of an entry point's cost model: input dims that take
/// the same value (dims the graph ties together share a symbol).
struct CostSymbol {
  /// "<input>.<axis>" of its first dim.
  std::string name;
  /// Never empty.
  std::vector<InputDim> dims;
};

/// coefficient * prod(size[i] ^ exponents[i]), one exponent per symbol.
struct CostTerm {
  double coefficient = 0;
  std::vector<unsigned> exponents;
};

/// The sum of `terms` at `sizes` (one per symbol). The compiler fits the
/// terms with the same evaluation.
double evaluateCostTerms(const std::vector<CostTerm> &terms,
                         const std::vector<double> &sizes);

/// The manifest's "cost_model" (docs/artifacts.md): an entry point's cost
/// as polynomials in its dynamic input sizes. The compiler fits it
/// (fitCostModel in include/kiln/Compiler/CostModel.h) and the runtime
/// evaluates it (EntryPointSpec::costFor).
struct CostModel {
  std::vector<CostSymbol> symbols;
  std::vector<CostTerm> flops;
  std::vector<CostTerm> bytes;
};

struct EntryPointSpec {
  std::string name;
  std::string symbol; ///< "kiln_entry_<name>" unless the manifest says.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  /// Names of the parameters it receives after the inputs, in order.
  std::vector<std::string> parameters;
  /// Names of the parameters it updates in place (train_step).
  std::vector<std::string> writesParameters;
  /// "cost": {"flops": F, "bytes": B} when the compiler estimated it. With
  /// dynamic inputs, every dynamic dim counts as 1 here: see costFor.
  std::optional<double> flops;
  std::optional<double> bytes;
  /// "cost_model" for entry points with dynamic inputs, when the compiler
  /// fitted one; else "cost_model_note" may say why not.
  std::optional<CostModel> costModel;
  std::string costModelNote;

  const TensorSpec *findInput(const std::string &name) const;
  const TensorSpec *findOutput(const std::string &name) const;
  /// True when no input has a dynamic dim.
  bool hasStaticInputs() const;
  /// The cost of one call with inputs of these shapes (one per input, in the
  /// order of `inputs`): the static "cost" when the inputs are static, else
  /// the cost model evaluated at the shapes' sizes. Nothing when the
  /// manifest gives neither, or the shapes do not fit the inputs' ranks or
  /// give different sizes to dims the model ties together.
  std::optional<Cost> costFor(
      const std::vector<std::vector<int64_t>> &inputShapes) const;
};

/// The targets this runtime knows how to load. Adding one means a new value
/// here and a loader in Artifact.cpp. A cuda artifact's target_options say
/// which GPUs it runs on: "cuda_arch" ("sm_80", "sm_90", ...) and "image"
/// ("ptx" or "fatbin"); see docs/artifacts.md.
enum class TargetKind { CPU, CUDA };
const char *targetName(TargetKind target);
std::optional<TargetKind> parseTargetName(const std::string &name);
/// "cpu, cuda" for messages.
std::string supportedTargetNames();

/// One value of an informational object of the manifest (target_options,
/// compile_options, source): a string, or any other JSON value kept as its
/// JSON text, so a string "3" and a number 3 stay apart.
struct OptionValue {
  bool isString = true;
  /// The string itself, or the JSON text of the value.
  std::string text;

  static OptionValue string(std::string value) { return {true, std::move(value)}; }
  static OptionValue json(std::string text) { return {false, std::move(text)}; }
  bool operator==(const OptionValue &other) const {
    return isString == other.isString && text == other.text;
  }
};
using OptionMap = std::map<std::string, OptionValue>;

struct Manifest {
  int formatVersion = kManifestFormatVersion;
  TargetKind target = TargetKind::CPU;
  /// Informational objects, one level deep (a nested object is one JSON
  /// value). target_options of a cuda artifact are read by its loader.
  OptionMap targetOptions;
  OptionMap compileOptions;
  OptionMap source;
  /// File names inside the artifact directory.
  std::string module = KILN_MODULE_FILE;
  std::string weights = KILN_WEIGHTS_FILE;
  std::vector<ParameterSpec> parameters;
  std::vector<EntryPointSpec> entryPoints;

  const ParameterSpec *findParameter(const std::string &name) const;
  const EntryPointSpec *findEntryPoint(const std::string &name) const;
  /// "forward, backward" for messages.
  std::string entryPointNames() const;

  /// Parses and validates manifest text; `path` names it in messages.
  static Expected<Manifest> parse(const std::string &text,
                                  const std::string &path);
  /// Reads and parses `path`.
  static Expected<Manifest> read(const std::string &path);

  /// The manifest as JSON text, two-space indented, with a final newline:
  /// what kiln-compile writes. parse() of it gives this manifest back.
  /// Fails on what the format cannot carry (an option's JSON text that is
  /// not JSON, a non-finite number, a cost model dim naming no input).
  Expected<std::string> serialize() const;
};

/// What a module.so's compiled code assumes of its manifest, as text, one
/// fact per line: the module ABI version; the target; each parameter's
/// name, dtype, shape and kind, in order; each entry point's name, symbol,
/// inputs and outputs (name, dtype, shape, max shape), the parameters it
/// takes, in order, and those it writes. kiln-compile embeds it in module.so
/// as the exported string `kiln_module_signature`; Artifact::open refuses a
/// module whose signature differs from its manifest's, naming the first
/// differing line, so an edited manifest or a module.so from another
/// artifact cannot call compiled code with buffers it does not expect.
std::string moduleSignature(const Manifest &manifest);

/// The first line where `expected` (from the manifest) and `actual` (from
/// module.so) differ, as "manifest: <line>, module.so: <line>"; empty when
/// they are equal.
std::string firstSignatureDifference(const std::string &expected,
                                     const std::string &actual);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_MANIFEST_H
