//===- TileAndVectorizeContractions.cpp - Register tiles for matmuls ------===//
//
// The matmul contractions convert-kiln-to-linalg emits iterate over
// (batch..., m, k, n). This pass packs the lhs in row tiles of tileM
// ([M / tileM, K, tileM]), walks a long k in blocks (when a packed panel
// outgrows half the L2), splits the columns into panels of tileN run in
// parallel (scf.forall), packs each panel's rhs columns, walks the panel
// in register tiles of tileM x tileN outputs with the k loop innermost,
// vectorizes each tile (masked where the columns are not a multiple of the
// tile; the last partial row tile is peeled and vectorized at its size),
// and hoists the accumulator out of the k loop, so each step of k is tileM
// scalar lhs loads broadcast to vectors and tileM x tileN / lanes fused
// multiply-adds on registers. The tile sizes and the cache sizes are
// options; kiln-compile picks them for the target CPU (CPUKernelConfig.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"
#include "kiln/Target/Common/Passes.h"
#include "kiln/Target/Common/Pipelines.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Dialect/Vector/Transforms/VectorRewritePatterns.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/LoopInvariantCodeMotionUtils.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_TILEANDVECTORIZECONTRACTIONSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
// Transposes are copied in square blocks of this size (one zmm per row).
constexpr int64_t kTransposeBlock = 16;

/// Whether `perm` swaps the last two dims and keeps the others in place.
bool swapsLastTwo(ArrayRef<int64_t> perm) {
  int64_t rank = perm.size();
  bool swaps =
      rank >= 2 && perm[rank - 1] == rank - 2 && perm[rank - 2] == rank - 1;
  for (int64_t d = 0; d + 2 < rank; ++d)
    swaps &= perm[d] == d;
  return swaps;
}

/// `map` with its last two results swapped.
AffineMap swapLastTwoResults(AffineMap map) {
  SmallVector<AffineExpr> exprs(map.getResults());
  std::swap(exprs[exprs.size() - 2], exprs.back());
  return AffineMap::get(map.getNumDims(), map.getNumSymbols(), exprs,
                        map.getContext());
}

/// Whether operand `operand` of the contraction `op` is indexed by the
/// loops `first` and `second` in its last two dims.
bool readsLastTwoBy(linalg::GenericOp op, unsigned operand, int64_t first,
                    int64_t second) {
  AffineMap map = op.getMatchingIndexingMap(&op->getOpOperand(operand));
  int64_t results = map.getNumResults();
  return results >= 2 &&
         map.getResult(results - 2) ==
             getAffineDimExpr(first, op.getContext()) &&
         map.getResult(results - 1) == getAffineDimExpr(second, op.getContext());
}

/// Whether the contraction reads its lhs in plain [..., m, k] order.
bool readsLhsPlain(linalg::GenericOp op) {
  int64_t loops = op.getNumLoops();
  return readsLastTwoBy(op, 0, loops - 3, loops - 2);
}

/// Whether the contraction reads its rhs as [..., n, k] (a transposed rhs
/// read in place, see readTransposedRhsInPlace) rather than [..., k, n].
/// Whether `value` is a weight as the entry point receives it: a function
/// argument, possibly reshaped.
bool isArgumentOrReshaped(Value value) {
  while (Operation *def = value.getDefiningOp()) {
    if (!isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(def))
      return false;
    value = def->getOperand(0);
  }
  return true;
}

bool isTilingSlice(tensor::ExtractSliceOp slice);
SmallVector<OpFoldResult> offsetsInRoot(RewriterBase &rewriter, Location loc,
                                        Value value, Value root);

/// A panel `slice` of an rhs that an elementwise generic computes from
/// arguments alone (kiln.dequantize of a quantized weight's codes and
/// scales, possibly collapsed from its blocked iteration space): the same
/// generic over just the panel's part of its inputs, so the float weight is
/// never materialized whole; null when the rhs is anything else.
Value computeSliceFromArguments(RewriterBase &rewriter,
                                tensor::ExtractSliceOp slice) {
  // A slice of a slice (a panel of the part of a split contraction, such
  // as the LM head's whole panels) is taken from what the outer one
  // slices, at the offsets of both.
  if (isTilingSlice(slice)) {
    Value root = slice.getSource();
    while (auto outer = root.getDefiningOp<tensor::ExtractSliceOp>()) {
      if (!isTilingSlice(outer))
        break;
      root = outer.getSource();
    }
    if (root != slice.getSource()) {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPoint(slice);
      SmallVector<OpFoldResult> offsets =
          offsetsInRoot(rewriter, slice.getLoc(), slice.getResult(), root);
      SmallVector<OpFoldResult> strides(offsets.size(),
                                        rewriter.getIndexAttr(1));
      auto direct = tensor::ExtractSliceOp::create(
          rewriter, slice.getLoc(), slice.getType(), root, offsets,
          slice.getMixedSizes(), strides);
      Value computed = computeSliceFromArguments(rewriter, direct);
      if (direct->use_empty())
        rewriter.eraseOp(direct);
      return computed;
    }
  }
  Value source = slice.getSource();
  auto collapse = source.getDefiningOp<tensor::CollapseShapeOp>();
  Value produced = collapse ? collapse.getSrc() : source;
  auto generic = produced.getDefiningOp<linalg::GenericOp>();
  if (!generic || !linalg::isElementwise(generic) ||
      generic.getNumDpsInits() != 1 ||
      !llvm::all_of(generic.getDpsInputs(), isArgumentOrReshaped) ||
      !generic.getDpsInits().front().getDefiningOp<tensor::EmptyOp>())
    return {};
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(slice);
  Location loc = slice.getLoc();
  tensor::ExtractSliceOp producerSlice = slice;
  if (collapse) {
    SmallVector<OpFoldResult> offsets, sizes, strides;
    if (failed(tensor::getExpandedExtractSliceInfo(
            rewriter, slice, collapse.getReassociationIndices(),
            collapse.getSrcType().getShape(), offsets, sizes, strides)))
      return {};
    producerSlice = tensor::ExtractSliceOp::create(
        rewriter, loc, collapse.getSrc(), offsets, sizes, strides);
  }
  FailureOr<TilingResult> tiled = tensor::replaceExtractSliceWithTiledProducer(
      rewriter, producerSlice, cast<OpResult>(produced));
  if (producerSlice != slice)
    rewriter.eraseOp(producerSlice);
  if (failed(tiled) || tiled->tiledValues.size() != 1)
    return {};
  Value result = tiled->tiledValues.front();
  if (collapse)
    result = tensor::CollapseShapeOp::create(
        rewriter, loc, slice.getType(), result,
        collapse.getReassociationIndices());
  return result.getType() == slice.getType() ? result : Value();
}

bool readsRhsTransposed(linalg::GenericOp op) {
  int64_t loops = op.getNumLoops();
  return readsLastTwoBy(op, 1, loops - 1, loops - 2);
}

/// A contraction rhs that is a transpose of the last two dims (kiln's
/// lowering copies a transposed rhs [..., N, K] to the plain layout) reads
/// the transpose's input instead, through an indexing map with its last
/// two results swapped: the panel packing below transposes each panel's
/// [tileN, K] rows as it packs them, and the transposed copy of the whole
/// operand (for GPT-2's tied LM head, the 154 MB embedding table on every
/// forward) is gone. (A transposed lhs is packed in row tiles instead, see
/// packLhsRowTiles: read in place it measured 3.6x slower.)
void readTransposedRhsInPlace(RewriterBase &rewriter, linalg::GenericOp op) {
  OpOperand &use = op->getOpOperand(1);
  auto transpose = use.get().getDefiningOp<linalg::TransposeOp>();
  if (!transpose || !swapsLastTwo(transpose.getPermutation()))
    return;
  int64_t loops = op.getNumLoops();
  if (!readsLastTwoBy(op, 1, loops - 2, loops - 1))
    return;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  maps[1] = swapLastTwoResults(maps[1]);
  rewriter.modifyOpInPlace(op, [&] {
    use.set(transpose.getInput());
    op.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
  });
  if (transpose->use_empty())
    rewriter.eraseOp(transpose);
}

