//===- SplitRowSums.cpp - Row sums in vector lanes ------------------------===//
//
// Splits floating-point row sums into lanes of partial sums, so the loops
// they become vectorize (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"
#include "kiln/Target/Common/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/SmallBitVector.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_SPLITROWSUMSPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Whether `input` of `op` reads loop `k`.
bool readsLoop(linalg::GenericOp op, OpOperand *input, unsigned k) {
  return op.getMatchingIndexingMap(input).isFunctionOfDim(k);
}

/// Whether `op` is a floating-point sum over its innermost loop of values
/// computed from its inputs (a row's elements, or exp(x - max) with the
/// row's max broadcast), alone: one reduction loop, the last; one output
/// whose running value only the yielded `arith.addf` reads; at least
/// `minimum` elements, a static count (a count that is not a multiple of
/// `lanes` leaves a tail, summed after the lanes).
bool isRowSum(linalg::GenericOp op, int64_t lanes, int64_t minimum) {
  if (!op.hasPureTensorSemantics() || op.getNumDpsInits() != 1 ||
      op.getNumDpsInputs() < 1 || op.getNumReductionLoops() != 1 ||
      kiln::isKilnContraction(op, /*requireF32=*/false))
    return false;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  if (iterators.back() != utils::IteratorType::reduction)
    return false;
  int64_t size = op.getStaticLoopRanges().back();
  if (ShapedType::isDynamic(size) || size < minimum)
    return false;
  // Each input that reads the reduced loop reads it as its innermost dim
  // (contiguous lanes) and nowhere else, and one does; the others
  // broadcast along it. The output reads every other loop, as a plain dim
  // (or a constant), and not the reduced one: the split's loops then map
  // onto the same tensors.
  unsigned k = iterators.size() - 1;
  bool anyReadsK = false;
  for (OpOperand *operand : op.getDpsInputOperands()) {
    if (!readsLoop(op, operand, k))
      continue;
    anyReadsK = true;
    AffineMap input = op.getMatchingIndexingMap(operand);
    if (input.getResults().back() != getAffineDimExpr(k, op.getContext()) ||
        llvm::any_of(input.getResults().drop_back(),
                     [&](AffineExpr e) { return e.isFunctionOfDim(k); }))
      return false;
  }
  if (!anyReadsK)
    return false;
  AffineMap output = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  llvm::SmallBitVector read(k + 1);
  for (AffineExpr e : output.getResults()) {
    if (isa<AffineConstantExpr>(e))
      continue;
    auto dim = dyn_cast<AffineDimExpr>(e);
    if (!dim || dim.getPosition() == k)
      return false;
    read.set(dim.getPosition());
  }
  if (static_cast<int64_t>(read.count()) != static_cast<int64_t>(k))
    return false;
  Block *body = op.getBody();
  // The body is cloned into a nest of other loops: it must not read them.
  if (!body->getOps<linalg::IndexOp>().empty())
    return false;
  auto yield = cast<linalg::YieldOp>(body->getTerminator());
  auto add = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
  BlockArgument out = op.getMatchingBlockArgument(op.getDpsInitOperand(0));
  return add && add->getBlock() == body && out.hasOneUse() &&
         llvm::is_contained(add->getOperands(), Value(out));
}

