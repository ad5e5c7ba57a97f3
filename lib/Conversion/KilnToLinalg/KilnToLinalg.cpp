//===- KilnToLinalg.cpp - kiln primitives to linalg/tensor/arith/math -----===//
//
// The pass: one pattern per primitive, in a file per op family
// (Elementwise.cpp, Contractions.cpp, Shape.cpp, Generators.cpp,
// Quantization.cpp; shared
// builders in Utils.h). Elementwise ops share a builder that turns NumPy
// broadcasting into linalg indexing maps; everything stays at the tensor
// level so one-shot bufferization and the linalg tiling and vectorization
// passes see ordinary upstream IR.
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_CONVERTKILNTOLINALGPASS
#include "kiln/Conversion/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {

struct ConvertKilnToLinalgPass
    : kiln::impl::ConvertKilnToLinalgPassBase<ConvertKilnToLinalgPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    // A remaining composite is a pipeline mistake; say which.
    WalkResult composite = module.walk([](DecomposableOpInterface op) {
      op->emitOpError("is a composite op; run kiln-decompose before "
                      "convert-kiln-to-linalg");
      return WalkResult::interrupt();
    });
    if (composite.wasInterrupted())
      return signalPassFailure();
    WalkResult fused = module.walk([](AttentionGradOp op) {
      op->emitOpError("has no linalg lowering; run convert-kiln-attention "
                      "before convert-kiln-to-linalg");
      return WalkResult::interrupt();
    });
    if (fused.wasInterrupted())
      return signalPassFailure();

    ConversionTarget target(getContext());
    target.addLegalDialect<linalg::LinalgDialect, tensor::TensorDialect,
                           arith::ArithDialect, math::MathDialect,
                           func::FuncDialect, scf::SCFDialect>();
    target.addIllegalDialect<KilnDialect>();
    target.addLegalOp<ParameterOp, ReadParamOp, WriteParamOp, StoreParamOp>();
    RewritePatternSet patterns(&getContext());
    populateKilnToLinalgPatterns(patterns);
    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::kiln::populateKilnToLinalgPatterns(RewritePatternSet &patterns) {
  to_linalg::populateElementwisePatterns(patterns);
  to_linalg::populateContractionPatterns(patterns);
  to_linalg::populateShapePatterns(patterns);
  to_linalg::populateGeneratorPatterns(patterns);
  to_linalg::populateQuantizationPatterns(patterns);
}
