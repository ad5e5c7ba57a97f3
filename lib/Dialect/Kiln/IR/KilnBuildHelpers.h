//===- KilnBuildHelpers.h - Building kiln IR from C++ -----------*- C++ -*-===//
//
// Small builders shared by the decompositions and the gradient rules: typed
// constants, dynamic sizes from `tensor.dim`, and the shape and reduction
// ops with their identities skipped. Private to the dialect library.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_DIALECT_KILN_IR_KILNBUILDHELPERS_H
#define KILN_LIB_DIALECT_KILN_IR_KILNBUILDHELPERS_H

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/APFloat.h"

namespace mlir::kiln::detail {

RankedTensorType tensorType(Value value);

/// `kiln.constant` of `value`.
Value makeConst(OpBuilder &b, Location loc, DenseElementsAttr value);
/// A rank-0 `kiln.constant` of a float element type.
Value floatConst(OpBuilder &b, Location loc, Type elementType, double value);
/// A rank-0 `kiln.constant` of an integer element type.
Value intConst(OpBuilder &b, Location loc, Type elementType, int64_t value);
/// The lowest finite value of a float element type.
APFloat lowestFinite(Type elementType);
/// A rank-0 `kiln.constant` holding the lowest finite value.
Value lowestConst(OpBuilder &b, Location loc, Type elementType);

/// `tensor.dim %value, %c<dim>`.
Value dimOf(OpBuilder &b, Location loc, Value value, int64_t dim);

/// Where a size comes from: dimension `dim` of `value`.
struct DimSource {
  Value value;
  int64_t dim = 0;
};

/// The `index` operands of a generator producing `type`: one `tensor.dim` of
/// `sources[i]` per dynamic dimension `i` of `type`.
SmallVector<Value> dynamicSizes(OpBuilder &b, Location loc,
                                RankedTensorType type,
                                ArrayRef<DimSource> sources);
/// Dynamic sizes of `type` taken from the same dimensions of `like`.
SmallVector<Value> dynamicSizesLike(OpBuilder &b, Location loc,
                                    RankedTensorType type, Value like);

/// Returns `value` with exactly `type`, inserting a `tensor.cast` when the
/// primitives inferred a shape more or less static than the op declares.
Value matchType(OpBuilder &b, Location loc, Value value, Type type);

Value reshape(OpBuilder &b, Location loc, Value value, ArrayRef<int64_t> shape);
/// `kiln.slice`; the identity slice is skipped.
Value slice(OpBuilder &b, Location loc, Value value, int64_t axis,
            int64_t start, int64_t end, int64_t step = 1);
Value concat(OpBuilder &b, Location loc, ValueRange values, int64_t axis);
Value reduce(OpBuilder &b, Location loc, ReduceKind kind, Value value,
             ArrayRef<int64_t> axes, bool keepdim);
/// Reduces over every axis to a rank-0 tensor (a rank-0 input is returned).
Value reduceAll(OpBuilder &b, Location loc, ReduceKind kind, Value value);
Value matmul(OpBuilder &b, Location loc, Value lhs, Value rhs,
             bool transposeRhs = false);
/// `kiln.cast` to `elementType`; skipped when it already has it.
Value convert(OpBuilder &b, Location loc, Value value, Type elementType);
/// The size of dimension `dim` of `value` as a rank-0 float tensor: a
/// constant when static, else the sum of a broadcast of ones.
Value sizeAsFloat(OpBuilder &b, Location loc, Value value, int64_t dim,
                  Type elementType);

/// Where an integer class `target` lies in [0, C), C the size of `logits`'
/// last axis (an i1 tensor shaped like `target`). cross_entropy gives a NaN
/// loss and gradient for a target outside it that is not ignore_index: a
/// compiled step cannot raise as PyTorch does, and a NaN stops the driver.
Value targetInRange(OpBuilder &b, Location loc, Value target, Value logits);

/// The additive attention mask `[B, 1, 1, Sk]` (element type
/// `elementType`) that hides key `j` of batch row `b` when
/// `j >= max(keyLengths[b], 1)`: kiln.attention's `key_lengths` as a mask,
/// for `key` `[B, Hkv, Sk, D]`.
Value keyLengthMask(OpBuilder &b, Location loc, Value keyLengths, Value key,
                    Type elementType);

/// bf16 and f16: element types whose normalizations, softmaxes and
/// activations Kiln computes in f32 and rounds once (as PyTorch's kernels
/// do), so that sums and rsqrt do not round at every step.
bool isNarrowFloat(Type elementType);
/// `value` converted to f32 when its element type is a narrow float;
/// otherwise `value` itself.
Value widenNarrowFloat(OpBuilder &b, Location loc, Value value);

/// exp(x - max(x)) / sum(exp(x - max(x))) along `axis`; narrow floats are
/// computed in f32 and rounded once.
Value buildSoftmax(OpBuilder &b, Location loc, Value x, int64_t axis);
/// x - max(x) - log(sum(exp(x - max(x)))) along `axis`; narrow floats are
/// computed in f32 and rounded once.
Value buildLogSoftmax(OpBuilder &b, Location loc, Value x, int64_t axis);

} // namespace mlir::kiln::detail

#endif // KILN_LIB_DIALECT_KILN_IR_KILNBUILDHELPERS_H
