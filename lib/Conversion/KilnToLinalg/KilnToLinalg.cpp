//===- KilnToLinalg.cpp - kiln primitives to linalg/tensor/arith/math -----===//
//
// One pattern per primitive. Elementwise ops share a builder that turns
// NumPy broadcasting into linalg indexing maps; everything stays at the
// tensor level so one-shot bufferization and the linalg tiling and
// vectorization passes see ordinary upstream IR.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_CONVERTKILNTOLINALGPASS
#include "kiln/Conversion/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

Value indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

/// A scalar constant of `type` (float or integer) with value `value`.
Value scalarConstant(OpBuilder &b, Location loc, Type type, double value) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(b, loc, floatType,
                                     b.getFloatAttr(floatType, value));
  return arith::ConstantOp::create(
      b, loc, type, b.getIntegerAttr(type, static_cast<int64_t>(value)));
}

/// The lowest finite value of a float type (the additive-mask "minus
/// infinity" Hugging Face uses) or the smallest integer.
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

/// The sizes of a result of type `type`: static dims as attributes, dynamic
/// ones from the first operand whose right-aligned dim is not a static 1.
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

/// The indexing map reading `operand` inside an iteration space shaped
/// like `resultType` with NumPy broadcasting.
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

using BodyBuilder =
    function_ref<Value(OpBuilder &, Location, ValueRange /*scalars*/)>;

