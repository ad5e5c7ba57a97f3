//===- LowerAllReduce.cpp - gpu.all_reduce in kernels ---------------------===//
//
// gpu.all_reduce to shuffles, shared memory and barriers (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERALLREDUCEPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

/// gpu.all_reduce (from the row reductions' scf.reduce) to shuffles,
/// shared memory and barriers, inside the outlined kernels.
struct LowerAllReducePass
    : kiln::impl::LowerAllReducePassBase<LowerAllReducePass> {
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    populateGpuAllReducePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
