//===- CPUTarget.cpp - The CPU backend as the compiler sees it ------------===//
//
// Weights stored as the matmul's panels (kiln-pack-weights), lowering with
// kiln-cpu-pipeline; packaging links module.so against the
// OpenMP runtime copied beside it, so an artifact runs where only libc and
// libstdc++ are installed.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/CPUTarget.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Target/CPU/CPUPipeline.h"
#include "kiln/Target/CPU/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::kiln;

namespace {
class CPUTarget final : public TargetBackend {
public:
  CPUTarget(const CPUTargetOptions &host, const CPUKernelConfig &kernels)
      : host_(host), kernels_(kernels) {}

  llvm::StringRef name() const override { return "cpu"; }
  const CPUTargetOptions &host() const override { return host_; }

  llvm::Expected<std::string> prepare(ModuleOp module,
                                      ProgressLog log) const override {
    if (kernels_.packWeights == WeightPacking::None)
      return std::string("none");
    PassManager pm(module.getContext());
    KilnPackWeightsPassOptions options;
    options.panelWidth = kernels_.tileN;
    options.atLoad = kernels_.packWeights == WeightPacking::AtLoad;
    // Rows kiln-matvec-dot-products takes as dot products over the rows of
    // an [out, in] weight.
    options.dotProductRows = MatvecDotProductsPassOptions().maxRows;
    if (kernels_.bf16Dot == "amx" || kernels_.bf16Dot == "avx512")
      options.pairPanelWidth = kAMXPanelColumns;
    pm.addPass(createKilnPackWeightsPass(options));
    if (failed(pm.run(module)))
      return llvm::createStringError(
          "packing the weights into column panels failed (see the "
          "diagnostics above)");
    // What was packed, for the manifest: "f32:64", "bf16:128x2", or both.
    size_t f32 = 0, bf16 = 0;
    for (auto param : module.getOps<ParameterOp>())
      if (param->hasAttr(attrs::kPackedFrom))
        (param.getTensorType().getElementType().isBF16() ? bf16 : f32) += 1;
    std::vector<std::string> layouts;
    if (f32)
      layouts.push_back("f32:" + std::to_string(kernels_.tileN));
    if (bf16)
      layouts.push_back("bf16:" + std::to_string(kAMXPanelColumns) + "x2");
    if (layouts.empty())
      return std::string("none");
    log(llvm::Twine(f32 + bf16) +
        " linear weight(s) as the matmul's column panels (" +
        llvm::join(layouts, ", ") + "), " +
        (options.atLoad ? "packed when the artifact is loaded"
                        : "stored so in the weights file"));
    return llvm::join(layouts, ",");
  }

  llvm::Error lower(ModuleOp module, ArrayRef<std::string> keep,
                    ProgressLog log, TimingScope &timing) const override {
    log("lowering to LLVM (kiln-cpu-pipeline; " + kernels_.isa + ", " +
        kernels_.tile() + " matmul tiles)");
    if (failed(lowerToArtifactLLVM(module, keep, kernels_, &timing)))
      return llvm::createStringError(
          "lowering to LLVM failed (see the diagnostics above)");
    return llvm::Error::success();
  }

  std::map<std::string, std::string>
  manifestOptions(const CPUTargetInfo &info) const override {
    std::map<std::string, std::string> options = kernels_.manifestOptions();
    options["cpu"] = info.cpu;
    options["triple"] = info.triple;
    return options;
  }

  llvm::Error package(llvm::ArrayRef<std::string> objects,
                      llvm::StringRef directory) const override {
    // The OpenMP runtime travels with the artifact.
    llvm::SmallString<256> openmp(directory);
    llvm::sys::path::append(openmp, "libomp.so.5");
    if (std::error_code ec =
            llvm::sys::fs::copy_file(getOpenMPRuntimePath(), openmp))
      return llvm::createStringError(
          "cannot copy the OpenMP runtime '" + getOpenMPRuntimePath() +
          "' into the artifact: " + ec.message() + " (install libomp-22-dev)");
    llvm::SmallString<256> library(directory);
    llvm::sys::path::append(library, KILN_MODULE_FILE);
    return linkSharedLibrary(objects, library, {std::string(openmp)});
  }

private:
  CPUTargetOptions host_;
  CPUKernelConfig kernels_;
};
} // namespace

llvm::Expected<std::unique_ptr<TargetBackend>>
mlir::kiln::createCPUTarget(const CPUTargetOptions &host,
                            const CPUKernelOverrides &overrides) {
  auto kernels = selectCPUKernelConfig(host);
  if (!kernels)
    return kernels.takeError();
  if (llvm::Error error = applyKernelOverrides(*kernels, overrides))
    return std::move(error);
  return std::make_unique<CPUTarget>(host, *kernels);
}
