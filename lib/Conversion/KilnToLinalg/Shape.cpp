//===- Shape.cpp - kiln shape and data movement to linalg -----------------===//
//
// Transpose, reshape, slice, concat, pad, broadcast_to, gather,
// scatter_add and unpack_panels: linalg, tensor and scf at the tensor level.
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::to_linalg;

namespace {

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

/// Panels [P, K, w] to the [K, N] matrix: linalg.unpack of the columns
/// in tiles of w, the outer dims swapped (the padding past N dropped);
/// [P, K / g, w, g], the rows in tiles of g too.
/// kiln-tile-and-vectorize-contractions reads the panels in place.
struct UnpackPanelsOpPattern : OpConversionPattern<UnpackPanelsOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(UnpackPanelsOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    bool transposed = op.getTransposed();
    // The [K, N] matrix (transposed after, with `transposed`).
    SmallVector<int64_t> matrixShape = llvm::to_vector(type.getShape());
    if (transposed)
      std::swap(matrixShape[0], matrixShape[1]);
    Value init = tensor::EmptyOp::create(rewriter, loc, matrixShape,
                                         type.getElementType());
    auto inputType = tensorType(adaptor.getInput());
    int64_t width = inputType.getDimSize(2);
    // [P, K / g, w, g]: the rows tiled by g too, inner to the columns.
    SmallVector<int64_t> innerDims = {1};
    SmallVector<OpFoldResult> tiles = {rewriter.getIndexAttr(width)};
    if (inputType.getRank() == 4) {
      innerDims.push_back(0);
      tiles.push_back(rewriter.getIndexAttr(inputType.getDimSize(3)));
    }
    Value matrix =
        linalg::UnPackOp::create(rewriter, loc, adaptor.getInput(), init,
                                 innerDims, tiles, /*outerDimsPerm=*/{1, 0})
            .getResult();
    if (transposed) {
      Value out = tensor::EmptyOp::create(rewriter, loc, type.getShape(),
                                          type.getElementType());
      matrix = linalg::TransposeOp::create(rewriter, loc, matrix, out,
                                           ArrayRef<int64_t>{1, 0})
                   .getResult()
                   .front();
    }
    rewriter.replaceOp(op, matrix);
    return success();
  }
};

/// How the dims of the lower-rank of two reshape types group the dims of
/// the other: each of its static dims takes the next run of static dims
/// whose sizes multiply to its own, each dynamic dim the next dim, which
/// must be dynamic too (kiln.reshape's k-th dynamic result dim is its k-th
/// dynamic input dim), and trailing unit dims join the last group. None
/// for equal ranks or shapes that do not group. (Upstream's
/// getReassociationIndicesForReshape groups by sizes alone: it puts
/// [?, 4] -> [?] and [?] -> [?, ?] in one group each, which is not what
/// kiln.reshape means, and an expand grouping two dynamic dims crashes
/// MLIR 22's expand-strided-metadata.)
std::optional<SmallVector<ReassociationIndices>>
reshapeGroups(RankedTensorType a, RankedTensorType b) {
  if (a.getRank() == b.getRank() || a.getRank() == 0 || b.getRank() == 0)
    return std::nullopt;
  bool aFewer = a.getRank() < b.getRank();
  ArrayRef<int64_t> few = aFewer ? a.getShape() : b.getShape();
  ArrayRef<int64_t> many = aFewer ? b.getShape() : a.getShape();
  SmallVector<ReassociationIndices> groups;
  size_t next = 0;
  for (int64_t size : few) {
    ReassociationIndices group;
    if (ShapedType::isDynamic(size)) {
      if (next == many.size() || !ShapedType::isDynamic(many[next]))
        return std::nullopt;
      group.push_back(next++);
    } else {
      int64_t product = 1;
      do {
        if (next == many.size() || ShapedType::isDynamic(many[next]) ||
            many[next] <= 0 || product > size / many[next])
          return std::nullopt;
        product *= many[next];
        group.push_back(next++);
      } while (product < size);
      if (product != size)
        return std::nullopt;
    }
    groups.push_back(std::move(group));
  }
  for (; next < many.size() && many[next] == 1; ++next)
    groups.back().push_back(next);
  if (next != many.size())
    return std::nullopt;
  return groups;
}

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
        dynamicInputSizes.push_back(
            tensor::DimOp::create(rewriter, loc, input, d));
    SmallVector<Value> shape;
    unsigned next = 0;
    for (int64_t dim : resultType.getShape())
      shape.push_back(ShapedType::isDynamic(dim)
                          ? dynamicInputSizes[next++]
                          : indexConstant(rewriter, loc, dim));
    // Where the dims group (each result dim a run of input dims, or the
    // other way round), the reshape is an expand or a collapse: a view of
    // the same buffer, which fuses with its producers and consumers, where
    // a general reshape needs a contiguous buffer (a copy of a slice).
    if (std::optional<SmallVector<ReassociationIndices>> groups =
            reshapeGroups(inputType, resultType)) {
      if (resultType.getRank() > inputType.getRank()) {
        SmallVector<OpFoldResult> outputShape = getAsOpFoldResult(shape);
        rewriter.replaceOpWithNewOp<tensor::ExpandShapeOp>(
            op, resultType, input, *groups, outputShape);
      } else {
        rewriter.replaceOpWithNewOp<tensor::CollapseShapeOp>(op, resultType,
                                                             input, *groups);
      }
      return success();
    }
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
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(rewriter, loc, input);
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
    rewriter.replaceOpWithNewOp<tensor::ConcatOp>(
        op, op.getType(), op.getAxis(), adaptor.getInputs());
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

