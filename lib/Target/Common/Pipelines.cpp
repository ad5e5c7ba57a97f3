//===- Pipelines.cpp - The stages every backend's pipeline shares ---------===//
//
// kiln IR -> linalg on tensors -> buffers, and what both backends recognize
// in the result.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Pipelines.h"
#include "kiln/Target/Common/Passes.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kiln;

void mlir::kiln::buildKilnToLinalgStages(
    OpPassManager &pm, ArrayRef<std::string> keep, int64_t attentionBlock,
    llvm::function_ref<void(OpPassManager &)> graphPasses) {
  // Graph level.
  KilnDecomposePassOptions decompose;
  decompose.keep = llvm::to_vector(keep);
  pm.addNestedPass<func::FuncOp>(createKilnDecomposePass(decompose));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (graphPasses)
    graphPasses(pm);

  // Tensor level.
  // Entry points that call other parameter-reading functions (a loss
  // calling forward) are flattened, so every parameter read sits in the
  // function whose arguments will carry it.
  pm.addPass(createInlinerPass());
  // Kept attention ops become fused loop nests; the rest becomes linalg.
  ConvertKilnAttentionPassOptions attention;
  attention.block = attentionBlock;
  pm.addPass(createConvertKilnAttentionPass(attention));
  pm.addPass(createConvertKilnToLinalgPass());
  pm.addPass(createKilnExternalizeParametersPass());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(
      createFuseElementwiseWithoutRecomputationPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::kiln::buildKilnBufferizeStages(OpPassManager &pm) {
  // Zeros shared by several accumulations would be filled once and copied
  // for each.
  pm.addNestedPass<func::FuncOp>(createFillPerUsePass());
  // Parameter updates are computed in the parameters' buffers.
  pm.addPass(createLowerParameterStoresPass());
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
}

AffineMap mlir::kiln::storedPairsMap(MLIRContext *context, int64_t loops,
                                     int64_t k, int64_t n, int64_t width) {
  AffineExpr kd = getAffineDimExpr(k, context);
  AffineExpr nd = getAffineDimExpr(n, context);
  return AffineMap::get(
      loops, 0, {nd.floorDiv(width), kd.floorDiv(2), nd % width, kd % 2},
      context);
}

bool mlir::kiln::isKilnContraction(Operation *operation, bool requireF32) {
  auto op = dyn_cast<linalg::GenericOp>(operation);
  if (!op || op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 ||
      !linalg::isaContractionOpInterface(op))
    return false;
  auto iterators = op.getIteratorTypesArray();
  int64_t loops = iterators.size();
  if (loops < 3 || iterators[loops - 2] != utils::IteratorType::reduction)
    return false;
  for (int64_t i = 0; i < loops; ++i)
    if (i != loops - 2 && iterators[i] != utils::IteratorType::parallel)
      return false;
  if (!requireF32)
    return true;
  for (Value operand : op->getOperands())
    if (!getElementTypeOrSelf(operand.getType()).isF32())
      return false;
  return true;
}
