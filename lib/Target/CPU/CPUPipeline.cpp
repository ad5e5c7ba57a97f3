//===- CPUPipeline.cpp - kiln IR to the LLVM dialect for CPUs -------------===//
//
// Today's pipeline is the correctness baseline: linalg lowered to scalar
// loops. Tiling, packing and vectorization of matmuls and the thread pool
// replace convert-linalg-to-loops in the performance work; the stages before
// and after stay.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/CPUPipeline.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/OneShotAnalysis.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// Marks every public function with a body for C-interface wrappers, so
/// the runtime can call `_mlir_ciface_<name>` with memref descriptors.
struct EmitCInterfacesPass
    : PassWrapper<EmitCInterfacesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(EmitCInterfacesPass)
  StringRef getArgument() const final { return "kiln-emit-c-interfaces"; }
  void runOnOperation() final {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && func.isPublic())
        func->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                      UnitAttr::get(&getContext()));
  }
};
} // namespace

void mlir::kiln::buildKilnCPUPipeline(OpPassManager &pm,
                                      const CPUPipelineOptions &options) {
  // Graph level.
  KilnDecomposePassOptions decompose;
  decompose.keep = llvm::to_vector(options.keepComposites);
  pm.addNestedPass<func::FuncOp>(createKilnDecomposePass(decompose));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Tensor level.
  // Entry points that call other parameter-reading functions (a loss
  // calling forward) are flattened, so every parameter read sits in the
  // function whose arguments will carry it.
  pm.addPass(createInlinerPass());
  pm.addPass(createConvertKilnToLinalgPass());
  pm.addPass(createKilnExternalizeParametersPass());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createLinalgElementwiseOpFusionPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Buffers.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  // Results that alias an argument or a constant are returned as clones.
  pm.addPass(createConvertBufferizationToMemRefPass());

  // LLVM.
  pm.addPass(std::make_unique<EmitCInterfacesPass>());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::kiln::registerKilnCPUPipeline() {
  PassPipelineRegistration<CPUPipelineOptions>(
      "kiln-cpu-pipeline",
      "Lowers kiln IR to the LLVM dialect for the CPU (what kiln-compile "
      "--target cpu runs)",
      buildKilnCPUPipeline);
}

void mlir::kiln::registerKilnCPUDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
}
