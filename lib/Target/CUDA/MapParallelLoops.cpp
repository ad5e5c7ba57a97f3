//===- MapParallelLoops.cpp - parallel loops to blocks and threads --------===//
//
// Outermost scf.parallel loops collapsed, tiled by the block size and
// mapped to GPU blocks and threads (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_MAPPARALLELLOOPSPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

/// Maps every outermost scf.parallel of the host code onto the GPU: its
/// dims are collapsed into one, tiled by the block size and mapped to
/// blocks (x) and threads (x). Inner parallel loops must already be
/// sequential.
struct MapParallelLoopsPass
    : kiln::impl::MapParallelLoopsPassBase<MapParallelLoopsPass> {
  using MapParallelLoopsPassBase::MapParallelLoopsPassBase;
  static SmallVector<scf::ParallelOp> outermost(func::FuncOp func) {
    SmallVector<scf::ParallelOp> loops;
    func.walk([&](scf::ParallelOp op) {
      if (!op->getParentOfType<scf::ParallelOp>())
        loops.push_back(op);
    });
    return loops;
  }

  void runOnOperation() final {
    func::FuncOp func = getOperation();
    IRRewriter rewriter(&getContext());
    for (scf::ParallelOp op : outermost(func)) {
      if (!op.getInitVals().empty()) {
        op.emitOpError("parallel reductions are not mapped to the GPU yet");
        return signalPassFailure();
      }
      unsigned dims = op.getNumLoops();
      if (dims < 2)
        continue;
      std::vector<unsigned> all(dims);
      std::iota(all.begin(), all.end(), 0);
      bool blockPerIteration = op->hasAttr(kBlockPerIterationAttr);
      Operation *next = op->getNextNode();
      rewriter.setInsertionPoint(op);
      collapseParallelLoops(rewriter, op, {all});
      // The collapsed loop replaces `op` right where it was.
      auto collapsed = dyn_cast_or_null<scf::ParallelOp>(next->getPrevNode());
      if (!collapsed) {
        func.emitOpError("lost a parallel loop while collapsing it");
        return signalPassFailure();
      }
      if (blockPerIteration)
        collapsed->setAttr(kBlockPerIterationAttr, rewriter.getUnitAttr());
    }
    MLIRContext *ctx = &getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(1, ctx);
    auto mapping = [&](gpu::Processor processor) {
      return gpu::ParallelLoopDimMappingAttr::get(ctx, processor, identity,
                                                  identity);
    };
    for (scf::ParallelOp op : outermost(func)) {
      if (op->hasAttr(kBlockPerIterationAttr)) {
        // A block per iteration; its threads are the inner lanes loop.
        scf::ParallelOp lanes;
        for (Operation &nested : op.getBody()->without_terminator())
          if (auto inner = dyn_cast<scf::ParallelOp>(nested))
            lanes = inner;
        if (!lanes ||
            failed(
                gpu::setMappingAttr(op, {mapping(gpu::Processor::BlockX)})) ||
            failed(gpu::setMappingAttr(lanes,
                                       {mapping(gpu::Processor::ThreadX)}))) {
          op.emitOpError("a block-per-iteration loop needs one inner "
                         "parallel loop of lanes");
          return signalPassFailure();
        }
        continue;
      }
      auto [blocks, threads] =
          scf::tileParallelLoop(op, {blockSize}, /*noMinMaxBounds=*/true);
      if (failed(
              gpu::setMappingAttr(blocks, {mapping(gpu::Processor::BlockX)})) ||
          failed(
              gpu::setMappingAttr(threads, {mapping(gpu::Processor::ThreadX)})))
        return signalPassFailure();
    }
  }
};

} // namespace
