//===- CUDATarget.h - The CUDA backend as the compiler sees it --*- C++ -*-===//
//
// `kiln-compile --target cuda` and `--emit=ptx`: the options a user gives
// (architecture, kernel image, toolkit), checked with the runtime's own
// parsers so that what the compiler accepts the runtime loads;
// kiln-cuda-pipeline; ptxas on the generated PTX; and a module.so of host
// code that needs only libc.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CUDA_CUDATARGET_H
#define KILN_TARGET_CUDA_CUDATARGET_H

#include "kiln/Target/CUDA/CUDAPipeline.h"
#include "kiln/Target/Common/TargetBackend.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir::kiln {

/// Options of `--target cuda`.
struct CUDATargetOptions {
  /// The GPU architecture the kernels are compiled for (sm_80, sm_90,
  /// sm_90a, ...).
  std::string arch = "sm_90";
  /// What module.so embeds: "ptx" (compiled by the driver when the artifact
  /// is loaded, any driver of CUDA 12.0 or later), "cubin" or "fatbin"
  /// (cubin and PTX; both need the toolkit's ptxas and fatbinary here and
  /// a driver at least as new as that toolkit there).
  std::string image = "ptx";
  /// The CUDA toolkit: its ptxas checks every kernel when present.
  std::string toolkit = "/usr/local/cuda";
};

/// The compute capability of `arch` (--cuda-arch) as a number, major * 10
/// + minor (89 for sm_89, 90 for sm_90a, 100 for sm_100), when the
/// runtime's parser takes it and LLVM's NVPTX backend knows it as a
/// processor, and PTX ISA 8.0 (the kernels') targets it (sm_90a at most);
/// an error naming the option otherwise (sm_89a: the runtime's parser
/// takes it, but no such processor exists).
llvm::Expected<int> checkCudaArch(const std::string &arch);

/// The CUDA backend, with `options` checked (an unknown architecture or
/// image, or a cubin/fatbin without ptxas, is an error naming the option);
/// `host` is the CPU of the host code.
llvm::Expected<std::unique_ptr<TargetBackend>>
createCUDATarget(const CUDATargetOptions &options,
                 const CPUTargetOptions &host);

/// The PTX of `module` (kiln IR; not modified) as the CUDA backend
/// generates it: one (kernel module name, PTX) pair, the artifact's
/// @kiln_kernels module. `keep` as TargetBackend::lower's.
llvm::Expected<std::vector<KernelPTX>>
generatePTX(ModuleOp module, const CUDATargetOptions &options,
            ArrayRef<std::string> keep = {});

/// Assembles each PTX text with the toolkit's ptxas for `options.arch`;
/// an error carries ptxas's message. Sets `checked` to false (and succeeds)
/// when there is no ptxas in the toolkit.
llvm::Error checkPTXWithPtxas(ArrayRef<KernelPTX> ptx,
                              const CUDATargetOptions &options, bool &checked);

} // namespace mlir::kiln

#endif // KILN_TARGET_CUDA_CUDATARGET_H