/// A parallel linalg.generic producing `resultType` from broadcast `inputs`.
Value buildElementwise(OpBuilder &b, Location loc, RankedTensorType resultType,
                       ValueRange inputs, BodyBuilder body,
                       ArrayRef<Value> sizeSources = {}) {
  MLIRContext *ctx = b.getContext();
  SmallVector<Value> sources(sizeSources.begin(), sizeSources.end());
  if (sources.empty())
    sources.assign(inputs.begin(), inputs.end());
  SmallVector<OpFoldResult> sizes =
      broadcastResultSizes(b, loc, resultType, sources);
  Value init = tensor::EmptyOp::create(b, loc, sizes,
                                       resultType.getElementType());
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

/// A generic with no inputs whose body sees the iteration indices.
Value buildIndexed(OpBuilder &b, Location loc, RankedTensorType resultType,
                   ArrayRef<OpFoldResult> sizes, ValueRange inputs,
                   ArrayRef<AffineMap> inputMaps,
                   function_ref<Value(OpBuilder &, Location, ValueRange,
                                      ValueRange)>
                       body) {
  MLIRContext *ctx = b.getContext();
  Value init = tensor::EmptyOp::create(b, loc, sizes,
                                       resultType.getElementType());
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

/// Sizes of a generator op's result: static dims, then its dynamic size
/// operands in order.
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

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

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
template <typename KilnOp>
struct UnaryPattern : OpConversionPattern<KilnOp> {
  using Build = Value (*)(OpBuilder &, Location, Value);
  UnaryPattern(MLIRContext *ctx, Build build)
      : OpConversionPattern<KilnOp>(ctx), build(build) {}
  LogicalResult
  matchAndRewrite(KilnOp op, typename KilnOp::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Value result = buildElementwise(
        rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()),
        {adaptor.getInput()},
        [&](OpBuilder &b, Location loc, ValueRange args) {
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
  return arith::DivFOp::create(b, loc, one, arith::AddFOp::create(b, loc, one, e));
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
            case ComparePredicate::eq: p = arith::CmpFPredicate::OEQ; break;
            case ComparePredicate::ne: p = arith::CmpFPredicate::UNE; break;
            case ComparePredicate::lt: p = arith::CmpFPredicate::OLT; break;
            case ComparePredicate::le: p = arith::CmpFPredicate::OLE; break;
            case ComparePredicate::gt: p = arith::CmpFPredicate::OGT; break;
            case ComparePredicate::ge: p = arith::CmpFPredicate::OGE; break;
            }
            return arith::CmpFOp::create(b, loc, p, args[0], args[1]);
          }
          arith::CmpIPredicate p = arith::CmpIPredicate::eq;
          switch (predicate) {
          case ComparePredicate::eq: p = arith::CmpIPredicate::eq; break;
          case ComparePredicate::ne: p = arith::CmpIPredicate::ne; break;
          case ComparePredicate::lt: p = arith::CmpIPredicate::slt; break;
          case ComparePredicate::le: p = arith::CmpIPredicate::sle; break;
          case ComparePredicate::gt: p = arith::CmpIPredicate::sgt; break;
          case ComparePredicate::ge: p = arith::CmpIPredicate::sge; break;
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

//===----------------------------------------------------------------------===//
// Matmul and reductions
//===----------------------------------------------------------------------===//

struct MatmulOpPattern : OpConversionPattern<MatmulOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value lhs = adaptor.getLhs(), rhs = adaptor.getRhs();
    // A transposed operand ([..., N, K] rhs, [..., K, M] lhs) is copied to
    // the plain layout first: the copy is O(N·K) (or O(M·K)) against the
    // product's O(M·N·K), and it lets every product use the one layout the
    // CPU backend register-tiles with fused multiply-adds.
    auto transposeLastTwo = [&](Value value) -> Value {
      auto type = tensorType(value);
      SmallVector<int64_t> perm =
          llvm::to_vector(llvm::seq<int64_t>(0, type.getRank()));
      std::swap(perm[type.getRank() - 1], perm[type.getRank() - 2]);
      SmallVector<OpFoldResult> sizes =
          tensor::getMixedSizes(rewriter, loc, value);
      std::swap(sizes[type.getRank() - 1], sizes[type.getRank() - 2]);
      Value init =
          tensor::EmptyOp::create(rewriter, loc, sizes, type.getElementType());
      return linalg::TransposeOp::create(rewriter, loc, value, init, perm)
          .getResult()[0];
    };
    if (op.getTransposeRhs())
      rhs = transposeLastTwo(rhs);
    if (op.getTransposeLhs())
      lhs = transposeLastTwo(lhs);
    auto lhsType = tensorType(lhs), rhsType = tensorType(rhs);
    auto resultType = op.getType();
    int64_t rank = resultType.getRank();
    int64_t batchRank = rank - 2;
    // Iteration space: batch dims, m, k, n. With n innermost the inner
    // loop walks rows of the rhs and of the result contiguously, which the
    // loop vectorizer turns into vector FMAs (k innermost would be a
    // floating-point reduction it may not reorder).
    int64_t m = batchRank, k = batchRank + 1, n = batchRank + 2;
    auto operandMap = [&](RankedTensorType type, bool transposed,
                          bool isLhs) {
      SmallVector<AffineExpr> exprs;
      int64_t operandBatch = type.getRank() - 2;
      for (int64_t i = 0; i < operandBatch; ++i) {
        int64_t d = i + (batchRank - operandBatch);
        bool stretched =
            type.getDimSize(i) == 1 && resultType.getDimSize(d) != 1;
        exprs.push_back(stretched ? getAffineConstantExpr(0, ctx)
                                  : getAffineDimExpr(d, ctx));
      }
      AffineExpr outer = getAffineDimExpr(isLhs ? m : k, ctx);
      AffineExpr inner = getAffineDimExpr(isLhs ? k : n, ctx);
      if (transposed)
        std::swap(outer, inner);
      exprs.push_back(outer);
      exprs.push_back(inner);
      return AffineMap::get(rank + 1, 0, exprs, ctx);
    };
    SmallVector<AffineExpr> outExprs;
    for (int64_t d = 0; d < batchRank; ++d)
      outExprs.push_back(getAffineDimExpr(d, ctx));
    outExprs.push_back(getAffineDimExpr(m, ctx));
    outExprs.push_back(getAffineDimExpr(n, ctx));
    SmallVector<AffineMap> maps = {
        operandMap(lhsType, /*transposed=*/false, true),
        operandMap(rhsType, /*transposed=*/false, false),
        AffineMap::get(rank + 1, 0, outExprs, ctx)};
    SmallVector<utils::IteratorType> iterators(rank + 1,
                                               utils::IteratorType::parallel);
    iterators[k] = utils::IteratorType::reduction;
    // Result dims (not iteration dims) of m and n.
    int64_t resultM = batchRank, resultN = batchRank + 1;

    // Result sizes: batch dims broadcast from both, m from lhs, n from rhs.
    SmallVector<OpFoldResult> sizes;
    for (int64_t d = 0; d < rank; ++d) {
      if (!resultType.isDynamicDim(d)) {
        sizes.push_back(rewriter.getIndexAttr(resultType.getDimSize(d)));
        continue;
      }
      Value size;
      if (d == resultM) {
        size = tensor::DimOp::create(rewriter, loc, lhs, lhsType.getRank() - 2);
      } else if (d == resultN) {
        size = tensor::DimOp::create(rewriter, loc, rhs,
                                     rhsType.getRank() - 1);
      } else {
        for (auto [value, type] : {std::pair(lhs, lhsType),
                                   std::pair(rhs, rhsType)}) {
          int64_t aligned = d - (batchRank - (type.getRank() - 2));
          if (aligned >= 0 && type.getDimSize(aligned) != 1) {
            size = tensor::DimOp::create(rewriter, loc, value, aligned);
            break;
          }
        }
      }
      sizes.push_back(size ? OpFoldResult(size) : rewriter.getIndexAttr(1));
    }
    Type elementType = resultType.getElementType();
    // f16 and bf16 products accumulate in f32 (as cuBLAS and PyTorch do);
    // the sum is rounded to the result type once, at the end.
    bool narrow = elementType.isF16() || elementType.isBF16();
    Type accumulatorType = narrow ? rewriter.getF32Type() : elementType;
    auto accumulatorTensor = RankedTensorType::get(
        resultType.getShape(), accumulatorType);
    Value empty =
        tensor::EmptyOp::create(rewriter, loc, sizes, accumulatorType);
    Value zero = scalarConstant(rewriter, loc, accumulatorType, 0);
    Value init =
        linalg::FillOp::create(rewriter, loc, zero, empty).getResult(0);
    bool floating = isFloat(elementType);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{accumulatorTensor}, ValueRange{lhs, rhs},
        ValueRange{init}, maps, iterators,
        [&](OpBuilder &b, Location nestedLoc, ValueRange args) {
          Value product, sum;
          if (floating) {
            Value x = args[0], y = args[1];
            if (narrow) {
              x = arith::ExtFOp::create(b, nestedLoc, accumulatorType, x);
              y = arith::ExtFOp::create(b, nestedLoc, accumulatorType, y);
            }
            product = arith::MulFOp::create(b, nestedLoc, x, y);
            sum = arith::AddFOp::create(b, nestedLoc, args[2], product);
          } else {
            product = arith::MulIOp::create(b, nestedLoc, args[0], args[1]);
            sum = arith::AddIOp::create(b, nestedLoc, args[2], product);
          }
          linalg::YieldOp::create(b, nestedLoc, sum);
        });
    Value result = generic.getResult(0);
    if (narrow) {
      Value rounded =
          tensor::EmptyOp::create(rewriter, loc, sizes, elementType);
      AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
      result = linalg::GenericOp::create(
                   rewriter, loc, TypeRange{resultType}, ValueRange{result},
                   ValueRange{rounded},
                   SmallVector<AffineMap>{identity, identity},
                   SmallVector<utils::IteratorType>(
                       rank, utils::IteratorType::parallel),
                   [&](OpBuilder &b, Location nestedLoc, ValueRange args) {
                     linalg::YieldOp::create(
                         b, nestedLoc,
                         arith::TruncFOp::create(b, nestedLoc, elementType,
                                                 args[0])
                             .getResult());
                   })
                   .getResult(0);
    }
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct ReduceOpPattern : OpConversionPattern<ReduceOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ReduceOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value input = adaptor.getInput();
    auto inputType = tensorType(input);
    Type elementType = inputType.getElementType();
    bool floating = isFloat(elementType);
    int64_t rank = inputType.getRank();
    llvm::SmallDenseSet<int64_t> axes(op.getAxes().begin(),
                                      op.getAxes().end());

    // The reduction without keepdim; keepdim reshapes afterwards.
    SmallVector<int64_t> keptShape;
    SmallVector<OpFoldResult> keptSizes;
    SmallVector<AffineExpr> outExprs;
    SmallVector<utils::IteratorType> iterators;
    for (int64_t d = 0; d < rank; ++d) {
      if (axes.contains(d)) {
        iterators.push_back(utils::IteratorType::reduction);
        continue;
      }
      iterators.push_back(utils::IteratorType::parallel);
      keptShape.push_back(inputType.getDimSize(d));
      keptSizes.push_back(
          inputType.isDynamicDim(d)
              ? OpFoldResult(tensor::DimOp::create(rewriter, loc, input, d))
              : OpFoldResult(rewriter.getIndexAttr(inputType.getDimSize(d))));
      outExprs.push_back(getAffineDimExpr(d, ctx));
    }
    ReduceKind kind = op.getKind();
    // f16 and bf16 sums accumulate in f32 (as PyTorch does) and are rounded
    // to the element type once, after the mean's division.
    bool widen = (elementType.isF16() || elementType.isBF16()) &&
                 (kind == ReduceKind::sum || kind == ReduceKind::mean);
    Type accumulatorType = widen ? rewriter.getF32Type() : elementType;
    auto keptType = RankedTensorType::get(keptShape, elementType);
    auto accumulatorKeptType = RankedTensorType::get(keptShape, accumulatorType);
    Value identity;
    switch (kind) {
    case ReduceKind::sum:
    case ReduceKind::mean:
      identity = scalarConstant(rewriter, loc, accumulatorType, 0);
      break;
    case ReduceKind::max:
      identity = floating
                     ? arith::ConstantOp::create(
                           rewriter, loc, elementType,
                           rewriter.getFloatAttr(
                               elementType,
                               APFloat::getInf(cast<FloatType>(elementType)
                                                   .getFloatSemantics(),
                                               true)))
                           .getResult()
                     : lowestConstant(rewriter, loc, elementType);
      break;
    case ReduceKind::min:
      identity = floating
                     ? arith::ConstantOp::create(
                           rewriter, loc, elementType,
                           rewriter.getFloatAttr(
                               elementType,
                               APFloat::getInf(cast<FloatType>(elementType)
                                                   .getFloatSemantics(),
                                               false)))
                           .getResult()
                     : highestConstant(rewriter, loc, elementType);
      break;
    }
    Value empty =
        tensor::EmptyOp::create(rewriter, loc, keptSizes, accumulatorType);
    Value init =
        linalg::FillOp::create(rewriter, loc, identity, empty).getResult(0);
    SmallVector<AffineMap> maps = {
        AffineMap::getMultiDimIdentityMap(rank, ctx),
        AffineMap::get(rank, 0, outExprs, ctx)};
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{accumulatorKeptType}, ValueRange{input},
        ValueRange{init}, maps, iterators,
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value x = args[0], acc = args[1], out;
          if (widen)
            x = arith::ExtFOp::create(b, l, accumulatorType, x);
          switch (kind) {
          case ReduceKind::sum:
          case ReduceKind::mean:
            out = floating ? arith::AddFOp::create(b, l, acc, x).getResult()
                           : arith::AddIOp::create(b, l, acc, x).getResult();
            break;
          case ReduceKind::max:
            out = floating ? arith::MaximumFOp::create(b, l, acc, x).getResult()
                           : arith::MaxSIOp::create(b, l, acc, x).getResult();
            break;
          case ReduceKind::min:
            out = floating ? arith::MinimumFOp::create(b, l, acc, x).getResult()
                           : arith::MinSIOp::create(b, l, acc, x).getResult();
            break;
          }
          linalg::YieldOp::create(b, l, out);
        });
    Value result = generic.getResult(0);

    if (kind == ReduceKind::mean) {
      // Divide by the number of reduced elements.
      Value count = indexConstant(rewriter, loc, 1);
      for (int64_t axis : op.getAxes())
        count = arith::MulIOp::create(
            rewriter, loc, count,
            tensor::DimOp::create(rewriter, loc, input, axis));
      Value countScalar = castIndexTo(rewriter, loc, count, accumulatorType);
      result = buildElementwise(
          rewriter, loc, accumulatorKeptType, {result},
          [&](OpBuilder &b, Location l, ValueRange args) -> Value {
            if (floating)
              return arith::DivFOp::create(b, l, args[0], countScalar);
            return arith::DivSIOp::create(b, l, args[0], countScalar);
          });
    }
    if (widen)
      result = buildElementwise(
          rewriter, loc, keptType, {result},
          [&](OpBuilder &b, Location l, ValueRange args) -> Value {
            return arith::TruncFOp::create(b, l, elementType, args[0]);
          });
    if (op.getKeepdim()) {
      // Re-insert the reduced axes as size-1 dims.
      SmallVector<ReassociationIndices> reassociation;
      int64_t resultDim = 0;
      ReassociationIndices pending;
      for (int64_t d = 0; d < rank; ++d) {
        pending.push_back(resultDim++);
        if (!axes.contains(d)) {
          reassociation.push_back(pending);
          pending.clear();
        }
      }
      if (!pending.empty()) {
        if (reassociation.empty())
          reassociation.push_back(pending);
        else
          llvm::append_range(reassociation.back(), pending);
      }
      if (keptShape.empty()) {
        reassociation.clear();
      }
      result = tensor::ExpandShapeOp::create(rewriter, loc, op.getType(),
                                             result, reassociation);
    }
    rewriter.replaceOp(op, result);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Shape and data movement
//===----------------------------------------------------------------------===//

struct TransposeOpPattern : OpConversionPattern<TransposeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(TransposeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value input = adaptor.getInput();
    SmallVector<OpFoldResult> inputSizes =
        tensor::getMixedSizes(rewriter, loc, input);
    SmallVector<OpFoldResult> sizes;
    for (int64_t p : op.getPermutation())
      sizes.push_back(inputSizes[p]);
    Value init = tensor::EmptyOp::create(rewriter, loc, sizes,
                                         op.getType().getElementType());
    auto transpose = linalg::TransposeOp::create(rewriter, loc, input, init,
                                                 op.getPermutation());
    rewriter.replaceOp(op, transpose.getResult());
    return success();
  }
};

