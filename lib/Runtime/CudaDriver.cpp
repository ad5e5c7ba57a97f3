//===- CudaDriver.cpp - The process's CUDA driver, device and stream ------===//
//
// The CUDA driver, loaded with dlopen (libcuda.so.1, or $KILN_CUDA_DRIVER)
// when a cuda artifact first needs it: its functions resolved, the device
// chosen ($KILN_CUDA_DEVICE, or the first), and one primary context and one
// stream per process, shared by every cuda artifact; and device memory for
// parameters and inputs. Its matrix products are CublasLt.cpp's.
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"
#include "CublasLt.h"

#include <cstdlib>
#include <dlfcn.h>

namespace kiln::runtime::cuda {

namespace {

/// Resolves every function of the driver in `library`; false (with
/// `missing` set) when a required one is absent. An optional one absent
/// stays null.
bool resolveDriver(void *library, DriverFunctions &functions,
                   std::string &missing) {
  bool ok = true;
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_CUDA_RESOLVE)
#define KILN_RESOLVE_OPTIONAL(member, symbol, result, parameters)              \
  functions.member =                                                           \
      reinterpret_cast<result(*) parameters>(::dlsym(library, symbol));
  KILN_CUDA_OPTIONAL_DRIVER_FUNCTIONS(KILN_RESOLVE_OPTIONAL)
#undef KILN_RESOLVE_OPTIONAL
  return ok;
}

} // namespace

std::string CudaDriver::describe(CUresult result) const {
  const char *name = nullptr, *text = nullptr;
  if (cu.getErrorName(result, &name) != CUDA_SUCCESS || !name)
    return "CUDA error " + std::to_string(result);
  if (cu.getErrorString(result, &text) != CUDA_SUCCESS || !text)
    return name;
  return std::string(name) + ": " + text;
}

Status CudaDriver::check(CUresult result, const std::string &call) const {
  if (result == CUDA_SUCCESS)
    return Status::ok();
  return Status::error(call + ": " + describe(result));
}

Expected<std::shared_ptr<CudaDriver>> CudaDriver::acquire() {
  static std::mutex mutex;
  static std::weak_ptr<CudaDriver> current;
  std::lock_guard<std::mutex> lock(mutex);
  if (std::shared_ptr<CudaDriver> driver = current.lock())
    return driver;

  const char *override = std::getenv("KILN_CUDA_DRIVER");
  std::string path = override && *override ? override : "libcuda.so.1";
  ::dlerror();
  void *library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *why = ::dlerror();
    return Status::error("no CUDA driver was found: " +
                         std::string(why ? why : path + ": dlopen failed") +
                         " (a CUDA artifact needs an NVIDIA GPU and its "
                         "driver; compile with --target cpu for this "
                         "machine)");
  }
  std::shared_ptr<CudaDriver> driver(new CudaDriver);
  std::string missing;
  if (!resolveDriver(library, driver->cu, missing))
    return Status::error("the CUDA driver '" + path + "' lacks " + missing +
                         " (it is older than this runtime needs, or not a "
                         "CUDA driver)");
  // Before cuInit succeeds, cuGetErrorName still works (it is a table
  // lookup), so every message below names the error.
  const CudaDriver &d = *driver;
  if (Status s = d.check(d.cu.init(0), "cuInit"); !s)
    return Status::error("the CUDA driver '" + path +
                         "' failed to initialize: " + s.message());
  int count = 0;
  CUresult counted = d.cu.deviceGetCount(&count);
  if (counted == CUDA_ERROR_NO_DEVICE || (counted == CUDA_SUCCESS && !count))
    return Status::error("the CUDA driver '" + path +
                         "' reports no CUDA device");
  if (Status s = d.check(counted, "cuDeviceGetCount"); !s)
    return s;
  if (const char *chosen = std::getenv("KILN_CUDA_DEVICE"); chosen && *chosen) {
    char *end = nullptr;
    long value = std::strtol(chosen, &end, 10);
    if (*end || value < 0 || value >= count)
      return Status::error("KILN_CUDA_DEVICE is '" + std::string(chosen) +
                           "', but the CUDA devices are 0 to " +
                           std::to_string(count - 1));
    driver->ordinal = static_cast<int>(value);
  }
  if (Status s = d.check(d.cu.deviceGet(&driver->device, driver->ordinal),
                         "cuDeviceGet");
      !s)
    return s;
  if (Status s = d.check(
          d.cu.deviceGetAttribute(&driver->capability.major,
                                  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                  driver->device),
          "cuDeviceGetAttribute");
      !s)
    return s;
  if (Status s = d.check(
          d.cu.deviceGetAttribute(&driver->capability.minor,
                                  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                  driver->device),
          "cuDeviceGetAttribute");
      !s)
    return s;
  char name[256] = {0};
  if (d.cu.deviceGetName(name, sizeof(name) - 1, driver->device) ==
      CUDA_SUCCESS)
    driver->deviceName = name;
  CUcontext context = nullptr;
  if (Status s = d.check(d.cu.primaryCtxRetain(&context, driver->device),
                         "cuDevicePrimaryCtxRetain");
      !s)
    return s;
  driver->context = context;
  if (Status s = d.makeCurrent(); !s)
    return s;
  CUstream stream = nullptr;
  if (Status s = d.check(d.cu.streamCreate(&stream, 0), "cuStreamCreate"); !s)
    return s;
  driver->stream = stream;
  // Temporaries come from the device's default pool, in stream order: an
  // entry point's hundreds of allocations then cost no synchronization,
  // and the pool keeps its memory between calls (no release threshold).
  if (d.cu.memAllocAsync && d.cu.memFreeAsync && d.cu.deviceGetDefaultMemPool &&
      d.cu.memPoolSetAttribute && !std::getenv("KILN_CUDA_SYNC_ALLOC")) {
    CUmemoryPool pool = nullptr;
    uint64_t keepAll = UINT64_MAX;
    driver->streamOrderedAllocation =
        d.cu.deviceGetDefaultMemPool(&pool, driver->device) == 0 &&
        d.cu.memPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                                 &keepAll) == 0;
  }
  current = driver;
  return driver;
}

Expected<std::shared_ptr<void>> CudaDriver::allocate(size_t bytes) {
  if (Status s = makeCurrent(); !s)
    return s;
  CUdeviceptr pointer = 0;
  // cuMemAlloc rejects 0 bytes; a byte gives a valid, unique pointer.
  if (Status s = check(cu.memAlloc(&pointer, bytes ? bytes : 1),
                       "cuMemAlloc(" + std::to_string(bytes) + " bytes)");
      !s)
    return s;
  std::shared_ptr<CudaDriver> self = shared_from_this();
  return std::shared_ptr<void>(reinterpret_cast<void *>(pointer),
                               [self](void *p) {
                                 (void)self->makeCurrent();
                                 self->cu.memFree(devicePointer(p));
                               });
}

CudaDriver::~CudaDriver() {
  if (!context)
    return;
  (void)makeCurrent();
  cublasLt_.reset();
  if (stream)
    cu.streamDestroy(stream);
  cu.primaryCtxRelease(device);
}

} // namespace kiln::runtime::cuda