/// Packs the lhs of a contraction into row tiles, [..., tiles, K, rows], for
/// the register tiles to read (readPackedLhsTile): its whole tiles only
/// where M is not a multiple of `rows` (the last, partial tile reads the
/// lhs in place), all ceil(M / rows) of them, the last zero-padded, for a
/// transposed lhs. Each tile then reads its lhs as one contiguous
/// [K, rows] run instead of `rows` rows K floats apart (which, at a
/// power-of-two K, all fall into the same L1 sets and evict each other
/// before the next k uses them). A transposed lhs ([..., K, M], a weight
/// gradient's gᵀ) is packed from the transpose's input, so the transposed
/// copy of the whole operand goes too. Returns the packed tensor, or null
/// where packing does not pay or does not apply: only static lhs operands
/// read in plain (m, k) order are packed, and only when more than one
/// column panel reads them or they would be copied transposed anyway.
Value packLhsRowTiles(RewriterBase &rewriter, linalg::GenericOp op,
                      int64_t rows, int64_t panelColumns) {
  OpOperand &lhs = op->getOpOperand(0);
  auto lhsType = dyn_cast<RankedTensorType>(lhs.get().getType());
  if (!lhsType || !lhsType.hasStaticShape() || !readsLhsPlain(op))
    return nullptr;
  auto transpose = lhs.get().getDefiningOp<linalg::TransposeOp>();
  bool transposed = transpose && swapsLastTwo(transpose.getPermutation());
  int64_t columns = op.getStaticLoopRanges().back();
  if (!transposed && !ShapedType::isDynamic(columns) &&
      columns <= panelColumns)
    return nullptr;

  Location loc = op.getLoc();
  int64_t rank = lhsType.getRank(), batch = rank - 2;
  int64_t m = lhsType.getDimSize(rank - 2), k = lhsType.getDimSize(rank - 1);
  int64_t tiles = llvm::divideCeil(m, rows);
  Type element = lhsType.getElementType();
  // The source and which of its dims holds the rows.
  Value source = transposed ? transpose.getInput() : lhs.get();
  int64_t rowDim = transposed ? rank - 1 : rank - 2;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointAfterValue(lhs.get());
  SmallVector<int64_t> packedShape(lhsType.getShape().take_front(batch));
  packedShape.append({tiles, k, rows});
  // `count` whole row tiles of `part` ([..., count * rows, K]; transposed:
  // [..., K, count * rows]) as [..., count, K, rows].
  auto packTiles = [&](Value part, int64_t count) -> Value {
    // [..., M', K] -> [..., count, rows, K]; transposed: [..., K, M'] ->
    // [..., K, count, rows].
    SmallVector<int64_t> expandedShape(
        cast<RankedTensorType>(part.getType()).getShape());
    expandedShape[rowDim] = rows;
    expandedShape.insert(expandedShape.begin() + rowDim, count);
    SmallVector<ReassociationIndices> reassociation;
    for (int64_t d = 0; d < rank; ++d) {
      if (d < rowDim)
        reassociation.push_back({d});
      else if (d == rowDim)
        reassociation.push_back({d, d + 1});
      else
        reassociation.push_back({d + 1});
    }
    auto expanded = tensor::ExpandShapeOp::create(
        rewriter, loc, RankedTensorType::get(expandedShape, element), part,
        reassociation);
    // To [..., count, K, rows].
    SmallVector<int64_t> perm =
        llvm::to_vector(llvm::seq<int64_t>(0, rank + 1));
    if (transposed)
      std::swap(perm[batch], perm[batch + 1]);
    else
      std::swap(perm[batch + 1], perm[batch + 2]);
    SmallVector<int64_t> shape(packedShape);
    shape[batch] = count;
    Value init = tensor::EmptyOp::create(rewriter, loc, shape, element);
    return linalg::TransposeOp::create(rewriter, loc, expanded.getResult(),
                                       init, perm)
        .getResult()[0];
  };
  if (m % rows == 0)
    return packTiles(source, tiles);
  int64_t whole = m / rows, rest = m - whole * rows;
  // `count` rows of the source from row `first`.
  auto rowsOf = [&](int64_t first, int64_t count) -> Value {
    SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(rewriter, loc, source);
    SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
    offsets[rowDim] = rewriter.getIndexAttr(first);
    sizes[rowDim] = rewriter.getIndexAttr(count);
    return tensor::ExtractSliceOp::create(rewriter, loc, source, offsets, sizes,
                                          strides);
  };
  // A ragged last tile of a plain lhs is read where it lies (readPackedLhsTile
  // redirects whole tiles only): only the whole tiles are packed. (Padding
  // the source to whole tiles copied every row once more, on one thread,
  // and filled the copy first.)
  if (!transposed)
    return whole == 0 ? Value() : packTiles(rowsOf(0, whole * rows), whole);

  // A transposed lhs has no rows to read in place: its whole tiles are
  // packed from the transpose's input and the last one from a zero-padded
  // copy of its rows.
  auto insertTiles = [&](Value part, Value into, int64_t first) {
    int64_t packedRank = packedShape.size();
    SmallVector<OpFoldResult> offsets(packedRank, rewriter.getIndexAttr(0));
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(rewriter, loc, part);
    SmallVector<OpFoldResult> strides(packedRank, rewriter.getIndexAttr(1));
    offsets[batch] = rewriter.getIndexAttr(first);
    return tensor::InsertSliceOp::create(rewriter, loc, part, into, offsets,
                                         sizes, strides)
        .getResult();
  };
  Value packed = tensor::EmptyOp::create(rewriter, loc, packedShape, element);
  if (whole > 0)
    packed = insertTiles(packTiles(rowsOf(0, whole * rows), whole), packed, 0);
  SmallVector<OpFoldResult> low(rank, rewriter.getIndexAttr(0));
  SmallVector<OpFoldResult> high(rank, rewriter.getIndexAttr(0));
  high[rowDim] = rewriter.getIndexAttr(rows - rest);
  Value zero = arith::ConstantOp::create(rewriter, loc, element,
                                         rewriter.getZeroAttr(element));
  auto last =
      tensor::PadOp::create(rewriter, loc, /*resultType=*/Type(),
                            rowsOf(whole * rows, rest), low, high, zero);
  return insertTiles(packTiles(last.getResult(), 1), packed, whole);
}

/// Whether `slice` is one that tiling takes: unit strides, rank kept.
bool isTilingSlice(tensor::ExtractSliceOp slice) {
  return slice.hasUnitStride() &&
         slice.getSourceType().getRank() == slice.getResultType().getRank();
}

/// The offsets of `value` in `root`, where `value` is `root` or a chain of
/// tiling slices of it (isTilingSlice).
SmallVector<OpFoldResult> offsetsInRoot(RewriterBase &rewriter, Location loc,
                                        Value value, Value root) {
  auto rank = cast<RankedTensorType>(root.getType()).getRank();
  SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
  AffineExpr a, b;
  bindSymbols(rewriter.getContext(), a, b);
  for (; value != root;
       value = value.getDefiningOp<tensor::ExtractSliceOp>().getSource()) {
    auto slice = value.getDefiningOp<tensor::ExtractSliceOp>();
    for (auto [offset, add] : llvm::zip(offsets, slice.getMixedOffsets()))
      offset = affine::makeComposedFoldedAffineApply(rewriter, loc, a + b,
                                                     {offset, add});
  }
  return offsets;
}

/// A register tile of a contraction whose lhs was packed in row tiles
/// (packLhsRowTiles; `packed` maps the lhs to its packing) reads its
/// [..., rows', 1] lhs slice as the [..., 1, rows'] run of the packed
/// tensor, through the map (..., k, m): one contiguous read per k. A tile
/// starts at a multiple of the row tile and spans at most one.
bool isMultipleOf(OpFoldResult ofr, int64_t factor);

