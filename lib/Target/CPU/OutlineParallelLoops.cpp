//===- OutlineParallelLoops.cpp - One function per parallel loop ----------===//
//
// Outermost scf.parallel loops moved into private functions, one function
// per distinct loop (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_OUTLINEPARALLELLOOPSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Whether `value` is a constant the outlined function can rebuild.
bool isClonableConstant(Value value) {
  Operation *def = value.getDefiningOp();
  return def && def->getNumOperands() == 0 && def->getNumRegions() == 0 &&
         def->hasTrait<OpTrait::ConstantLike>();
}

/// Moves `loop` into a new private function `name` and calls it instead.
func::CallOp outline(scf::ParallelOp loop, StringRef name,
                     SymbolTable &symbols) {
  SetVector<Value> captured(loop->getOperands().begin(),
                            loop->getOperands().end());
  getUsedValuesDefinedAbove(loop->getRegions(), captured);
  SmallVector<Value> arguments, constants;
  for (Value value : captured)
    (isClonableConstant(value) ? constants : arguments).push_back(value);

  auto parent = loop->getParentOfType<func::FuncOp>();
  OpBuilder builder(parent);
  auto type = builder.getFunctionType(ValueRange(arguments).getTypes(),
                                      loop->getResultTypes());
  auto func = func::FuncOp::create(builder, loop.getLoc(), name, type);
  func.setPrivate();
  // What func-to-llvm makes of them: internal linkage (not exported from
  // the artifact's library) and LLVM's noinline (the inliner would put a
  // function called once back where it came from).
  func->setAttr(
      "llvm.linkage",
      LLVM::LinkageAttr::get(builder.getContext(), LLVM::Linkage::Internal));
  func->setAttr("passthrough",
                builder.getArrayAttr({builder.getStringAttr("noinline")}));
  symbols.insert(func);

  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  IRMapping mapping;
  for (auto [value, argument] : llvm::zip(arguments, body->getArguments()))
    mapping.map(value, argument);
  for (Value value : constants)
    builder.clone(*value.getDefiningOp(), mapping);
  Operation *clone = builder.clone(*loop, mapping);
  func::ReturnOp::create(builder, loop.getLoc(), clone->getResults());

  builder.setInsertionPoint(loop);
  auto call = func::CallOp::create(builder, loop.getLoc(), func, arguments);
  loop->replaceAllUsesWith(call.getResults());
  loop->erase();
  return call;
}

/// A hash of what `func` computes: its type and the ops of its body
/// (names, attributes, types), not the names of its values; equal for
/// functions that OperationEquivalence finds equivalent.
llvm::hash_code structuralHash(func::FuncOp func) {
  llvm::hash_code hash = hash_value(func.getFunctionType());
  func.getBody().walk([&](Operation *op) {
    hash =
        llvm::hash_combine(hash, OperationEquivalence::computeHash(
                                     op, OperationEquivalence::ignoreHashValue,
                                     OperationEquivalence::ignoreHashValue,
                                     OperationEquivalence::IgnoreLocations));
  });
  return hash;
}

/// Whether `a` and `b` compute the same thing from the same arguments.
bool equivalent(func::FuncOp a, func::FuncOp b) {
  return a.getFunctionType() == b.getFunctionType() &&
         OperationEquivalence::isRegionEquivalentTo(
             &a.getBody(), &b.getBody(), OperationEquivalence::IgnoreLocations);
}

struct OutlineParallelLoopsPass
    : kiln::impl::OutlineParallelLoopsPassBase<OutlineParallelLoopsPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    // The outlined functions so far, by structural hash: a loop that
    // repeats one already outlined (the same layer's loop in each of a
    // model's blocks, the same optimizer update of each same-shaped
    // parameter) calls that function instead of a copy of it.
    llvm::DenseMap<llvm::hash_code, SmallVector<func::FuncOp, 1>> outlined;
    for (auto func : llvm::to_vector(module.getOps<func::FuncOp>())) {
      if (func.isExternal())
        continue;
      SmallVector<scf::ParallelOp> loops;
      func.walk([&](scf::ParallelOp loop) {
        if (!loop->getParentOfType<scf::ParallelOp>())
          loops.push_back(loop);
      });
      // One loop is outlined once by OpenMP: nothing to gain.
      if (loops.size() < 2)
        continue;
      for (auto [index, loop] : llvm::enumerate(loops)) {
        func::CallOp call = outline(
            loop, (func.getName() + "_parallel" + Twine(index)).str(), symbols);
        auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
        SmallVector<func::FuncOp, 1> &same = outlined[structuralHash(callee)];
        auto existing = llvm::find_if(same, [&](func::FuncOp other) {
          return equivalent(other, callee);
        });
        if (existing == same.end()) {
          same.push_back(callee);
          continue;
        }
        call.setCalleeAttr(FlatSymbolRefAttr::get(*existing));
        symbols.erase(callee);
      }
    }
  }
};
} // namespace
