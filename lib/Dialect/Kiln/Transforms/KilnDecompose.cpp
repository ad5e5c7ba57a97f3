//===- KilnDecompose.cpp - Composites to primitives -----------------------===//
//
// Drives DecomposableOpInterface over a function: every composite not in
// `keep` is replaced by its decomposition, repeatedly, until only primitives
// (and kept composites) remain.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNDECOMPOSEPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
struct KilnDecomposePass
    : kiln::impl::KilnDecomposePassBase<KilnDecomposePass> {
  using KilnDecomposePassBase::KilnDecomposePassBase;

  void runOnOperation() final {
    llvm::StringSet<> kept;
    for (const std::string &name : keep) {
      if (!RegisteredOperationName::lookup(name, &getContext())) {
        getOperation()->emitError("kiln-decompose: unknown op '")
            << name << "' in keep= (expected names like kiln.attention)";
        return signalPassFailure();
      }
      kept.insert(name);
    }
    // Decompositions may create composites (attention creates softmax), so
    // iterate until nothing changes.
    bool changed = true;
    while (changed) {
      changed = false;
      SmallVector<DecomposableOpInterface> worklist;
      getOperation()->walk([&](DecomposableOpInterface op) {
        // A kept attention the fused lowering cannot take (a dynamic head
        // dim) is decomposed after all.
        auto attention = dyn_cast<AttentionOp>(op.getOperation());
        if (!kept.contains(op->getName().getStringRef()) ||
            (attention && !attention.hasFusedLowering()))
          worklist.push_back(op);
      });
      for (DecomposableOpInterface op : worklist) {
        IRRewriter rewriter(op->getContext());
        rewriter.setInsertionPoint(op);
        FailureOr<SmallVector<Value>> replacements = op.decompose(rewriter);
        if (failed(replacements))
          return signalPassFailure();
        rewriter.replaceOp(op, *replacements);
        changed = true;
      }
    }
  }
};
} // namespace