/// Where element `coords` of a kiln.unpack_panels result lies in its
/// panels (`panelsType`: [P, K, w] or [P, K / g, w, g]): matrix element
/// (k, n) (`transposed`: coords are (n, k)) at [n / w, k, n mod w] or
/// [n / w, k / g, n mod w, k mod g].
SmallVector<Value> panelCoordinates(OpBuilder &b, Location loc,
                                    ArrayRef<Value> coords,
                                    RankedTensorType panelsType,
                                    bool transposed) {
  Value k = coords[transposed ? 1 : 0], n = coords[transposed ? 0 : 1];
  Value width = indexConstant(b, loc, panelsType.getDimSize(2));
  Value panel = arith::DivUIOp::create(b, loc, n, width);
  Value column = arith::RemUIOp::create(b, loc, n, width);
  if (panelsType.getRank() == 3)
    return {panel, k, column};
  Value group = indexConstant(b, loc, panelsType.getDimSize(3));
  Value row = arith::DivUIOp::create(b, loc, k, group);
  Value within = arith::RemUIOp::create(b, loc, k, group);
  return {panel, row, column, within};
}

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
    // A table stored as column panels (kiln.unpack_panels, static) is read
    // where its elements lie in them: unpacked, a 154 MB LM head tied to
    // the token embedding would be copied on every call for the few rows
    // gathered.
    auto unpack = op.getInput().getDefiningOp<UnpackPanelsOp>();
    Value panels =
        unpack ? rewriter.getRemappedValue(unpack.getInput()) : Value();
    Value last;
    if (panels) {
      last = indexConstant(rewriter, loc, inputType.getDimSize(axis) - 1);
    } else {
      Value axisSize = tensor::DimOp::create(rewriter, loc, input, axis);
      Value one = indexConstant(rewriter, loc, 1);
      last = arith::SubIOp::create(rewriter, loc, axisSize, one);
    }
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
          if (panels)
            return tensor::ExtractOp::create(
                b, l, panels,
                panelCoordinates(b, l, coords, tensorType(panels),
                                 unpack.getTransposed()));
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
          Value index = tensor::ExtractOp::create(b, l, indices,
                                                  ivs.slice(axis, indexRank));
          index = arith::IndexCastOp::create(b, l, b.getIndexType(), index);
          // Clamped like gather: never write outside the tensor.
          index = arith::MaxSIOp::create(
              b, l, arith::MinSIOp::create(b, l, index, last), zero);
          SmallVector<Value> coords(ivs.take_front(axis));
          coords.push_back(index);
          llvm::append_range(coords, ivs.drop_front(axis + indexRank));
          Value update = tensor::ExtractOp::create(b, l, updates, ivs);
          Value current = tensor::ExtractOp::create(b, l, acc[0], coords);
          Value sum = isFloat
                          ? Value(arith::AddFOp::create(b, l, current, update))
                          : Value(arith::AddIOp::create(b, l, current, update));
          return {tensor::InsertOp::create(b, l, sum, acc[0], coords)};
        });
    rewriter.replaceOp(op, nest.results.empty() ? input : nest.results[0]);
    return success();
  }
};

