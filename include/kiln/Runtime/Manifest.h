//===- Manifest.h - The manifest.json of a Kiln artifact --------*- C++ -*-===//
//
// An artifact directory (docs/artifacts.md) describes itself in
// manifest.json: its target, its parameters (name, dtype, shape, where they
// lie in weights.safetensors) and its entry points (symbol, named inputs and
// outputs with dtypes and shapes, the parameters each receives). This is the
// parsed, validated form. It knows nothing of module.so or the weights; see
// Artifact.h for loading them.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_MANIFEST_H
#define KILN_RUNTIME_MANIFEST_H

#include "kiln/Runtime/Status.h"
#include "kiln/Runtime/Tensor.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The manifest format version this runtime reads.
constexpr int kManifestFormatVersion = 1;
/// The module.so ABI version (kiln_abi_version()) this runtime calls.
constexpr int kModuleAbiVersion = 1;

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

  size_t rank() const { return shape.size(); }
  bool isStatic() const;
};

/// "[?, 4]" for messages and listings.
std::string formatSpecShape(const std::vector<int64_t> &shape);

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
  /// "cost": {"flops": F} when the compiler estimated it.
  std::optional<double> flops;

  const TensorSpec *findInput(const std::string &name) const;
  const TensorSpec *findOutput(const std::string &name) const;
  /// True when no input has a dynamic dim.
  bool hasStaticInputs() const;
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

struct Manifest {
  int formatVersion = kManifestFormatVersion;
  TargetKind target = TargetKind::CPU;
  /// Informational objects, flattened to key -> JSON text of the value
  /// (strings without their quotes).
  std::map<std::string, std::string> targetOptions;
  std::map<std::string, std::string> compileOptions;
  std::map<std::string, std::string> source;
  /// File names inside the artifact directory.
  std::string module = "module.so";
  std::string weights = "weights.safetensors";
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
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_MANIFEST_H
