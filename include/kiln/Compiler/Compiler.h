//===- Compiler.h - kiln IR to ahead-of-time artifacts ----------*- C++ -*-===//
//
// The compiler API: turns a verified kiln module into an artifact directory
// (module.so, manifest.json, weights.safetensors, see docs/artifacts.md).
// kiln-compile and, later, the training driver call it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_COMPILER_H
#define KILN_COMPILER_COMPILER_H

#include "kiln/Target/Common/TargetBackend.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace mlir::kiln {

struct CompileOptions {
  /// The backend (createCPUTarget, createCUDATarget); required.
  std::shared_ptr<const TargetBackend> target;
  /// A safetensors file with every parameter, checked by name, shape and
  /// dtype; when absent, parameters are initialized from their init rules.
  std::optional<std::string> weightsPath;
  /// A kiln calibrate file; GPTQ-rounded weights (kiln-quantize
  /// rounding=gptq) read their `<source>.input_gram` from it.
  std::optional<std::string> calibrationPath;
  /// Seed of the init rules. Each parameter's stream depends only on the
  /// seed and its name, so adding a parameter does not change the others.
  uint64_t seed = 0;
  /// What the artifact was built from, for the manifest.
  std::string sourcePath;
  std::string sourceSHA256;
  /// Extra compile options recorded in the manifest (batch, seq, ...).
  llvm::json::Object recordedOptions;
  /// Composite ops lowered whole by fused kernels rather than decomposed
  /// (kiln.attention: flash-attention style, see convert-kiln-attention).
  std::vector<std::string> keep;
  /// Progress lines on stderr.
  bool verbose = false;
  /// Where each phase's time is recorded (`kiln-compile --timing`): the
  /// entry points' costs, every pass of the lowering, LLVM's translation,
  /// optimization and code generation, linking, and the weights.
  TimingScope *timing = nullptr;
};

/// Compiles `module` (kiln IR with parameters; it is not modified) into the
/// artifact directory `outputDir`, replacing any previous one atomically.
llvm::Error compileArtifact(ModuleOp module, const CompileOptions &options,
                            llvm::StringRef outputDir);

/// The hex SHA-256 of `data`.
std::string sha256Hex(llvm::StringRef data);

} // namespace mlir::kiln

#endif // KILN_COMPILER_COMPILER_H
