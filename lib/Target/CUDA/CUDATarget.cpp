//===- CUDATarget.cpp - The CUDA backend as the compiler sees it ----------===//
//
// Option checks with the runtime's parsers, kiln-cuda-pipeline, ptxas on
// the PTX, and a module.so of host code linked with the GPU support code.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CUDA/CUDATarget.h"

#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/CudaTarget.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::kiln;
namespace rt = ::kiln::runtime;

namespace {
llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(message.str());
}

/// Whether LLVM's NVPTX backend knows the processor `arch`. One it does not
/// know (sm_89a, sm_71: the runtime's parser takes any sm_<NN>[a]) would be
/// ignored with a warning and its code generated for the backend's default,
/// which cannot select what the kernels use (kiln-compile aborted).
bool nvptxKnowsProcessor(llvm::StringRef arch) {
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTargetMC();
  llvm::Triple triple("nvptx64-nvidia-cuda");
  std::string message;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, message);
  if (!target)
    return false;
  // An empty CPU: asking for an unknown one prints a warning.
  std::unique_ptr<llvm::MCSubtargetInfo> info(
      target->createMCSubtargetInfo(triple, "", ""));
  return info && info->isCPUStringValid(arch);
}

/// Checks `options` with the runtime's parsers (what the compiler accepts,
/// the runtime loads) and returns gpu-module-to-binary's name of the image.
llvm::Expected<std::string>
checkedBinaryFormat(const CUDATargetOptions &options) {
  if (llvm::Expected<int> arch = checkCudaArch(options.arch); !arch)
    return arch.takeError();
  std::optional<rt::CudaImage> image = rt::parseCudaImage(options.image);
  if (!image)
    return error("unknown --cuda-image '" + options.image + "' (expected " +
                 rt::cudaImageNames() + ")");
  if (*image != rt::CudaImage::Ptx &&
      !llvm::sys::fs::can_execute(options.toolkit + "/bin/ptxas"))
    return error("--cuda-image " + options.image +
                 " needs the CUDA toolkit's "
                 "ptxas, and '" +
                 options.toolkit +
                 "/bin/ptxas' is missing "
                 "(set --cuda-toolkit, or embed PTX with --cuda-image ptx)");
  switch (*image) {
  case rt::CudaImage::Ptx:
    return std::string("isa");
  case rt::CudaImage::Cubin:
    return std::string("bin");
  case rt::CudaImage::Fatbin:
    return std::string("fatbin");
  }
  llvm_unreachable("every image kind is handled");
}

/// Lowers `module` in place with kiln-cuda-pipeline for `options`, whose
/// image is gpu-module-to-binary's `format`.
llvm::Error lowerForCUDA(ModuleOp module, const CUDATargetOptions &options,
                         llvm::StringRef format, ArrayRef<std::string> keep) {
  CUDAPipelineOptions pipeline;
  pipeline.arch = options.arch;
  pipeline.image = format.str();
  pipeline.toolkit = options.toolkit;
  pipeline.keepComposites = llvm::to_vector(keep);
  if (failed(lowerToCUDAArtifactLLVM(module, pipeline)))
    return error("lowering for cuda failed (see the diagnostics above)");
  return llvm::Error::success();
}

class CUDATarget final : public TargetBackend {
public:
  /// `format`: gpu-module-to-binary's name of options.image.
  CUDATarget(const CUDATargetOptions &options, const CPUTargetOptions &host,
             std::string format)
      : options_(options), host_(host), format_(std::move(format)) {}

  llvm::StringRef name() const override { return "cuda"; }
  const CPUTargetOptions &host() const override { return host_; }

  llvm::Error lower(ModuleOp module, ArrayRef<std::string> keep,
                    ProgressLog log, TimingScope &timing) const override {
    log("lowering to host code and PTX kernels (kiln-cuda-pipeline, " +
        options_.arch + ")");
    TimingScope pipeline = timing.nest("kiln-cuda-pipeline");
    if (llvm::Error err = lowerForCUDA(module, options_, format_, keep))
      return err;
    pipeline.stop();
    if (options_.image == "ptx") {
      TimingScope ptxas = timing.nest("ptxas");
      bool checked = false;
      std::vector<KernelPTX> ptx = getEmbeddedPTX(module);
      if (llvm::Error err = checkPTXWithPtxas(ptx, options_, checked))
        return err;
      log(checked ? llvm::Twine(ptx.size()) + " PTX module(s) assemble with "
                                              "ptxas"
                  : llvm::Twine("no ptxas in '") + options_.toolkit +
                        "': the PTX was not checked");
    }
    return llvm::Error::success();
  }