void readPackedLhsTile(RewriterBase &rewriter, linalg::GenericOp tile,
                       const llvm::DenseMap<Value, Value> &packed,
                       int64_t rows) {
  OpOperand &lhs = tile->getOpOperand(0);
  if (!readsLhsPlain(tile))
    return;
  // The packed lhs this tile's slices were taken from, if any.
  Value root = lhs.get();
  while (!packed.count(root)) {
    auto slice = root.getDefiningOp<tensor::ExtractSliceOp>();
    if (!slice || !isTilingSlice(slice))
      return;
    root = slice.getSource();
  }
  auto type = cast<RankedTensorType>(lhs.get().getType());
  int64_t rank = type.getRank();
  Location loc = tile.getLoc();
  rewriter.setInsertionPoint(tile);
  SmallVector<OpFoldResult> offsets =
      offsetsInRoot(rewriter, loc, lhs.get(), root);
  // Where the packing holds whole tiles only (a plain lhs with a ragged
  // last tile), a tile reads it only where it provably starts in one of
  // them (tiles start at multiples of `rows`); the last tile reads the lhs
  // itself.
  int64_t packedRows = cast<RankedTensorType>(packed.lookup(root).getType())
                           .getDimSize(rank - 2) *
                       rows;
  if (packedRows <
      cast<RankedTensorType>(root.getType()).getDimSize(rank - 2)) {
    if (!isMultipleOf(offsets[rank - 2], rows))
      return;
    FailureOr<int64_t> last = ValueBoundsConstraintSet::computeConstantBound(
        presburger::BoundType::UB,
        ValueBoundsConstraintSet::Variable(offsets[rank - 2]),
        /*stopCondition=*/nullptr, /*closedUB=*/true);
    if (failed(last) || *last >= packedRows)
      return;
  }
  SmallVector<OpFoldResult> sizes =
      tensor::getMixedSizes(rewriter, loc, lhs.get());
  // [..., m, k] at [..., rows', kSize] -> [..., m / rows, k, 0] at
  // [..., 1, kSize, rows'], without the unit tile dim.
  AffineExpr row;
  bindSymbols(rewriter.getContext(), row);
  SmallVector<OpFoldResult> packedOffsets(offsets.begin(), offsets.end() - 2);
  packedOffsets.append(
      {affine::makeComposedFoldedAffineApply(rewriter, loc, row.floorDiv(rows),
                                             {offsets[rank - 2]}),
       offsets[rank - 1], rewriter.getIndexAttr(0)});
  SmallVector<OpFoldResult> packedSizes(sizes.begin(), sizes.end() - 2);
  packedSizes.append(
      {rewriter.getIndexAttr(1), sizes[rank - 1], sizes[rank - 2]});
  SmallVector<OpFoldResult> strides(rank + 1, rewriter.getIndexAttr(1));
  SmallVector<int64_t> shape(type.getShape().drop_back(2));
  shape.append({type.getDimSize(rank - 1), type.getDimSize(rank - 2)});
  auto sliceType = RankedTensorType::get(shape, type.getElementType());
  Value slice = tensor::ExtractSliceOp::create(
      rewriter, loc, sliceType, packed.lookup(root), packedOffsets,
      packedSizes, strides);
  SmallVector<AffineMap> maps = tile.getIndexingMapsArray();
  maps[0] = swapLastTwoResults(maps[0]);
  rewriter.modifyOpInPlace(tile, [&] {
    lhs.set(slice);
    tile.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
  });
}

/// Whether `value` is a multiple of `factor` by construction: a constant,
/// an scf loop's induction variable whose start and step are, or an
/// affine.apply of such values by sums and products.
bool isMultipleOf(Value value, int64_t factor);

bool isMultipleOf(OpFoldResult ofr, int64_t factor) {
  if (std::optional<int64_t> constant = getConstantIntValue(ofr))
    return *constant % factor == 0;
  return isMultipleOf(cast<Value>(ofr), factor);
}

bool isExprMultipleOf(AffineExpr expr, ValueRange operands, unsigned dims,
                      int64_t factor) {
  if (auto constant = dyn_cast<AffineConstantExpr>(expr))
    return constant.getValue() % factor == 0;
  if (auto dim = dyn_cast<AffineDimExpr>(expr))
    return isMultipleOf(operands[dim.getPosition()], factor);
  if (auto symbol = dyn_cast<AffineSymbolExpr>(expr))
    return isMultipleOf(operands[dims + symbol.getPosition()], factor);
  auto binary = cast<AffineBinaryOpExpr>(expr);
  bool lhs = isExprMultipleOf(binary.getLHS(), operands, dims, factor);
  bool rhs = isExprMultipleOf(binary.getRHS(), operands, dims, factor);
  if (expr.getKind() == AffineExprKind::Add)
    return lhs && rhs;
  if (expr.getKind() == AffineExprKind::Mul)
    return lhs || rhs;
  return false;
}

bool isMultipleOf(Value value, int64_t factor) {
  if (std::optional<int64_t> constant = getConstantIntValue(value))
    return *constant % factor == 0;
  if (auto apply = value.getDefiningOp<affine::AffineApplyOp>())
    return isExprMultipleOf(apply.getAffineMap().getResult(0),
                            apply.getMapOperands(),
                            apply.getAffineMap().getNumDims(), factor);
  auto arg = dyn_cast<BlockArgument>(value);
  if (!arg)
    return false;
  Operation *owner = arg.getOwner()->getParentOp();
  if (auto forall = dyn_cast<scf::ForallOp>(owner)) {
    unsigned index = arg.getArgNumber();
    if (index >= forall.getRank())
      return false;
    return isMultipleOf(forall.getMixedLowerBound()[index], factor) &&
           isMultipleOf(forall.getMixedStep()[index], factor);
  }
  if (auto loop = dyn_cast<scf::ForOp>(owner))
    return arg == loop.getInductionVar() &&
           isMultipleOf(loop.getLowerBound(), factor) &&
           isMultipleOf(loop.getStep(), factor);
  return false;
}

/// Whether `unpack` is kiln.unpack_panels as convert-kiln-to-linalg lowers
/// it: static [P, K, width] panels to [K, N], or with `pairs` static
/// [P, K / 2, width, 2] pairs.
bool isPanelsUnpack(linalg::UnPackOp unpack, bool pairs) {
  static constexpr int64_t kColumns[] = {1}, kColumnsAndRows[] = {1, 0};
  ArrayRef<int64_t> tiles = unpack.getStaticInnerTiles();
  ArrayRef<int64_t> innerDims =
      pairs ? ArrayRef<int64_t>(kColumnsAndRows) : ArrayRef<int64_t>(kColumns);
  return unpack.getSourceRank() == (pairs ? 4 : 3) &&
         unpack.getDestRank() == 2 &&
         unpack.getOuterDimsPerm() == ArrayRef<int64_t>{1, 0} &&
         unpack.getInnerDimsPos() == innerDims &&
         unpack.getSourceType().hasStaticShape() &&
         tiles.size() == innerDims.size() &&
         !llvm::any_of(tiles, ShapedType::isDynamic) &&
         (!pairs || tiles[1] == 2);
}

/// The unpacking of weights stored as column panels (kiln.unpack_panels:
/// [P, K, width] to [K, N]) that `value` is, or is a chain of tiling
/// slices of; null otherwise.
linalg::UnPackOp panelsUnpackOf(Value value) {
  while (auto slice = value.getDefiningOp<tensor::ExtractSliceOp>()) {
    if (!isTilingSlice(slice))
      return nullptr;
    value = slice.getSource();
  }
  auto unpack = value.getDefiningOp<linalg::UnPackOp>();
  return unpack && isPanelsUnpack(unpack, /*pairs=*/false) ? unpack : nullptr;
}

