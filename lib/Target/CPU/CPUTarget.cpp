//===- CPUTarget.cpp - The CPU backend as the compiler sees it ------------===//
//
// Lowering with kiln-cpu-pipeline; packaging links module.so against the
// OpenMP runtime copied beside it, so an artifact runs where only libc and
// libstdc++ are installed.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/CPUTarget.h"
#include "kiln/Target/CPU/CPUPipeline.h"

#include "kiln/Runtime/ArtifactAbi.h"

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
