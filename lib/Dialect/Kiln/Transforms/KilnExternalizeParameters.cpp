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
      func.walk([&](ReadParamOp read) { reads.push_back(read); });
      if (reads.empty())
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
                                                    "kiln.parameter"),
                                    StringAttr::get(&getContext(), name))}),
                param.getLoc())))
          return signalPassFailure();
        arguments[name] = entry.getArgument(index);
      }
      for (ReadParamOp read : reads) {
        read.replaceAllUsesWith(arguments[read.getName()]);
        read.erase();
      }
    }
    for (auto &[name, param] : parameters)
      param.erase();
  }
};
} // namespace
