//===- RecordNoAliasArguments.cpp - noalias memref arguments, recorded ----===//
//
// func-to-llvm unpacks each memref argument into pointers and sizes and
// drops its llvm.noalias: this pass records where the aligned pointers of
// the noalias ones land; kiln-apply-noalias-arguments marks them.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_RECORDNOALIASARGUMENTSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
struct RecordNoAliasArgumentsPass
    : kiln::impl::RecordNoAliasArgumentsPassBase<RecordNoAliasArgumentsPass> {
  void runOnOperation() final {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      SmallVector<int32_t> positions;
      int32_t position = 0;
      for (unsigned i = 0; i < func.getNumArguments(); ++i) {
        Type type = func.getArgumentTypes()[i];
        if (isa<UnrankedMemRefType>(type)) {
          position += 2; // rank, descriptor pointer
          continue;
        }
        auto memref = dyn_cast<MemRefType>(type);
        if (!memref) {
          ++position;
          continue;
        }
        if (func.getArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName()))
          positions.push_back(position + 1);
        position += 3 + 2 * static_cast<int32_t>(memref.getRank());
      }
      if (!positions.empty())
        func->setAttr(kiln::kNoAliasPositionsAttr,
                      DenseI32ArrayAttr::get(&getContext(), positions));
    }
  }
};
} // namespace
