//===- MergeKernelModules.cpp - one gpu.module per artifact ---------------===//
//
// Every outlined kernel moves into @kiln_kernels, one PTX module per
// artifact (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "mlir/IR/SymbolTable.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_MERGEKERNELMODULESPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

/// Name of the gpu.module that holds every kernel of an artifact.
constexpr llvm::StringLiteral kKernelModuleName = "kiln_kernels";

/// gpu-kernel-outlining makes one gpu.module per kernel (each holding a
/// gpu.func named after the function it came from, so the kernel names
/// repeat across modules). This moves every kernel into one module, each
/// named after the module it came from (unique: they were top-level
/// symbols), and points the launches at them: an artifact's kernels become
/// one PTX module (`kiln-compile --emit=ptx` prints a module ptxas accepts
/// as it is, and the runtime loads one image).
struct MergeKernelModulesPass
    : kiln::impl::MergeKernelModulesPassBase<MergeKernelModulesPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    SmallVector<gpu::GPUModuleOp> kernelModules;
    for (auto kernelModule : module.getOps<gpu::GPUModuleOp>()) {
      // Only what gpu-kernel-outlining makes: a module of one gpu.func.
      Block *body = kernelModule.getBody();
      if (body->empty() || !isa<gpu::GPUFuncOp>(body->front()) ||
          std::next(body->begin()) != body->end())
        return;
      kernelModules.push_back(kernelModule);
    }
    if (kernelModules.size() < 2)
      return;
    SymbolTable symbols(module);
    if (symbols.lookup(kKernelModuleName)) {
      module.emitError() << "a symbol is already named '" << kKernelModuleName
                         << "'";
      return signalPassFailure();
    }
    OpBuilder builder(kernelModules.front());
    auto merged =
        gpu::GPUModuleOp::create(builder, module.getLoc(), kKernelModuleName);
    // The container's symbol, then each kernel's new name.
    symbols.insert(merged);
    llvm::DenseMap<StringAttr, StringAttr> kernelOf;
    Block *body = merged.getBody();
    for (gpu::GPUModuleOp kernelModule : kernelModules) {
      auto kernel = cast<gpu::GPUFuncOp>(kernelModule.getBody()->front());
      kernel->moveBefore(body, body->end());
      SymbolTable::setSymbolName(kernel, kernelModule.getSymNameAttr());
      kernelOf[kernelModule.getSymNameAttr()] = kernelModule.getSymNameAttr();
    }
    WalkResult result = module.walk([&](gpu::LaunchFuncOp launch) {
      auto it = kernelOf.find(launch.getKernelModuleName());
      if (it == kernelOf.end()) {
        launch.emitOpError("launches a kernel of no outlined module");
        return WalkResult::interrupt();
      }
      launch.setKernelAttr(SymbolRefAttr::get(
          merged.getSymNameAttr(), {FlatSymbolRefAttr::get(it->second)}));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    for (gpu::GPUModuleOp kernelModule : kernelModules)
      kernelModule.erase();
  }
};

} // namespace
