//===- ApplyNoAliasArguments.cpp - noalias pointers, applied --------------===//
//
// After func-to-llvm: the llvm.func pointer arguments
// kiln-record-noalias-arguments recorded become noalias.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_APPLYNOALIASARGUMENTSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
struct ApplyNoAliasArgumentsPass
    : kiln::impl::ApplyNoAliasArgumentsPassBase<ApplyNoAliasArgumentsPass> {
  void runOnOperation() final {
    UnitAttr unit = UnitAttr::get(&getContext());
    for (auto func : getOperation().getOps<LLVM::LLVMFuncOp>()) {
      auto positions =
          func->getAttrOfType<DenseI32ArrayAttr>(kiln::kNoAliasPositionsAttr);
      if (!positions)
        continue;
      func->removeAttr(kiln::kNoAliasPositionsAttr);
      // func-to-llvm copies the attribute to the C-interface wrapper, whose
      // arguments are one descriptor pointer per memref: the positions do
      // not apply there.
      if (func.getName().starts_with("_mlir_ciface_"))
        continue;
      for (int32_t position : positions.asArrayRef())
        if (position < static_cast<int32_t>(func.getNumArguments()) &&
            isa<LLVM::LLVMPointerType>(func.getArgumentTypes()[position]))
          func.setArgAttr(position, LLVM::LLVMDialect::getNoAliasAttrName(),
                          unit);
    }
  }
};
} // namespace
