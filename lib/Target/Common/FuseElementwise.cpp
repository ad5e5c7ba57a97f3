//===- FuseElementwise.cpp - Elementwise fusion without recomputation -----===//
//
// linalg elementwise fusion restricted to consumers that read each fused
// value once (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_FUSEELEMENTWISEWITHOUTRECOMPUTATIONPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Elementwise fusion that never recomputes: a producer is fused into a
/// consumer only when the consumer reads each of its values once (the
/// operand's indexing map is a permutation of all the consumer's loops).
/// Upstream's default also fuses into contractions, where a layer_norm
/// feeding a matmul would be recomputed for every output column.
struct FuseElementwiseWithoutRecomputationPass
    : kiln::impl::FuseElementwiseWithoutRecomputationPassBase<
          FuseElementwiseWithoutRecomputationPass> {
  void runOnOperation() final {
    MLIRContext *context = &getContext();
    RewritePatternSet patterns(context);
    linalg::populateElementwiseOpsFusionPatterns(
        patterns, [](OpOperand *fused) {
          Operation *producer = fused->get().getDefiningOp();
          auto consumer = dyn_cast<linalg::LinalgOp>(fused->getOwner());
          if (!producer || !consumer || !producer->hasOneUse())
            return false;
          AffineMap map = consumer.getMatchingIndexingMap(fused);
          return map.isPermutation();
        });
    linalg::GenericOp::getCanonicalizationPatterns(patterns, context);
    context->getLoadedDialect<linalg::LinalgDialect>()
        ->getCanonicalizationPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