/// A contraction (any element type) whose rhs [K, N] is a weight stored
/// as panels of pairs (kiln.unpack_panels with g = 2, for the AMX bf16
/// kernel) reads the stored panels directly, through storedPairsMap:
/// kiln-lower-amx-matmuls then loads its tiles from them as they lie
/// instead of packing each panel (and what would not take it computes the
/// same from the map, in loops).
void readStoredPairsInPlace(RewriterBase &rewriter, linalg::GenericOp op) {
  OpOperand &use = op->getOpOperand(1);
  auto unpack = use.get().getDefiningOp<linalg::UnPackOp>();
  if (!unpack || !isPanelsUnpack(unpack, /*pairs=*/true))
    return;
  int64_t loops = op.getNumLoops();
  if (!readsLastTwoBy(op, 1, loops - 2, loops - 1) ||
      op.getMatchingIndexingMap(&use).getNumResults() != 2)
    return;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  maps[1] = kiln::storedPairsMap(op.getContext(), loops, loops - 2, loops - 1,
                                 unpack.getStaticInnerTiles()[0]);
  rewriter.modifyOpInPlace(op, [&] {
    use.set(unpack.getSource());
    op.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
  });
}

/// The rhs of one column panel, `rhs` ([kSize, nSize] of weights stored as
/// panels of `width` columns, see panelsUnpackOf), read where it lies: the
/// [kSize, nSize] slice of the one stored panel it falls in, whose rows are
/// `width` floats apart, as the panel packing would have copied them. Null
/// when `rhs` is not such a slice, or not provably within one panel.
Value storedPanelOf(RewriterBase &rewriter, Location loc, Value rhs,
                    int64_t width) {
  linalg::UnPackOp unpack = panelsUnpackOf(rhs);
  if (!unpack || unpack.getStaticInnerTiles()[0] != width)
    return nullptr;
  auto type = cast<RankedTensorType>(rhs.getType());
  if (type.getRank() != 2)
    return nullptr;
  // At most one panel wide (a split's last columns are dynamic in size
  // until canonicalization: bounded).
  FailureOr<int64_t> columns = ValueBoundsConstraintSet::computeConstantBound(
      presburger::BoundType::UB, {rhs, 1}, /*stopCondition=*/nullptr,
      /*closedUB=*/true);
  if (failed(columns) || *columns > width)
    return nullptr;
  SmallVector<OpFoldResult> offsets =
      offsetsInRoot(rewriter, loc, rhs, unpack.getResult());
  if (!isMultipleOf(offsets[1], width))
    return nullptr;
  AffineExpr column;
  bindSymbols(rewriter.getContext(), column);
  OpFoldResult panel = affine::makeComposedFoldedAffineApply(
      rewriter, loc, column.floorDiv(width), {offsets[1]});
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, rhs);
  SmallVector<OpFoldResult> storedOffsets = {panel, offsets[0],
                                             rewriter.getIndexAttr(0)};
  SmallVector<OpFoldResult> storedSizes = {rewriter.getIndexAttr(1), sizes[0],
                                           sizes[1]};
  SmallVector<OpFoldResult> strides(3, rewriter.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(rewriter, loc, type, unpack.getSource(),
                                        storedOffsets, storedSizes, strides);
}

/// The ops of type OpTy under `root` that carry `marker`, which they no
/// longer do.
template <typename OpTy>
SmallVector<OpTy> takeMarked(Operation *root, StringAttr marker) {
  SmallVector<OpTy> marked;
  root->walk([&](OpTy op) {
    if (op->removeAttr(marker))
      marked.push_back(op);
  });
  return marked;
}

/// Tiles `op` by `tileSizes` (0: the dim whole) in scf.forall or scf.for
/// loops and vectorizes the tile at `vectorSizes` (a tile that does not
/// vectorize stays as it is).
void tileAndVectorize(RewriterBase &rewriter, linalg::LinalgOp op,
                      ArrayRef<OpFoldResult> tileSizes,
                      scf::SCFTilingOptions::LoopType loopType,
                      ArrayRef<int64_t> vectorSizes) {
  scf::SCFTilingOptions options;
  options.setTileSizes(tileSizes).setLoopType(loopType);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
      rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (failed(tiled))
    return;
  rewriter.replaceOp(op, tiled->replacements);
  Operation *tile = tiled->tiledOps.front();
  SmallVector<bool> scalableDims(vectorSizes.size(), false);
  rewriter.setInsertionPoint(tile);
  FailureOr<linalg::VectorizationResult> vectorized =
      linalg::vectorize(rewriter, tile, vectorSizes, scalableDims);
  if (succeeded(vectorized))
    rewriter.replaceOp(tile, vectorized->replacements);
}

/// The linalg.fill of +0.0 that `init` is, if it is one (a contraction's
/// starting zeros, as convert-kiln-to-linalg builds them).
linalg::FillOp zeroFillOf(Value init) {
  auto fill = init.getDefiningOp<linalg::FillOp>();
  if (fill && matchPattern(fill.getInputs().front(), m_PosZeroFloat()))
    return fill;
  return nullptr;
}

/// The register tiles of a contraction whose result starts as zeros
/// (convert-kiln-to-linalg fills every contraction's init with 0) start
/// their accumulators from zero vectors instead of reading the filled
/// result, and the panels' loop takes the fill's empty tensor: the result
/// is not zero-filled before the matmul (a pass over memory, 2.6% of the
/// gpt2-small forward) nor read back by every tile. Valid because each
/// output element belongs to one tile, which reads it once, before it
/// writes it: the uses of the panels' output are followed through slices,
/// loops and writes, and anything else (a k-blocked contraction carries
/// its partial sums through the k loop, whose value the panels' loop
/// starts from, not the fill) leaves the loop as it is.
void accumulateFromZero(RewriterBase &rewriter, scf::ForallOp loop) {
  for (auto [init, shared] :
       llvm::zip_equal(loop.getOutputsMutable(), loop.getRegionIterArgs())) {
    linalg::FillOp fill = zeroFillOf(init.get());
    if (!fill)
      continue;
    SmallVector<vector::TransferReadOp> reads;
    SmallVector<Value> worklist = {shared};
    bool onlyTiles = true;
    while (!worklist.empty() && onlyTiles) {
      Value value = worklist.pop_back_val();
      for (OpOperand &use : value.getUses()) {
        Operation *user = use.getOwner();
        if (auto slice = dyn_cast<tensor::ExtractSliceOp>(user)) {
          worklist.push_back(slice.getResult());
        } else if (auto read = dyn_cast<vector::TransferReadOp>(user)) {
          // Only a hoisted accumulator: read once before its k loop, which
          // carries it. (A read left inside the k loop, where hoisting
          // gave up, runs every step: as zeros it would drop the sums.)
          reads.push_back(read);
          onlyTiles = llvm::all_of(read->getUses(), [](OpOperand &readUse) {
            auto forOp = dyn_cast<scf::ForOp>(readUse.getOwner());
            return forOp && forOp.getTiedLoopRegionIterArg(&readUse);
          });
        } else if (auto write = dyn_cast<vector::TransferWriteOp>(user);
                   write && &use == &write.getBaseMutable()) {
          worklist.push_back(write.getResult());
        } else if (auto insert = dyn_cast<tensor::InsertSliceOp>(user)) {
          // A written tile put back into its panel (the source), or the
          // panel it goes into (the destination), followed at the result.
          if (&use == &insert.getDestMutable())
            worklist.push_back(insert.getResult());
          else
            onlyTiles = static_cast<bool>(
                use.get().getDefiningOp<vector::TransferWriteOp>());
        } else if (auto forOp = dyn_cast<scf::ForOp>(user)) {
          if (BlockArgument iterArg = forOp.getTiedLoopRegionIterArg(&use)) {
            worklist.push_back(iterArg);
            worklist.push_back(forOp.getTiedLoopResult(&use));
          } else {
            onlyTiles = false;
          }
        } else if (isa<tensor::ParallelInsertSliceOp>(user) ||
                   (isa<scf::YieldOp>(user) &&
                    isa<scf::ForOp>(user->getParentOp()))) {
          // What a tile or a row loop hands on: followed at the loop's
          // result, or the panels' own result.
        } else {
          onlyTiles = false;
        }
        if (!onlyTiles)
          break;
      }
    }
    if (!onlyTiles || reads.empty())
      continue;
    for (vector::TransferReadOp read : reads) {
      rewriter.setInsertionPoint(read);
      rewriter.replaceOpWithNewOp<arith::ConstantOp>(
          read, rewriter.getZeroAttr(read.getVectorType()));
    }
    rewriter.modifyOpInPlace(loop,
                             [&] { init.set(fill.getOutputs().front()); });
  }
}

