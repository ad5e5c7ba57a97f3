//===- Utils.h - What the CUDA backend's passes share -----------*- C++ -*-===//
//
// Internal to lib/Target/CUDA: where code runs (host or kernel), the
// attribute that hands a loop from the row reductions to the loop mapping,
// and the reduction-body helpers the split and block reductions share.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_TARGET_CUDA_UTILS_H
#define KILN_LIB_TARGET_CUDA_UTILS_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"

#include <utility>

namespace mlir::kiln::cuda {

/// Attribute of an scf.parallel whose iterations each get a whole block
/// (kiln-gpu-map-parallel-loops maps it to blocks without tiling it).
constexpr llvm::StringLiteral kBlockPerIterationAttr =
    "kiln.gpu_block_per_iteration";

/// True when `op` is nested in a loop or launch that will run on the GPU.
bool isInDeviceCode(Operation *op);

/// The combiner of a single-result reduction body: the op yielding the
/// result, one of whose operands is the output block argument (used only
/// there) and that has a neutral element; null when there is none.
Operation *reductionCombiner(linalg::GenericOp op);

/// Emits, at the rewriter's insertion point, one step of `op`'s reduction
/// at loop indices `ivs`: loads the inputs there and applies the body with
/// `accumulator` as the output value; returns the combined value.
Value emitReductionStep(RewriterBase &rewriter, linalg::GenericOp op,
                        ValueRange ivs, Value accumulator);

/// `combiner` applied to (accumulated, value) in the operand order of the
/// original body (the output argument's side gets `accumulated`).
Value emitCombine(OpBuilder &builder, linalg::GenericOp op, Operation *combiner,
                  Value accumulated, Value value);

/// The trip count of `ranges` walked as one linear index, and their sizes
/// as the basis that delinearizes it.
std::pair<Value, SmallVector<OpFoldResult>>
linearExtent(RewriterBase &rewriter, Location loc, ArrayRef<Range> ranges);

/// Emits a loop folding `op`'s reduction over the linear indices start,
/// start + step, ... below `count` of its trailing loop dims (delinearized
/// by `basis`; `leading` gives the loop dims before them), from `neutral`.
/// Returns the folded value, with the insertion point after the loop.
Value emitStridedFold(RewriterBase &rewriter, linalg::GenericOp op,
                      ValueRange leading, Value start, Value count, Value step,
                      ArrayRef<OpFoldResult> basis, Value neutral);

} // namespace mlir::kiln::cuda

#endif // KILN_LIB_TARGET_CUDA_UTILS_H
