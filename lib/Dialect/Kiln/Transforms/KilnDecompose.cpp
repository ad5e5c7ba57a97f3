//===- KilnDecompose.cpp - Composites to primitives -----------------------===//
//
// Every composite not kept whole (Decomposition.h: named in `keep` and
// taken by the backend's fused lowering) is replaced by its decomposition,
// repeatedly, until only primitives and kept composites remain.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Decomposition.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"


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
    FailureOr<llvm::StringSet<>> kept =
        parseKeepList(&getContext(), keep, [&](StringRef name) {
          getOperation()->emitError("kiln-decompose: unknown op '")
              << name << "' in keep= (expected names like kiln.attention)";
        });
    if (failed(kept))
      return signalPassFailure();
    // A kept composite the backend's fused lowering cannot take (an
    // attention with a dynamic head dim) is decomposed after all.
    if (failed(decomposeComposites(getOperation(), [&](Operation *op) {
          return !isKeptWhole(op, *kept);
        })))
      return signalPassFailure();
  }
};
} // namespace