/// A parallel loop over the batch rows, each inserting its `[1, H, S, D]`
/// slice of the update at its position (clamped to `[0, T - S]`). The loop's
/// shared output is the cache, so bufferization writes the cache's own
/// buffer (an scf.for carrying it would be refused when the result is then
/// materialized into the same argument).
struct CacheWriteOpPattern : OpConversionPattern<CacheWriteOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CacheWriteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value cache = adaptor.getCache(), positions = adaptor.getPositions(),
          update = adaptor.getUpdate();
    auto updateType = cast<RankedTensorType>(update.getType());
    SmallVector<OpFoldResult> sizes = {rewriter.getIndexAttr(1)};
    for (int64_t d = 1; d < 4; ++d)
      sizes.push_back(
          updateType.isDynamicDim(d)
              ? OpFoldResult(tensor::DimOp::create(rewriter, loc, update, d)
                                 .getResult())
              : OpFoldResult(rewriter.getIndexAttr(updateType.getDimSize(d))));
    SmallVector<OpFoldResult> strides(4, rewriter.getIndexAttr(1));
    Value zero = indexConstant(rewriter, loc, 0);
    Value lastStart = arith::SubIOp::create(
        rewriter, loc, tensor::DimOp::create(rewriter, loc, cache, 2),
        tensor::DimOp::create(rewriter, loc, update, 2));
    Value rows = tensor::DimOp::create(rewriter, loc, update, 0);
    auto forall = scf::ForallOp::create(
        rewriter, loc, ArrayRef<OpFoldResult>{rows}, ValueRange{cache},
        std::nullopt);
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointToStart(forall.getBody());
    Value row = forall.getInductionVars()[0];
    Value start = zero;
    if (positions) {
      start = tensor::ExtractOp::create(rewriter, loc, positions, row);
      start = arith::IndexCastOp::create(rewriter, loc, rewriter.getIndexType(),
                                         start);
      // Clamped like gather: never write outside the cache.
      start = arith::MaxSIOp::create(
          rewriter, loc, arith::MinSIOp::create(rewriter, loc, start, lastStart),
          zero);
    }
    SmallVector<OpFoldResult> from = {row, rewriter.getIndexAttr(0),
                                      rewriter.getIndexAttr(0),
                                      rewriter.getIndexAttr(0)};
    Value slice = tensor::ExtractSliceOp::create(rewriter, loc, update, from,
                                                 sizes, strides);
    SmallVector<OpFoldResult> to = {row, rewriter.getIndexAttr(0), start,
                                    rewriter.getIndexAttr(0)};
    rewriter.setInsertionPointToEnd(forall.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(rewriter, loc, slice,
                                          forall.getRegionIterArgs()[0], to,
                                          sizes, strides);
    rewriter.replaceOp(op, forall.getResults());
    return success();
  }
};

} // namespace

void mlir::kiln::to_linalg::populateShapePatterns(RewritePatternSet &patterns) {
  patterns
      .add<TransposeOpPattern, ReshapeOpPattern, SliceOpPattern,
           ConcatOpPattern, PadOpPattern, BroadcastToOpPattern, GatherOpPattern,
           ScatterAddOpPattern, CacheWriteOpPattern, UnpackPanelsOpPattern>(
          patterns.getContext());
}
