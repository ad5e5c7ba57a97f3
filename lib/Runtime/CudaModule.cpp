//===- CudaModule.cpp - Running cuda artifacts ----------------------------===//
//
// A cuda artifact's module.so is host code that calls MLIR's mgpu* functions
// (Kiln's GpuSupport.c), which forward to the KilnGpuApi table bound here
// (include/kiln/Runtime/GpuApi.h). This file checks that the device can run
// the manifest's cuda_arch and image, opens module.so, binds it a table of
// its own, and calls its entry points, returning the first failure the
// table recorded. The module's memory (parameters, inputs, results) is
// device memory.
//
// The rest of the cuda target: the driver, with one primary context and one
// stream per process, shared by every cuda artifact (CudaDriver.cpp); the
// table (CudaGpuApi.cpp); cuBLASLt for kiln_gpu_gemm, loaded at the first
// matrix product (CublasLt.cpp).
//
//===----------------------------------------------------------------------===//

#include "ArtifactModule.h"
#include "CudaDriver.h"
#include "CudaGpuApi.h"

#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/CudaTarget.h"
#include "kiln/Runtime/GpuApi.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace kiln::runtime {

using namespace cuda;

namespace {

//===----------------------------------------------------------------------===//
// CudaModule
//===----------------------------------------------------------------------===//

/// A cuda artifact's module.so, bound to a GpuSession. Its memory is device
/// memory.
class CudaModule final : public Artifact::Module {
public:
  static Expected<std::unique_ptr<Artifact::Module>>
  load(std::shared_ptr<CudaDriver> driver, const std::string &path,
       const Manifest &manifest);
  ~CudaModule() override;

  Status call(size_t index, void **args) const override;
  bool containsAddress(const void *address) const override {
    return ModuleLibrary::isInLoadedImage(address);
  }
  bool isDevice() const override { return true; }
  Expected<std::shared_ptr<void>> allocate(size_t bytes) const override {
    return driver_->allocate(bytes);
  }
  Status copyIn(void *destination, const void *hostSource,
                size_t bytes) const override;
  Status copyOut(void *hostDestination, const void *source,
                 size_t bytes) const override;
  Status fillZero(void *destination, size_t bytes) const override;
  std::shared_ptr<void> adoptResult(void *allocated) const override;

private:
  explicit CudaModule(std::shared_ptr<CudaDriver> driver)
      : driver_(std::move(driver)),
        session_(std::make_unique<GpuSession>(driver_)) {
    table_ = GpuSession::table();
    table_.context = session_.get();
  }
  /// Installs this module's table (a module.so opened by two artifacts is
  /// one image with one bound table). Call with callMutex held.
  Status bind() const;

