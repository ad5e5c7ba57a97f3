//===- ObjectEmission.h - LLVM dialect to a shared object -------*- C++ -*-===//
//
// The last steps of every backend: translate the LLVM-dialect module (all
// of the CPU backend's code, the CUDA backend's host code) to LLVM IR,
// optimize it for the chosen CPU, emit an object file and link it into the
// artifact's module.so; and the artifact ABI's entry points.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_COMMON_OBJECTEMISSION_H
#define KILN_TARGET_COMMON_OBJECTEMISSION_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
} // namespace llvm

namespace mlir::kiln {

struct CPUTargetOptions {
  /// "native" (this machine's CPU and features), or an LLVM CPU name such
  /// as "x86-64-v3" or "x86-64-v4".
  std::string cpu = "native";
  /// LLVM optimization level, 0-3.
  unsigned optLevel = 3;
};

/// The resolved CPU name and target triple (for the manifest).
struct CPUTargetInfo {
  std::string cpu;
  std::string triple;
  std::string features;
};

/// The LLVM target machine for `options` (the host's triple; "native"
/// resolved to this machine's CPU name and features), and what it resolved
/// to in `info`. An unknown CPU name is an error.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createCPUTargetMachine(const CPUTargetOptions &options,
                       CPUTargetInfo *info = nullptr);

/// Translates `module` (LLVM dialect, as kiln-cpu-pipeline leaves it) to an
/// LLVM IR module for the target (data layout and triple set, not yet
/// optimized), and resolves the target into `info`.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateToLLVMIR(ModuleOp module, llvm::LLVMContext &llvmContext,
                  const CPUTargetOptions &options, CPUTargetInfo *info,
                  TimingScope *timing = nullptr);

/// Translates `module` (LLVM dialect) to LLVM IR, optimizes it and emits
/// it as object files in parallel on `jobs` threads (0: one per core, at
/// most 8; KILN_CODEGEN_JOBS overrides): its function definitions are
/// moved into four modules per thread of about equal operation counts
/// (`module` keeps the first piece, every global and declaration; what a
/// piece uses from another is declared in it, local symbols so used become
/// hidden globals), each translated, optimized at options.optLevel and
/// compiled by the next free thread in an LLVM context of its own. Returns
/// the object files written,
/// `objectPrefix`.N.o. `module` is left split: only for the caller to
/// discard.
llvm::Expected<std::vector<std::string>>
emitObjectFiles(ModuleOp module, const CPUTargetOptions &options,
                llvm::StringRef objectPrefix, unsigned jobs = 0,
                TimingScope *timing = nullptr);

/// translateToLLVMIR, then the whole module optimized in one piece (what
/// `kiln-compile --emit=llvm` prints). With `timing`, the translation and
/// the optimization are timed under it.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateAndOptimize(ModuleOp module, llvm::LLVMContext &llvmContext,
                     const CPUTargetOptions &options, CPUTargetInfo *info,
                     TimingScope *timing = nullptr);

/// Emits `llvmModule` as an object file at `objectPath`.
llvm::Error emitObjectFile(llvm::Module &llvmModule,
                           const CPUTargetOptions &options,
                           llvm::StringRef objectPath);

/// Links object files into a shared library with the system C compiler
/// driver (`cc`), against libm, the static `supportLibraries` (found in
/// ../lib next to the compiler's binary) and `sharedLibraries` (found at
/// run time next to the library: RPATH $ORIGIN).
llvm::Error linkSharedLibrary(llvm::ArrayRef<std::string> objects,
                              llvm::StringRef libraryPath,
                              llvm::ArrayRef<std::string> sharedLibraries = {},
                              llvm::ArrayRef<std::string> supportLibraries = {
                                  "libkiln_module_support.a"});

/// Adds, for every `_mlir_ciface_<E>` function, the artifact ABI's
/// `void kiln_entry_<E>(void **args)` and `int kiln_abi_version()`.
void addArtifactEntryPoints(ModuleOp module);

} // namespace mlir::kiln

#endif // KILN_TARGET_COMMON_OBJECTEMISSION_H
