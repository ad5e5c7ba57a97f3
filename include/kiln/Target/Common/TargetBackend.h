//===- TargetBackend.h - What the compiler asks of a backend ----*- C++ -*-===//
//
// compileArtifact (lib/Compiler) is target-neutral: it reads the kiln
// module, writes the weights and the manifest, and asks the backend chosen
// with `kiln-compile --target` to lower a clone of the module, to name its
// target options, and to package module.so. Each backend implements this
// once (Target/CPU/CPUTarget.h, Target/CUDA/CUDATarget.h); a new target is
// a new implementation and a new `--target` value, not a new branch in the
// compiler.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_COMMON_TARGETBACKEND_H
#define KILN_TARGET_COMMON_TARGETBACKEND_H

#include "kiln/Target/Common/ObjectEmission.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/Timing.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include <map>
#include <string>

namespace mlir::kiln {

/// Progress lines of a long step ("lowering ...").
using ProgressLog = llvm::function_ref<void(const llvm::Twine &)>;

class TargetBackend {
public:
  virtual ~TargetBackend();

  /// The manifest's "target" ("cpu", "cuda"): what the runtime loads it as.
  virtual llvm::StringRef name() const = 0;

  /// The CPU the generated host code (all of a CPU artifact's code) is for.
  virtual const CPUTargetOptions &host() const = 0;

  /// Rewrites `module` (kiln IR) for this target before the compiler
  /// records its parameter table: the CPU backend stores an inference
  /// artifact's linear weights as its matmul's column panels
  /// (kiln-pack-weights). Returns the manifest's target_options
  /// "packed_weights" (what was stored so, or "none"); empty: a backend
  /// without such layouts records none.
  virtual llvm::Expected<std::string> prepare(ModuleOp module,
                                              ProgressLog log) const {
    return std::string();
  }

  /// Lowers `module` (kiln IR; a clone the compiler owns) in place to the
  /// LLVM dialect, with the artifact ABI's entry points, ready for
  /// translateToLLVMIR. `keep`: composite ops lowered whole by fused
  /// kernels rather than decomposed. Checks what the backend can check of
  /// its output (the CUDA backend runs ptxas on its PTX). `timing`
  /// receives the time of each pass (`kiln-compile --timing`).
  virtual llvm::Error lower(ModuleOp module, ArrayRef<std::string> keep,
                            ProgressLog log, TimingScope &timing) const = 0;

  /// The manifest's "target_options", given the host target the object
  /// code was generated for: every value a string.
  virtual std::map<std::string, std::string>
  manifestOptions(const CPUTargetInfo &host) const = 0;

  /// Links the object files (emitObjectFiles' partitions) into
  /// `directory`/module.so, with whatever must travel with it in
  /// `directory` (the CPU backend's OpenMP runtime).
  virtual llvm::Error package(llvm::ArrayRef<std::string> objects,
                              llvm::StringRef directory) const = 0;
};

} // namespace mlir::kiln

#endif // KILN_TARGET_COMMON_TARGETBACKEND_H
