//===- CUDAPipeline.h - kiln IR to host code and PTX kernels ----*- C++ -*-===//
//
// The pass pipeline kiln-compile runs for `--target cuda`, also registered
// as `kiln-opt --kiln-cuda-pipeline`. It shares the CPU backend's front
// (kiln -> linalg, bufferization); matmuls become cuBLASLt calls through
// the runtime (kiln_gpu_gemm), every other loop nest a generated kernel.
// The result is LLVM-dialect host code with the kernels embedded as a
// gpu.binary, whose launches call the `mgpu*` functions (GpuApi.h).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CUDA_CUDAPIPELINE_H
#define KILN_TARGET_CUDA_CUDAPIPELINE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <string>
#include <utility>
#include <vector>

namespace mlir {
class DialectRegistry;
namespace kiln {

struct CUDAPipelineOptions : public PassPipelineOptions<CUDAPipelineOptions> {
  PassOptions::Option<std::string> arch{
      *this, "arch", llvm::cl::desc("GPU architecture (sm_80, sm_90, ...)"),
      llvm::cl::init("sm_90")};
  PassOptions::Option<std::string> ptxVersion{
      *this, "ptx",
      llvm::cl::desc("PTX ISA version feature (+ptx80 is "
                     "understood by CUDA 12.0 and later drivers)"),
      llvm::cl::init("+ptx80")};
  PassOptions::Option<std::string> image{
      *this, "image",
      llvm::cl::desc("Kernel image embedded in the host code: 'isa' (PTX, "
                     "compiled by the driver at load), 'bin' (cubin) or "
                     "'fatbin' (cubin plus PTX; 'bin' and 'fatbin' need the "
                     "CUDA toolkit's ptxas and fatbinary)"),
      llvm::cl::init("isa")};
  PassOptions::Option<std::string> toolkit{
      *this, "toolkit", llvm::cl::desc("CUDA toolkit directory"),
      llvm::cl::init("/usr/local/cuda")};
  PassOptions::Option<int64_t> blockSize{
      *this, "block-size",
      llvm::cl::desc("Threads per block of the generated loop kernels"),
      llvm::cl::init(256)};
  PassOptions::Option<bool> libraryMatmuls{
      *this, "library-matmuls",
      llvm::cl::desc("f32, f16 and bf16 matmuls call cuBLASLt "
                     "(kiln_gpu_gemm) instead of generated kernels"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> attentionBlock{
      *this, "attention-block",
      llvm::cl::desc("Keys per step of fused attention's row loops. A GPU "
                     "thread keeps the block's rows in registers: for head "
                     "dim 64, ptxas reports 0 / 24 / 464 bytes of forward "
                     "spills at 1 / 4 / 16 and 0.9 / 13 / 23 KB in the "
                     "key-row gradient, hence 1"),
      llvm::cl::init(1)};
  PassOptions::ListOption<std::string> keepComposites{
      *this, "keep",
      llvm::cl::desc("Composite ops to keep whole (kiln.attention: fused "
                     "flash-attention style kernels, see "
                     "convert-kiln-attention)")};
};

/// kiln IR (with parameters) -> LLVM-dialect host code plus gpu.binary.
void buildKilnCUDAPipeline(OpPassManager &pm,
                           const CUDAPipelineOptions &options);

/// The same up to (and including) outlining: host code on memrefs that
/// launches gpu.func kernels, before any lowering to LLVM/NVVM. Lit tests
/// check this stage.
void buildKilnCUDAKernelPipeline(OpPassManager &pm,
                                 const CUDAPipelineOptions &options);

/// Registers `kiln-cuda-pipeline`, `kiln-cuda-kernel-pipeline` and the
/// CUDA passes.
void registerKilnCUDAPipeline();

/// Adds what the CUDA pipeline and its translation to LLVM IR need (NVVM
/// target, GPU offloading translation) to `registry`.
void registerKilnCUDADialects(DialectRegistry &registry);

/// Lowers `module` in place to host LLVM dialect with embedded kernels,
/// and adds the artifact ABI's entry points.
LogicalResult lowerToCUDAArtifactLLVM(ModuleOp module,
                                      const CUDAPipelineOptions &options);

/// A kernel module's PTX: (gpu.module name, PTX text).
using KernelPTX = std::pair<std::string, std::string>;

/// The PTX of every kernel module of a lowered module (image 'isa').
std::vector<KernelPTX> getEmbeddedPTX(ModuleOp module);

} // namespace kiln
} // namespace mlir

#endif // KILN_TARGET_CUDA_CUDAPIPELINE_H
