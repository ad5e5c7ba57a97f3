//===- Contractions.cpp - kiln matmul and reductions to linalg ------------===//
//
// Matmul as a (batch..., m, k, n) contraction generic (batch dims
// broadcast), reductions as generics with reduction iterators.
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::to_linalg;

namespace {

/// The (batch..., m, k, n) contraction generic of `lhs` [..., M, K] and
/// `rhs` [..., K, N] (batch dims broadcast) as a `resultType` tensor.
Value buildContraction(OpBuilder &rewriter, Location loc, Value lhs, Value rhs,
                       RankedTensorType resultType) {
  MLIRContext *ctx = rewriter.getContext();
  auto lhsType = tensorType(lhs), rhsType = tensorType(rhs);
  int64_t rank = resultType.getRank();
  int64_t batchRank = rank - 2;
  // Iteration space: batch dims, m, k, n. With n innermost the inner
  // loop walks rows of the rhs and of the result contiguously, which the
  // loop vectorizer turns into vector FMAs (k innermost would be a
  // floating-point reduction it may not reorder).
  int64_t m = batchRank, k = batchRank + 1, n = batchRank + 2;
  auto operandMap = [&](RankedTensorType type, bool transposed, bool isLhs) {
    SmallVector<AffineExpr> exprs;
    int64_t operandBatch = type.getRank() - 2;
    for (int64_t i = 0; i < operandBatch; ++i) {
      int64_t d = i + (batchRank - operandBatch);
      bool stretched = type.getDimSize(i) == 1 && resultType.getDimSize(d) != 1;
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
      size = tensor::DimOp::create(rewriter, loc, rhs, rhsType.getRank() - 1);
    } else {
      for (auto [value, type] :
           {std::pair(lhs, lhsType), std::pair(rhs, rhsType)}) {
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
  auto accumulatorTensor =
      RankedTensorType::get(resultType.getShape(), accumulatorType);
  Value empty = tensor::EmptyOp::create(rewriter, loc, sizes, accumulatorType);
  Value zero = scalarConstant(rewriter, loc, accumulatorType, 0);
  Value init = linalg::FillOp::create(rewriter, loc, zero, empty).getResult(0);
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
    Value rounded = tensor::EmptyOp::create(rewriter, loc, sizes, elementType);
    AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
    result =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{resultType}, ValueRange{result},
            ValueRange{rounded}, SmallVector<AffineMap>{identity, identity},
            SmallVector<utils::IteratorType>(rank,
                                             utils::IteratorType::parallel),
            [&](OpBuilder &b, Location nestedLoc, ValueRange args) {
              linalg::YieldOp::create(
                  b, nestedLoc,
                  arith::TruncFOp::create(b, nestedLoc, elementType, args[0])
                      .getResult());
            })
            .getResult(0);
  }
  return result;
}

struct MatmulOpPattern : OpConversionPattern<MatmulOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
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
    // Batch dims of an lhs against an rhs without them (a linear layer's
    // weight) are rows like the others: [..., M, K] x [K, N] is one
    // [(... M), K] x [K, N] product, expanded back. As a batched
    // contraction each batch element was a matmul of its own that read
    // the whole rhs again: a decoding step (M = 1) of 8 sequences
    // streamed every weight 8 times.
    if (rhsType.getRank() == 2 && lhsType.getRank() > 2) {
      int64_t lhsRank = lhsType.getRank();
      SmallVector<ReassociationIndices> rowsOf(2);
      for (int64_t d = 0; d + 1 < lhsRank; ++d)
        rowsOf[0].push_back(d);
      rowsOf[1].push_back(lhsRank - 1);
      Value rows2d =
          tensor::CollapseShapeOp::create(rewriter, loc, lhs, rowsOf);
      auto rows2dType = tensorType(rows2d);
      auto flatType = RankedTensorType::get(
          {rows2dType.getDimSize(0), rhsType.getDimSize(1)},
          resultType.getElementType());
      Value flat = buildContraction(rewriter, loc, rows2d, rhs, flatType);
      // The result's sizes: the lhs's batch dims and rows, the rhs's
      // columns.
      SmallVector<OpFoldResult> sizes =
          tensor::getMixedSizes(rewriter, loc, lhs);
      sizes.back() = tensor::getMixedSize(rewriter, loc, rhs, 1);
      SmallVector<int64_t> shape(lhsType.getShape());
      shape.back() = rhsType.getDimSize(1);
      auto expandedType =
          RankedTensorType::get(shape, resultType.getElementType());
      Value result;
      if (llvm::count_if(lhsType.getShape().drop_back(),
                         ShapedType::isDynamic) <= 1) {
        result = tensor::ExpandShapeOp::create(rewriter, loc, expandedType,
                                               flat, rowsOf, sizes);
      } else {
        // Several dynamic row dims (batch and sequence): an expand_shape
        // grouping them crashes MLIR 22's expand-strided-metadata, so the
        // product (a fresh, contiguous buffer) is reshaped instead.
        SmallVector<Value> dims;
        for (OpFoldResult size : sizes)
          dims.push_back(getValueOrCreateConstantIndexOp(rewriter, loc, size));
        Value shapeTensor = tensor::FromElementsOp::create(
            rewriter, loc,
            RankedTensorType::get({static_cast<int64_t>(dims.size())},
                                  rewriter.getIndexType()),
            dims);
        result = tensor::ReshapeOp::create(rewriter, loc, expandedType, flat,
                                           shapeTensor);
      }
      // The op's result type may be more static than its operands'.
      if (result.getType() != resultType)
        result = tensor::CastOp::create(rewriter, loc, resultType, result);
      rewriter.replaceOp(op, result);
      return success();
    }
    Value result = buildContraction(rewriter, loc, lhs, rhs, resultType);
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
    llvm::SmallDenseSet<int64_t> axes(op.getAxes().begin(), op.getAxes().end());

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
    auto accumulatorKeptType =
        RankedTensorType::get(keptShape, accumulatorType);
    Value identity;
    switch (kind) {
    case ReduceKind::sum:
    case ReduceKind::mean:
      identity = scalarConstant(rewriter, loc, accumulatorType, 0);
      break;
    case ReduceKind::max:
      identity =
          floating
              ? arith::ConstantOp::create(
                    rewriter, loc, elementType,
                    rewriter.getFloatAttr(
                        elementType,
                        APFloat::getInf(
                            cast<FloatType>(elementType).getFloatSemantics(),
                            true)))
                    .getResult()
              : lowestConstant(rewriter, loc, elementType);
      break;
    case ReduceKind::min:
      identity =
          floating
              ? arith::ConstantOp::create(
                    rewriter, loc, elementType,
                    rewriter.getFloatAttr(
                        elementType,
                        APFloat::getInf(
                            cast<FloatType>(elementType).getFloatSemantics(),
                            false)))
                    .getResult()
              : highestConstant(rewriter, loc, elementType);
      break;
    }
    Value empty =
        tensor::EmptyOp::create(rewriter, loc, keptSizes, accumulatorType);
    Value init =
        linalg::FillOp::create(rewriter, loc, identity, empty).getResult(0);
    SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(rank, ctx),
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

} // namespace

void mlir::kiln::to_linalg::populateContractionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<MatmulOpPattern, ReduceOpPattern>(patterns.getContext());
}
