//===- Utils.cpp - What the CUDA backend's passes share -------------------===//
//
// Host or kernel, and the reduction-body helpers (Utils.h).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;

bool mlir::kiln::cuda::isInDeviceCode(Operation *op) {
  return op->getParentOfType<gpu::LaunchOp>() ||
         op->getParentOfType<gpu::GPUFuncOp>();
}

Operation *mlir::kiln::cuda::reductionCombiner(linalg::GenericOp op) {
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != 1)
    return nullptr;
  Operation *combiner = yield.getOperand(0).getDefiningOp();
  BlockArgument out = body.getArguments().back();
  if (!combiner || combiner->getBlock() != &body ||
      combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      !out.hasOneUse() || out.getUses().begin()->getOwner() != combiner ||
      !isa<arith::ArithDialect>(combiner->getDialect()) ||
      !arith::getNeutralElement(combiner))
    return nullptr;
  return combiner;
}

Value mlir::kiln::cuda::emitReductionStep(RewriterBase &rewriter,
                                          linalg::GenericOp op, ValueRange ivs,
                                          Value accumulator) {
  Location loc = op.getLoc();
  IRMapping mapping;
  Block &body = op.getRegion().front();
  for (OpOperand *input : op.getDpsInputOperands()) {
    BlockArgument arg = body.getArgument(input->getOperandNumber());
    if (!isa<MemRefType>(input->get().getType())) {
      mapping.map(arg, input->get());
      continue;
    }
    AffineMap map = op.getMatchingIndexingMap(input);
    SmallVector<Value> indices;
    for (AffineExpr expr : map.getResults())
      indices.push_back(affine::AffineApplyOp::create(
          rewriter, loc, AffineMap::get(map.getNumDims(), 0, expr), ivs));
    mapping.map(arg,
                memref::LoadOp::create(rewriter, loc, input->get(), indices));
  }
  mapping.map(body.getArguments().back(), accumulator);
  for (Operation &nested : body.without_terminator()) {
    // A linalg.index (an iota, a one-hot compare fused into the
    // reduction) is the loop's induction variable of its dim.
    if (auto index = dyn_cast<linalg::IndexOp>(nested)) {
      mapping.map(index.getResult(), ivs[index.getDim()]);
      continue;
    }
    rewriter.clone(nested, mapping);
  }
  return mapping.lookup(reductionCombiner(op)->getResult(0));
}

Value mlir::kiln::cuda::emitCombine(OpBuilder &builder, linalg::GenericOp op,
                                    Operation *combiner, Value accumulated,
                                    Value value) {
  bool outFirst =
      combiner->getOperand(0) == op.getRegion().front().getArguments().back();
  IRMapping mapping;
  mapping.map(combiner->getOperand(outFirst ? 0 : 1), accumulated);
  mapping.map(combiner->getOperand(outFirst ? 1 : 0), value);
  return builder.clone(*combiner, mapping)->getResult(0);
}

std::pair<Value, SmallVector<OpFoldResult>>
mlir::kiln::cuda::linearExtent(RewriterBase &rewriter, Location loc,
                               ArrayRef<Range> ranges) {
  SmallVector<OpFoldResult> basis;
  Value count = arith::ConstantIndexOp::create(rewriter, loc, 1);
  for (const Range &range : ranges) {
    basis.push_back(range.size);
    count = arith::MulIOp::create(
        rewriter, loc, count,
        getValueOrCreateConstantIndexOp(rewriter, loc, range.size));
  }
  return {count, basis};
}

Value mlir::kiln::cuda::emitStridedFold(RewriterBase &rewriter,
                                        linalg::GenericOp op,
                                        ValueRange leading, Value start,
                                        Value count, Value step,
                                        ArrayRef<OpFoldResult> basis,
                                        Value neutral) {
  Location loc = op.getLoc();
  auto fold = scf::ForOp::create(rewriter, loc, start, count, step,
                                 ValueRange{neutral});
  rewriter.setInsertionPointToStart(fold.getBody());
  SmallVector<Value> ivs(leading);
  Value linear = fold.getInductionVar();
  if (basis.size() == 1) {
    ivs.push_back(linear);
  } else {
    auto split = affine::AffineDelinearizeIndexOp::create(
        rewriter, loc, linear, basis, /*hasOuterBound=*/true);
    ivs.append(split.getResults().begin(), split.getResults().end());
  }
  Value next =
      emitReductionStep(rewriter, op, ivs, fold.getRegionIterArgs()[0]);
  scf::YieldOp::create(rewriter, loc, next);
  rewriter.setInsertionPointAfter(fold);
  return fold.getResult(0);
}
