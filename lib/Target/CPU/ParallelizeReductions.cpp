//===- ParallelizeReductions.cpp - Reductions across threads --------------===//
//
// Reductions over whole tensors split into parallel partial sums, and
// reductions whose outermost loop reduces (column sums) tiled into parallel
// chunks of their output (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_PARALLELIZEREDUCTIONSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// The innermost parallel loop of `op`, when its outermost loop reduces:
/// convert-linalg-to-parallel-loops would nest every loop of such an op in
/// a sequential one, and the whole op would run on one thread.
std::optional<unsigned> innermostParallelUnderReduction(linalg::GenericOp op) {
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  if (iterators.empty() || iterators.front() != utils::IteratorType::reduction)
    return std::nullopt;
  for (unsigned i = iterators.size(); i-- > 0;)
    if (iterators[i] == utils::IteratorType::parallel)
      return i;
  return std::nullopt;
}

/// Elements of the innermost parallel loop each thread's chunk takes: at
/// least 16 (whole vectors), at most 64 (four cache lines of f32 per row),
/// and a quarter of the loop in between, so that short rows still make a
/// few chunks.
int64_t chunkSize(int64_t extent) {
  if (ShapedType::isDynamic(extent))
    return 64;
  int64_t quarter = llvm::divideCeil(extent, 4);
  return std::clamp<int64_t>(llvm::alignTo(quarter, 16), 16, 64);
}

/// Reductions over fewer elements stay whole: a loss over a batch's tokens.
constexpr int64_t kMinSplitElements = 4096;

/// Splits `op`, a reduction of a whole tensor with static sizes (every loop
/// reduces: a gradient's sum of squares for the norm), into
///   1. partial results [parts, 16]: part p folds its own contiguous run
///      of the elements (collapsed into one loop), 16 lanes at a time, so
///      the parts run on threads and each lane's sum is independent of
///      the others (a vector; one sum would be a chain of dependent adds
///      that cannot be vectorized without reassociating);
///   2. the folds of the parts, then of the lanes, into the output.
/// Leaves `op` as it is when its combiner is not one splitReduction knows
/// (a sum, product, max or min) or its sizes do not divide.
void splitFullReduction(RewriterBase &rewriter, linalg::GenericOp op) {
  int64_t total = 1;
  for (int64_t size : op.getStaticLoopRanges()) {
    if (ShapedType::isDynamic(size))
      return;
    total *= size;
  }
  if (total < kMinSplitElements || total % 16 != 0)
    return;
  int64_t rows = total / 16;
  int64_t parts = 16;
  while (parts > 1 && rows % parts != 0)
    parts /= 2;

  rewriter.setInsertionPoint(op);
  linalg::LinalgOp current = op;
  if (op.getNumLoops() > 1) {
    ReassociationIndices all =
        llvm::to_vector(llvm::seq<int64_t>(0, op.getNumLoops()));
    if (!linalg::areDimSequencesPreserved(op.getIndexingMapsArray(), {all}))
      return;
    FailureOr<linalg::CollapseResult> collapsed =
        linalg::collapseOpIterationDims(op, {all}, rewriter);
    if (failed(collapsed))
      return;
    rewriter.replaceOp(op, collapsed->results);
    current = collapsed->collapsedOp;
  }
  auto split = [&](int64_t ratio, bool innerParallel) {
    rewriter.setInsertionPoint(current);
    FailureOr<linalg::SplitReductionResult> result =
        linalg::splitReduction(rewriter, current, [&](linalg::LinalgOp) {
          return linalg::SplitReductionOptions{ratio, /*index=*/0,
                                               innerParallel};
        });
    if (failed(result))
      return false;
    current = result->splitLinalgOp;
    return true;
  };
  // Lanes innermost, then the parts outermost.
  if (split(16, /*innerParallel=*/true) && parts > 1)
    split(parts, /*innerParallel=*/false);
}

struct ParallelizeReductionsPass
    : kiln::impl::ParallelizeReductionsPassBase<ParallelizeReductionsPass> {
  void runOnOperation() final {
    func::FuncOp func = getOperation();
    // Only ops that are not already inside a loop: there, the loop around
    // them is what runs on threads.
    auto atTop = [&](linalg::GenericOp op) {
      return op->getParentOp() == func && op.hasPureTensorSemantics();
    };
    IRRewriter rewriter(&getContext());
    SmallVector<linalg::GenericOp> full;
    func.walk([&](linalg::GenericOp op) {
      if (atTop(op) && op.getNumLoops() > 0 && op.getNumDpsInits() == 1 &&
          op.getNumReductionLoops() == op.getNumLoops())
        full.push_back(op);
    });
    for (linalg::GenericOp op : full)
      splitFullReduction(rewriter, op);

    SmallVector<std::pair<linalg::GenericOp, unsigned>> candidates;
    func.walk([&](linalg::GenericOp op) {
      if (!atTop(op))
        return;
      if (std::optional<unsigned> dim = innermostParallelUnderReduction(op))
        candidates.emplace_back(op, *dim);
    });
    for (auto [op, dim] : candidates) {
      SmallVector<int64_t> ranges = op.getStaticLoopRanges();
      int64_t chunk = chunkSize(ranges[dim]);
      // One chunk would be one thread again.
      if (!ShapedType::isDynamic(ranges[dim]) && ranges[dim] <= chunk)
        continue;
      // Chunks of the innermost parallel loop, every other parallel loop
      // one step at a time, the reductions whole.
      SmallVector<OpFoldResult> sizes;
      for (auto [i, iterator] : llvm::enumerate(op.getIteratorTypesArray()))
        sizes.push_back(rewriter.getIndexAttr(
            i == dim ? chunk
                     : (iterator == utils::IteratorType::parallel ? 1 : 0)));
      scf::SCFTilingOptions options;
      options.setTileSizes(sizes).setLoopType(
          scf::SCFTilingOptions::LoopType::ForallOp);
      rewriter.setInsertionPoint(op);
      FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
          rewriter, cast<TilingInterface>(op.getOperation()), options);
      if (failed(tiled)) {
        op.emitOpError("could not be split into parallel chunks");
        return signalPassFailure();
      }
      rewriter.replaceOp(op, tiled->replacements);
    }
  }
};
} // namespace
