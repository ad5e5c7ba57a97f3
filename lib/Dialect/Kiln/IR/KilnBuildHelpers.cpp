//===- KilnBuildHelpers.cpp - Building kiln IR from C++ -------------------===//
//
// Small builders shared by the decompositions and the gradient rules.
//
//===----------------------------------------------------------------------===//

#include "KilnBuildHelpers.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::kiln;

namespace mlir::kiln::detail {

RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// `kiln.constant` of `value`.
Value makeConst(OpBuilder &b, Location loc, DenseElementsAttr value) {
  return ConstantOp::create(b, loc, value.getType(), cast<ElementsAttr>(value));
}

/// A rank-0 `kiln.constant` of a float element type.
Value floatConst(OpBuilder &b, Location loc, Type elementType, double value) {
  auto type = RankedTensorType::get({}, elementType);
  return makeConst(b, loc,
                   DenseElementsAttr::get(
                       type, Attribute(FloatAttr::get(elementType, value))));
}

/// A rank-0 `kiln.constant` of an integer element type.
Value intConst(OpBuilder &b, Location loc, Type elementType, int64_t value) {
  auto type = RankedTensorType::get({}, elementType);
  return makeConst(b, loc,
                   DenseElementsAttr::get(
                       type, Attribute(IntegerAttr::get(elementType, value))));
}

/// The lowest finite value of a float element type.
APFloat lowestFinite(Type elementType) {
  return APFloat::getLargest(cast<FloatType>(elementType).getFloatSemantics(),
                             /*Negative=*/true);
}

/// A rank-0 `kiln.constant` holding the lowest finite value.
Value lowestConst(OpBuilder &b, Location loc, Type elementType) {
  auto type = RankedTensorType::get({}, elementType);
  return makeConst(b, loc,
                   DenseElementsAttr::get(
                       type, Attribute(FloatAttr::get(
                                 elementType, lowestFinite(elementType)))));
}

/// `tensor.dim %value, %c<dim>`.
Value dimOf(OpBuilder &b, Location loc, Value value, int64_t dim) {
  return tensor::DimOp::create(b, loc, value, dim);
}

/// The `index` operands of a generator producing `type`: one `tensor.dim` of
/// `sources[i]` per dynamic dimension `i` of `type`.
SmallVector<Value> dynamicSizes(OpBuilder &b, Location loc,
                                RankedTensorType type,
                                ArrayRef<DimSource> sources) {
  SmallVector<Value> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      sizes.push_back(dimOf(b, loc, sources[i].value, sources[i].dim));
  return sizes;
}

/// Dynamic sizes of `type` taken from the same dimensions of `like`.
SmallVector<Value> dynamicSizesLike(OpBuilder &b, Location loc,
                                    RankedTensorType type, Value like) {
  SmallVector<DimSource> sources;
  for (int64_t i = 0; i < type.getRank(); ++i)
    sources.push_back({like, i});
  return dynamicSizes(b, loc, type, sources);
}

/// Returns `value` with exactly `type`, inserting a `tensor.cast` when the
/// primitives inferred a shape more or less static than the op declares.
Value matchType(OpBuilder &b, Location loc, Value value, Type type) {
  if (value.getType() == type)
    return value;
  return tensor::CastOp::create(b, loc, type, value);
}

Value reshape(OpBuilder &b, Location loc, Value value,
              ArrayRef<int64_t> shape) {
  auto type = tensorType(value);
  auto result = RankedTensorType::get(shape, type.getElementType());
  if (result == type)
    return value;
  return ReshapeOp::create(b, loc, result, value);
}

/// `kiln.slice`; the identity slice is skipped.
Value slice(OpBuilder &b, Location loc, Value value, int64_t axis,
            int64_t start, int64_t end, int64_t step) {
  if (start == 0 && step == 1 && tensorType(value).getDimSize(axis) == end)
    return value;
  return SliceOp::create(b, loc, value, b.getI64IntegerAttr(axis),
                         b.getI64IntegerAttr(start), b.getI64IntegerAttr(end),
                         b.getI64IntegerAttr(step));
}

Value concat(OpBuilder &b, Location loc, ValueRange values, int64_t axis) {
  if (values.size() == 1)
    return values.front();
  return ConcatOp::create(b, loc, values, b.getI64IntegerAttr(axis));
}

Value reduce(OpBuilder &b, Location loc, ReduceKind kind, Value value,
             ArrayRef<int64_t> axes, bool keepdim) {
  return ReduceOp::create(b, loc, kind, value, axes, keepdim);
}

/// Reduces over every axis to a rank-0 tensor (a rank-0 input is returned).
Value reduceAll(OpBuilder &b, Location loc, ReduceKind kind, Value value) {
  int64_t rank = tensorType(value).getRank();
  if (rank == 0)
    return value;
  SmallVector<int64_t> axes = llvm::to_vector(llvm::seq<int64_t>(0, rank));
  return reduce(b, loc, kind, value, axes, /*keepdim=*/false);
}

Value matmul(OpBuilder &b, Location loc, Value lhs, Value rhs,
             bool transposeRhs) {
  return MatmulOp::create(b, loc, lhs, rhs, /*transpose_lhs=*/false,
                          transposeRhs);
}

Value convert(OpBuilder &b, Location loc, Value value, Type elementType) {
  auto type = tensorType(value);
  if (type.getElementType() == elementType)
    return value;
  return CastOp::create(b, loc, type.clone(elementType), value);
}

/// The size of dimension `dim` of `value` as a rank-0 float tensor: a
/// constant when static, else the sum of a broadcast of ones.
Value sizeAsFloat(OpBuilder &b, Location loc, Value value, int64_t dim,
                  Type elementType) {
  int64_t size = tensorType(value).getDimSize(dim);
  if (!ShapedType::isDynamic(size))
    return floatConst(b, loc, elementType, static_cast<double>(size));
  auto oneType = RankedTensorType::get({1}, elementType);
  Value one =
      makeConst(b, loc,
                DenseElementsAttr::get(
                    oneType, Attribute(FloatAttr::get(elementType, 1.0))));
  auto onesType = RankedTensorType::get({ShapedType::kDynamic}, elementType);
  Value ones = BroadcastToOp::create(b, loc, onesType, one,
                                     ValueRange{dimOf(b, loc, value, dim)});
  return reduce(b, loc, ReduceKind::sum, ones, {0}, /*keepdim=*/false);
}

Value targetInRange(OpBuilder &b, Location loc, Value target, Value logits) {
  auto logitsType = tensorType(logits);
  int64_t classAxis = logitsType.getRank() - 1;
  int64_t classes = logitsType.getDimSize(classAxis);
  Type it = tensorType(target).getElementType();
  Value atLeastZero = CompareOp::create(b, loc, ComparePredicate::ge, target,
                                        intConst(b, loc, it, 0));
  Value belowClasses;
  if (!ShapedType::isDynamic(classes)) {
    belowClasses = CompareOp::create(b, loc, ComparePredicate::lt, target,
                                     intConst(b, loc, it, classes));
  } else {
    // Compared in f32: exact for fewer than 2^24 classes.
    Type f32 = b.getF32Type();
    belowClasses =
        CompareOp::create(b, loc, ComparePredicate::lt, convert(b, loc, target, f32),
                          sizeAsFloat(b, loc, logits, classAxis, f32));
  }
  // Both: the second where the first holds, else the first (false).
  return SelectOp::create(b, loc, atLeastZero, belowClasses, atLeastZero);
}

Value keyLengthMask(OpBuilder &b, Location loc, Value keyLengths, Value key,
                    Type elementType) {
  auto lengthsType = tensorType(keyLengths);
  auto keyType = tensorType(key);
  Type it = lengthsType.getElementType();
  int64_t batch = lengthsType.getDimSize(0), keys = keyType.getDimSize(2);
  auto iotaType = RankedTensorType::get({keys}, it);
  Value slots = IotaOp::create(b, loc, iotaType,
                               dynamicSizes(b, loc, iotaType, {{key, 2}}),
                               /*dim=*/0);
  // Clamped to at least one key, as the fused lowering does.
  Value lengths = MaxOp::create(b, loc, keyLengths, intConst(b, loc, it, 1));
  Value column = reshape(b, loc, lengths, {batch, 1});
  Value keep = CompareOp::create(b, loc, ComparePredicate::lt, slots, column);
  return PaddingMaskOp::create(
      b, loc, RankedTensorType::get({batch, 1, 1, keys}, elementType), keep);
}

/// exp(x - max(x)) / sum(exp(x - max(x))) along `axis`.
bool isNarrowFloat(Type elementType) {
  return elementType.isBF16() || elementType.isF16();
}

Value widenNarrowFloat(OpBuilder &b, Location loc, Value value) {
  if (!isNarrowFloat(tensorType(value).getElementType()))
    return value;
  return convert(b, loc, value, b.getF32Type());
}

Value buildSoftmax(OpBuilder &b, Location loc, Value x, int64_t axis) {
  Type et = tensorType(x).getElementType();
  Value wide = widenNarrowFloat(b, loc, x);
  Value max = reduce(b, loc, ReduceKind::max, wide, {axis}, /*keepdim=*/true);
  Value shifted = SubOp::create(b, loc, wide, max);
  Value exp = ExpOp::create(b, loc, shifted);
  Value sum = reduce(b, loc, ReduceKind::sum, exp, {axis}, /*keepdim=*/true);
  return convert(b, loc, DivOp::create(b, loc, exp, sum), et);
}

/// x - max(x) - log(sum(exp(x - max(x)))) along `axis`.
Value buildLogSoftmax(OpBuilder &b, Location loc, Value x, int64_t axis) {
  Type et = tensorType(x).getElementType();
  Value wide = widenNarrowFloat(b, loc, x);
  Value max = reduce(b, loc, ReduceKind::max, wide, {axis}, /*keepdim=*/true);
  Value shifted = SubOp::create(b, loc, wide, max);
  Value exp = ExpOp::create(b, loc, shifted);
  Value sum = reduce(b, loc, ReduceKind::sum, exp, {axis}, /*keepdim=*/true);
  return convert(
      b, loc, SubOp::create(b, loc, shifted, LogOp::create(b, loc, sum)), et);
}
} // namespace mlir::kiln::detail
