//===- Compiler.h - kiln IR to ahead-of-time artifacts ----------*- C++ -*-===//
//
// The compiler API: turns a verified kiln module into an artifact directory
// (module.so, manifest.json, weights.safetensors, see docs/artifacts.md).
// kiln-compile and, later, the training driver call it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_COMPILER_H
#define KILN_COMPILER_COMPILER_H

#include "kiln/Target/Common/ObjectEmission.h"
#include "kiln/Target/CUDA/CUDAPipeline.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::kiln {

/// Options of `--target cuda`.
struct CUDATargetOptions {
  /// The GPU architecture the kernels are compiled for (sm_80, sm_90, ...).
  std::string arch = "sm_90";
  /// What module.so embeds: "ptx" (compiled by the driver when the artifact
  /// is loaded, any driver of CUDA 12.0 or later), "cubin" or "fatbin"
  /// (cubin and PTX; both need the toolkit's ptxas and fatbinary here and
  /// a driver at least as new as that toolkit there).
  std::string image = "ptx";
  /// The CUDA toolkit: its ptxas checks every kernel when present.
  std::string toolkit = "/usr/local/cuda";
};

struct CompileOptions {
  /// "cpu" or "cuda".
  std::string target = "cpu";
  /// The CPU of the generated code (cpu) or of the host code (cuda).
  CPUTargetOptions cpu;
  CUDATargetOptions cuda;
  /// A safetensors file with every parameter, checked by name, shape and
  /// dtype; when absent, parameters are initialized from their init rules.
  std::optional<std::string> weightsPath;
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
};

/// How `buildTrainingEntryPoints` trains (kiln-optimizer's options).
struct TrainingOptions {
  /// "adamw" or "sgd".
  std::string optimizer = "adamw";
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  double weightDecay = 0.01;
  int64_t decayMinRank = 2;
  double momentum = 0.9;
  /// Global-norm clipping; 0 disables it.
  double maxGradNorm = 1.0;
  /// Composites differentiated through their fused gradient rule
  /// (kiln.attention -> kiln.attention_grad); must match the compile
  /// options' `keep`, which lowers those ops.
  std::vector<std::string> keep;
};

/// Turns an inference module into a training one: adds the language-model
/// loss when the module has no `@loss` (see addLanguageModelLoss), then
/// `train_step(inputs..., targets, lr) -> (loss, grad_norm)` and
/// `eval_step(inputs..., targets) -> loss` (kiln-autodiff and
/// kiln-optimizer), and inlines the helpers, so the module's entry points
/// are `forward`, `train_step` and `eval_step`.
llvm::Error buildTrainingEntryPoints(ModuleOp module,
                                     const TrainingOptions &options);

/// Compiles `module` (kiln IR with parameters; it is not modified) into the
/// artifact directory `outputDir`, replacing any previous one atomically.
llvm::Error compileArtifact(ModuleOp module, const CompileOptions &options,
                            llvm::StringRef outputDir);

/// The PTX of every kernel of `module` (kiln IR; not modified) as the CUDA
/// backend generates it, one (kernel module name, PTX) pair per kernel;
/// `keep` as CompileOptions::keep.
llvm::Expected<std::vector<KernelPTX>>
generatePTX(ModuleOp module, const CUDATargetOptions &options,
            ArrayRef<std::string> keep = {});

/// Assembles each PTX text with the toolkit's ptxas for `options.arch`;
/// an error carries ptxas's message. Sets `checked` to false (and succeeds)
/// when there is no ptxas in the toolkit.
llvm::Error
checkPTXWithPtxas(ArrayRef<KernelPTX> ptx,
                  const CUDATargetOptions &options, bool &checked);

/// The hex SHA-256 of `data`.
std::string sha256Hex(llvm::StringRef data);

} // namespace mlir::kiln

#endif // KILN_COMPILER_COMPILER_H
