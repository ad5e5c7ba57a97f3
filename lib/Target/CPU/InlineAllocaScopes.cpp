//===- InlineAllocaScopes.cpp - alloca scopes of OpenMP bodies ------------===//
//
// memref.alloca_scope replaced by its body (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_INLINEALLOCASCOPESPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Replaces memref.alloca_scope by its body. convert-scf-to-openmp wraps
/// each parallel loop body in one, but its region must stay a single block,
/// which scf-to-cf then breaks. Kiln's bufferized code allocates on the
/// heap, so the scope bounds no stack growth worth keeping.
struct InlineAllocaScopesPass
    : kiln::impl::InlineAllocaScopesPassBase<InlineAllocaScopesPass> {
  void runOnOperation() final {
    SmallVector<memref::AllocaScopeOp> scopes;
    getOperation().walk(
        [&](memref::AllocaScopeOp op) { scopes.push_back(op); });
    for (memref::AllocaScopeOp scope : llvm::reverse(scopes)) {
      Block &body = scope.getBodyRegion().front();
      auto yield = cast<memref::AllocaScopeReturnOp>(body.getTerminator());
      SmallVector<Value> results(yield.getResults());
      yield.erase();
      scope->getBlock()->getOperations().splice(Block::iterator(scope),
                                                body.getOperations());
      scope.replaceAllUsesWith(results);
      scope.erase();
    }
  }
};
} // namespace
