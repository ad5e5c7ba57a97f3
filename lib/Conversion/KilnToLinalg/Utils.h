//===- Utils.h - What the kiln-to-linalg patterns share ---------*- C++ -*-===//
//
// Internal to lib/Conversion/KilnToLinalg: constants, NumPy broadcasting as
// linalg indexing maps, and the elementwise and indexed generic builders
// that the op-family files (Elementwise, Contractions, Shape, Generators)
// and the fused attention lowering use.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_CONVERSION_KILNTOLINALG_UTILS_H
#define KILN_LIB_CONVERSION_KILNTOLINALG_UTILS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::kiln::to_linalg {

using BodyBuilder =
    function_ref<Value(OpBuilder &, Location, ValueRange /*scalars*/)>;

RankedTensorType tensorType(Value value);

Value indexConstant(OpBuilder &b, Location loc, int64_t value);

/// A scalar constant of `type` (float or integer) with value `value`.
Value scalarConstant(OpBuilder &b, Location loc, Type type, double value);

/// The lowest finite value of a float type (the additive-mask "minus
/// infinity" Hugging Face uses) or the smallest integer.
Value lowestConstant(OpBuilder &b, Location loc, Type type);

/// The largest finite value of a float type or the largest integer.
Value highestConstant(OpBuilder &b, Location loc, Type type);

/// The sizes of a result of type `type`: static dims as attributes, dynamic
/// ones from the first operand whose right-aligned dim is not a static 1.
SmallVector<OpFoldResult> broadcastResultSizes(OpBuilder &b, Location loc,
                                               RankedTensorType type,
                                               ValueRange operands);

/// The indexing map reading `operand` inside an iteration space shaped
/// like `resultType` with NumPy broadcasting.
AffineMap broadcastMap(MLIRContext *ctx, RankedTensorType operandType,
                       RankedTensorType resultType);

/// A parallel linalg.generic producing `resultType` from broadcast `inputs`
/// (dynamic sizes from `sizeSources`, by default the inputs).
Value buildElementwise(OpBuilder &b, Location loc, RankedTensorType resultType,
                       ValueRange inputs, BodyBuilder body,
                       ArrayRef<Value> sizeSources = {});

/// A generic with no inputs whose body sees the iteration indices.
Value buildIndexed(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    ArrayRef<OpFoldResult> sizes, ValueRange inputs,
    ArrayRef<AffineMap> inputMaps,
    function_ref<Value(OpBuilder &, Location, ValueRange, ValueRange)> body);

/// Sizes of a generator op's result: static dims, then its dynamic size
/// operands in order.
SmallVector<OpFoldResult> generatorSizes(OpBuilder &b, RankedTensorType type,
                                         ValueRange dynamicSizes);

/// An index converted to the integer or float `type`.
Value castIndexTo(OpBuilder &b, Location loc, Value index, Type type);

bool isFloat(Type type);

/// Scalar conversion between any two of the kiln element types.
Value convertScalar(OpBuilder &b, Location loc, Value x, Type to);

/// The patterns of each op family (populateKilnToLinalgPatterns adds all).
void populateElementwisePatterns(RewritePatternSet &patterns);
void populateContractionPatterns(RewritePatternSet &patterns);
void populateShapePatterns(RewritePatternSet &patterns);
void populateGeneratorPatterns(RewritePatternSet &patterns);
void populateQuantizationPatterns(RewritePatternSet &patterns);

} // namespace mlir::kiln::to_linalg

#endif // KILN_LIB_CONVERSION_KILNTOLINALG_UTILS_H
