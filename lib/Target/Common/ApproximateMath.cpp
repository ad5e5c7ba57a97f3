//===- ApproximateMath.cpp - exp, tanh and erf as polynomials -------------===//
//
// Upstream's polynomial approximations (about 1e-7 relative error in f32)
// in place of exp, tanh and erf, so the loops around them vectorize instead
// of calling libm for every element, and GPU kernels compute them as the
// CPU does.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_APPROXIMATEMATHPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
struct ApproximateMathPass
    : kiln::impl::ApproximateMathPassBase<ApproximateMathPass> {
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      // Names are given with or without the dialect prefix.
      name.consume_front("math.");
      return name == "exp" || name == "tanh" || name == "erf";
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
