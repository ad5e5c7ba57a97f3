//===- SequentializeInnerParallel.cpp - One parallel region per loop nest -===//
//
// Only the outermost parallel loop of a nest runs on threads; nested
// scf.parallel loops become scf.for nests (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_SEQUENTIALIZEINNERPARALLELPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Rewrites every scf.parallel nested in another loop into scf.for loops,
/// so that only the outermost parallel loop of a nest becomes a parallel
/// region (one fork/join per nest, not one per outer iteration).
struct SequentializeInnerParallelPass
    : kiln::impl::SequentializeInnerParallelPassBase<
          SequentializeInnerParallelPass> {
  using SequentializeInnerParallelPassBase::SequentializeInnerParallelPassBase;
  void runOnOperation() final {
    SmallVector<scf::ParallelOp> inner;
    getOperation().walk([&](scf::ParallelOp op) {
      // Loops a backend maps to threads of one block itself keep their
      // parallelism (the CUDA pipeline's row reductions).
      if (op->hasAttr(kiln::kKeepParallelAttr))
        return;
      for (Operation *parent = op->getParentOp(); parent;
           parent = parent->getParentOp()) {
        if (isa<scf::ParallelOp>(parent) ||
            (isa<scf::ForOp>(parent) &&
             !parent->hasAttr(kiln::kParallelBodyAttr))) {
          inner.push_back(op);
          return;
        }
      }
    });
    for (scf::ParallelOp op : inner) {
      if (!op.getInitVals().empty()) {
        op.emitOpError("parallel reduction loops are not expected here");
        return signalPassFailure();
      }
      OpBuilder builder(op);
      Location loc = op.getLoc();
      IRMapping mapping;
      for (auto [lb, ub, step, iv] :
           llvm::zip(op.getLowerBound(), op.getUpperBound(), op.getStep(),
                     op.getInductionVars())) {
        auto loop = scf::ForOp::create(builder, loc, lb, ub, step);
        mapping.map(iv, loop.getInductionVar());
        builder.setInsertionPointToStart(loop.getBody());
      }
      for (Operation &nested : op.getBody()->without_terminator())
        builder.clone(nested, mapping);
      op.erase();
    }

    if (!splitOuterLoops)
      return;
    // OpenMP collapses a multi-dimensional parallel loop into one loop
    // whose body recomputes every index by division, which LLVM cannot
    // vectorize. When the outer dims alone give the threads enough work,
    // the innermost dim becomes a plain sequential loop: contiguous, so it
    // vectorizes (an AdamW update over a weight matrix ran scalar).
    SmallVector<scf::ParallelOp> outer;
    getOperation().walk([&](scf::ParallelOp op) {
      if (op.getNumLoops() > 1 && op.getInitVals().empty() &&
          !op->getParentOfType<scf::ParallelOp>())
        outer.push_back(op);
    });
    for (scf::ParallelOp op : outer) {
      // The accessors return SmallVectors: keep them alive.
      SmallVector<Value> lbVec(op.getLowerBound()), ubVec(op.getUpperBound()),
          stepVec(op.getStep()), ivVec(op.getInductionVars());
      ValueRange lbs(lbVec), ubs(ubVec), steps(stepVec);
      int64_t outerTrips = 1;
      bool known = true;
      for (auto [lb, ub, step] :
           llvm::zip(lbs.drop_back(), ubs.drop_back(), steps.drop_back())) {
        std::optional<int64_t> l = getConstantIntValue(lb),
                               u = getConstantIntValue(ub),
                               s = getConstantIntValue(step);
        if (!l || !u || !s || *s <= 0) {
          known = false;
          break;
        }
        outerTrips *= (*u - *l + *s - 1) / *s;
      }
      if (known && outerTrips < kMinOuterTrips)
        continue;
      OpBuilder builder(op);
      Location loc = op.getLoc();
      auto parallel = scf::ParallelOp::create(
          builder, loc, lbs.drop_back(), ubs.drop_back(), steps.drop_back());
      builder.setInsertionPointToStart(parallel.getBody());
      auto loop = scf::ForOp::create(builder, loc, lbs.back(), ubs.back(),
                                     steps.back());
      IRMapping mapping;
      ValueRange ivs(ivVec);
      for (auto [from, to] :
           llvm::zip(ivs.drop_back(), ValueRange(parallel.getInductionVars())))
        mapping.map(from, to);
      mapping.map(ivs.back(), loop.getInductionVar());
      builder.setInsertionPointToStart(loop.getBody());
      for (Operation &nested : op.getBody()->without_terminator())
        builder.clone(nested, mapping);
      op.erase();
    }
  }
  /// Outer iterations below which a loop keeps all its dims parallel.
  static constexpr int64_t kMinOuterTrips = 8;
};
} // namespace
