//===- CudaGpuApi.cpp - The GPU API table cuda modules call ---------------===//
//
// The KilnGpuApi table (include/kiln/Runtime/GpuApi.h) a cuda module.so calls
// through Kiln's mgpu* functions (GpuSupport.c): kernel images loaded and
// their kernels launched, device memory allocated, copied and filled, and
// matrix products (CudaDriver::gemm), all on the process's one stream.
//
// Failures inside an entry point cannot be returned into generated code: the
// first one is recorded with the call that failed, every later operation of
// that call becomes a no-op (freeing memory excepted), and
// CudaModule::call returns it.
//
//===----------------------------------------------------------------------===//

#include "CudaGpuApi.h"

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace kiln::runtime::cuda {

namespace {

void *loadModule(void *context, const void *image, uint64_t size,
                 int32_t kind) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed())
    return nullptr;
  const DriverFunctions &cu = session.driver->cu;
  CUmodule module = nullptr;
  if (kind == KILN_GPU_IMAGE_BINARY) {
    session.check(cu.moduleLoadData(&module, image), "cuModuleLoadData(" +
                                                         std::to_string(size) +
                                                         "-byte kernel image)");
    return module;
  }
  if (kind != KILN_GPU_IMAGE_PTX) {
    session.fail("loading a kernel image of unknown kind " +
                 std::to_string(kind));
    return nullptr;
  }
  // JIT-compile with the error log captured, so a failure says why.
  static constexpr size_t kLogBytes = 16 << 10;
  std::string errorLog(kLogBytes, '\0');
  CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER,
                            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *values[] = {errorLog.data(), reinterpret_cast<void *>(
                                         static_cast<uintptr_t>(kLogBytes))};
  CUresult result = cu.moduleLoadDataEx(&module, image, 2, options, values);
  if (result != CUDA_SUCCESS) {
    errorLog.resize(std::strlen(errorLog.c_str()));
    while (!errorLog.empty() &&
           (errorLog.back() == '\n' || errorLog.back() == ' '))
      errorLog.pop_back();
    session.fail("cuModuleLoadDataEx(" + std::to_string(size) +
                 "-byte PTX): " + session.driver->describe(result) +
                 (errorLog.empty() ? "" : "; JIT log: " + errorLog));
    return nullptr;
  }
  return module;
}

void unloadModule(void *context, void *module) {
  GpuSession &session = GpuSession::of(context);
  auto *cuModule = static_cast<CUmodule>(module);
  for (auto it = session.functions.begin(); it != session.functions.end();) {
    if (it->first.first == cuModule) {
      session.functionNames.erase(it->second);
      it = session.functions.erase(it);
    } else {
      ++it;
    }
  }
  session.driver->cu.moduleUnload(cuModule);
}

void *getFunction(void *context, void *module, const char *name) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed())
    return nullptr;
  auto key = std::make_pair(static_cast<CUmodule>(module), std::string(name));
  if (auto it = session.functions.find(key); it != session.functions.end())
    return it->second;
  CUfunction function = nullptr;
  if (!session.check(
          session.driver->cu.moduleGetFunction(&function, key.first, name),
          "cuModuleGetFunction(" + key.second + ")"))
    return nullptr;
  session.functions[key] = function;
  session.functionNames[function] = key.second;
  return function;
}

void launch(void *context, void *function, int64_t gridX, int64_t gridY,
            int64_t gridZ, int64_t blockX, int64_t blockY, int64_t blockZ,
            int32_t sharedMemoryBytes, void **params) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed())
    return;
  if (!function) {
    session.fail("cuLaunchKernel: no kernel (looking it up failed)");
    return;
  }
  std::string call = "cuLaunchKernel(" + session.kernelName(function) + ")";
  for (int64_t dim : {gridX, gridY, gridZ, blockX, blockY, blockZ})
    if (dim < 1 || dim > UINT_MAX) {
      session.fail(call + ": launch dims (" + std::to_string(gridX) + ", " +
                   std::to_string(gridY) + ", " + std::to_string(gridZ) +
                   ") x (" + std::to_string(blockX) + ", " +
                   std::to_string(blockY) + ", " + std::to_string(blockZ) +
                   ") out of range");
      return;
    }
  if (sharedMemoryBytes < 0) {
    session.fail(call + ": negative shared memory size");
    return;
  }
  session.check(session.driver->cu.launchKernel(
                    static_cast<CUfunction>(function),
                    static_cast<unsigned>(gridX), static_cast<unsigned>(gridY),
                    static_cast<unsigned>(gridZ), static_cast<unsigned>(blockX),
                    static_cast<unsigned>(blockY),
                    static_cast<unsigned>(blockZ),
                    static_cast<unsigned>(sharedMemoryBytes),
                    session.driver->stream, params, nullptr),
                call);
}

