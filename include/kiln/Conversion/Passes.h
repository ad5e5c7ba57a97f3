//===- Passes.h - Conversions out of the kiln dialect -----------*- C++ -*-===//
//
// Declares the conversion passes and the pattern populators they use.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CONVERSION_PASSES_H
#define KILN_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class DialectRegistry;
class RewritePatternSet;
namespace kiln {

/// Patterns lowering every kiln primitive to linalg/tensor/arith/math.
void populateKilnToLinalgPatterns(RewritePatternSet &patterns);

/// Whether convert-kiln-attention's fused loop nests take attention (or
/// its gradient) with operands of these types: static head dims, and
/// static head counts for grouped-query attention.
bool canLowerAttentionFused(RankedTensorType query, RankedTensorType key,
                            RankedTensorType value);

/// Attaches the fused kernels' KilnLoweringInterface to the kiln dialect,
/// so kiln-decompose and kiln-autodiff decompose a kept composite these
/// lowerings cannot take (Dialect/Kiln/Transforms/Decomposition.h). Every
/// pipeline that keeps composites registers it.
void registerKilnToLinalgInterfaces(DialectRegistry &registry);

#define GEN_PASS_DECL
#include "kiln/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/Conversion/Passes.h.inc"

} // namespace kiln
} // namespace mlir

#endif // KILN_CONVERSION_PASSES_H
