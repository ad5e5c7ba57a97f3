//===- Pipelines.h - The stages every backend's pipeline shares -*- C++ -*-===//
//
// kiln IR -> linalg on tensors -> buffers: the target-neutral front of the
// CPU and CUDA pipelines (docs/design.md, "Layers").
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_COMMON_PIPELINES_H
#define KILN_TARGET_COMMON_PIPELINES_H

#include "mlir/IR/Operation.h"
#include "mlir/Pass/PassManager.h"

#include <string>

namespace mlir::kiln {

/// kiln-decompose (keeping the `keep` composites), inlining,
/// convert-kiln-attention (`attentionBlock` keys per step),
/// convert-kiln-to-linalg, externalized parameters and elementwise fusion.
/// `graphPasses`, when given, adds the backend's own passes over the
/// decomposed kiln graph (before inlining and conversion).
void buildKilnToLinalgStages(
    OpPassManager &pm, ArrayRef<std::string> keep, int64_t attentionBlock = 16,
    llvm::function_ref<void(OpPassManager &)> graphPasses = nullptr);

/// Parameter stores to in-place writes, empty-tensor elimination and
/// one-shot bufferization with identity layouts at function boundaries.
void buildKilnBufferizeStages(OpPassManager &pm);

/// True for the matmul contractions convert-kiln-to-linalg emits: a
/// linalg.generic over (batch..., m, k, n) with k the only reduction, a
/// mul-add body and (with `requireF32`) f32 operands and result. Both
/// backends give them to their matmul kernels.
bool isKilnContraction(Operation *op, bool requireF32 = true);

/// How a contraction over `loops` loops reads its rhs [K, N] where that is
/// a weight stored as panels of pairs ([P, K / 2, width, 2],
/// kiln.unpack_panels with g = 2): (n floordiv width, k floordiv 2,
/// n mod width, k mod 2), k and n the loops' positions.
AffineMap storedPairsMap(MLIRContext *context, int64_t loops, int64_t k,
                         int64_t n, int64_t width);

} // namespace mlir::kiln

#endif // KILN_TARGET_COMMON_PIPELINES_H