struct ReshapeOpPattern : OpConversionPattern<ReshapeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ReshapeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value input = adaptor.getInput();
    auto inputType = tensorType(input);
    auto resultType = op.getType();
    // The k-th dynamic result dim takes the size of the k-th dynamic input
    // dim (the verifier guarantees equal counts).
    SmallVector<Value> dynamicInputSizes;
    for (int64_t d = 0; d < inputType.getRank(); ++d)
      if (inputType.isDynamicDim(d))
        dynamicInputSizes.push_back(tensor::DimOp::create(rewriter, loc, input, d));
    SmallVector<Value> shape;
    unsigned next = 0;
    for (int64_t dim : resultType.getShape())
      shape.push_back(ShapedType::isDynamic(dim)
                          ? dynamicInputSizes[next++]
                          : indexConstant(rewriter, loc, dim));
    Value shapeTensor = tensor::FromElementsOp::create(
        rewriter, loc,
        RankedTensorType::get({resultType.getRank()}, rewriter.getIndexType()),
        shape);
    rewriter.replaceOpWithNewOp<tensor::ReshapeOp>(op, resultType, input,
                                                   shapeTensor);
    return success();
  }
};

struct SliceOpPattern : OpConversionPattern<SliceOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(SliceOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value input = adaptor.getInput();
    int64_t rank = tensorType(input).getRank();
    SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, input);
    SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
    int64_t axis = op.getAxis();
    offsets[axis] = rewriter.getIndexAttr(op.getStart());
    sizes[axis] = rewriter.getIndexAttr(op.getType().getDimSize(axis));
    strides[axis] = rewriter.getIndexAttr(op.getStep());
    rewriter.replaceOpWithNewOp<tensor::ExtractSliceOp>(
        op, op.getType(), input, offsets, sizes, strides);
    return success();
  }
};

