//===- EmitCInterfaces.cpp - Entry points get C-interface wrappers --------===//
//
// Marks every public function with a body for `_mlir_ciface_` wrappers, so
// the runtime can call them with memref descriptors (docs/artifacts.md).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/Passes.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_EMITCINTERFACESPASS
#include "kiln/Target/Common/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
struct EmitCInterfacesPass
    : kiln::impl::EmitCInterfacesPassBase<EmitCInterfacesPass> {
  void runOnOperation() final {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal() && func.isPublic())
        func->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                      UnitAttr::get(&getContext()));
  }
};
} // namespace
