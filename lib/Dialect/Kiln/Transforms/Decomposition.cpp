//===- Decomposition.cpp - Composites to primitives, one driver -----------===//
//
// The worklist that kiln-decompose and kiln-autodiff run, and the rule
// that decides which composites stay whole (Decomposition.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Decomposition.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::kiln;

FailureOr<llvm::StringSet<>> mlir::kiln::parseKeepList(
    MLIRContext *context, ArrayRef<std::string> keep,
    llvm::function_ref<void(StringRef)> emitUnknown) {
  llvm::StringSet<> kept;
  for (const std::string &name : keep) {
    if (!RegisteredOperationName::lookup(name, context)) {
      emitUnknown(name);
      return failure();
    }
    kept.insert(name);
  }
  return kept;
}

bool mlir::kiln::isKeptWhole(Operation *op, const llvm::StringSet<> &keep) {
  if (!keep.contains(op->getName().getStringRef()))
    return false;
  auto *lowering =
      op->getDialect()
          ? op->getDialect()->getRegisteredInterface<KilnLoweringInterface>()
          : nullptr;
  return !lowering || lowering->canLowerWhole(op);
}

LogicalResult mlir::kiln::decomposeComposites(
    Operation *root, llvm::function_ref<bool(Operation *)> shouldDecompose) {
  IRRewriter rewriter(root->getContext());
  bool changed = true;
  while (changed) {
    changed = false;
    SmallVector<DecomposableOpInterface> worklist;
    root->walk([&](DecomposableOpInterface op) {
      if (shouldDecompose(op))
        worklist.push_back(op);
    });
    for (DecomposableOpInterface op : worklist) {
      rewriter.setInsertionPoint(op);
      FailureOr<SmallVector<Value>> replacements = op.decompose(rewriter);
      if (failed(replacements))
        return failure();
      rewriter.replaceOp(op, *replacements);
      changed = true;
    }
  }
  return success();
}