struct ConcatOpPattern : OpConversionPattern<ConcatOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ConcatOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    rewriter.replaceOpWithNewOp<tensor::ConcatOp>(op, op.getType(), op.getAxis(),
                                                  adaptor.getInputs());
    return success();
  }
};

struct PadOpPattern : OpConversionPattern<PadOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(PadOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Type elementType = op.getType().getElementType();
    Value value = scalarConstant(rewriter, loc, elementType,
                                 op.getValue().convertToDouble());
    SmallVector<OpFoldResult> low, high;
    for (int64_t v : op.getLow())
      low.push_back(rewriter.getIndexAttr(v));
    for (int64_t v : op.getHigh())
      high.push_back(rewriter.getIndexAttr(v));
    auto pad = tensor::PadOp::create(rewriter, loc, op.getType(),
                                     adaptor.getInput(), low, high, value);
    rewriter.replaceOp(op, pad.getResult());
    return success();
  }
};

struct BroadcastToOpPattern : OpConversionPattern<BroadcastToOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(BroadcastToOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto resultType = op.getType();
    SmallVector<OpFoldResult> sizes =
        generatorSizes(rewriter, resultType, adaptor.getDynamicSizes());
    Value init = tensor::EmptyOp::create(rewriter, loc, sizes,
                                         resultType.getElementType());
    MLIRContext *ctx = rewriter.getContext();
    SmallVector<AffineMap> maps = {
        broadcastMap(ctx, tensorType(adaptor.getInput()), resultType),
        AffineMap::getMultiDimIdentityMap(resultType.getRank(), ctx)};
    SmallVector<utils::IteratorType> iterators(resultType.getRank(),
                                               utils::IteratorType::parallel);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{resultType}, ValueRange{adaptor.getInput()},
        ValueRange{init}, maps, iterators,
        [](OpBuilder &b, Location l, ValueRange args) {
          linalg::YieldOp::create(b, l, args[0]);
        });
    rewriter.replaceOp(op, generic.getResult(0));
    return success();
  }
};