/// Prefetches into L2, from the register tiles' k loop of one column panel,
/// the next panel of weights stored as panels (`stored`: [P, K, width],
/// this panel's index `panel`): K x width floats, K * width / 16 lines; in
/// a block of k, the block's `depth` rows from `firstRow` on.
/// Step k of row tile t fetches about element (t K + k) E / (T K) of the
/// E = K * width, T the panel's whole row tiles, so the lines arrive
/// spread over the panel's work. The weights are read cold from memory on every
/// forward (500 MB for gpt2-small), and without the prefetch the first row tile
/// of each panel waited on each line. (Tried and not kept: the same for an rhs
/// packed from its row-major or transposed layout, 5% slower and no faster on
/// gpt2-small: each prefetched row there lies in another page.) Nothing is
/// fetched where a step would have to fetch more than two lines (fewer whole
/// row tiles than half a row's lines): the adjacent-line prefetcher pairs
/// lines, no more.
void prefetchNextStoredPanel(RewriterBase &rewriter, Value stored,
                             OpFoldResult panel, OpFoldResult firstRow,
                             int64_t depth, int64_t wholeTiles,
                             int64_t tileRows, scf::ForOp mLoop,
                             scf::ForOp kLoop) {
  auto type = cast<RankedTensorType>(stored.getType());
  // (A constant panel is the only one its loop reads: a split's last.)
  if (type.getRank() != 3 || !type.hasStaticShape() ||
      type.getDimSize(1) < depth || type.getDimSize(0) < 2 ||
      getConstantIntValue(panel))
    return;
  int64_t panels = type.getDimSize(0), width = type.getDimSize(2);
  constexpr int64_t kLineFloats = 16;
  int64_t lineCount = width / kLineFloats;
  if (width % kLineFloats != 0 || 2 * wholeTiles < lineCount)
    return;
  std::optional<int64_t> kLower = getConstantIntValue(kLoop.getLowerBound());
  std::optional<int64_t> kUpper = getConstantIntValue(kLoop.getUpperBound());
  std::optional<int64_t> kStep = getConstantIntValue(kLoop.getStep());
  if (!kLower || !kUpper || !kStep || *kLower != 0 || *kStep != 1 ||
      *kUpper != depth)
    return;
  Location loc = kLoop.getLoc();
  OpBuilder::InsertionGuard guard(rewriter);
  // The stored weights as a buffer, read in place (whatever its layout).
  if (auto arg = dyn_cast<BlockArgument>(stored))
    rewriter.setInsertionPointToStart(arg.getOwner());
  else
    rewriter.setInsertionPointAfterValue(stored);
  auto layout = StridedLayoutAttr::get(
      rewriter.getContext(), ShapedType::kDynamic,
      SmallVector<int64_t>(type.getRank(), ShapedType::kDynamic));
  Value buffer = bufferization::ToBufferOp::create(
      rewriter, loc,
      MemRefType::get(type.getShape(), type.getElementType(), layout), stored,
      rewriter.getUnitAttr());

  // The element fetched at step k of row tile t is ((t K + k) S) >> 16,
  // S the panel's floats per step with 16 fraction bits: linear in k, so
  // it costs an add per step (the floor divisions of the exact spread
  // were some twenty integer ops per step beside the tile's 24 FMAs).
  // The peeled partial tile's steps fetch the panel's last line.
  constexpr int64_t kFractionBits = 16;
  int64_t panelFloats = depth * width;
  int64_t scale = (panelFloats << kFractionBits) / (wholeTiles * depth);
  auto constant = [&](int64_t value) {
    return arith::ConstantIndexOp::create(rewriter, loc, value).getResult();
  };
  rewriter.setInsertionPoint(kLoop);
  Value tile = arith::DivUIOp::create(rewriter, loc, mLoop.getInductionVar(),
                                      constant(tileRows));
  Value start =
      arith::MulIOp::create(rewriter, loc, tile, constant(depth * scale));
  rewriter.setInsertionPointToStart(kLoop.getBody());
  Value offset = arith::MulIOp::create(rewriter, loc, kLoop.getInductionVar(),
                                       constant(scale));
  Value fixed = arith::AddIOp::create(rewriter, loc, start, offset);
  Value element =
      arith::ShRUIOp::create(rewriter, loc, fixed, constant(kFractionBits));
  Value clamped =
      arith::MinUIOp::create(rewriter, loc, element, constant(panelFloats - 1));
  // The next panel; the last one fetches itself.
  Value next = getValueOrCreateConstantIndexOp(
      rewriter, loc,
      affine::makeComposedFoldedAffineMin(
          rewriter, loc,
          AffineMap::get(0, 1,
                         {rewriter.getAffineSymbolExpr(0) + 1,
                          rewriter.getAffineConstantExpr(panels - 1)},
                         rewriter.getContext()),
          {panel}));
  Value rowInBlock =
      arith::DivUIOp::create(rewriter, loc, clamped, constant(width));
  Value blockRow = getValueOrCreateConstantIndexOp(rewriter, loc, firstRow);
  Value row = arith::AddIOp::create(rewriter, loc, blockRow, rowInBlock);
  Value column =
      arith::RemUIOp::create(rewriter, loc, clamped, constant(width));
  SmallVector<Value> indices = {next, row, column};
  memref::PrefetchOp::create(rewriter, loc, buffer, indices,
                             /*isWrite=*/false, /*localityHint=*/2,
                             /*isDataCache=*/true);
}

