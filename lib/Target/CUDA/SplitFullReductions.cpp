//===- SplitFullReductions.cpp - full reductions in parallel --------------===//
//
// Reductions without a parallel dim become parallel partial results and a
// final fold (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_SPLITFULLREDUCTIONSPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

/// Splits each linalg.generic without a parallel dim (a sum of squares over
/// a whole parameter for the gradient norm, a mean loss) whose reduction
/// has a recognizable combiner (`out = combine(out, f(inputs))`) into
///   1. a parallel loop over `chunks` partial results: thread p folds
///      elements p, p + chunks, p + 2 chunks, ... of the linearized
///      iteration space (neighbouring threads read neighbouring elements),
///      starting from the combiner's neutral element;
///   2. a generic folding the partials into the output, which is split
///      again while it is longer than kSerialReduction.
/// Without this the whole reduction ran in one GPU thread.
constexpr int64_t kSerialReduction = 1024;

struct SplitFullReductionsPass
    : kiln::impl::SplitFullReductionsPassBase<SplitFullReductionsPass> {
  /// Total iteration count, when static.
  static std::optional<int64_t> staticTotal(linalg::GenericOp op) {
    int64_t total = 1;
    for (int64_t size : op.getStaticLoopRanges()) {
      if (ShapedType::isDynamic(size))
        return std::nullopt;
      total *= size;
    }
    return total;
  }

  static bool isCandidate(linalg::GenericOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumParallelLoops() != 0 ||
        op.getNumLoops() == 0 || op.getNumDpsInits() != 1 ||
        !reductionCombiner(op))
      return false;
    // The output is one element: its map has no dims.
    AffineMap outMap = op.getIndexingMapsArray().back();
    if (!llvm::all_of(outMap.getResults(),
                      [](AffineExpr e) { return isa<AffineConstantExpr>(e); }))
      return false;
    std::optional<int64_t> total = staticTotal(op);
    return !total || *total > kSerialReduction;
  }

  void runOnOperation() final {
    IRRewriter rewriter(&getContext());
    for (;;) {
      SmallVector<linalg::GenericOp> work;
      getOperation().walk([&](linalg::GenericOp op) {
        if (isCandidate(op) && !op->getParentOfType<scf::ParallelOp>())
          work.push_back(op);
      });
      if (work.empty())
        return;
      for (linalg::GenericOp op : work)
        split(rewriter, op);
    }
  }

  void split(IRRewriter &rewriter, linalg::GenericOp op) {
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);
    Operation *combiner = reductionCombiner(op);
    Value output = op.getDpsInits()[0];
    Type element = getElementTypeOrSelf(output.getType());
    std::optional<int64_t> total = staticTotal(op);
    // Enough partial results to fill the GPU (256 blocks of 256 threads)
    // with at least 16 elements each, a power of two.
    int64_t chunks = 65536;
    if (total)
      while (chunks > kSerialReduction && chunks * 16 > *total)
        chunks /= 2;
    auto index = [&](int64_t v) {
      return arith::ConstantIndexOp::create(rewriter, loc, v).getResult();
    };

    SmallVector<Range, 4> ranges = cast<linalg::LinalgOp>(op.getOperation())
                                       .createLoopRanges(rewriter, loc);
    auto [count, basis] = linearExtent(rewriter, loc, ranges);
    auto partialType = MemRefType::get({chunks}, element);
    Value partial = memref::AllocOp::create(rewriter, loc, partialType);

    // Stage 1: chunk p folds elements p, p + chunks, ...
    Value zero = index(0), one = index(1), step = index(chunks);
    auto loop = scf::ParallelOp::create(rewriter, loc, ValueRange{zero},
                                        ValueRange{step}, ValueRange{one});
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPoint(loop.getBody()->getTerminator());
      Value p = loop.getInductionVars()[0];
      Value neutral = arith::ConstantOp::create(
          rewriter, loc, *arith::getNeutralElement(combiner));
      Value folded = emitStridedFold(rewriter, op, ValueRange{}, p, count, step,
                                     basis, neutral);
      memref::StoreOp::create(rewriter, loc, folded, partial, ValueRange{p});
    }

    // Stage 2: fold the partials into the output (split again if long).
    MLIRContext *ctx = rewriter.getContext();
    AffineMap outMap = op.getIndexingMapsArray().back();
    SmallVector<AffineMap> maps = {
        AffineMap::getMultiDimIdentityMap(1, ctx),
        AffineMap::get(1, 0, outMap.getResults(), ctx)};
    linalg::GenericOp::create(
        rewriter, loc, ValueRange{partial}, ValueRange{output}, maps,
        {utils::IteratorType::reduction},
        [&](OpBuilder &b, Location nestedLoc, ValueRange args) {
          // args: partial element, output element.
          linalg::YieldOp::create(
              b, nestedLoc, emitCombine(b, op, combiner, args[1], args[0]));
        });
    memref::DeallocOp::create(rewriter, loc, partial);
    rewriter.eraseOp(op);
  }
};

} // namespace
