//===- Elementwise.cpp - kiln elementwise ops to linalg -------------------===//
//
// Binary, unary, compare, select and cast ops: one parallel linalg.generic
// each, operands broadcast NumPy-style (buildElementwise).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::to_linalg;

namespace {

/// Binary elementwise op to `FloatOp` or `IntOp` on scalars.
template <typename KilnOp, typename FloatOp, typename IntOp>
struct BinaryPattern : OpConversionPattern<KilnOp> {
  using OpConversionPattern<KilnOp>::OpConversionPattern;
  LogicalResult
  matchAndRewrite(KilnOp op, typename KilnOp::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    auto type = cast<RankedTensorType>(op.getType());
    bool floating = isFloat(type);
    Value result = buildElementwise(
        rewriter, op.getLoc(), type, {adaptor.getLhs(), adaptor.getRhs()},
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          if (floating)
            return FloatOp::create(b, loc, args[0], args[1]);
          return IntOp::create(b, loc, args[0], args[1]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct PowPattern : OpConversionPattern<PowOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(PowOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Value result = buildElementwise(
        rewriter, op.getLoc(), op.getType(),
        {adaptor.getLhs(), adaptor.getRhs()},
        [](OpBuilder &b, Location loc, ValueRange args) -> Value {
          return math::PowFOp::create(b, loc, args[0], args[1]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Unary elementwise op; `build` makes the scalar result.
template <typename KilnOp> struct UnaryPattern : OpConversionPattern<KilnOp> {
  using Build = Value (*)(OpBuilder &, Location, Value);
  UnaryPattern(MLIRContext *ctx, Build build)
      : OpConversionPattern<KilnOp>(ctx), build(build) {}
  LogicalResult
  matchAndRewrite(KilnOp op, typename KilnOp::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Value result = buildElementwise(
        rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()),
        {adaptor.getInput()}, [&](OpBuilder &b, Location loc, ValueRange args) {
          return build(b, loc, args[0]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
  Build build;
};

Value buildNeg(OpBuilder &b, Location loc, Value x) {
  if (isa<FloatType>(x.getType()))
    return arith::NegFOp::create(b, loc, x);
  return arith::SubIOp::create(b, loc, scalarConstant(b, loc, x.getType(), 0),
                               x);
}
Value buildAbs(OpBuilder &b, Location loc, Value x) {
  if (isa<FloatType>(x.getType()))
    return math::AbsFOp::create(b, loc, x);
  return math::AbsIOp::create(b, loc, x);
}
/// Unary ops with a one-to-one math dialect counterpart.
template <typename MathOp>
Value buildMathOp(OpBuilder &b, Location loc, Value x) {
  return MathOp::create(b, loc, x);
}
Value buildSigmoid(OpBuilder &b, Location loc, Value x) {
  // 1 / (1 + exp(-x))
  Value one = scalarConstant(b, loc, x.getType(), 1.0);
  Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
  return arith::DivFOp::create(b, loc, one,
                               arith::AddFOp::create(b, loc, one, e));
}
Value buildRelu(OpBuilder &b, Location loc, Value x) {
  // max(x, 0) that keeps NaN, as torch.relu does.
  return arith::MaximumFOp::create(b, loc, x,
                                   scalarConstant(b, loc, x.getType(), 0.0));
}

struct CompareOpPattern : OpConversionPattern<CompareOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CompareOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    bool floating = isFloat(adaptor.getLhs().getType());
    ComparePredicate predicate = op.getPredicate();
    Value result = buildElementwise(
        rewriter, op.getLoc(), op.getType(),
        {adaptor.getLhs(), adaptor.getRhs()},
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          if (floating) {
            arith::CmpFPredicate p = arith::CmpFPredicate::OEQ;
            switch (predicate) {
            case ComparePredicate::eq:
              p = arith::CmpFPredicate::OEQ;
              break;
            case ComparePredicate::ne:
              p = arith::CmpFPredicate::UNE;
              break;
            case ComparePredicate::lt:
              p = arith::CmpFPredicate::OLT;
              break;
            case ComparePredicate::le:
              p = arith::CmpFPredicate::OLE;
              break;
            case ComparePredicate::gt:
              p = arith::CmpFPredicate::OGT;
              break;
            case ComparePredicate::ge:
              p = arith::CmpFPredicate::OGE;
              break;
            }
            return arith::CmpFOp::create(b, loc, p, args[0], args[1]);
          }
          arith::CmpIPredicate p = arith::CmpIPredicate::eq;
          switch (predicate) {
          case ComparePredicate::eq:
            p = arith::CmpIPredicate::eq;
            break;
          case ComparePredicate::ne:
            p = arith::CmpIPredicate::ne;
            break;
          case ComparePredicate::lt:
            p = arith::CmpIPredicate::slt;
            break;
          case ComparePredicate::le:
            p = arith::CmpIPredicate::sle;
            break;
          case ComparePredicate::gt:
            p = arith::CmpIPredicate::sgt;
            break;
          case ComparePredicate::ge:
            p = arith::CmpIPredicate::sge;
            break;
          }
          return arith::CmpIOp::create(b, loc, p, args[0], args[1]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct SelectOpPattern : OpConversionPattern<SelectOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(SelectOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Value result = buildElementwise(
        rewriter, op.getLoc(), op.getType(),
        {adaptor.getCondition(), adaptor.getOnTrue(), adaptor.getOnFalse()},
        [](OpBuilder &b, Location loc, ValueRange args) -> Value {
          return arith::SelectOp::create(b, loc, args[0], args[1], args[2]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct CastOpPattern : OpConversionPattern<CastOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CastOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    auto resultType = op.getType();
    if (isa<quant::QuantizedType>(resultType.getElementType()) ||
        isa<quant::QuantizedType>(op.getInput().getType().getElementType()))
      return rewriter.notifyMatchFailure(op, "quantized casts are lowered "
                                             "by the quantization passes");
    Type to = resultType.getElementType();
    Value result = buildElementwise(
        rewriter, op.getLoc(), resultType, {adaptor.getInput()},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          return convertScalar(b, loc, args[0], to);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void mlir::kiln::to_linalg::populateElementwisePatterns(
    RewritePatternSet &patterns) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<BinaryPattern<AddOp, arith::AddFOp, arith::AddIOp>,
               BinaryPattern<SubOp, arith::SubFOp, arith::SubIOp>,
               BinaryPattern<MulOp, arith::MulFOp, arith::MulIOp>,
               BinaryPattern<DivOp, arith::DivFOp, arith::DivSIOp>,
               BinaryPattern<MaxOp, arith::MaximumFOp, arith::MaxSIOp>,
               BinaryPattern<MinOp, arith::MinimumFOp, arith::MinSIOp>,
               PowPattern, CompareOpPattern, SelectOpPattern, CastOpPattern>(
      ctx);
  patterns.add<UnaryPattern<NegOp>>(ctx, buildNeg);
  patterns.add<UnaryPattern<AbsOp>>(ctx, buildAbs);
  patterns.add<UnaryPattern<ExpOp>>(ctx, buildMathOp<math::ExpOp>);
  patterns.add<UnaryPattern<LogOp>>(ctx, buildMathOp<math::LogOp>);
  patterns.add<UnaryPattern<TanhOp>>(ctx, buildMathOp<math::TanhOp>);
  patterns.add<UnaryPattern<ErfOp>>(ctx, buildMathOp<math::ErfOp>);
  patterns.add<UnaryPattern<SinOp>>(ctx, buildMathOp<math::SinOp>);
  patterns.add<UnaryPattern<CosOp>>(ctx, buildMathOp<math::CosOp>);
  patterns.add<UnaryPattern<SqrtOp>>(ctx, buildMathOp<math::SqrtOp>);
  patterns.add<UnaryPattern<RsqrtOp>>(ctx, buildMathOp<math::RsqrtOp>);
  patterns.add<UnaryPattern<SigmoidOp>>(ctx, buildSigmoid);
  patterns.add<UnaryPattern<ReluOp>>(ctx, buildRelu);
}
