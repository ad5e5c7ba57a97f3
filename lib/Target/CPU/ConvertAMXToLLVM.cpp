//===- ConvertAMXToLLVM.cpp - AMX tiles and branches to LLVM --------------===//
//
// kiln-lower-amx-matmuls keeps its sum tiles in loop-carried values, so
// after scf-to-cf they are block arguments of cf branches. The upstream
// cf-to-llvm conversion's type converter does not know !amx.tile, and the
// AMX legalization (in convert-vector-to-llvm) runs after it; this pass
// converts the AMX ops and the branches together with one type converter
// that maps !amx.tile to LLVM's x86_amx.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/LLVMCommon/ConversionTarget.h"
#include "mlir/Conversion/LLVMCommon/TypeConverter.h"
#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/AMX/Transforms.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_CONVERTAMXTOLLVMPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
struct ConvertAMXToLLVMPass
    : kiln::impl::ConvertAMXToLLVMPassBase<ConvertAMXToLLVMPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    bool any = false;
    module.walk([&](Operation *op) {
      if (isa<amx::AMXDialect>(op->getDialect()))
        any = true;
      return any ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (!any)
      return;
    MLIRContext *context = &getContext();
    LLVMTypeConverter converter(context);
    RewritePatternSet patterns(context);
    populateAMXLegalizeForLLVMExportPatterns(converter, patterns);
    cf::populateControlFlowToLLVMConversionPatterns(converter, patterns);
    LLVMConversionTarget target(*context);
    configureAMXLegalizeForExportTarget(target);
    target.addIllegalDialect<cf::ControlFlowDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    target.addIllegalDialect<amx::AMXDialect>();
    target.addIllegalDialect<cf::ControlFlowDialect>();
    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
