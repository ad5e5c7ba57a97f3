//===- Utils.cpp - What the kiln-to-linalg patterns share -----------------===//
//
// Constants, broadcasting and the generic builders (Utils.h).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "mlir/Dialect/Utils/StructuredOpsUtils.h"

namespace mlir::kiln::to_linalg {

RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

Value indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

Value scalarConstant(OpBuilder &b, Location loc, Type type, double value) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(b, loc, floatType,
                                     b.getFloatAttr(floatType, value));
  return arith::ConstantOp::create(
      b, loc, type, b.getIntegerAttr(type, static_cast<int64_t>(value)));
}

Value lowestConstant(OpBuilder &b, Location loc, Type type) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(
        b, loc, floatType,
        b.getFloatAttr(floatType, APFloat::getLargest(
                                      floatType.getFloatSemantics(), true)));
  unsigned width = type.getIntOrFloatBitWidth();
  return arith::ConstantOp::create(
      b, loc, type, b.getIntegerAttr(type, APInt::getSignedMinValue(width)));
}

Value highestConstant(OpBuilder &b, Location loc, Type type) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(
        b, loc, floatType,
        b.getFloatAttr(floatType, APFloat::getLargest(
                                      floatType.getFloatSemantics(), false)));
  unsigned width = type.getIntOrFloatBitWidth();
  return arith::ConstantOp::create(
      b, loc, type, b.getIntegerAttr(type, APInt::getSignedMaxValue(width)));
}

SmallVector<OpFoldResult> broadcastResultSizes(OpBuilder &b, Location loc,
                                               RankedTensorType type,
                                               ValueRange operands) {
  SmallVector<OpFoldResult> sizes;
  int64_t rank = type.getRank();
  for (int64_t d = 0; d < rank; ++d) {
    if (!type.isDynamicDim(d)) {
      sizes.push_back(b.getIndexAttr(type.getDimSize(d)));
      continue;
    }
    Value size;
    for (Value operand : operands) {
      auto operandType = tensorType(operand);
      int64_t aligned = d - (rank - operandType.getRank());
      if (aligned < 0 || operandType.getDimSize(aligned) == 1)
        continue;
      size = tensor::DimOp::create(b, loc, operand, aligned);
      break;
    }
    sizes.push_back(size ? OpFoldResult(size) : b.getIndexAttr(1));
  }
  return sizes;
}

AffineMap broadcastMap(MLIRContext *ctx, RankedTensorType operandType,
                       RankedTensorType resultType) {
  int64_t rank = resultType.getRank();
  int64_t offset = rank - operandType.getRank();
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < operandType.getRank(); ++i) {
    bool stretched = operandType.getDimSize(i) == 1 &&
                     resultType.getDimSize(i + offset) != 1;
    exprs.push_back(stretched ? getAffineConstantExpr(0, ctx)
                              : getAffineDimExpr(i + offset, ctx));
  }
  return AffineMap::get(rank, 0, exprs, ctx);
}

Value buildElementwise(OpBuilder &b, Location loc, RankedTensorType resultType,
                       ValueRange inputs, BodyBuilder body,
                       ArrayRef<Value> sizeSources) {
  MLIRContext *ctx = b.getContext();
  SmallVector<Value> sources(sizeSources.begin(), sizeSources.end());
  if (sources.empty())
    sources.assign(inputs.begin(), inputs.end());
  SmallVector<OpFoldResult> sizes =
      broadcastResultSizes(b, loc, resultType, sources);
  Value init =
      tensor::EmptyOp::create(b, loc, sizes, resultType.getElementType());
  SmallVector<AffineMap> maps;
  for (Value input : inputs)
    maps.push_back(broadcastMap(ctx, tensorType(input), resultType));
  maps.push_back(AffineMap::getMultiDimIdentityMap(resultType.getRank(), ctx));
  SmallVector<utils::IteratorType> iterators(resultType.getRank(),
                                             utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, inputs, ValueRange{init}, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        Value result = body(nested, nestedLoc, args.drop_back());
        linalg::YieldOp::create(nested, nestedLoc, result);
      });
  return generic.getResult(0);
}

