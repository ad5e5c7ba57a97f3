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
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/LoopLikeInterface.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_FILLPERUSEPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Splat tensor constants at least this large become fills: smaller ones
/// cost little as read-only data.
constexpr int64_t kMinSplatBytes = 4096;

/// Whether `use` is a destination its owner writes into (an init of a
/// destination-style op such as a linalg op or an insertion, a loop's
/// initial value): bufferized, it needs a buffer of its own.
bool isWrittenInto(OpOperand &use) {
  Operation *owner = use.getOwner();
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(owner))
    return dps.isDpsInit(&use);
  if (auto loop = dyn_cast<LoopLikeOpInterface>(owner))
    return llvm::any_of(loop.getInitsMutable(),
                        [&](OpOperand &init) { return &init == &use; });
  return false;
}

/// Replaces a large splat tensor constant that something writes into by a
/// fill of an empty tensor, right before the first op of its block that
/// uses it. Bufferized, a constant is read-only data in module.so that
/// each consumer writing into it copies: the gradient of gpt2-small's
/// token embedding accumulated into a 154 MB table of zeros stored in the
/// artifact and copied on every step. (One that is only read stays: a
/// fill would cost a pass over memory on every call.)
void splatToFill(arith::ConstantOp constant) {
  auto type = dyn_cast<RankedTensorType>(constant.getType());
  auto splat = dyn_cast<SplatElementsAttr>(constant.getValue());
  if (!type || !splat || !type.hasStaticShape() ||
      !type.getElementType().isIntOrFloat() ||
      type.getNumElements() * type.getElementTypeBitWidth() / 8 <
          kMinSplatBytes ||
      !llvm::any_of(constant->getUses(), isWrittenInto))
    return;
  // The earliest op of the constant's block that holds a use (canonicalize
  // gathers constants at the top of a function: a buffer filled there
  // would live through everything before its first use).
  Block *block = constant->getBlock();
  Operation *first = nullptr;
  for (Operation *user : constant->getUsers()) {
    Operation *anchor = block->findAncestorOpInBlock(*user);
    if (!anchor) {
      first = constant;
      break;
    }
    if (!first || anchor->isBeforeInBlock(first))
      first = anchor;
  }
  OpBuilder builder(first);
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
