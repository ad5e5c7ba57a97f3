//===- BlockReductions.cpp - a block of threads per row -------------------===//
//
// Long reductions along contiguous rows: a block of threads per output
// element, combined with gpu.all_reduce (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_BLOCKREDUCTIONSPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

constexpr int64_t kBlockReductionThreads = 256;
constexpr int64_t kMinBlockReduction = 64;

/// A generic with parallel dims and then a long reduction along the
/// contiguous dim of its first input (softmax and layer-norm statistics,
/// the log-sum-exp of a loss over the vocabulary) becomes a loop over the
/// output elements, each run by a block: its threads fold strided slices
/// of the row (neighbouring threads read neighbouring elements) and
/// combine them with an scf.reduce, which becomes gpu.all_reduce (warp
/// shuffles and shared memory). A thread per output element walked the
/// whole row, and a few hundred rows kept most of the GPU idle.
struct BlockReductionsPass
    : kiln::impl::BlockReductionsPassBase<BlockReductionsPass> {
  static bool isCandidate(linalg::GenericOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 ||
        op.getNumDpsInputs() < 1 || !reductionCombiner(op))
      return false;
    // Warp shuffles move 32-bit values (f16/bf16 rows keep a thread each
    // until their reductions accumulate in f32).
    Type accumulator = reductionCombiner(op)->getResult(0).getType();
    if (!accumulator.isIntOrFloat() ||
        accumulator.getIntOrFloatBitWidth() != 32)
      return false;
    unsigned loops = op.getNumLoops(), parallel = op.getNumParallelLoops();
    if (parallel == 0 || parallel == loops)
      return false;
    auto iterators = op.getIteratorTypesArray();
    for (unsigned i = 0; i < loops; ++i)
      if ((i < parallel) != (iterators[i] == utils::IteratorType::parallel))
        return false;
    // The first input walks its contiguous dim with the innermost loop.
    OpOperand *first = op.getDpsInputOperand(0);
    auto type = dyn_cast<MemRefType>(first->get().getType());
    AffineMap map = op.getMatchingIndexingMap(first);
    if (!type || map.getNumResults() == 0 ||
        map.getResults().back() != getAffineDimExpr(loops - 1, op.getContext()))
      return false;
    SmallVector<int64_t> strides;
    int64_t offset;
    if (failed(type.getStridesAndOffset(strides, offset)) ||
        strides.back() != 1)
      return false;
    int64_t extent = 1;
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    for (int64_t size : ArrayRef<int64_t>(ranges).drop_front(parallel)) {
      if (ShapedType::isDynamic(size))
        return true;
      extent *= size;
    }
    return extent >= kMinBlockReduction;
  }

  void runOnOperation() final {
    SmallVector<linalg::GenericOp> work;
    getOperation().walk([&](linalg::GenericOp op) {
      if (isCandidate(op) && !op->getParentOfType<scf::ParallelOp>())
        work.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : work)
      rewrite(rewriter, op);
  }

  void rewrite(IRRewriter &rewriter, linalg::GenericOp op) {
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);
    Operation *combiner = reductionCombiner(op);
    unsigned loops = op.getNumLoops(), parallel = op.getNumParallelLoops();
    auto index = [&](int64_t v) {
      return arith::ConstantIndexOp::create(rewriter, loc, v).getResult();
    };
    SmallVector<Range, 4> ranges = cast<linalg::LinalgOp>(op.getOperation())
                                       .createLoopRanges(rewriter, loc);
    SmallVector<Value> lbs, ubs, steps;
    for (unsigned d = 0; d < parallel; ++d) {
      lbs.push_back(index(0));
      ubs.push_back(
          getValueOrCreateConstantIndexOp(rewriter, loc, ranges[d].size));
      steps.push_back(index(1));
    }
    auto [count, basis] = linearExtent(
        rewriter, loc, ArrayRef<Range>(ranges).drop_front(parallel));
    Value threads = index(kBlockReductionThreads);
    Value output = op.getDpsInits()[0];
    AffineMap outMap = op.getIndexingMapsArray().back();

    auto rows = scf::ParallelOp::create(rewriter, loc, lbs, ubs, steps);
    rows->setAttr(kBlockPerIterationAttr, rewriter.getUnitAttr());
    rewriter.setInsertionPoint(rows.getBody()->getTerminator());
    SmallVector<Value> ivs(rows.getInductionVars());
    for (unsigned d = parallel; d < loops; ++d)
      ivs.push_back(index(0)); // the output map does not use them
    SmallVector<Value> outIndices;
    for (AffineExpr expr : outMap.getResults())
      outIndices.push_back(affine::AffineApplyOp::create(
          rewriter, loc, AffineMap::get(loops, 0, expr), ivs));
    Value init = memref::LoadOp::create(rewriter, loc, output, outIndices);
    Value neutral = arith::ConstantOp::create(
        rewriter, loc, *arith::getNeutralElement(combiner));

    auto lanes = scf::ParallelOp::create(
        rewriter, loc, ValueRange{index(0)}, ValueRange{threads},
        ValueRange{index(1)}, ValueRange{neutral});
    lanes->setAttr(kKeepParallelAttr, rewriter.getUnitAttr());
    {
      OpBuilder::InsertionGuard guard(rewriter);
      Block *body = lanes.getBody();
      if (!body->empty() && body->back().hasTrait<OpTrait::IsTerminator>())
        rewriter.eraseOp(&body->back());
      rewriter.setInsertionPointToEnd(body);
      Value folded = emitStridedFold(rewriter, op, rows.getInductionVars(),
                                     lanes.getInductionVars()[0], count,
                                     threads, basis, neutral);
      auto reduce = scf::ReduceOp::create(rewriter, loc, ValueRange{folded});
      Region &region = reduce.getReductions()[0];
      Block *block =
          region.empty() ? rewriter.createBlock(&region) : &region.front();
      Type type = neutral.getType();
      if (block->getNumArguments() == 0)
        block->addArguments({type, type}, {loc, loc});
      rewriter.setInsertionPointToEnd(block);
      Value combined = emitCombine(
          rewriter, op, combiner, block->getArgument(0), block->getArgument(1));
      scf::ReduceReturnOp::create(rewriter, loc, combined);
    }
    rewriter.setInsertionPointAfter(lanes);
    Value result =
        emitCombine(rewriter, op, combiner, init, lanes.getResult(0));
    memref::StoreOp::create(rewriter, loc, result, output, outIndices);
    rewriter.eraseOp(op);
  }
};

} // namespace
