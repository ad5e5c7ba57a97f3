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

/// The causal mask of kiln.attention, as every lowering of it applies it:
/// key j is visible from query row i when j < i + Sk - Sq + 1; a row that
/// sees no key (more queries than keys) averages all of them.
/// How many keys row `row` visits: [0, i + Sk - Sq + 1) clamped to Sk, or
/// all Sk when that is empty.
Value causalKeyCount(OpBuilder &b, Location loc, Value row, Value queryLength,
                     Value keyLength);
/// The first query row whose softmax key `key` enters: the first that sees
/// it, or 0 when some rows see no key (they average every key).
Value causalFirstRow(OpBuilder &b, Location loc, Value key, Value queryLength,
                     Value keyLength);

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
