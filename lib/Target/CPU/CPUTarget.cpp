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
  explicit CPUTarget(const CPUTargetOptions &host) : host_(host) {}

  llvm::StringRef name() const override { return "cpu"; }
  const CPUTargetOptions &host() const override { return host_; }

  llvm::Error lower(ModuleOp module, ArrayRef<std::string> keep,
                    ProgressLog log) const override {
    log("lowering to LLVM (kiln-cpu-pipeline)");
    if (failed(lowerToArtifactLLVM(module, keep)))
      return llvm::createStringError(
          "lowering to LLVM failed (see the diagnostics above)");
    return llvm::Error::success();
  }

  std::map<std::string, std::string>
  manifestOptions(const CPUTargetInfo &info) const override {
    return {{"cpu", info.cpu}, {"triple", info.triple}};
  }

  llvm::Error package(llvm::StringRef objectPath,
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
    return linkSharedLibrary(objectPath, library, {std::string(openmp)});
  }

private:
  CPUTargetOptions host_;
};
} // namespace

std::unique_ptr<TargetBackend>
mlir::kiln::createCPUTarget(const CPUTargetOptions &host) {
  return std::make_unique<CPUTarget>(host);
}
