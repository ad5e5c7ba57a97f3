//===- KilnExternalizeParameters.cpp - Parameters become arguments --------===//
//
// Lowering boundary between the graph (which names its weights) and code
// (which receives them as buffers from the runtime).
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNEXTERNALIZEPARAMETERSPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
struct KilnExternalizeParametersPass
    : kiln::impl::KilnExternalizeParametersPassBase<
          KilnExternalizeParametersPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    // Parameter order of the module: the argument order of every function.
    llvm::MapVector<StringRef, ParameterOp> parameters;
    for (auto param : module.getOps<ParameterOp>())
      parameters[param.getSymName()] = param;

    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      SmallVector<ReadParamOp> reads;
      SmallVector<WriteParamOp> writes;
      func.walk([&](ReadParamOp read) { reads.push_back(read); });
      func.walk([&](WriteParamOp write) { writes.push_back(write); });
      if (reads.empty() && writes.empty())
        continue;
      if (SymbolTable::symbolKnownUseEmpty(func, module) == false) {
        func.emitError("function '")
            << func.getSymName()
            << "' reads parameters and is called from another function; "
               "only entry points may read parameters";
        return signalPassFailure();
      }
      llvm::SmallSetVector<StringRef, 16> used;
      for (ReadParamOp read : reads)
        used.insert(read.getName());
      for (WriteParamOp write : writes)
        used.insert(write.getName());
      Block &entry = func.getBody().front();
      llvm::StringMap<Value> arguments;
      for (auto &[name, param] : parameters) {
        if (!used.contains(name))
          continue;
        unsigned index = func.getNumArguments();
        if (failed(func.insertArgument(
                index, param.getType(),
                DictionaryAttr::get(
                    &getContext(),
                    {NamedAttribute(StringAttr::get(&getContext(),
                                                    attrs::kParameter),
                                    StringAttr::get(&getContext(), name))}),
                param.getLoc())))
          return signalPassFailure();
        arguments[name] = entry.getArgument(index);
      }
      for (ReadParamOp read : reads) {
        read.replaceAllUsesWith(arguments[read.getName()]);
        read.erase();
      }
      // A write becomes a store into the argument's buffer. Reads were
      // ordered before writes by their memory effects, and a value read
      // after a write (none in the graphs Kiln builds) would now see the
      // old value, so that is rejected.
      for (WriteParamOp write : writes) {
        Value arg = arguments[write.getName()];
        for (Operation *user : arg.getUsers()) {
          Operation *ancestor = write->getBlock()->findAncestorOpInBlock(*user);
          if (ancestor && !isa<StoreParamOp>(user) &&
              write->isBeforeInBlock(ancestor)) {
            write.emitOpError("is followed by a read of '")
                << write.getName()
                << "' in the same function; reads after writes are not "
                   "supported";
            return signalPassFailure();
          }
        }
        OpBuilder builder(write);
        StoreParamOp::create(builder, write.getLoc(), write.getValue(), arg);
        write.erase();
      }
    }
    for (auto &[name, param] : parameters)
      param.erase();
  }
};
} // namespace