/// Rewrites the row sum `op` (isRowSum) over its last loop k into lanes of
/// partial sums: each input that reads k, [..., k], read as
/// [..., k / lanes, lanes] (the others as they were), summed over k / lanes
/// into zeros [out..., lanes] (the original body, lane l adding elements l,
/// l + lanes, ... in order), then those summed over the lanes into the
/// original output, then the k % lanes elements left at the end of each
/// row (a vocabulary of 50257) by the original body. (Upstream's
/// linalg::splitReduction does the same for static shapes only.)
void splitRowSum(RewriterBase &rewriter, linalg::GenericOp op, int64_t lanes) {
  Location loc = op.getLoc();
  MLIRContext *context = op.getContext();
  rewriter.setInsertionPoint(op);
  unsigned loops = op.getNumLoops(), k = loops - 1;
  OpOperand *init = op.getDpsInitOperand(0);
  AffineMap outputMap = op.getMatchingIndexingMap(init);
  auto outputType = cast<RankedTensorType>(init->get().getType());
  AffineExpr k1 = getAffineDimExpr(k, context);
  AffineExpr lane = getAffineDimExpr(k + 1, context);

  int64_t size = op.getStaticLoopRanges().back();
  int64_t tail = size % lanes, main = size - tail;
  // Elements [first, first + count) of the last dim of `value`.
  auto lastDimSlice = [&](Value value, int64_t first, int64_t count) {
    auto type = cast<RankedTensorType>(value.getType());
    int64_t rank = type.getRank();
    SmallVector<OpFoldResult> offsets(rank, rewriter.getIndexAttr(0));
    offsets.back() = rewriter.getIndexAttr(first);
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(rewriter, loc, value);
    sizes.back() = rewriter.getIndexAttr(count);
    SmallVector<OpFoldResult> strides(rank, rewriter.getIndexAttr(1));
    return tensor::ExtractSliceOp::create(rewriter, loc, value, offsets, sizes,
                                          strides)
        .getResult();
  };

  SmallVector<Value> inputs, tailInputs;
  SmallVector<AffineMap> maps;
  for (OpOperand *input : op.getDpsInputOperands()) {
    AffineMap inputMap = op.getMatchingIndexingMap(input);
    if (!readsLoop(op, input, k)) {
      // A broadcast along k: the same element for every lane.
      inputs.push_back(input->get());
      tailInputs.push_back(input->get());
      maps.push_back(
          AffineMap::get(loops + 1, 0, inputMap.getResults(), context));
      continue;
    }
    Value whole = input->get();
    if (tail) {
      tailInputs.push_back(lastDimSlice(whole, main, tail));
      whole = lastDimSlice(whole, 0, main);
    }
    // The input with its last dim split: [..., k / lanes, lanes].
    auto inputType = cast<RankedTensorType>(whole.getType());
    int64_t rank = inputType.getRank();
    SmallVector<int64_t> expandedShape(inputType.getShape());
    expandedShape.back() = main / lanes;
    expandedShape.push_back(lanes);
    SmallVector<ReassociationIndices> groups;
    for (int64_t d = 0; d + 1 < rank; ++d)
      groups.push_back({d});
    groups.push_back({rank - 1, rank});
    SmallVector<OpFoldResult> expandedSizes =
        tensor::getMixedSizes(rewriter, loc, whole);
    expandedSizes.back() = rewriter.getIndexAttr(expandedShape[rank - 1]);
    expandedSizes.push_back(rewriter.getIndexAttr(lanes));
    inputs.push_back(tensor::ExpandShapeOp::create(
        rewriter, loc,
        RankedTensorType::get(expandedShape, inputType.getElementType()), whole,
        groups, expandedSizes));
    SmallVector<AffineExpr> inputExprs(inputMap.getResults().drop_back());
    inputExprs.append({k1, lane});
    maps.push_back(AffineMap::get(loops + 1, 0, inputExprs, context));
  }

  // Zeros [out..., lanes].
  SmallVector<OpFoldResult> partialSizes =
      tensor::getMixedSizes(rewriter, loc, init->get());
  partialSizes.push_back(rewriter.getIndexAttr(lanes));
  Type element = outputType.getElementType();
  Value empty = tensor::EmptyOp::create(rewriter, loc, partialSizes, element);
  Value zero = arith::ConstantOp::create(rewriter, loc, element,
                                         rewriter.getZeroAttr(element));
  Value zeros = linalg::FillOp::create(rewriter, loc, zero, empty).getResult(0);

  // Loops (..., k1, lane): k1 reduces, the lanes are parallel.
  SmallVector<AffineExpr> partialExprs(outputMap.getResults());
  partialExprs.push_back(lane);
  maps.push_back(AffineMap::get(loops + 1, 0, partialExprs, context));
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  iterators.push_back(utils::IteratorType::parallel);
  auto partial =
      linalg::GenericOp::create(rewriter, loc, zeros.getType(), inputs,
                                ValueRange{zeros}, maps, iterators);
  rewriter.cloneRegionBefore(op.getRegion(), partial.getRegion(),
                             partial.getRegion().begin());

  // Their sum over the lanes, added into the original output.
  SmallVector<AffineExpr> outExprs(outputMap.getResults());
  SmallVector<AffineExpr> laneExprs(outputMap.getResults());
  AffineExpr lastLane = getAffineDimExpr(loops - 1, context);
  laneExprs.push_back(lastLane);
  SmallVector<utils::IteratorType> combineIterators(
      loops - 1, utils::IteratorType::parallel);
  combineIterators.push_back(utils::IteratorType::reduction);
  auto combine = linalg::GenericOp::create(
      rewriter, loc, outputType, ValueRange{partial.getResult(0)},
      ValueRange{init->get()},
      {AffineMap::get(loops, 0, laneExprs, context),
       AffineMap::get(loops, 0, outExprs, context)},
      combineIterators, [&](OpBuilder &b, Location l, ValueRange args) {
        Value sum = arith::AddFOp::create(b, l, args[1], args[0]);
        linalg::YieldOp::create(b, l, sum);
      });
  if (!tail) {
    rewriter.replaceOp(op, combine.getResults());
    return;
  }
  // The last size % lanes elements of each row, added after the lanes.
  auto rest = linalg::GenericOp::create(
      rewriter, loc, outputType, tailInputs, combine.getResults(),
      op.getIndexingMapsArray(), op.getIteratorTypesArray());
  rewriter.cloneRegionBefore(op.getRegion(), rest.getRegion(),
                             rest.getRegion().begin());
  rewriter.replaceOp(op, rest.getResults());
}

struct SplitRowSumsPass : kiln::impl::SplitRowSumsPassBase<SplitRowSumsPass> {
  using Base::Base;

  void runOnOperation() final {
    if (lanes < 2) {
      getOperation().emitError() << "lanes must be at least 2 (got "
                                 << static_cast<int64_t>(lanes) << ")";
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> sums;
    getOperation().walk([&](linalg::GenericOp op) {
      if (isRowSum(op, lanes, 4 * lanes))
        sums.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : sums)
      splitRowSum(rewriter, op, lanes);
  }
};
} // namespace
