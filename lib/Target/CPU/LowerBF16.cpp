//===- LowerBF16.cpp - bf16 without libcalls ------------------------------===//
//
// bf16 arithmetic computed in f32 and rounded per op; conversions as
// integer arithmetic, so no module needs __truncsfbf2 (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Transforms/DialectConversion.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERBF16PASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Computes bf16 arithmetic in f32, rounding after every op, and rounds f32
/// to bf16 (and widens bf16) with integer arithmetic. LLVM lowers bf16
/// arithmetic and `fptrunc float to bfloat` to calls of `__truncsfbf2` on
/// CPUs without AVX512-BF16, and libgcc before GCC 13 (Debian 12's) has no
/// such function, so a bf16 module would not link on those machines. The
/// conversions round to nearest even and keep NaNs quiet, as the hardware
/// instruction does. Upstream's emulation marks the conversions it inserts
/// `contract`, which lets a fold drop the rounding between two ops
/// (extf(truncf(x)) -> x); bf16 arithmetic rounds every result, so the flag
/// is cleared before anything folds.
struct LowerBF16Pass : kiln::impl::LowerBF16PassBase<LowerBF16Pass> {
  void runOnOperation() final {
    MLIRContext *context = &getContext();
    TypeConverter converter;
    Type bf16 = BFloat16Type::get(context);
    arith::populateEmulateUnsupportedFloatsConversions(
        converter, {bf16}, Float32Type::get(context));
    RewritePatternSet emulation(context);
    arith::populateEmulateUnsupportedFloatsPatterns(emulation, converter);
    ConversionTarget target(*context);
    arith::populateEmulateUnsupportedFloatsLegality(target, converter);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(emulation))))
      return signalPassFailure();

    auto none =
        arith::FastMathFlagsAttr::get(context, arith::FastMathFlags::none);
    getOperation().walk([&](Operation *op) {
      if (isa<arith::ExtFOp, arith::TruncFOp>(op))
        op->setAttr("fastmath", none);
    });

    RewritePatternSet expansion(context);
    arith::populateExpandBFloat16Patterns(expansion);
    if (failed(applyPatternsGreedily(getOperation(), std::move(expansion))))
      signalPassFailure();
  }
};
} // namespace