struct GatherOpPattern : OpConversionPattern<GatherOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(GatherOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value input = adaptor.getInput(), indices = adaptor.getIndices();
    auto inputType = tensorType(input), indicesType = tensorType(indices);
    auto resultType = op.getType();
    int64_t axis = op.getAxis();
    int64_t indexRank = indicesType.getRank();
    // result = input[:axis] ++ indices ++ input[axis+1:]
    SmallVector<OpFoldResult> sizes;
    for (int64_t d = 0; d < axis; ++d)
      sizes.push_back(tensor::getMixedSize(rewriter, loc, input, d));
    for (int64_t d = 0; d < indexRank; ++d)
      sizes.push_back(tensor::getMixedSize(rewriter, loc, indices, d));
    for (int64_t d = axis + 1; d < inputType.getRank(); ++d)
      sizes.push_back(tensor::getMixedSize(rewriter, loc, input, d));
    SmallVector<AffineExpr> indexExprs;
    for (int64_t d = 0; d < indexRank; ++d)
      indexExprs.push_back(getAffineDimExpr(axis + d, ctx));
    AffineMap indexMap =
        AffineMap::get(resultType.getRank(), 0, indexExprs, ctx);
    // Out-of-range indices (a token id past the vocabulary) are clamped to
    // the nearest row: reading outside the table would crash the process.
    Value zero = indexConstant(rewriter, loc, 0);
    Value last = arith::SubIOp::create(
        rewriter, loc, tensor::DimOp::create(rewriter, loc, input, axis),
        indexConstant(rewriter, loc, 1));
    Value result = buildIndexed(
        rewriter, loc, resultType, sizes, {indices}, {indexMap},
        [&](OpBuilder &b, Location l, ValueRange ivs, ValueRange args) {
          SmallVector<Value> coords;
          for (int64_t d = 0; d < axis; ++d)
            coords.push_back(ivs[d]);
          Value index =
              arith::IndexCastOp::create(b, l, b.getIndexType(), args[0]);
          index = arith::MaxSIOp::create(
              b, l, arith::MinSIOp::create(b, l, index, last), zero);
          coords.push_back(index);
          for (int64_t d = axis + 1; d < inputType.getRank(); ++d)
            coords.push_back(ivs[d - 1 + indexRank]);
          return tensor::ExtractOp::create(b, l, input, coords);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// A sequential loop nest over the updates (repeated indices accumulate, so
/// it cannot be a parallel generic), carrying the result tensor: one scalar
/// read-add-write per update element. Bufferized, it updates the input's
/// buffer in place.
struct ScatterAddOpPattern : OpConversionPattern<ScatterAddOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ScatterAddOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value input = adaptor.getInput(), indices = adaptor.getIndices(),
          updates = adaptor.getUpdates();
    auto inputType = tensorType(input);
    int64_t axis = op.getAxis();
    int64_t indexRank = tensorType(indices).getRank();
    int64_t updatesRank = tensorType(updates).getRank();
    bool isFloat = isa<FloatType>(inputType.getElementType());
    Value zero = indexConstant(rewriter, loc, 0);
    Value one = indexConstant(rewriter, loc, 1);
    Value last = arith::SubIOp::create(
        rewriter, loc, tensor::DimOp::create(rewriter, loc, input, axis), one);
    SmallVector<Value> lbs(updatesRank, zero), steps(updatesRank, one), ubs;
    for (int64_t d = 0; d < updatesRank; ++d)
      ubs.push_back(tensor::DimOp::create(rewriter, loc, updates, d));
    scf::LoopNest nest = scf::buildLoopNest(
        rewriter, loc, lbs, ubs, steps, ValueRange{input},
        [&](OpBuilder &b, Location l, ValueRange ivs,
            ValueRange acc) -> scf::ValueVector {
          Value index = tensor::ExtractOp::create(
              b, l, indices, ivs.slice(axis, indexRank));
          index = arith::IndexCastOp::create(b, l, b.getIndexType(), index);
          // Clamped like gather: never write outside the tensor.
          index = arith::MaxSIOp::create(
              b, l, arith::MinSIOp::create(b, l, index, last), zero);
          SmallVector<Value> coords(ivs.take_front(axis));
          coords.push_back(index);
          llvm::append_range(coords, ivs.drop_front(axis + indexRank));
          Value update = tensor::ExtractOp::create(b, l, updates, ivs);
          Value current = tensor::ExtractOp::create(b, l, acc[0], coords);
          Value sum = isFloat ? Value(arith::AddFOp::create(b, l, current,
                                                            update))
                              : Value(arith::AddIOp::create(b, l, current,
                                                            update));
          return {tensor::InsertOp::create(b, l, sum, acc[0], coords)};
        });
    rewriter.replaceOp(op, nest.results.empty() ? input : nest.results[0]);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Generators
//===----------------------------------------------------------------------===//

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
      sizeValues.push_back(getValueOrCreateConstantIndexOp(rewriter, loc, size));
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

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertKilnToLinalgPass
    : kiln::impl::ConvertKilnToLinalgPassBase<ConvertKilnToLinalgPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    // A remaining composite is a pipeline mistake; say which.
    WalkResult composite = module.walk([](DecomposableOpInterface op) {
      op->emitOpError("is a composite op; run kiln-decompose before "
                      "convert-kiln-to-linalg");
      return WalkResult::interrupt();
    });
    if (composite.wasInterrupted())
      return signalPassFailure();
    WalkResult fused = module.walk([](AttentionGradOp op) {
      op->emitOpError("has no linalg lowering; run convert-kiln-attention "
                      "before convert-kiln-to-linalg");
      return WalkResult::interrupt();
    });
    if (fused.wasInterrupted())
      return signalPassFailure();

    ConversionTarget target(getContext());
    target.addLegalDialect<linalg::LinalgDialect, tensor::TensorDialect,
                           arith::ArithDialect, math::MathDialect,
                           func::FuncDialect, scf::SCFDialect>();
    target.addIllegalDialect<KilnDialect>();
    target.addLegalOp<ParameterOp, ReadParamOp, WriteParamOp>();
    RewritePatternSet patterns(&getContext());
    populateKilnToLinalgPatterns(patterns);
    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::kiln::populateKilnToLinalgPatterns(RewritePatternSet &patterns) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<BinaryPattern<AddOp, arith::AddFOp, arith::AddIOp>,
               BinaryPattern<SubOp, arith::SubFOp, arith::SubIOp>,
               BinaryPattern<MulOp, arith::MulFOp, arith::MulIOp>,
               BinaryPattern<DivOp, arith::DivFOp, arith::DivSIOp>,
               BinaryPattern<MaxOp, arith::MaximumFOp, arith::MaxSIOp>,
               BinaryPattern<MinOp, arith::MinimumFOp, arith::MinSIOp>,
               PowPattern, CompareOpPattern, SelectOpPattern, CastOpPattern,
               MatmulOpPattern, ReduceOpPattern, TransposeOpPattern,
               ReshapeOpPattern, SliceOpPattern, ConcatOpPattern, PadOpPattern,
               BroadcastToOpPattern, GatherOpPattern, ScatterAddOpPattern,
               ConstantOpPattern,
               IotaOpPattern, CausalMaskOpPattern, PaddingMaskOpPattern,
               RandomUniformOpPattern>(ctx);
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
