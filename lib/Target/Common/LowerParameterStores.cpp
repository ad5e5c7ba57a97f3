//===- LowerParameterStores.cpp - Parameter updates in place --------------===//
//
// kiln.store_param becomes bufferization.materialize_in_destination into
// the parameter's argument, so bufferization computes updates in the
// parameters' own buffers (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "llvm/ADT/DenseSet.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERPARAMETERSTORESPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Turns each kiln.store_param into bufferization.materialize_in_destination
/// of the value into its parameter argument, marked writable; every other
/// argument is marked read-only (the runtime maps inference weights
/// read-only). Runs right before empty-tensor elimination and bufferization:
/// a canonicalization in between would erase the unused materializations.
struct LowerParameterStoresPass
    : kiln::impl::LowerParameterStoresPassBase<LowerParameterStoresPass> {
  void runOnOperation() final {
    MLIRContext *context = &getContext();
    StringRef writable = bufferization::BufferizationDialect::kWritableAttrName;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      llvm::SmallDenseSet<unsigned> stored;
      SmallVector<kiln::StoreParamOp> stores;
      func.walk([&](kiln::StoreParamOp store) { stores.push_back(store); });
      for (kiln::StoreParamOp store : stores) {
        // The update is placed at the end of the function; inside a region
        // (an scf.if) it would land at the end of that region instead, and
        // reads after it would see a half-written buffer.
        if (store->getParentOp() != func) {
          store.emitOpError("stores a parameter inside a region; parameter "
                            "updates must be at the function's top level");
          return signalPassFailure();
        }
        auto arg = cast<BlockArgument>(store.getDest());
        if (!stored.insert(arg.getArgNumber()).second) {
          store.emitOpError("stores a parameter a second time");
          return signalPassFailure();
        }
        // At the end of the function: values read after the store (the
        // step count the bias corrections use) must not see the buffer
        // being written under them.
        OpBuilder builder(store->getBlock()->getTerminator());
        bufferization::MaterializeInDestinationOp::create(
            builder, store.getLoc(), store.getValue(), store.getDest());
        store.erase();
      }
      // The runtime passes every argument in its own buffer (inputs may
      // share one only when nothing writes them): telling LLVM lets it
      // vectorize loops that read some arguments and write others, such as
      // an optimizer update, without runtime alias checks.
      for (unsigned i = 0; i < func.getNumArguments(); ++i) {
        if (!isa<TensorType>(func.getArgument(i).getType()))
          continue;
        func.setArgAttr(i, writable,
                        BoolAttr::get(context, stored.contains(i)));
        if (func.isPublic())
          func.setArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName(),
                          UnitAttr::get(context));
      }
    }
  }
};
} // namespace
