//===- CPUPipeline.h - kiln IR to the LLVM dialect for CPUs -----*- C++ -*-===//
//
// The pass pipeline kiln-compile runs for `--target cpu`, also registered as
// `kiln-opt --kiln-cpu-pipeline` so a lit test can reproduce any step. Its
// passes are in Passes.td here and in Target/Common/Passes.td.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_CPUPIPELINE_H
#define KILN_TARGET_CPU_CPUPIPELINE_H

#include "kiln/Target/CPU/CPUKernelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Support/Timing.h"

#include <string>

namespace mlir {
class DialectRegistry;
namespace kiln {

struct CPUPipelineOptions : public PassPipelineOptions<CPUPipelineOptions> {
  PassOptions::ListOption<std::string> keepComposites{
      *this, "keep",
      llvm::cl::desc("Composite ops to keep whole (kiln.attention: the "
                     "fused attention loop nest, see convert-kiln-attention)")};
  PassOptions::Option<int64_t> tileM{
      *this, "tile-m", llvm::cl::desc("Matmul register tile rows"),
      llvm::cl::init(8)};
  PassOptions::Option<int64_t> tileN{
      *this, "tile-n",
      llvm::cl::desc("Matmul register tile columns (and panel width)"),
      llvm::cl::init(32)};
  PassOptions::Option<int64_t> kBlock{
      *this, "k-block",
      llvm::cl::desc("Steps of k per block of a matmul whose packed panel "
                     "outgrows half the L2 cache (0: never)"),
      llvm::cl::init(128)};
  PassOptions::Option<int64_t> l2Bytes{
      *this, "l2-bytes", llvm::cl::desc("L2 cache size of a core"),
      llvm::cl::init(1 << 20)};
  PassOptions::Option<int64_t> l3Bytes{
      *this, "l3-bytes",
      llvm::cl::desc("Shared last-level cache size, for row blocking"),
      llvm::cl::init(32 << 20)};
  PassOptions::Option<std::string> int8Dot{
      *this, "int8-dot",
      llvm::cl::desc("int8 matmul dot products: amx (AMX-INT8 tiles, "
                     "kiln-lower-amx-matmuls), vnni (AVX-512 VNNI), avx2 or "
                     "generic"),
      llvm::cl::init("vnni")};
  PassOptions::Option<std::string> bf16Dot{
      *this, "bf16-dot",
      llvm::cl::desc("bf16 matmul kernels: amx (AMX-BF16 tiles, "
                     "kiln-lower-amx-matmuls), avx512 (vdpbf16ps register "
                     "tiles, the same pass), f32 (operands widened for the "
                     "f32 register tiles, kiln-widen-bf16-matmuls) or none "
                     "(the plain loops)"),
      llvm::cl::init("none")};
  PassOptions::Option<std::string> bf16FewRowsDot{
      *this, "bf16-few-rows-dot",
      llvm::cl::desc("With bf16-dot=f32: avx512 to multiply bf16 matmuls of "
                     "fewer rows than a register tile (decoding steps) in "
                     "vdpbf16ps tiles instead of widening their weights, or "
                     "empty to widen them too"),
      llvm::cl::init("")};
  PassOptions::Option<bool> nibbleTable{
      *this, "nibble-table",
      llvm::cl::desc("Decoding steps look 4-bit codes up in a per-group "
                     "table with vpermps (AVX-512; kiln-matvec-dot-products)"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> matvecRowBlock{
      *this, "matvec-row-block",
      llvm::cl::desc("Rows a decoding step's dot-product kernels multiply "
                     "together (kiln-matvec-dot-products row-block)"),
      llvm::cl::init(1)};
  PassOptions::Option<int64_t> int8TileM{
      *this, "int8-tile-m", llvm::cl::desc("int8 matmul register tile rows"),
      llvm::cl::init(8)};
  PassOptions::Option<int64_t> int8TileN{
      *this, "int8-tile-n",
      llvm::cl::desc("int8 matmul register tile columns (a multiple of 16)"),
      llvm::cl::init(32)};
};

/// kiln IR (with parameters) -> LLVM dialect: decompose, convert to linalg,
/// externalize parameters, fuse elementwise ops, bufferize, lower to loops
/// and to LLVM. Entry functions get C interfaces (`_mlir_ciface_<name>`).
void buildKilnCPUPipeline(OpPassManager &pm, const CPUPipelineOptions &options);

/// Registers `kiln-cpu-pipeline` and the CPU passes (Passes.td).
void registerKilnCPUPipeline();

/// The OpenMP runtime generated code uses for its parallel loops; artifacts
/// carry a copy of it (it needs only libc).
std::string getOpenMPRuntimePath();

/// The upstream dialects and interfaces the CPU pipeline needs.
void registerKilnCPUDialects(DialectRegistry &registry);

/// Lowers `module` in place to the LLVM dialect as an artifact's code:
/// loads the dialects the pipeline needs into its context, runs
/// kiln-cpu-pipeline (keeping the `keep` composites whole, kernels shaped
/// by `kernels`) and adds the artifact ABI's entry points. With `timing`,
/// each pass's time is recorded under it.
LogicalResult lowerToArtifactLLVM(ModuleOp module, ArrayRef<std::string> keep,
                                  const CPUKernelConfig &kernels,
                                  TimingScope *timing = nullptr);

} // namespace kiln
} // namespace mlir

#endif // KILN_TARGET_CPU_CPUPIPELINE_H