  // Destroyed in reverse order: the library first (its destructors unload
  // kernel images through the session), the driver last.
  std::shared_ptr<CudaDriver> driver_;
  std::unique_ptr<GpuSession> session_;
  KilnGpuApi table_{};
  KilnGpuBindFunction bind_ = nullptr;
  std::unique_ptr<ModuleLibrary> library_;
};

Expected<std::unique_ptr<Artifact::Module>>
CudaModule::load(std::shared_ptr<CudaDriver> driver, const std::string &path,
                 const Manifest &manifest) {
  std::unique_ptr<CudaModule> module(new CudaModule(std::move(driver)));
  Expected<std::unique_ptr<ModuleLibrary>> library =
      ModuleLibrary::open(path, manifest);
  if (!library)
    return library.status();
  module->library_ = library.take();
  module->bind_ = reinterpret_cast<KilnGpuBindFunction>(
      module->library_->symbol("kiln_gpu_bind"));
  if (!module->bind_)
    return Status::error("'" + path +
                         "' is not a CUDA module: it does not export "
                         "kiln_gpu_bind");
  std::lock_guard<std::mutex> lock(module->driver_->callMutex);
  if (Status s = module->bind(); !s)
    return s;
  return std::unique_ptr<Artifact::Module>(std::move(module));
}

Status CudaModule::bind() const {
  if (bind_(&table_) != 0)
    return Status::error("'" + library_->path() +
                         "' rejected the runtime's GPU API (version " +
                         std::to_string(KILN_GPU_API_VERSION) + ", " +
                         std::to_string(sizeof(KilnGpuApi)) +
                         " bytes): the module was built for another "
                         "version of it; recompile the model with the "
                         "kiln-compile of this runtime's release");
  return Status::ok();
}

CudaModule::~CudaModule() {
  if (!library_)
    return;
  std::lock_guard<std::mutex> lock(driver_->callMutex);
  (void)driver_->makeCurrent();
  if (bind_)
    (void)bind();
  library_.reset();
}

Status CudaModule::call(size_t index, void **args) const {
  std::lock_guard<std::mutex> lock(driver_->callMutex);
  if (Status s = driver_->makeCurrent(); !s)
    return s;
  if (Status s = bind(); !s)
    return s;
  session_->failure.reset();
  library_->entry(index)(args);
  // Kernels run asynchronously: their failures surface here.
  synchronizeStream(*session_);
  std::optional<std::string> failure = std::move(session_->failure);
  session_->failure.reset();
  if (failure)
    return Status::error(*failure);
  return Status::ok();
}

Status CudaModule::copyIn(void *destination, const void *hostSource,
                          size_t bytes) const {
  if (bytes == 0)
    return Status::ok();
  if (Status s = driver_->makeCurrent(); !s)
    return s;
  return driver_->check(
      driver_->cu.memcpyHtoD(devicePointer(destination), hostSource, bytes),
      "cuMemcpyHtoD(" + std::to_string(bytes) + " bytes)");
}

Status CudaModule::copyOut(void *hostDestination, const void *source,
                           size_t bytes) const {
  if (bytes == 0)
    return Status::ok();
  if (Status s = driver_->makeCurrent(); !s)
    return s;
  // Unified addressing: `source` may also be a host global of the module.
  return driver_->check(driver_->cu.memcpy(devicePointer(hostDestination),
                                           devicePointer(source), bytes),
                        "cuMemcpy(" + std::to_string(bytes) +
                            " bytes to the host)");
}

Status CudaModule::fillZero(void *destination, size_t bytes) const {
  if (bytes == 0)
    return Status::ok();
  if (Status s = driver_->makeCurrent(); !s)
    return s;
  const DriverFunctions &cu = driver_->cu;
  CUresult result;
  const char *call;
  if (bytes % 4 == 0) {
    result = cu.memsetD32Async(devicePointer(destination), 0, bytes / 4,
                               driver_->stream);
    call = "cuMemsetD32Async";
  } else if (bytes % 2 == 0) {
    result = cu.memsetD16Async(devicePointer(destination), 0, bytes / 2,
                               driver_->stream);
    call = "cuMemsetD16Async";
  } else {
    std::string zeros(bytes, '\0');
    return copyIn(destination, zeros.data(), bytes);
  }
  if (Status s = driver_->check(result, call); !s)
    return s;
  return driver_->check(cu.streamSynchronize(driver_->stream),
                        "cuStreamSynchronize");
}

std::shared_ptr<void> CudaModule::adoptResult(void *allocated) const {
  std::shared_ptr<CudaDriver> driver = driver_;
  return std::shared_ptr<void>(allocated, [driver](void *p) {
    (void)driver->makeCurrent();
    driver->releaseModuleMemory(devicePointer(p));
  });
}

} // namespace

//===----------------------------------------------------------------------===//
// loadCudaModule
//===----------------------------------------------------------------------===//

Expected<std::unique_ptr<Artifact::Module>>
loadCudaModule(const std::string &dir, const std::string &path,
               const Manifest &manifest) {
  std::string manifestPath = dir + "/" KILN_MANIFEST_FILE;
  auto option = [&](const char *name) -> std::string {
    auto it = manifest.targetOptions.find(name);
    return it == manifest.targetOptions.end() || !it->second.isString
               ? ""
               : it->second.text;
  };
  std::string archText = option("cuda_arch");
  if (archText.empty())
    return Status::error("'" + manifestPath +
                         "': a cuda artifact needs target_options.cuda_arch "
                         "(\"sm_80\", \"sm_90\", ...)");
  std::optional<CudaArch> arch = parseCudaArch(archText);
  if (!arch)
    return Status::error("'" + manifestPath + "': target_options.cuda_arch "
                         "is '" + archText +
                         "', expected sm_<major><minor>[a] (sm_70 or later) "
                         "such as \"sm_90\"");
  std::string imageText = option("image");
  if (imageText.empty())
    imageText = "ptx";
  std::optional<CudaImage> image = parseCudaImage(imageText);
  if (!image)
    return Status::error("'" + manifestPath + "': target_options.image is '" +
                         imageText + "', expected " + cudaImageNames());

  Expected<std::shared_ptr<CudaDriver>> driver = CudaDriver::acquire();
  if (!driver)
    return Status::error("'" + dir + "' is a cuda artifact (" + archText +
                         ") but " + driver.message());
  const CudaDriver &d = **driver;
  std::string needs;
  if (!cudaImageRuns(*arch, *image, d.capability.major, d.capability.minor,
                     &needs))
    return Status::error(
        "'" + dir + "' is a cuda artifact for " + archText + " (" + imageText +
        ", needs " + needs + ") but CUDA device " + std::to_string(d.ordinal) +
        (d.deviceName.empty() ? "" : " (" + d.deviceName + ")") +
        " has compute capability " + std::to_string(d.capability.major) +
        "." + std::to_string(d.capability.minor) +
        "; recompile it for sm_" + std::to_string(d.capability.major) +
        std::to_string(d.capability.minor));
  return CudaModule::load(driver.take(), path, manifest);
}

Status cudaDeviceStatus() {
  Expected<std::shared_ptr<CudaDriver>> driver = CudaDriver::acquire();
  return driver ? Status::ok() : driver.status();
}

} // namespace kiln::runtime