Value buildIndexed(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    ArrayRef<OpFoldResult> sizes, ValueRange inputs,
    ArrayRef<AffineMap> inputMaps,
    function_ref<Value(OpBuilder &, Location, ValueRange, ValueRange)> body) {
  MLIRContext *ctx = b.getContext();
  Value init =
      tensor::EmptyOp::create(b, loc, sizes, resultType.getElementType());
  SmallVector<AffineMap> maps(inputMaps.begin(), inputMaps.end());
  maps.push_back(AffineMap::getMultiDimIdentityMap(resultType.getRank(), ctx));
  SmallVector<utils::IteratorType> iterators(resultType.getRank(),
                                             utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, inputs, ValueRange{init}, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        SmallVector<Value> indices;
        for (int64_t d = 0; d < resultType.getRank(); ++d)
          indices.push_back(linalg::IndexOp::create(nested, nestedLoc, d));
        Value result = body(nested, nestedLoc, indices, args.drop_back());
        linalg::YieldOp::create(nested, nestedLoc, result);
      });
  return generic.getResult(0);
}

SmallVector<OpFoldResult> generatorSizes(OpBuilder &b, RankedTensorType type,
                                         ValueRange dynamicSizes) {
  SmallVector<OpFoldResult> sizes;
  unsigned next = 0;
  for (int64_t dim : type.getShape())
    sizes.push_back(ShapedType::isDynamic(dim)
                        ? OpFoldResult(dynamicSizes[next++])
                        : OpFoldResult(b.getIndexAttr(dim)));
  return sizes;
}

Value castIndexTo(OpBuilder &b, Location loc, Value index, Type type) {
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
  if (isa<FloatType>(type))
    return arith::SIToFPOp::create(b, loc, type, i64);
  if (type.getIntOrFloatBitWidth() < 64)
    return arith::TruncIOp::create(b, loc, type, i64);
  return i64;
}

bool isFloat(Type type) { return isa<FloatType>(getElementTypeOrSelf(type)); }

/// Scalar conversion between any two of the kiln element types.
Value convertScalar(OpBuilder &b, Location loc, Value x, Type to) {
  Type from = x.getType();
  if (from == to)
    return x;
  bool fromFloat = isa<FloatType>(from), toFloat = isa<FloatType>(to);
  unsigned fromWidth = from.getIntOrFloatBitWidth();
  unsigned toWidth = to.getIntOrFloatBitWidth();
  if (fromFloat && toFloat) {
    if (fromWidth < toWidth)
      return arith::ExtFOp::create(b, loc, to, x);
    if (fromWidth > toWidth)
      return arith::TruncFOp::create(b, loc, to, x);
    // bf16 <-> f16: through f32.
    Value wide = arith::ExtFOp::create(b, loc, b.getF32Type(), x);
    return arith::TruncFOp::create(b, loc, to, wide);
  }
  if (!fromFloat && toFloat) {
    if (fromWidth == 1)
      return arith::UIToFPOp::create(b, loc, to, x);
    return arith::SIToFPOp::create(b, loc, to, x);
  }
  if (fromFloat && !toFloat) {
    if (toWidth == 1)
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, x,
                                   scalarConstant(b, loc, from, 0.0));
    return arith::FPToSIOp::create(b, loc, to, x);
  }
  if (toWidth == 1)
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, x,
                                 scalarConstant(b, loc, from, 0));
  if (fromWidth == 1)
    return arith::ExtUIOp::create(b, loc, to, x);
  if (fromWidth < toWidth)
    return arith::ExtSIOp::create(b, loc, to, x);
  return arith::TruncIOp::create(b, loc, to, x);
}

} // namespace mlir::kiln::to_linalg
