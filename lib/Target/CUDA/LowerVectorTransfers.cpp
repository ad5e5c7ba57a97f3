//===- LowerVectorTransfers.cpp - vector transfers in kernels -------------===//
//
// In-bounds 1-D vector transfers to vector.load and vector.store
// (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERVECTORTRANSFERSPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

/// In-bounds 1-D vector transfers (fused attention's row reads and writes)
/// to vector.load/store, which the NVVM lowering turns into plain loads.
struct LowerVectorTransfersPass
    : kiln::impl::LowerVectorTransfersPassBase<LowerVectorTransfersPass> {
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    vector::populateVectorTransferLoweringPatterns(patterns,
                                                   /*maxTransferRank=*/1);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
