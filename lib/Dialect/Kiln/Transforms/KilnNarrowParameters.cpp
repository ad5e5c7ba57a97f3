//===- KilnNarrowParameters.cpp - Store what is only read narrow ----------===//
//
// A mixed-precision model (--dtype bf16) keeps f32 parameters and casts
// each to bf16 where it is read: training needs the f32 values (the
// optimizer updates them), inference only ever uses the bf16 ones. For an
// inference artifact, a parameter read only through casts to one narrower
// float type is stored in that type: the compiler rounds its weights once
// when it writes them (the same rounding the cast did on every call), the
// weights file is half the size, and a forward no longer reads 4 bytes and
// writes 2 per weight before it can use it.
//
//===----------------------------------------------------------------------===//

#include "LinearWeights.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNNARROWPARAMETERSPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
struct KilnNarrowParametersPass
    : kiln::impl::KilnNarrowParametersPassBase<KilnNarrowParametersPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    // Every read and write of each parameter, in module order.
    llvm::MapVector<StringRef, SmallVector<ReadParamOp>> reads;
    llvm::DenseSet<StringRef> written;
    module.walk([&](Operation *op) {
      if (auto read = dyn_cast<ReadParamOp>(op))
        reads[read.getName()].push_back(read);
      else if (auto write = dyn_cast<WriteParamOp>(op))
        written.insert(write.getName());
    });
    for (auto param : module.getOps<ParameterOp>()) {
      RankedTensorType type = param.getTensorType();
      StringRef name = param.getSymName();
      // A parameter the compiler fills in itself (a quantized, compressed
      // or pruned part, optimizer state, one carrying calibration
      // statistics: any kiln.* attribute) keeps its type.
      bool described = isFilledByCompiler(param);
      if (!type.getElementType().isF32() || written.contains(name) || described)
        continue;
      auto found = reads.find(name);
      if (found == reads.end())
        continue;
      // The one narrower float type every use casts to.
      Type narrow;
      bool onlyCasts = true;
      for (ReadParamOp read : found->second)
        for (Operation *user : read->getUsers()) {
          auto cast = dyn_cast<CastOp>(user);
          Type to = cast ? getElementTypeOrSelf(cast.getType()) : Type();
          if (!to || !(to.isBF16() || to.isF16()) || (narrow && to != narrow)) {
            onlyCasts = false;
            break;
          }
          narrow = to;
        }
      if (!onlyCasts || !narrow)
        continue;
      auto narrowType = type.clone(narrow);
      param.setTypeAttr(TypeAttr::get(narrowType));
      for (ReadParamOp read : found->second) {
        read.getResult().setType(narrowType);
        for (Operation *user : llvm::make_early_inc_range(read->getUsers())) {
          user->getResult(0).replaceAllUsesWith(read.getResult());
          user->erase();
        }
      }
    }
  }
};
} // namespace