/// What generated code asks for after each launch, allocation and copy.
/// Everything of a call runs in order on the one stream and the host code
/// never reads device memory (the CUDA pipeline checks it), so these waits
/// are skipped: the call synchronizes once, when it returns. KILN_CUDA_SYNC=1
/// makes each of them wait, so that a failing kernel is named exactly.
void synchronize(void *context) {
  static const bool everyOperation = [] {
    const char *sync = std::getenv("KILN_CUDA_SYNC");
    return sync && *sync && std::string(sync) != "0";
  }();
  if (everyOperation)
    synchronizeStream(GpuSession::of(context));
}

void *allocate(void *context, uint64_t bytes) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed())
    return nullptr;
  CUdeviceptr pointer = 0;
  CudaDriver &driver = *session.driver;
  if (driver.streamOrderedAllocation) {
    if (!session.check(
            driver.cu.memAllocAsync(&pointer, bytes ? bytes : 1, driver.stream),
            "cuMemAllocAsync(" + std::to_string(bytes) + " bytes)"))
      return nullptr;
    return reinterpret_cast<void *>(pointer);
  }
  if (!session.check(driver.cu.memAlloc(&pointer, bytes ? bytes : 1),
                     "cuMemAlloc(" + std::to_string(bytes) + " bytes)"))
    return nullptr;
  return reinterpret_cast<void *>(pointer);
}

/// Frees even after a failure: the module frees its temporaries on the way
/// out of a failed call, and they would leak otherwise.
void deallocate(void *context, void *pointer) {
  GpuSession &session = GpuSession::of(context);
  if (!pointer)
    return;
  CudaDriver &driver = *session.driver;
  CUresult result = driver.releaseModuleMemory(devicePointer(pointer));
  if (!session.failed())
    session.check(result, driver.streamOrderedAllocation ? "cuMemFreeAsync"
                                                         : "cuMemFree");
}

void copy(void *context, void *destination, const void *source,
          uint64_t bytes) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed() || bytes == 0)
    return;
  session.check(session.driver->cu.memcpyAsync(devicePointer(destination),
                                               devicePointer(source), bytes,
                                               session.driver->stream),
                "cuMemcpyAsync(" + std::to_string(bytes) + " bytes)");
}

void fill32(void *context, void *destination, uint32_t value, uint64_t count) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed() || count == 0)
    return;
  session.check(session.driver->cu.memsetD32Async(devicePointer(destination),
                                                  value, count,
                                                  session.driver->stream),
                "cuMemsetD32Async");
}

void fill16(void *context, void *destination, uint16_t value, uint64_t count) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed() || count == 0)
    return;
  session.check(session.driver->cu.memsetD16Async(devicePointer(destination),
                                                  value, count,
                                                  session.driver->stream),
                "cuMemsetD16Async");
}

void gemm(void *context, const KilnGpuGemm *g) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed())
    return;
  if (Status s = session.driver->gemm(*g); !s)
    session.fail(s.message());
}

} // namespace

void synchronizeStream(GpuSession &session) {
  if (session.failed())
    return;
  session.check(session.driver->cu.streamSynchronize(session.driver->stream),
                "cuStreamSynchronize");
}

const KilnGpuApi &GpuSession::table() {
  static const KilnGpuApi table = [] {
    KilnGpuApi t{};
    t.version = KILN_GPU_API_VERSION;
    t.size = sizeof(KilnGpuApi);
    t.loadModule = loadModule;
    t.unloadModule = unloadModule;
    t.getFunction = getFunction;
    t.launch = launch;
    t.synchronize = synchronize;
    t.allocate = allocate;
    t.deallocate = deallocate;
    t.copy = copy;
    t.fill32 = fill32;
    t.fill16 = fill16;
    t.gemm = gemm;
    return t;
  }();
  return table;
}

} // namespace kiln::runtime::cuda
