//===- Generators.cpp - kiln generator ops to linalg ----------------------===//
//
// Constants, iota, causal and padding masks, and counter-based random
// numbers (splitmix64): generics whose bodies see the indices.
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::to_linalg;

namespace {

struct ConstantOpPattern : OpConversionPattern<ConstantOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ConstantOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    auto value = dyn_cast<TypedAttr>(op.getValue());
    if (!value)
      return rewriter.notifyMatchFailure(op, "not a typed attribute");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, value);
    return success();
  }
};

struct IotaOpPattern : OpConversionPattern<IotaOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(IotaOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    auto type = op.getType();
    int64_t dim = op.getDim();
    Value result = buildIndexed(
        rewriter, op.getLoc(), type,
        generatorSizes(rewriter, type, adaptor.getDynamicSizes()), {}, {},
        [&](OpBuilder &b, Location l, ValueRange ivs, ValueRange) {
          return castIndexTo(b, l, ivs[dim], type.getElementType());
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct CausalMaskOpPattern : OpConversionPattern<CausalMaskOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CausalMaskOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto type = op.getType();
    SmallVector<OpFoldResult> sizes =
        generatorSizes(rewriter, type, adaptor.getDynamicSizes());
    Value queries = getValueOrCreateConstantIndexOp(rewriter, loc, sizes[0]);
    Value keys = getValueOrCreateConstantIndexOp(rewriter, loc, sizes[1]);
    Value shift = arith::SubIOp::create(rewriter, loc, keys, queries);
    Value result = buildIndexed(
        rewriter, loc, type, sizes, {}, {},
        [&](OpBuilder &b, Location l, ValueRange ivs, ValueRange) -> Value {
          // j <= i + (keys - queries)
          Value limit = arith::AddIOp::create(b, l, ivs[0], shift);
          return arith::CmpIOp::create(b, l, arith::CmpIPredicate::sle, ivs[1],
                                       limit);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct PaddingMaskOpPattern : OpConversionPattern<PaddingMaskOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(PaddingMaskOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value mask = adaptor.getMask();
    auto type = op.getType();
    Type elementType = type.getElementType();
    SmallVector<OpFoldResult> sizes = {
        tensor::getMixedSize(rewriter, loc, mask, 0), rewriter.getIndexAttr(1),
        rewriter.getIndexAttr(1), tensor::getMixedSize(rewriter, loc, mask, 1)};
    AffineMap maskMap = AffineMap::get(
        4, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(3, ctx)}, ctx);
    Value zero = scalarConstant(rewriter, loc, elementType, 0.0);
    Value lowest = lowestConstant(rewriter, loc, elementType);
    Type maskElement = tensorType(mask).getElementType();
    Value maskZero = scalarConstant(rewriter, loc, maskElement, 0);
    Value result = buildIndexed(
        rewriter, loc, type, sizes, {mask}, {maskMap},
        [&](OpBuilder &b, Location l, ValueRange, ValueRange args) -> Value {
          Value keep = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ne,
                                             args[0], maskZero);
          return arith::SelectOp::create(b, l, keep, zero, lowest);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// splitmix64 finalizer: a bijective mix of 64 bits.
Value mix64(OpBuilder &b, Location loc, Value x) {
  auto c = [&](uint64_t v) {
    return arith::ConstantOp::create(
        b, loc, b.getI64Type(),
        b.getIntegerAttr(b.getI64Type(), static_cast<int64_t>(v)));
  };
  x = arith::XOrIOp::create(b, loc, x,
                            arith::ShRUIOp::create(b, loc, x, c(30)));
  x = arith::MulIOp::create(b, loc, x, c(0xbf58476d1ce4e5b9ULL));
  x = arith::XOrIOp::create(b, loc, x,
                            arith::ShRUIOp::create(b, loc, x, c(27)));
  x = arith::MulIOp::create(b, loc, x, c(0x94d049bb133111ebULL));
  return arith::XOrIOp::create(b, loc, x,
                               arith::ShRUIOp::create(b, loc, x, c(31)));
}

struct RandomUniformOpPattern : OpConversionPattern<RandomUniformOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(RandomUniformOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto type = op.getType();
    SmallVector<OpFoldResult> sizes =
        generatorSizes(rewriter, type, adaptor.getDynamicSizes());
    SmallVector<Value> sizeValues;
    for (OpFoldResult size : sizes)
      sizeValues.push_back(
          getValueOrCreateConstantIndexOp(rewriter, loc, size));
    Type elementType = type.getElementType();
    // The seed is an input of the generic (read in its body), so no
    // backend reads it outside the loop (on CUDA that would be the host).
    AffineMap seedMap = AffineMap::get(type.getRank(), 0, {}, op.getContext());
    Value result = buildIndexed(
        rewriter, loc, type, sizes, ValueRange{adaptor.getSeed()}, {seedMap},
        [&](OpBuilder &b, Location l, ValueRange ivs,
            ValueRange inputs) -> Value {
          Value seed = inputs[0];
          // Row-major linear index, then mix(seed_key + index): the value
          // at index i depends only on (seed, i).
          Value linear = indexConstant(b, l, 0);
          for (auto [iv, size] : llvm::zip(ivs, sizeValues))
            linear = arith::AddIOp::create(
                b, l, arith::MulIOp::create(b, l, linear, size), iv);
          Value counter =
              arith::IndexCastOp::create(b, l, b.getI64Type(), linear);
          Value key = mix64(b, l, seed);
          Value bits = mix64(b, l, arith::AddIOp::create(b, l, key, counter));
          // Top 24 bits -> [0, 1) exactly representable in f32.
          Value top = arith::ShRUIOp::create(
              b, l, bits,
              arith::ConstantOp::create(b, l, b.getI64Type(),
                                        b.getI64IntegerAttr(40)));
          Value asFloat = arith::UIToFPOp::create(b, l, b.getF32Type(), top);
          Value scale = arith::ConstantOp::create(
              b, l, b.getF32Type(), b.getF32FloatAttr(1.0f / 16777216.0f));
          Value unit = arith::MulFOp::create(b, l, asFloat, scale);
          return convertScalar(b, l, unit, elementType);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void mlir::kiln::to_linalg::populateGeneratorPatterns(
    RewritePatternSet &patterns) {
  patterns.add<ConstantOpPattern, IotaOpPattern, CausalMaskOpPattern,
               PaddingMaskOpPattern, RandomUniformOpPattern>(
      patterns.getContext());
}