struct TileAndVectorizeContractionsPass
    : kiln::impl::TileAndVectorizeContractionsPassBase<
          TileAndVectorizeContractionsPass> {

  using Base::Base;

  /// Steps of k per block for a matmul of `rows` (static) by `depth` whose
  /// lhs (a quarter of the L2 cache or more) and two column panels (the one
  /// being read and the next, prefetched) outgrow three quarters of the L2
  /// cache, though a panel alone does not: a block of k then keeps its lhs
  /// columns in L2 for all panels, where the whole lhs was read again from L3
  /// for every panel. Only blocks of at least 1024 steps, each block a parallel
  /// loop of its own that adds into the result: gpt2-small's MLP projection at
  /// 1 x 128 (K = 3072, two blocks) 275 -> 286 GFLOP/s, but 512 or 1024 rows of
  /// K = 768 or 1024 (blocks of 256 to 384) measured 5-19% slower.
  std::optional<int64_t> lhsKBlock(int64_t rows, int64_t depth) const {
    constexpr int64_t kMinSteps = 1024;
    if (ShapedType::isDynamic(rows) || ShapedType::isDynamic(depth))
      return std::nullopt;
    int64_t budget = l2Bytes * 3 / 4;
    int64_t rowBytes = 4 * (rows + 2 * tileN);
    // (A few rows' lhs is no reason: the panels alone fill the cache.)
    if (depth * rowBytes <= budget || 4 * depth * tileN > l2Bytes / 2 ||
        4 * rows * depth <= l2Bytes / 4)
      return std::nullopt;
    // The fewest equal blocks of whole vectors of steps that fit: equal,
    // so that every block's k loop is static and prefetches the next
    // panel.
    int64_t steps = budget / rowBytes;
    for (int64_t blocks = std::max<int64_t>(2, (depth + steps - 1) / steps);
         depth / blocks >= kMinSteps; ++blocks)
      if (depth % blocks == 0 && (depth / blocks) % 16 == 0)
        return depth / blocks;
    return std::nullopt;
  }

  void runOnOperation() final {
    if (tileM < 1 || tileN < 1 || l2Bytes < 1 || l3Bytes < 1) {
      getOperation().emitError()
          << "kiln-tile-and-vectorize-contractions: tile-m, tile-n, "
             "l2-bytes and l3-bytes must be positive (got "
          << static_cast<int64_t>(tileM) << ", "
          << static_cast<int64_t>(tileN) << ", "
          << static_cast<int64_t>(l2Bytes) << ", "
          << static_cast<int64_t>(l3Bytes) << ")";
      return signalPassFailure();
    }
    if (kBlock < 0) {
      getOperation().emitError()
          << "kiln-tile-and-vectorize-contractions: k-block must be 0 (no "
             "blocking) or positive (got "
          << static_cast<int64_t>(kBlock) << ")";
      return signalPassFailure();
    }
    const int64_t tileRows = tileM, tileCols = tileN;
    // Row blocking of big lhs operands (below): each thread keeps a
    // quarter of the shared last-level cache.
    const int64_t lhsBlockBytes = l3Bytes / 4;
    SmallVector<linalg::GenericOp> contractions;
    // A loop of static size 0 (a matmul with M, N or K of 0, legal IR) has
    // no tiles: upstream tiling divides by it. Its plain loops run zero
    // times (K = 0 leaves the zero-filled result), so it stays as it is.
    auto hasEmptyLoop = [](linalg::LinalgOp op) {
      return llvm::is_contained(op.getStaticLoopRanges(), 0);
    };
    IRRewriter rewriter(&getContext());
    getOperation().walk([&](linalg::GenericOp op) {
      if (kiln::isKilnContraction(op, /*requireF32=*/false) &&
          !hasEmptyLoop(op))
        readStoredPairsInPlace(rewriter, op);
    });
    getOperation().walk([&](linalg::GenericOp op) {
      if (kiln::isKilnContraction(op) && !hasEmptyLoop(op))
        contractions.push_back(op);
    });
    StringAttr marker = rewriter.getStringAttr("kiln.register_tile");
    StringAttr packMarker = rewriter.getStringAttr("kiln.panel_pack");
    StringAttr panelsMarker = rewriter.getStringAttr("kiln.panels");
    // A transposed rhs is read in place; each lhs is packed in row tiles,
    // once however many contractions read it. (A transposed lhs read in
    // place, a [1, tileM] row per k, measured 3.6x slower than copied for
    // the LM head's weight gradient, 50257 x 512 x 768 on AVX2: 2.6 s
    // against 0.7 s; packed, it is read contiguously.)
    llvm::DenseMap<Value, Value> packedLhs;
    for (linalg::GenericOp op : contractions) {
      readTransposedRhsInPlace(rewriter, op);
      Value lhs = op->getOperand(0);
      if (!packedLhs.count(lhs))
        if (Value packed = packLhsRowTiles(rewriter, op, tileRows, tileCols))
          packedLhs[lhs] = packed;
    }
    // A static column count that is not a multiple of the panel width is
    // split into the full panels and the rest, so that only the last panel
    // runs masked tiles (a 50257-column LM head otherwise ran every panel
    // with masks and spilled accumulators, at half speed).
    SmallVector<linalg::GenericOp> work;
    for (linalg::GenericOp op : contractions) {
      int64_t columns = op.getStaticLoopRanges().back();
      if (ShapedType::isDynamic(columns) || columns <= tileCols ||
          columns % tileCols == 0) {
        work.push_back(op);
        continue;
      }
      // A zero-filled result is filled part by part: split as it is, the
      // whole result (the LM head's [128, 50257]: 26 MB) stayed filled
      // before the full panels, which accumulateFromZero spares only a
      // fill of their own.
      OpOperand &init = op.getDpsInitsMutable()[0];
      linalg::FillOp fill = zeroFillOf(init.get());
      if (fill)
        rewriter.modifyOpInPlace(op, [&] { init.set(fill.getOutputs()[0]); });
      rewriter.setInsertionPoint(op);
      auto [full, rest] =
          linalg::splitOp(rewriter, cast<TilingInterface>(op.getOperation()),
                          op.getNumLoops() - 1,
                          rewriter.getIndexAttr(columns - columns % tileCols));
      if (!full && !rest) {
        // Not split (the op is left as it is): its zeros back.
        if (fill)
          rewriter.modifyOpInPlace(op, [&] { init.set(fill.getResult(0)); });
        continue;
      }
      for (TilingInterface part : {full, rest}) {
        auto generic = dyn_cast_or_null<linalg::GenericOp>(
            part ? part.getOperation() : nullptr);
        if (!generic)
          continue;
        if (fill) {
          OpOperand &partInit = generic.getDpsInitsMutable()[0];
          rewriter.setInsertionPoint(generic);
          Value zeros =
              linalg::FillOp::create(rewriter, generic.getLoc(),
                                     fill.getInputs().front(), partInit.get())
                  .getResult(0);
          rewriter.modifyOpInPlace(generic, [&] { partInit.set(zeros); });
        }
        work.push_back(generic);
      }
    }
    for (linalg::GenericOp op : work) {
      int64_t loops = op.getNumLoops();
      int64_t m = loops - 3, k = loops - 2, n = loops - 1;

      // A k so long that a packed panel ([K, tileCols]) outgrows half the
      // L2 cache is walked in blocks of kBlock steps, each block a
      // parallel loop over the panels of its own: a panel's packed rhs
      // rows of one block (half the L1 cache) serve all its row tiles, and
      // the lhs columns of a block stay in cache for all panels. Without
      // it (K = 50257 for GPT-2's hidden-state gradient through the LM
      // head: 3.2 MB panels), every row tile streamed its panel from L3,
      // and row blocking (below) packed it again for every block of rows:
      // 31 against 93 GFLOP/s on Zen 3. Shorter k is not blocked: there
      // the extra passes over the result and the forks cost more than the
      // L1 hits gain (but for a lhs that L2 cannot hold with two panels:
      // lhsKBlock).
      int64_t depth = op.getStaticLoopRanges()[k];
      std::optional<int64_t> lhsBlock =
          kBlock > 0 ? lhsKBlock(op.getStaticLoopRanges()[m], depth)
                     : std::nullopt;
      int64_t block = lhsBlock.value_or(kBlock);
      if (kBlock > 0 &&
          (lhsBlock || ShapedType::isDynamic(depth) ||
           (depth > 2 * kBlock && 4 * depth * tileCols > l2Bytes / 2))) {
        SmallVector<OpFoldResult> kSizes(loops, rewriter.getIndexAttr(0));
        kSizes[k] = rewriter.getIndexAttr(block);
        scf::SCFTilingOptions kOptions;
        kOptions.setTileSizes(kSizes);
        rewriter.setInsertionPoint(op);
        FailureOr<scf::SCFTilingResult> kBlocks = scf::tileUsingSCF(
            rewriter, cast<TilingInterface>(op.getOperation()), kOptions);
        if (succeeded(kBlocks)) {
          rewriter.replaceOp(op, kBlocks->replacements);
          op = cast<linalg::GenericOp>(kBlocks->tiledOps.front());
          // Its panels stay parallel: a fork and join per block of k.
          for (LoopLikeOpInterface loop : kBlocks->loops)
            loop->setAttr(kiln::kParallelBodyAttr, rewriter.getUnitAttr());
        }
      }

      // Column panels of tileCols (and batch elements) are spread over
      // threads: scf.forall becomes an OpenMP parallel loop after
      // bufferization. A thread keeps its [K, tileCols] rhs panel in cache
      // while it walks all rows of the lhs.
      SmallVector<OpFoldResult> outer(loops, rewriter.getIndexAttr(0));
      for (int64_t d = 0; d < m; ++d)
        outer[d] = rewriter.getIndexAttr(1);
      // A contraction of fewer rows than a register tile (a decoding step:
      // one token per sequence) has one row tile per panel: its panels are
      // widened so that a tile keeps as many accumulators as a full one
      // (one row of 6 x 16 on AVX2: 96 columns, twelve independent FMA
      // chains instead of two), and a row-major rhs is read in place, as
      // packing would copy every weight once more than the tile reads it.
      // (A transposed rhs keeps its panels: widening them made the
      // transposing pack spill, 10-20% slower for gpt2-small's dequantized
      // weights at one token; what it needs is a dot-product kernel.)
      SmallVector<int64_t> staticRanges = op.getStaticLoopRanges();
      int64_t rowCount = staticRanges[m], colCount = staticRanges[n];
      bool fewRows = !ShapedType::isDynamic(rowCount) && rowCount < tileRows;
      int64_t panelCols = tileCols;
      // Weights stored as panels of the tile's width are read a panel at a
      // time (contiguous rows already: nothing to widen for).
      linalg::UnPackOp storedPanels = panelsUnpackOf(op->getOperand(1));
      if (fewRows && !readsRhsTransposed(op) && !storedPanels &&
          !ShapedType::isDynamic(colCount))
        for (int64_t f = tileRows / rowCount; f > 1; --f)
          if (colCount % (tileCols * f) == 0) {
            panelCols = tileCols * f;
            break;
          }
      outer[n] = rewriter.getIndexAttr(panelCols);
      // An lhs too big for the L3 cache would be streamed from memory once
      // per panel: the rows are blocked too, so that a thread walks all
      // panels of one row block (its lhs block stays in L3) before the
      // next.
      {
        SmallVector<int64_t> ranges = op.getStaticLoopRanges();
        int64_t rows = ranges[m], depth = ranges[k];
        if (!ShapedType::isDynamic(rows) && !ShapedType::isDynamic(depth) &&
            4 * rows * depth > l3Bytes / 2) {
          int64_t block = lhsBlockBytes / (4 * depth);
          block = std::max<int64_t>(tileRows, block / tileRows * tileRows);
          if (block < rows)
            outer[m] = rewriter.getIndexAttr(block);
        }
      }
      scf::SCFTilingOptions forallOptions;
      forallOptions.setTileSizes(outer).setLoopType(
          scf::SCFTilingOptions::LoopType::ForallOp);
      rewriter.setInsertionPoint(op);
      FailureOr<scf::SCFTilingResult> panels = scf::tileUsingSCF(
          rewriter, cast<TilingInterface>(op.getOperation()), forallOptions);
      if (failed(panels))
        continue;
      rewriter.replaceOp(op, panels->replacements);
      for (LoopLikeOpInterface loop : panels->loops)
        loop->setAttr(panelsMarker, rewriter.getUnitAttr());

      // Pack the panel's rhs columns into a contiguous [K, tileCols] buffer
      // once per panel: the register tiles then walk it row after row
      // instead of touching a different page for every k of a wide rhs.
      auto panelOp = cast<linalg::GenericOp>(panels->tiledOps.front());
      // The stored weights a panel reads in place, and the panel's index
      // and first row (of its block of k) in them, for
      // prefetchNextStoredPanel.
      Value storedSource;
      OpFoldResult storedPanel, storedRow;
      {
        OpOperand &rhs = panelOp->getOpOperand(1);
        rewriter.setInsertionPoint(panelOp);
        Location loc = panelOp.getLoc();
        // A dequantized weight is dequantized panel by panel, into the
        // packing, instead of whole before the matmul.
        if (auto slice = rhs.get().getDefiningOp<tensor::ExtractSliceOp>())
          if (Value computed = computeSliceFromArguments(rewriter, slice))
            rewriter.modifyOpInPlace(panelOp, [&] { rhs.set(computed); });
        auto rhsType = cast<RankedTensorType>(rhs.get().getType());
        SmallVector<OpFoldResult> sizes =
            tensor::getMixedSizes(rewriter, loc, rhs.get());
        bool transposed = readsRhsTransposed(panelOp);
        Value stored = transposed
                           ? Value()
                           : storedPanelOf(rewriter, loc, rhs.get(), tileCols);
        if (transposed)
          std::swap(sizes[sizes.size() - 2], sizes.back());
        bool inPlace = fewRows && !transposed &&
                       !rhs.get().getDefiningOp<linalg::GenericOp>() &&
                       !rhs.get().getDefiningOp<tensor::CollapseShapeOp>();
        Value empty = tensor::EmptyOp::create(rewriter, loc, sizes,
                                              rhsType.getElementType());
        if (auto slice = stored ? stored.getDefiningOp<tensor::ExtractSliceOp>()
                                : tensor::ExtractSliceOp()) {
          storedSource = slice.getSource();
          storedPanel = slice.getMixedOffsets()[0];
          storedRow = slice.getMixedOffsets()[1];
        }
        Value packed;
        if (stored) {
          packed = stored;
        } else if (inPlace) {
          packed = rhs.get();
        } else if (transposed) {
          // The panel's [..., tileN, K] rows of the untransposed operand,
          // packed as [..., K, tileN].
          SmallVector<int64_t> perm =
              llvm::to_vector(llvm::seq<int64_t>(0, rhsType.getRank()));
          std::swap(perm[perm.size() - 2], perm.back());
          auto transpose =
              linalg::TransposeOp::create(rewriter, loc, rhs.get(), empty, perm);
          packed = transpose.getResult()[0];
          SmallVector<AffineMap> maps = panelOp.getIndexingMapsArray();
          maps[1] = swapLastTwoResults(maps[1]);
          rewriter.modifyOpInPlace(panelOp, [&] {
            panelOp.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
          });
        } else {
          auto copy = linalg::CopyOp::create(rewriter, loc, rhs.get(), empty);
          copy->setAttr(packMarker, rewriter.getUnitAttr());
          packed = copy.getResult(0);
        }
        rewriter.modifyOpInPlace(panelOp, [&] { rhs.set(packed); });
      }

      // Inside a panel: tileRows rows at a time, k innermost. (Its loop
      // ranges are read first: tiling replaces the op.)
      SmallVector<int64_t> panelRanges = panelOp.getStaticLoopRanges();
      auto panel = cast<TilingInterface>(panelOp.getOperation());
      SmallVector<OpFoldResult> inner(loops, rewriter.getIndexAttr(0));
      inner[m] = rewriter.getIndexAttr(tileRows);
      inner[k] = rewriter.getIndexAttr(1);
      scf::SCFTilingOptions forOptions;
      forOptions.setTileSizes(inner);
      rewriter.setInsertionPoint(panel);
      FailureOr<scf::SCFTilingResult> tiles =
          scf::tileUsingSCF(rewriter, panel, forOptions);
      if (failed(tiles))
        continue;
      rewriter.replaceOp(panel, tiles->replacements);
      // (One panel, the split-off last columns, has no next.)
      if (prefetchStoredPanels && storedSource && tiles->loops.size() == 2 &&
          (ShapedType::isDynamic(colCount) || colCount > panelCols)) {
        if (!ShapedType::isDynamic(panelRanges[m]) &&
            !ShapedType::isDynamic(panelRanges[k]))
          prefetchNextStoredPanel(
              rewriter, storedSource, storedPanel, storedRow, panelRanges[k],
              panelRanges[m] / tileRows, tileRows,
              cast<scf::ForOp>(tiles->loops[0].getOperation()),
              cast<scf::ForOp>(tiles->loops[1].getOperation()));
      }
      // Peel the last, partial row tile so the others are static in m.
      SmallVector<linalg::GenericOp> registerTiles = {
          cast<linalg::GenericOp>(tiles->tiledOps.front())};
      if (!tiles->loops.empty())
        if (auto mLoop =
                dyn_cast<scf::ForOp>(tiles->loops.front().getOperation())) {
          scf::ForOp partial;
          if (succeeded(scf::peelForLoopAndSimplifyBounds(rewriter, mLoop,
                                                          partial)))
            partial.walk([&](linalg::GenericOp tile) {
              registerTiles.push_back(tile);
            });
        }
      for (linalg::GenericOp tile : registerTiles) {
        readPackedLhsTile(rewriter, tile, packedLhs, tileRows);
        tile->setAttr(marker, rewriter.getUnitAttr());
      }
    }

    // Fold the tile sizes that peeling made constant into static types.
    RewritePatternSet cleanup(&getContext());
    for (Dialect *dialect : getContext().getLoadedDialects())
      dialect->getCanonicalizationPatterns(cleanup);
    for (RegisteredOperationName name : getContext().getRegisteredOperations())
      name.getCanonicalizationPatterns(cleanup, &getContext());
    (void)applyPatternsGreedily(getOperation(), std::move(cleanup));

    for (auto tile : takeMarked<linalg::GenericOp>(getOperation(), marker)) {
      int64_t loops = tile.getNumLoops();
      SmallVector<int64_t> vectorSizes(loops, 1);
      // The peeled last row tile has fewer rows: as many lanes as it has
      // (masked when that is not known at compile time).
      int64_t rows = tile.getStaticLoopRanges()[loops - 3];
      vectorSizes[loops - 3] = ShapedType::isDynamic(rows) ? tileRows : rows;
      // So does the last panel of a split column range (the one column of
      // a 50257-wide LM head): masked 16-lane accesses of a 1-wide panel
      // were lowered to full-width loads past the end of the result.
      int64_t cols = tile.getStaticLoopRanges()[loops - 1];
      vectorSizes[loops - 1] = ShapedType::isDynamic(cols) ? tileCols : cols;
      // Spelled out: an empty list builds vector types that differ from the
      // ones the verifiers infer (all dims explicitly fixed-size).
      SmallVector<bool> scalableDims(loops, false);
      rewriter.setInsertionPoint(tile);
      FailureOr<linalg::VectorizationResult> vectorized =
          linalg::vectorize(rewriter, tile, vectorSizes, scalableDims);
      if (failed(vectorized))
        continue;
      rewriter.replaceOp(tile, vectorized->replacements);
    }
    // Masked transfers (partial column panels) become transfers with a mask
    // operand, which the subset hoisting below understands. A tile's
    // multiply and its reduction over k become one vector.contract, which
    // lowers to outer products of fused multiply-adds: as a separate mulf
    // and addf, LLVM keeps them apart (no fp contraction), which costs half
    // the peak on cores where adds share the FMA ports (Intel's).
    {
      RewritePatternSet patterns(&getContext());
      vector::populateVectorMaskLoweringPatternsForSideEffectingOps(patterns);
      vector::populateVectorTransferPermutationMapLoweringPatterns(patterns);
      vector::populateVectorReductionToContractPatterns(patterns);
      (void)applyPatternsGreedily(getOperation(), std::move(patterns));
    }
    // The accumulator tile lives in registers across the k loops: move the
    // invariant constants (indices, padding) out first, then the
    // read/write pair of the accumulator becomes a loop-carried vector.
    SmallVector<scf::ForOp> forLoops;
    getOperation().walk([&](scf::ForOp loop) { forLoops.push_back(loop); });
    for (scf::ForOp loop : forLoops) {
      auto likeLoop = cast<LoopLikeOpInterface>(loop.getOperation());
      moveLoopInvariantCode(likeLoop);
      hoistLoopInvariantSubsets(rewriter, likeLoop);
    }
    for (auto loop : takeMarked<scf::ForallOp>(getOperation(), panelsMarker))
      accumulateFromZero(rewriter, loop);

    // The register tiles' contractions become outer products of fused
    // multiply-adds here (not in vector-to-llvm) so that each lhs element
    // a tile broadcasts is read as a scalar: LLVM then broadcasts it from
    // memory (a load port) instead of loading the lhs vector and shuffling
    // each lane out (which on Zen takes a pipe the FMAs need).
    {
      RewritePatternSet patterns(&getContext());
      vector::populateVectorContractLoweringPatterns(
          patterns, vector::VectorContractLowering::OuterProduct);
      vector::populateVectorOuterProductLoweringPatterns(patterns);
      vector::populateScalarVectorTransferLoweringPatterns(
          patterns, /*benefit=*/1, /*allowMultipleUses=*/true);
      vector::ExtractOp::getCanonicalizationPatterns(patterns, &getContext());
      (void)applyPatternsGreedily(getOperation(), std::move(patterns));
    }

    // Transposes (the [N, K] -> [K, N] copies of transposed matmul
    // operands) in parallel 16x16 blocks, each vectorized: read 16 rows,
    // transpose in registers, write 16 rows. A scalar copy misses the
    // cache on every strided read.
    SmallVector<linalg::TransposeOp> transposes;
    getOperation().walk([&](linalg::TransposeOp op) {
      if (swapsLastTwo(op.getPermutation()) &&
          getElementTypeOrSelf(op.getInit().getType()).isF32() &&
          !hasEmptyLoop(op))
        transposes.push_back(op);
    });
    for (linalg::TransposeOp op : transposes) {
      int64_t rank = op.getPermutation().size();
      // A dim shorter than the block (the 6 or 8 rows of a packed lhs tile)
      // is taken whole: a full 16 would mask most lanes.
      SmallVector<int64_t> ranges = op.getStaticLoopRanges();
      auto blockSize = [&](int64_t dim) {
        return ShapedType::isDynamic(ranges[dim])
                   ? kTransposeBlock
                   : std::min(kTransposeBlock, ranges[dim]);
      };
      SmallVector<OpFoldResult> blocks(rank, rewriter.getIndexAttr(1));
      blocks[rank - 1] = rewriter.getIndexAttr(blockSize(rank - 1));
      blocks[rank - 2] = rewriter.getIndexAttr(blockSize(rank - 2));
      SmallVector<int64_t> vectorSizes(rank, 1);
      vectorSizes[rank - 1] = blockSize(rank - 1);
      vectorSizes[rank - 2] = blockSize(rank - 2);
      tileAndVectorize(rewriter, op, blocks,
                       scf::SCFTilingOptions::LoopType::ForallOp, vectorSizes);
    }
    // Each block's transposing read becomes 16 row reads and a 16x16
    // vector.transpose, lowered here to the 64 two-source shuffles of the
    // classic in-register transpose. (Left to convert-vector-to-scf, the
    // read was unrolled row by row first and the transpose became 256
    // element extracts and inserts: a quarter of the LM head's time,
    // whose 154 MB weight is packed transposed on every forward.)
    if (!transposes.empty()) {
      RewritePatternSet patterns(&getContext());
      vector::populateVectorTransferPermutationMapLoweringPatterns(patterns);
      vector::populateVectorTransposeLoweringPatterns(
          patterns, vector::VectorTransposeLowering::Shuffle16x16);
      (void)applyPatternsGreedily(getOperation(), std::move(patterns));
    }
    // The panels' rhs packing copies ([..., K, columns] rows of a wider
    // row-major rhs) row by row, each row one vector transfer: left to
    // LLVM they stayed scalar, a load and a store per float (6% of a
    // 1024^3 matmul on an Intel Xeon).
    for (auto op : takeMarked<linalg::CopyOp>(getOperation(), packMarker)) {
      int64_t rank = op.getRank(op.getDpsInitOperand(0));
      SmallVector<int64_t> ranges = op.getStaticLoopRanges();
      if (rank < 1 || hasEmptyLoop(op))
        continue;
      SmallVector<OpFoldResult> rows(rank, rewriter.getIndexAttr(1));
      rows.back() = rewriter.getIndexAttr(0);
      SmallVector<int64_t> vectorSizes(rank, 1);
      vectorSizes.back() =
          ShapedType::isDynamic(ranges.back()) ? tileCols : ranges.back();
      tileAndVectorize(rewriter, op, rows,
                       scf::SCFTilingOptions::LoopType::ForOp, vectorSizes);
    }
    // Stored panels that a contraction did not read in place (one the
    // tiling above did not take) are unpacked whole: slow, but what they
    // mean.
    SmallVector<linalg::UnPackOp> unpacks;
    getOperation().walk([&](linalg::UnPackOp op) { unpacks.push_back(op); });
    for (linalg::UnPackOp op : unpacks) {
      if (op->use_empty()) {
        rewriter.eraseOp(op);
        continue;
      }
      rewriter.setInsertionPoint(op);
      if (failed(linalg::lowerUnPack(rewriter, op))) {
        op.emitError("kiln-tile-and-vectorize-contractions: cannot lower "
                     "this unpacking of stored panels");
        return signalPassFailure();
      }
    }
    // Their masks (ragged edges) become masked transfers too. (After the
    // contraction patterns above, which would split the transposing reads
    // into reads and vector.transpose.)
    {
      RewritePatternSet masks(&getContext());
      vector::populateVectorMaskLoweringPatternsForSideEffectingOps(masks);
      (void)applyPatternsGreedily(getOperation(), std::move(masks));
    }
  }
};
} // namespace
