//===- FillPerUse.cpp - A fill of its own for every use -------------------===//
//
// A linalg.fill on tensors with several uses is cloned for each (see
// Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_FILLPERUSEPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Splat tensor constants at least this large become fills: smaller ones
/// cost little as read-only data.
constexpr int64_t kMinSplatBytes = 4096;

/// Replaces a large splat tensor constant by a fill of an empty tensor.
/// Bufferized, a constant is read-only data in module.so that every
/// consumer writing into it copies: the gradient of gpt2-small's token
/// embedding accumulated into a 154 MB table of zeros stored in the
/// artifact and copied on every step.
void splatToFill(arith::ConstantOp constant) {
  auto type = dyn_cast<RankedTensorType>(constant.getType());
  auto splat = dyn_cast<SplatElementsAttr>(constant.getValue());
  if (!type || !splat || !type.hasStaticShape() ||
      !type.getElementType().isIntOrFloat() ||
      type.getNumElements() * type.getElementTypeBitWidth() / 8 <
          kMinSplatBytes)
    return;
  OpBuilder builder(constant);
  Location loc = constant.getLoc();
  Value scalar = arith::ConstantOp::create(
      builder, loc, cast<TypedAttr>(splat.getSplatValue<Attribute>()));
  Value empty = tensor::EmptyOp::create(builder, loc, type.getShape(),
                                        type.getElementType());
  Value fill = linalg::FillOp::create(builder, loc, scalar, empty).getResult(0);
  constant.replaceAllUsesWith(fill);
  constant.erase();
}

struct FillPerUsePass : kiln::impl::FillPerUsePassBase<FillPerUsePass> {
  void runOnOperation() final {
    SmallVector<arith::ConstantOp> constants;
    getOperation().walk(
        [&](arith::ConstantOp constant) { constants.push_back(constant); });
    for (arith::ConstantOp constant : constants)
      splatToFill(constant);

    SmallVector<linalg::FillOp> shared;
    getOperation().walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics() && !fill->getResult(0).hasOneUse() &&
          !fill->getResult(0).use_empty())
        shared.push_back(fill);
    });
    OpBuilder builder(&getContext());
    for (linalg::FillOp fill : shared) {
      Value result = fill->getResult(0);
      auto empty = fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>();
      // Each use with the op of the fill's block that holds it, in program
      // order. The earliest keeps the original; each other gets its own
      // fill (and empty tensor) right before that op, so that its buffer
      // lives no longer than before.
      SmallVector<std::pair<Operation *, OpOperand *>> uses;
      for (OpOperand &use : result.getUses())
        if (Operation *anchor =
                fill->getBlock()->findAncestorOpInBlock(*use.getOwner()))
          uses.emplace_back(anchor, &use);
      llvm::stable_sort(uses, [](auto a, auto b) {
        return a.first != b.first && a.first->isBeforeInBlock(b.first);
      });
      for (auto [anchor, use] : llvm::drop_begin(uses)) {
        builder.setInsertionPoint(anchor);
        IRMapping mapping;
        if (empty)
          builder.clone(*empty, mapping);
        Operation *clone = builder.clone(*fill, mapping);
        use->set(clone->getResult(0));
      }
    }
  }
};
} // namespace
