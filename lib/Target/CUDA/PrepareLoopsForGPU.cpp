//===- PrepareLoopsForGPU.cpp - loop nests ready for mapping --------------===//
//
// Copies to linalg, reductions innermost, sequential work in
// one-iteration parallel loops (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_PREPARELOOPSFORGPUPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

bool touchesMemory(Operation *op) {
  WalkResult result = op->walk([](Operation *nested) {
    if (isa<memref::LoadOp, memref::StoreOp, memref::CopyOp>(nested) ||
        isa<linalg::LinalgOp>(nested))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return result.wasInterrupted();
}

/// Prepares buffers-level code for the loop mapping: memref.copy becomes a
/// linalg.copy (a kernel like any other loop nest), generic ops get their
/// reduction dims innermost (a thread per output element walks them), and
/// work without a parallel dim (full reductions, 0-d ops, the sequential
/// loops of scatter_add) is wrapped in a one-iteration scf.parallel, so
/// that it too runs on the GPU.
struct PrepareLoopsForGPUPass
    : kiln::impl::PrepareLoopsForGPUPassBase<PrepareLoopsForGPUPass> {
  void runOnOperation() final {
    func::FuncOp func = getOperation();
    IRRewriter rewriter(&getContext());

    SmallVector<memref::CopyOp> copies;
    func.walk([&](memref::CopyOp copy) { copies.push_back(copy); });
    for (memref::CopyOp copy : copies) {
      rewriter.setInsertionPoint(copy);
      linalg::CopyOp::create(rewriter, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      rewriter.eraseOp(copy);
    }

    SmallVector<linalg::GenericOp> generics;
    func.walk([&](linalg::GenericOp op) { generics.push_back(op); });
    for (linalg::GenericOp op : generics) {
      auto iterators = op.getIteratorTypesArray();
      SmallVector<unsigned> order;
      for (unsigned i = 0; i < iterators.size(); ++i)
        if (iterators[i] == utils::IteratorType::parallel)
          order.push_back(i);
      for (unsigned i = 0; i < iterators.size(); ++i)
        if (iterators[i] != utils::IteratorType::parallel)
          order.push_back(i);
      if (llvm::is_sorted(order))
        continue;
      rewriter.setInsertionPoint(op);
      if (failed(linalg::interchangeGenericOp(rewriter, op, order)))
        op.emitWarning("could not move the reduction dims innermost");
    }

    // Work to wrap: linalg ops without a parallel dim, and top-level loops
    // that read or write memory.
    SmallVector<Operation *> sequential;
    func.walk([&](Operation *op) {
      if (op->getParentOfType<scf::ParallelOp>())
        return;
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
        if (linalgOp.getNumParallelLoops() == 0)
          sequential.push_back(op);
        return;
      }
      if (isa<scf::ForOp, scf::WhileOp, scf::IfOp>(op) &&
          op->getParentOp() == func && touchesMemory(op)) {
        if (op->getNumResults() != 0) {
          op->emitOpError("a host loop with results that touches memory "
                          "cannot be moved to the GPU");
          return signalPassFailure();
        }
        sequential.push_back(op);
      }
    });
    for (Operation *op : sequential) {
      rewriter.setInsertionPoint(op);
      Location loc = op->getLoc();
      Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
      Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
      auto wrapper = scf::ParallelOp::create(rewriter, loc, ValueRange{zero},
                                             ValueRange{one}, ValueRange{one});
      op->moveBefore(wrapper.getBody()->getTerminator());
    }
  }
};

} // namespace
