//===- CPUPipeline.h - kiln IR to the LLVM dialect for CPUs -----*- C++ -*-===//
//
// The pass pipeline kiln-compile runs for `--target cpu`, also registered as
// `kiln-opt --kiln-cpu-pipeline` so a lit test can reproduce any step.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_CPUPIPELINE_H
#define KILN_TARGET_CPU_CPUPIPELINE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir {
class DialectRegistry;
namespace kiln {

struct CPUPipelineOptions : public PassPipelineOptions<CPUPipelineOptions> {
  PassOptions::ListOption<std::string> keepComposites{
      *this, "keep",
      llvm::cl::desc("Composite ops to keep whole (kiln.attention: the "
                     "fused attention loop nest, see convert-kiln-attention)")};
};

/// kiln IR (with parameters) -> LLVM dialect: decompose, convert to linalg,
/// externalize parameters, fuse elementwise ops, bufferize, lower to loops
/// and to LLVM. Entry functions get C interfaces (`_mlir_ciface_<name>`).
void buildKilnCPUPipeline(OpPassManager &pm, const CPUPipelineOptions &options);

/// The target-independent front of every backend: kiln-decompose (keeping
/// the `keep` composites), inlining, convert-kiln-attention (`block` keys
/// per step: `attentionBlock`), convert-kiln-to-linalg, externalized
/// parameters and elementwise fusion.
void buildKilnToLinalgStages(OpPassManager &pm, ArrayRef<std::string> keep,
                             int64_t attentionBlock = 16);

/// Parameter stores to in-place writes, empty-tensor elimination and
/// one-shot bufferization with identity layouts at function boundaries.
void buildKilnBufferizeStages(OpPassManager &pm);

/// Marks public functions for `_mlir_ciface_` wrappers (the artifact ABI).
std::unique_ptr<Pass> createEmitCInterfacesPass();

/// Rewrites scf.parallel loops nested in other loops into scf.for loops,
/// except those marked with kKeepParallelAttr.
constexpr llvm::StringLiteral kKeepParallelAttr = "kiln.keep_parallel";
/// With `splitOuterLoops`, the innermost dim of a multi-dimensional
/// outermost loop becomes sequential too (for OpenMP).
std::unique_ptr<Pass> createSequentializeInnerParallelPass(bool splitOuterLoops = true);

/// Polynomial approximations of exp, tanh and erf.
std::unique_ptr<Pass> createApproximateMathPass();

/// True for the matmul contractions convert-kiln-to-linalg emits: a
/// linalg.generic over (batch..., m, k, n) with k the only reduction, a
/// mul-add body and (with `requireF32`) f32 operands and result.
bool isKilnContraction(Operation *op, bool requireF32 = true);

/// Register-tiles and vectorizes kiln's (batch, m, k, n) f32 contractions
/// (TileAndVectorize.cpp).
std::unique_ptr<Pass> createTileAndVectorizeContractionsPass();

/// linalg elementwise fusion restricted to consumers that read each fused
/// value once (no recomputation inside contractions).
std::unique_ptr<Pass> createFuseElementwiseWithoutRecomputationPass();

/// Registers `kiln-cpu-pipeline`.
void registerKilnCPUPipeline();

/// The upstream dialects and interfaces the CPU pipeline needs.
void registerKilnCPUDialects(DialectRegistry &registry);

/// Lowers `module` in place to the LLVM dialect as an artifact's code:
/// loads the dialects the pipeline needs into its context, runs
/// kiln-cpu-pipeline (keeping the `keep` composites whole) and adds the
/// artifact ABI's entry points.
LogicalResult lowerToArtifactLLVM(ModuleOp module,
                                  ArrayRef<std::string> keep = {});

} // namespace kiln
} // namespace mlir

#endif // KILN_TARGET_CPU_CPUPIPELINE_H