  std::map<std::string, std::string>
  manifestOptions(const CPUTargetInfo &info) const override {
    return {{"cuda_arch", options_.arch},
            {"image", options_.image},
            {"ptx_version", "8.0"},
            {"host_cpu", info.cpu},
            {"triple", info.triple}};
  }

  llvm::Error package(llvm::ArrayRef<std::string> objects,
                      llvm::StringRef directory) const override {
    // Host code needs only libc: the runtime provides the GPU services
    // through the table kiln_gpu_bind installs (GpuApi.h).
    llvm::SmallString<256> library(directory);
    llvm::sys::path::append(library, KILN_MODULE_FILE);
    return linkSharedLibrary(
        objects, library, {},
        {"libkiln_module_support.a", "libkiln_gpu_module_support.a"});
  }

private:
  CUDATargetOptions options_;
  CPUTargetOptions host_;
  std::string format_;
};
} // namespace

llvm::Expected<int> mlir::kiln::checkCudaArch(const std::string &arch) {
  std::optional<rt::CudaArch> parsed = rt::parseCudaArch(arch);
  if (!parsed)
    return error("unknown --cuda-arch '" + arch +
                 "' (expected sm_70 or later, such as sm_80, sm_90 or sm_90a)");
  if (!nvptxKnowsProcessor(arch))
    return error("unknown --cuda-arch '" + arch +
                 "': LLVM's NVPTX backend has no such processor (the 'a' "
                 "variants begin at sm_90a)");
  // The kernels are PTX ISA 8.0 (CUDAPipelineOptions::ptxVersion; any CUDA
  // 12 driver loads it), which LLVM refuses to generate for sm_100 and
  // later (it aborted kiln-compile).
  int number = parsed->major * 10 + parsed->minor;
  if (number > 90)
    return error("--cuda-arch " + arch +
                 ": kiln's kernels are PTX ISA 8.0, whose newest target is "
                 "sm_90a (sm_100 and later need a newer PTX)");
  return number;
}

llvm::Expected<std::unique_ptr<TargetBackend>>
mlir::kiln::createCUDATarget(const CUDATargetOptions &options,
                             const CPUTargetOptions &host) {
  llvm::Expected<std::string> format = checkedBinaryFormat(options);
  if (!format)
    return format.takeError();
  return std::make_unique<CUDATarget>(options, host, std::move(*format));
}

llvm::Expected<std::vector<KernelPTX>>
mlir::kiln::generatePTX(ModuleOp module, const CUDATargetOptions &options,
                        ArrayRef<std::string> keep) {
  CUDATargetOptions ptxOptions = options;
  ptxOptions.image = "ptx";
  llvm::Expected<std::string> format = checkedBinaryFormat(ptxOptions);
  if (!format)
    return format.takeError();
  OwningOpRef<ModuleOp> lowered = module.clone();
  if (llvm::Error err = lowerForCUDA(*lowered, ptxOptions, *format, keep))
    return std::move(err);
  return getEmbeddedPTX(*lowered);
}

llvm::Error mlir::kiln::checkPTXWithPtxas(ArrayRef<KernelPTX> ptx,
                                          const CUDATargetOptions &options,
                                          bool &checked) {
  std::string ptxas = options.toolkit + "/bin/ptxas";
  checked = llvm::sys::fs::can_execute(ptxas);
  if (!checked)
    return llvm::Error::success();
  llvm::SmallString<128> dir;
  if (std::error_code ec =
          llvm::sys::fs::createUniqueDirectory("kiln-ptxas", dir))
    return error("cannot create a temporary directory for ptxas: " +
                 ec.message());
  llvm::scope_exit cleanup([&] { llvm::sys::fs::remove_directories(dir); });
  std::string input = (dir + "/kernel.ptx").str();
  std::string output = (dir + "/kernel.cubin").str();
  std::string log = (dir + "/ptxas.log").str();
  for (const auto &[name, text] : ptx) {
    std::error_code ec;
    {
      llvm::raw_fd_ostream os(input, ec);
      if (ec)
        return error("cannot write '" + input + "': " + ec.message());
      os << text;
    }
    llvm::SmallVector<llvm::StringRef> args = {ptxas, "-arch", options.arch,
                                               "-o",  output,  input};
    std::optional<llvm::StringRef> redirects[] = {std::nullopt, log, log};
    std::string message;
    int status = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects,
                                           0, 0, &message);
    if (status != 0) {
      std::string diagnostics;
      if (auto buffer = llvm::MemoryBuffer::getFile(log))
        diagnostics = (*buffer)->getBuffer().trim().str();
      return error("ptxas rejects the PTX of kernel module '" + name +
                   "' for " + options.arch + ": " +
                   (diagnostics.empty() ? message : diagnostics));
    }
  }
  return llvm::Error::success();
}
