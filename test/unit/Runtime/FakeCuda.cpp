//===- FakeCuda.cpp - A CUDA driver on host memory, for runtime tests -----===//
//
// libkiln_fake_cuda.so exports the cu* functions libkiln_runtime resolves,
// under the same names, implemented on the host: device memory is aligned
// malloc (tracked, so copies and kernels from or to anything else fail as
// an illegal address would), kernel images are text naming the kernels they
// contain, and launches are counted. One kernel runs: kiln_fake_add_one_f32
// (float *data, int64_t count) adds 1 to each element in place.
//
// Knobs (read at each call): FAKE_CUDA_CC ("90": compute capability 9.0),
// FAKE_CUDA_DEVICES (device count, default 1), FAKE_CUDA_FAIL
// ("cuLaunchKernel" or "cuLaunchKernel=719": that call returns the error,
// default CUDA_ERROR_INVALID_VALUE). A PTX image containing FAKE_JIT_ERROR
// fails to JIT with a log. fake_cuda_* functions report what happened.
//
//===----------------------------------------------------------------------===//

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {
using CUresult = int;

struct FakeFunction {
  std::string name;
};
/// Owns its functions, as a real module does: a function used after its
/// module is unloaded is a use after free (reported by the sanitizer build).
struct FakeModule {
  std::string image;
  std::vector<std::unique_ptr<FakeFunction>> functions;
};

std::mutex gMutex;
std::map<uintptr_t, size_t> gAllocations; // begin -> bytes
int64_t gLaunches = 0;
int64_t gBadFrees = 0;
int64_t gModulesLoaded = 0;
int64_t gModulesUnloaded = 0;
int gPrimaryRetains = 0;
std::string gLastJitOptions;

/// The error FAKE_CUDA_FAIL asks `call` to return, or 0.
CUresult injected(const char *call) {
  const char *fail = std::getenv("FAKE_CUDA_FAIL");
  if (!fail || !*fail)
    return 0;
  std::string spec = fail;
  size_t equals = spec.find('=');
  if (spec.substr(0, equals) != call)
    return 0;
  return equals == std::string::npos ? 1 : std::atoi(spec.c_str() + equals + 1);
}

/// True when [p, p + bytes) lies inside one fake device allocation.
bool onDevice(uintptr_t p, size_t bytes) {
  std::lock_guard<std::mutex> lock(gMutex);
  auto it = gAllocations.upper_bound(p);
  if (it == gAllocations.begin())
    return false;
  --it;
  return p >= it->first && p + bytes <= it->first + it->second;
}

struct ErrorText {
  CUresult code;
  const char *name, *text;
};
constexpr ErrorText kErrors[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {218, "CUDA_ERROR_INVALID_PTX",
     "a PTX JIT compilation failed"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
};
} // namespace

namespace {
/// With FAKE_CUDA_REPORT set, one line of counts on stderr when the library
/// is unloaded (when the runtime releases the driver, or at exit), so tools
/// run on the fake driver can be checked for leaks and bad frees.
struct ExitReport {
  ~ExitReport() {
    if (!std::getenv("FAKE_CUDA_REPORT"))
      return;
    std::fprintf(stderr,
                 "fake-cuda: %lld launches, %lld modules loaded, %lld "
                 "unloaded, %zu live allocations, %lld bad frees\n",
                 static_cast<long long>(gLaunches),
                 static_cast<long long>(gModulesLoaded),
                 static_cast<long long>(gModulesUnloaded), gAllocations.size(),
                 static_cast<long long>(gBadFrees));
  }
} gExitReport;
} // namespace

#define FAIL_IF_ASKED(call)                                                    \
  if (CUresult code = injected(call))                                          \
  return code

extern "C" {

//===----------------------------------------------------------------------===//
// What the tests read
//===----------------------------------------------------------------------===//

int64_t fake_cuda_launches() { return gLaunches; }
int64_t fake_cuda_live_allocations() {
  std::lock_guard<std::mutex> lock(gMutex);
  return static_cast<int64_t>(gAllocations.size());
}
int64_t fake_cuda_bad_frees() { return gBadFrees; }
int64_t fake_cuda_modules_loaded() { return gModulesLoaded; }
int64_t fake_cuda_modules_unloaded() { return gModulesUnloaded; }
int64_t fake_cuda_primary_retains() { return gPrimaryRetains; }
int fake_cuda_is_device_pointer(const void *p) {
  return onDevice(reinterpret_cast<uintptr_t>(p), 1);
}

//===----------------------------------------------------------------------===//
// Initialization and devices
//===----------------------------------------------------------------------===//

CUresult cuGetErrorName(CUresult error, const char **name) {
  for (const ErrorText &e : kErrors)
    if (e.code == error) {
      *name = e.name;
      return 0;
    }
  *name = nullptr;
  return 1;
}

CUresult cuGetErrorString(CUresult error, const char **text) {
  for (const ErrorText &e : kErrors)
    if (e.code == error) {
      *text = e.text;
      return 0;
    }
  *text = nullptr;
  return 1;
}

CUresult cuInit(unsigned flags) {
  FAIL_IF_ASKED("cuInit");
  return flags == 0 ? 0 : 1;
}

CUresult cuDriverGetVersion(int *version) {
  *version = 13000;
  return 0;
}

CUresult cuDeviceGetCount(int *count) {
  FAIL_IF_ASKED("cuDeviceGetCount");
  const char *devices = std::getenv("FAKE_CUDA_DEVICES");
  *count = devices && *devices ? std::atoi(devices) : 1;
  return 0;
}

CUresult cuDeviceGet(int *device, int ordinal) {
  int count = 0;
  cuDeviceGetCount(&count);
  if (ordinal < 0 || ordinal >= count)
    return 101; // CUDA_ERROR_INVALID_DEVICE
  *device = ordinal;
  return 0;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  const char *cc = std::getenv("FAKE_CUDA_CC");
  int capability = cc && *cc ? std::atoi(cc) : 90;
  if (attribute == 75) // COMPUTE_CAPABILITY_MAJOR
    *value = capability / 10;
  else if (attribute == 76) // COMPUTE_CAPABILITY_MINOR
    *value = capability % 10;
  else
    return 1;
  return 0;
}

CUresult cuDeviceGetName(char *name, int length, int device) {
  std::snprintf(name, static_cast<size_t>(length), "Fake GPU %d", device);
  return 0;
}

static char gContext, gStream;

CUresult cuDevicePrimaryCtxRetain(void **context, int device) {
  (void)device;
  FAIL_IF_ASKED("cuDevicePrimaryCtxRetain");
  ++gPrimaryRetains;
  *context = &gContext;
  return 0;
}

CUresult cuDevicePrimaryCtxRelease_v2(int device) {
  (void)device;
  --gPrimaryRetains;
  return 0;
}

CUresult cuCtxSetCurrent(void *context) {
  return context == &gContext ? 0 : 1;
}

CUresult cuStreamCreate(void **stream, unsigned flags) {
  (void)flags;
  *stream = &gStream;
  return 0;
}

CUresult cuStreamSynchronize(void *stream) {
  FAIL_IF_ASKED("cuStreamSynchronize");
  return stream == &gStream ? 0 : 1;
}

CUresult cuStreamDestroy_v2(void *stream) {
  return stream == &gStream ? 0 : 1;
}

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

CUresult cuMemAlloc_v2(unsigned long long *pointer, size_t bytes) {
  FAIL_IF_ASKED("cuMemAlloc");
  if (bytes == 0)
    return 1; // as the real driver
  size_t rounded = (bytes + 255) / 256 * 256;
  void *data = std::aligned_alloc(256, rounded);
  if (!data)
    return 2;
  std::memset(data, 0xA5, rounded); // device memory starts as garbage
  std::lock_guard<std::mutex> lock(gMutex);
  gAllocations[reinterpret_cast<uintptr_t>(data)] = bytes;
  *pointer = reinterpret_cast<uintptr_t>(data);
  return 0;
}

CUresult cuMemFree_v2(unsigned long long pointer) {
  std::lock_guard<std::mutex> lock(gMutex);
  auto it = gAllocations.find(static_cast<uintptr_t>(pointer));
  if (it == gAllocations.end()) {
    ++gBadFrees;
    return 1;
  }
  gAllocations.erase(it);
  std::free(reinterpret_cast<void *>(pointer));
  return 0;
}

CUresult cuMemcpy(unsigned long long dst, unsigned long long src,
                  size_t bytes) {
  FAIL_IF_ASKED("cuMemcpy");
  std::memmove(reinterpret_cast<void *>(dst), reinterpret_cast<void *>(src),
               bytes);
  return 0;
}

CUresult cuMemcpyAsync(unsigned long long dst, unsigned long long src,
                       size_t bytes, void *stream) {
  FAIL_IF_ASKED("cuMemcpyAsync");
  if (stream != &gStream)
    return 1;
  return cuMemcpy(dst, src, bytes);
}

CUresult cuMemcpyHtoD_v2(unsigned long long dst, const void *src,
                         size_t bytes) {
  FAIL_IF_ASKED("cuMemcpyHtoD");
  if (!onDevice(static_cast<uintptr_t>(dst), bytes))
    return 1;
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return 0;
}

CUresult cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t bytes) {
  FAIL_IF_ASKED("cuMemcpyDtoH");
  if (!onDevice(static_cast<uintptr_t>(src), bytes))
    return 1;
  std::memcpy(dst, reinterpret_cast<void *>(src), bytes);
  return 0;
}

CUresult cuMemsetD32Async(unsigned long long dst, unsigned value,
                          size_t count, void *stream) {
  FAIL_IF_ASKED("cuMemsetD32Async");
  if (stream != &gStream || !onDevice(static_cast<uintptr_t>(dst), count * 4))
    return 1;
  auto *words = reinterpret_cast<uint32_t *>(dst);
  for (size_t i = 0; i < count; ++i)
    words[i] = value;
  return 0;
}

CUresult cuMemsetD16Async(unsigned long long dst, unsigned short value,
                          size_t count, void *stream) {
  FAIL_IF_ASKED("cuMemsetD16Async");
  if (stream != &gStream || !onDevice(static_cast<uintptr_t>(dst), count * 2))
    return 1;
  auto *words = reinterpret_cast<uint16_t *>(dst);
  for (size_t i = 0; i < count; ++i)
    words[i] = value;
  return 0;
}

//===----------------------------------------------------------------------===//
// Modules and launches
//===----------------------------------------------------------------------===//

/// The bytes of a module image, which, as for the real driver, has no
/// length: PTX ends at its NUL, a cubin (64-bit ELF) with its section
/// header table, a fatbin with the size its header gives.
std::string imageBytes(const void *image) {
  const auto *bytes = static_cast<const unsigned char *>(image);
  auto read = [&](size_t offset, size_t size) {
    uint64_t value = 0;
    for (size_t i = 0; i < size; ++i)
      value |= uint64_t(bytes[offset + i]) << (8 * i);
    return value;
  };
  if (std::memcmp(bytes, "\x7f" "ELF", 4) == 0) {
    uint64_t sectionHeaders = read(0x28, 8);
    uint64_t entrySize = read(0x3a, 2), count = read(0x3c, 2);
    return std::string(reinterpret_cast<const char *>(bytes),
                       sectionHeaders + entrySize * count);
  }
  if (read(0, 4) == 0xba55ed50) {
    uint64_t headerSize = read(6, 2), fatSize = read(8, 8);
    return std::string(reinterpret_cast<const char *>(bytes),
                       headerSize + fatSize);
  }
  return static_cast<const char *>(image);
}

CUresult cuModuleLoadData(void **module, const void *image) {
  FAIL_IF_ASKED("cuModuleLoadData");
  ++gModulesLoaded;
  *module = new FakeModule{imageBytes(image)};
  return 0;
}

CUresult cuModuleLoadDataEx(void **module, const void *image,
                            unsigned count, int *options, void **values) {
  FAIL_IF_ASKED("cuModuleLoadDataEx");
  std::string text = static_cast<const char *>(image);
  if (text.find("FAKE_JIT_ERROR") != std::string::npos) {
    char *log = nullptr;
    size_t logBytes = 0;
    for (unsigned i = 0; i < count; ++i) {
      if (options[i] == 5) // CU_JIT_ERROR_LOG_BUFFER
        log = static_cast<char *>(values[i]);
      if (options[i] == 6) // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
        logBytes = reinterpret_cast<uintptr_t>(values[i]);
    }
    if (log && logBytes)
      std::snprintf(log, logBytes,
                    "ptxas fatal   : fake syntax error at line 1\n");
    return 218; // CUDA_ERROR_INVALID_PTX
  }
  return cuModuleLoadData(module, image);
}

CUresult cuModuleUnload(void *module) {
  ++gModulesUnloaded;
  delete static_cast<FakeModule *>(module);
  return 0;
}

CUresult cuModuleGetFunction(void **function, void *module,
                             const char *name) {
  FAIL_IF_ASKED("cuModuleGetFunction");
  auto *m = static_cast<FakeModule *>(module);
  if (m->image.find(name) == std::string::npos)
    return 500; // CUDA_ERROR_NOT_FOUND
  m->functions.push_back(std::make_unique<FakeFunction>(FakeFunction{name}));
  *function = m->functions.back().get();
  return 0;
}

CUresult cuLaunchKernel(void *function, unsigned gridX, unsigned gridY,
                        unsigned gridZ, unsigned blockX, unsigned blockY,
                        unsigned blockZ, unsigned sharedBytes, void *stream,
                        void **params, void **extra) {
  (void)sharedBytes;
  ++gLaunches;
  FAIL_IF_ASKED("cuLaunchKernel");
  if (!function || stream != &gStream || extra || !gridX || !gridY ||
      !gridZ || !blockX || !blockY || !blockZ)
    return 1;
  auto *f = static_cast<FakeFunction *>(function);
  if (f->name == "kiln_fake_add_one_f32") {
    float *data = *static_cast<float **>(params[0]);
    int64_t count = *static_cast<int64_t *>(params[1]);
    if (count > 0 &&
        !onDevice(reinterpret_cast<uintptr_t>(data), count * sizeof(float)))
      return 700; // CUDA_ERROR_ILLEGAL_ADDRESS
    for (int64_t i = 0; i < count; ++i)
      data[i] += 1;
  }
  return 0;
}

} // extern "C"
