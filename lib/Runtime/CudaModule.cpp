//===- CudaModule.cpp - Running cuda artifacts ----------------------------===//
//
// A cuda artifact's module.so is host code that calls MLIR's mgpu* functions
// (Kiln's GpuSupport.c), which forward to the KilnGpuApi table bound here
// (include/kiln/Runtime/GpuApi.h). This file owns everything CUDA: the
// driver, loaded with dlopen (libcuda.so.1, or $KILN_CUDA_DRIVER), one
// primary context and one stream per process, shared by every cuda artifact;
// device memory for parameters, inputs and results; kernel images; and
// cuBLASLt for kiln_gpu_gemm, loaded at the first matrix product.
//
// Failures inside an entry point cannot be returned into generated code: the
// first one is recorded with the call that failed, every later operation of
// that call becomes a no-op (freeing memory excepted), and
// CudaModule::call returns it.
//
//===----------------------------------------------------------------------===//

#include "ArtifactModule.h"
#include "CudaDriver.h"

#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/CudaTarget.h"
#include "kiln/Runtime/GpuApi.h"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

namespace kiln::runtime {

using namespace cuda;

namespace {

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

struct DriverFunctions {
#define KILN_DECLARE(member, symbol, result, parameters)                       \
  result(*member) parameters = nullptr;
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_DECLARE)
  KILN_CUDA_OPTIONAL_DRIVER_FUNCTIONS(KILN_DECLARE)
};

struct CublasLtFunctions {
  KILN_CUBLASLT_FUNCTIONS(KILN_DECLARE)
#undef KILN_DECLARE
};

/// Resolves every function of `table` in `library`; false (with `missing`
/// set) when one is absent.
#define KILN_RESOLVE(member, symbol, result, parameters)                       \
  if (ok) {                                                                    \
    functions.member =                                                         \
        reinterpret_cast<result(*) parameters>(::dlsym(library, symbol));      \
    if (!functions.member) {                                                   \
      ok = false;                                                              \
      missing = symbol;                                                        \
    }                                                                          \
  }

bool resolveDriver(void *library, DriverFunctions &functions,
                   std::string &missing) {
  bool ok = true;
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_RESOLVE)
#define KILN_RESOLVE_OPTIONAL(member, symbol, result, parameters)              \
  functions.member =                                                           \
      reinterpret_cast<result(*) parameters>(::dlsym(library, symbol));
  KILN_CUDA_OPTIONAL_DRIVER_FUNCTIONS(KILN_RESOLVE_OPTIONAL)
#undef KILN_RESOLVE_OPTIONAL
  return ok;
}

bool resolveCublasLt(void *library, CublasLtFunctions &functions,
                     std::string &missing) {
  bool ok = true;
  KILN_CUBLASLT_FUNCTIONS(KILN_RESOLVE)
  return ok;
}
#undef KILN_RESOLVE

CUdeviceptr devicePointer(const void *pointer) {
  return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointer));
}

/// The largest power of two (up to 256) dividing `pointer`'s address.
uint32_t alignmentOf(const void *pointer) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0)
    alignment /= 2;
  return alignment;
}

class CublasLt;

/// The process's CUDA driver, device, primary context and stream. Shared by
/// every cuda artifact (and kept alive by their device buffers); released
/// when the last goes. The driver library itself stays loaded.
class CudaDriver : public std::enable_shared_from_this<CudaDriver> {
public:
  /// The process's driver, loading it on first use.
  static Expected<std::shared_ptr<CudaDriver>> acquire();
  ~CudaDriver();

  DriverFunctions cu;
  CUdevice device = 0;
  int ordinal = 0;
  CUcontext context = nullptr;
  CUstream stream = nullptr;
  CudaArch capability;
  std::string deviceName;
  /// Module temporaries and results come from cuMemAllocAsync's default
  /// pool (and go back with cuMemFreeAsync) when the driver has it.
  bool streamOrderedAllocation = false;
  /// Frees a pointer the module allocated (through the table).
  CUresult releaseModuleMemory(CUdeviceptr pointer) {
    return streamOrderedAllocation ? cu.memFreeAsync(pointer, stream)
                                   : cu.memFree(pointer);
  }
  /// Serializes entry-point calls of all cuda artifacts: they share the
  /// stream, and a module.so opened twice shares its bound table.
  std::mutex callMutex;

  /// "CUDA_ERROR_INVALID_VALUE: invalid argument".
  std::string describe(CUresult result) const;
  /// Ok, or "<call>: <describe(result)>".
  Status check(CUresult result, const std::string &call) const;
  /// Makes the context current on the calling thread.
  Status makeCurrent() const {
    return check(cu.ctxSetCurrent(context), "cuCtxSetCurrent");
  }
  /// Device memory, freed (through this driver) with its last owner.
  Expected<std::shared_ptr<void>> allocate(size_t bytes);
  /// A row-major matrix product on the stream (cuBLASLt, loaded on first
  /// use).
  Status gemm(const KilnGpuGemm &gemm);

private:
  CudaDriver() = default;
  Expected<CublasLt *> cublasLt();

  std::mutex cublasLtMutex_;
  std::unique_ptr<CublasLt> cublasLt_;
};

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
  if (const char *chosen = std::getenv("KILN_CUDA_DEVICE");
      chosen && *chosen) {
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
  if (Status s = d.check(d.cu.deviceGetAttribute(
                             &driver->capability.major,
                             CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                             driver->device),
                         "cuDeviceGetAttribute");
      !s)
    return s;
  if (Status s = d.check(d.cu.deviceGetAttribute(
                             &driver->capability.minor,
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

//===----------------------------------------------------------------------===//
// cuBLASLt
//===----------------------------------------------------------------------===//

/// cuBLASLt loaded, a handle, a workspace, and the descriptors and chosen
/// algorithm of every gemm shape seen so far.
class CublasLt {
public:
  static constexpr uint64_t kWorkspaceBytes = 32u << 20;

  static Expected<std::unique_ptr<CublasLt>> load(CudaDriver &driver);
  ~CublasLt();
  Status gemm(CudaDriver &driver, const KilnGpuGemm &gemm);

private:
  /// Everything but the pointers' values and alpha/beta.
  using ShapeKey = std::tuple<int32_t, int32_t, int32_t, int64_t, int64_t,
                              int64_t, int64_t, int64_t, int64_t, int64_t,
                              int64_t, int64_t, int64_t, uint32_t, uint32_t,
                              uint32_t>;
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };

  std::string describe(cublasStatus_t status) const;
  Status check(cublasStatus_t status, const std::string &call) const;
  Expected<Plan> makePlan(const KilnGpuGemm &gemm, const std::string &what);
  void destroy(Plan &plan);

  std::string path_;
  CublasLtFunctions lt_;
  cublasLtHandle_t handle_ = nullptr;
  /// Owned by the driver that owns this (a buffer's shared_ptr to the
  /// driver would keep it alive forever).
  CudaDriver *driver_ = nullptr;
  CUdeviceptr workspace_ = 0;
  bool tf32_ = false;
  std::map<ShapeKey, Plan> plans_;
};

Expected<std::unique_ptr<CublasLt>> CublasLt::load(CudaDriver &driver) {
  std::vector<std::string> candidates;
  const char *override = std::getenv("KILN_CUBLASLT");
  if (override && *override)
    candidates.push_back(override);
  else
    candidates = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
  void *library = nullptr;
  std::string tried, path;
  for (const std::string &candidate : candidates) {
    ::dlerror();
    library = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library) {
      path = candidate;
      break;
    }
    const char *why = ::dlerror();
    tried += (tried.empty() ? "" : "; ") +
             std::string(why ? why : candidate + ": dlopen failed");
  }
  if (!library)
    return Status::error("cuBLASLt not found (tried " + tried +
                         "); set KILN_CUBLASLT=/path/libcublasLt.so.N");
  std::unique_ptr<CublasLt> lt(new CublasLt);
  lt->path_ = path;
  lt->driver_ = &driver;
  std::string missing;
  if (!resolveCublasLt(library, lt->lt_, missing))
    return Status::error("cuBLASLt '" + path + "' lacks " + missing);
  if (Status s = lt->check(lt->lt_.create(&lt->handle_), "cublasLtCreate");
      !s)
    return s;
  if (Status s = driver.check(driver.cu.memAlloc(&lt->workspace_,
                                                  kWorkspaceBytes),
                              "cuMemAlloc(cuBLASLt workspace)");
      !s)
    return s;
  const char *tf32 = std::getenv("KILN_CUDA_TF32");
  lt->tf32_ = tf32 && std::strcmp(tf32, "1") == 0;
  return lt;
}

CublasLt::~CublasLt() {
  for (auto &[key, plan] : plans_)
    destroy(plan);
  if (handle_)
    lt_.destroy(handle_);
  if (workspace_)
    driver_->cu.memFree(workspace_);
}

void CublasLt::destroy(Plan &plan) {
  if (plan.a)
    lt_.matrixLayoutDestroy(plan.a);
  if (plan.b)
    lt_.matrixLayoutDestroy(plan.b);
  if (plan.c)
    lt_.matrixLayoutDestroy(plan.c);
  if (plan.desc)
    lt_.matmulDescDestroy(plan.desc);
  plan = Plan();
}

std::string CublasLt::describe(cublasStatus_t status) const {
  const char *name = lt_.getStatusName(status);
  const char *text = lt_.getStatusString(status);
  std::string result = name ? name : "cuBLAS status " + std::to_string(status);
  if (text && (!name || std::strcmp(name, text) != 0))
    result += std::string(": ") + text;
  return result;
}

Status CublasLt::check(cublasStatus_t status, const std::string &call) const {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status::ok();
  return Status::error(call + ": " + describe(status));
}

/// cuBLASLt is column-major. A row-major m x n matrix C with row stride ldc
/// is, read column-major, the n x m matrix C^T with leading dimension ldc;
/// so the product C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T,
/// i.e. with A and B swapped (and m and n), each keeping its own transpose
/// flag: B stored row-major k x n is column-major n x k = op(B)^T already
/// (no transpose), and stored n x k it is column-major k x n, transposed.
Expected<CublasLt::Plan> CublasLt::makePlan(const KilnGpuGemm &g,
                                            const std::string &what) {
  int dataType = (g.dtype == KILN_GPU_F16 || g.dtype == KILN_GPU_F16_F32)
                     ? CUDA_R_16F
                 : (g.dtype == KILN_GPU_BF16 || g.dtype == KILN_GPU_BF16_F32)
                     ? CUDA_R_16BF
                     : CUDA_R_32F;
  int resultType = (g.dtype == KILN_GPU_F16_F32 || g.dtype == KILN_GPU_BF16_F32)
                       ? CUDA_R_32F
                       : dataType;
  int compute = (tf32_ && g.dtype == KILN_GPU_F32)
                    ? CUBLAS_COMPUTE_32F_FAST_TF32
                    : CUBLAS_COMPUTE_32F;
  Plan plan;
  auto fail = [&](Status status) -> Expected<Plan> {
    destroy(plan);
    return Status::error(what + ": " + status.message());
  };
  if (Status s = check(lt_.matmulDescCreate(&plan.desc, compute, CUDA_R_32F),
                       "cublasLtMatmulDescCreate");
      !s)
    return fail(s);
  int32_t opA = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  int32_t opB = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (Status s = check(lt_.matmulDescSetAttribute(plan.desc,
                                                  CUBLASLT_MATMUL_DESC_TRANSA,
                                                  &opA, sizeof(opA)),
                       "cublasLtMatmulDescSetAttribute(TRANSA)");
      !s)
    return fail(s);
  if (Status s = check(lt_.matmulDescSetAttribute(plan.desc,
                                                  CUBLASLT_MATMUL_DESC_TRANSB,
                                                  &opB, sizeof(opB)),
                       "cublasLtMatmulDescSetAttribute(TRANSB)");
      !s)
    return fail(s);

  auto layout = [&](cublasLtMatrixLayout_t &result, int64_t rows,
                    int64_t cols, int64_t ld, int64_t stride,
                    const char *name) -> Status {
    int type = std::string(name) == "C" ? resultType : dataType;
    if (Status s = check(lt_.matrixLayoutCreate(&result, type,
                                                static_cast<uint64_t>(rows),
                                                static_cast<uint64_t>(cols),
                                                ld),
                         std::string("cublasLtMatrixLayoutCreate(") + name +
                             ")");
        !s)
      return s;
    int32_t count = static_cast<int32_t>(g.batch);
    if (Status s = check(lt_.matrixLayoutSetAttribute(
                             result, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                             &count, sizeof(count)),
                         "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)");
        !s)
      return s;
    return check(lt_.matrixLayoutSetAttribute(
                     result, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                     &stride, sizeof(stride)),
                 "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
  };
  // cuBLASLt's A is our B, its B our A; its C (and D) is our C read as n x m.
  if (Status s = layout(plan.a, g.transB ? g.k : g.n, g.transB ? g.n : g.k,
                        g.ldb, g.strideB, "B");
      !s)
    return fail(s);
  if (Status s = layout(plan.b, g.transA ? g.m : g.k, g.transA ? g.k : g.m,
                        g.lda, g.strideA, "A");
      !s)
    return fail(s);
  if (Status s = layout(plan.c, g.n, g.m, g.ldc, g.strideC, "C"); !s)
    return fail(s);

  cublasLtMatmulPreference_t preference = nullptr;
  if (Status s = check(lt_.matmulPreferenceCreate(&preference),
                       "cublasLtMatmulPreferenceCreate");
      !s)
    return fail(s);
  uint64_t workspace = kWorkspaceBytes;
  uint32_t alignA = alignmentOf(g.b), alignB = alignmentOf(g.a),
           alignC = alignmentOf(g.c);
  cublasStatus_t set = lt_.matmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
      sizeof(workspace));
  if (set == CUBLAS_STATUS_SUCCESS)
    set = lt_.matmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA,
        sizeof(alignA));
  if (set == CUBLAS_STATUS_SUCCESS)
    set = lt_.matmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignB,
        sizeof(alignB));
  for (int attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    if (set == CUBLAS_STATUS_SUCCESS)
      set = lt_.matmulPreferenceSetAttribute(preference, attribute, &alignC,
                                             sizeof(alignC));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (set == CUBLAS_STATUS_SUCCESS)
    set = lt_.matmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b,
                                     plan.c, plan.c, preference, 1, &result,
                                     &found);
  lt_.matmulPreferenceDestroy(preference);
  if (Status s = check(set, "cublasLtMatmulAlgoGetHeuristic"); !s)
    return fail(s);
  if (found < 1)
    return fail(Status::error("cublasLtMatmulAlgoGetHeuristic found no "
                              "algorithm"));
  plan.algo = result.algo;
  return plan;
}

Status CublasLt::gemm(CudaDriver &driver, const KilnGpuGemm &g) {
  std::string what = "kiln_gpu_gemm(" +
                     std::string(g.dtype == KILN_GPU_F16    ? "f16"
                                 : g.dtype == KILN_GPU_BF16 ? "bf16"
                                 : g.dtype == KILN_GPU_F16_F32
                                     ? "f16 -> f32"
                                 : g.dtype == KILN_GPU_BF16_F32 ? "bf16 -> f32"
                                                                : "f32") +
                     ", batch " + std::to_string(g.batch) + ", m " +
                     std::to_string(g.m) + ", n " + std::to_string(g.n) +
                     ", k " + std::to_string(g.k) + ")";
  ShapeKey key{g.dtype,  g.transA,         g.transB,        g.batch,
               g.m,      g.n,              g.k,             g.lda,
               g.ldb,    g.ldc,            g.strideA,       g.strideB,
               g.strideC, alignmentOf(g.a), alignmentOf(g.b), alignmentOf(g.c)};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    Expected<Plan> plan = makePlan(g, what);
    if (!plan)
      return plan.status();
    it = plans_.emplace(key, *plan).first;
  }
  const Plan &plan = it->second;
  return check(lt_.matmul(handle_, plan.desc, &g.alpha, g.b, plan.a, g.a,
                          plan.b, &g.beta, g.c, plan.c, g.c, plan.c,
                          &plan.algo, reinterpret_cast<void *>(workspace_),
                          kWorkspaceBytes,
                          driver.stream),
               what + ": cublasLtMatmul");
}

Expected<CublasLt *> CudaDriver::cublasLt() {
  std::lock_guard<std::mutex> lock(cublasLtMutex_);
  if (!cublasLt_) {
    Expected<std::unique_ptr<CublasLt>> loaded = CublasLt::load(*this);
    if (!loaded)
      return loaded.status();
    cublasLt_ = loaded.take();
  }
  return cublasLt_.get();
}

Status CudaDriver::gemm(const KilnGpuGemm &g) {
  if (g.dtype < KILN_GPU_F32 || g.dtype > KILN_GPU_BF16_F32)
    return Status::error("kiln_gpu_gemm: unknown dtype " +
                         std::to_string(g.dtype));
  if ((g.transA != 0 && g.transA != 1) || (g.transB != 0 && g.transB != 1) ||
      g.batch < 0 || g.m < 0 || g.n < 0 || g.k < 0 || g.batch > INT32_MAX)
    return Status::error("kiln_gpu_gemm: invalid arguments (transA " +
                         std::to_string(g.transA) + ", transB " +
                         std::to_string(g.transB) + ", batch " +
                         std::to_string(g.batch) + ", m " +
                         std::to_string(g.m) + ", n " + std::to_string(g.n) +
                         ", k " + std::to_string(g.k) + ")");
  if (g.batch == 0 || g.m == 0 || g.n == 0)
    return Status::ok();
  Expected<CublasLt *> lt = cublasLt();
  if (!lt)
    return lt.status();
  return (*lt)->gemm(*this, g);
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

//===----------------------------------------------------------------------===//
// The table module.so calls
//===----------------------------------------------------------------------===//

/// The state behind one module.so's KilnGpuApi table: the first failure of
/// the current call, and the kernels looked up so far.
struct GpuSession {
  explicit GpuSession(std::shared_ptr<CudaDriver> driver)
      : driver(std::move(driver)) {}

  std::shared_ptr<CudaDriver> driver;
  std::optional<std::string> failure;
  std::map<std::pair<CUmodule, std::string>, CUfunction> functions;
  std::map<CUfunction, std::string> functionNames;

  bool failed() const { return failure.has_value(); }
  void fail(std::string message) {
    if (!failure)
      failure = std::move(message);
  }
  /// Records `result` when it is an error; true when it is not.
  bool check(CUresult result, const std::string &call) {
    if (result == CUDA_SUCCESS)
      return true;
    fail(call + ": " + driver->describe(result));
    return false;
  }
  std::string kernelName(void *function) const {
    auto it = functionNames.find(static_cast<CUfunction>(function));
    return it == functionNames.end() ? "?" : it->second;
  }

  static GpuSession &of(void *context) {
    return *static_cast<GpuSession *>(context);
  }
  static const KilnGpuApi &table();
};

void *loadModule(void *context, const void *image, uint64_t size,
                 int32_t kind) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed())
    return nullptr;
  const DriverFunctions &cu = session.driver->cu;
  CUmodule module = nullptr;
  if (kind == KILN_GPU_IMAGE_BINARY) {
    session.check(cu.moduleLoadData(&module, image),
                  "cuModuleLoadData(" + std::to_string(size) +
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
  void *values[] = {errorLog.data(),
                    reinterpret_cast<void *>(static_cast<uintptr_t>(kLogBytes))};
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
  if (!session.check(session.driver->cu.moduleGetFunction(
                         &function, key.first, name),
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

void synchronizeStream(GpuSession &session) {
  if (session.failed())
    return;
  session.check(session.driver->cu.streamSynchronize(session.driver->stream),
                "cuStreamSynchronize");
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
    if (!session.check(driver.cu.memAllocAsync(&pointer, bytes ? bytes : 1,
                                               driver.stream),
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
  session.check(session.driver->cu.memcpyAsync(
                    devicePointer(destination), devicePointer(source), bytes,
                    session.driver->stream),
                "cuMemcpyAsync(" + std::to_string(bytes) + " bytes)");
}

void fill32(void *context, void *destination, uint32_t value,
            uint64_t count) {
  GpuSession &session = GpuSession::of(context);
  if (session.failed() || count == 0)
    return;
  session.check(session.driver->cu.memsetD32Async(devicePointer(destination),
                                                  value, count,
                                                  session.driver->stream),
                "cuMemsetD32Async");
}

void fill16(void *context, void *destination, uint16_t value,
            uint64_t count) {
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
                         " bytes); recompile the model with a matching "
                         "kiln-compile");
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
  if (bytes % 4 == 0) {
    result = cu.memsetD32Async(devicePointer(destination), 0, bytes / 4,
                               driver_->stream);
  } else if (bytes % 2 == 0) {
    result = cu.memsetD16Async(devicePointer(destination), 0, bytes / 2,
                               driver_->stream);
  } else {
    std::string zeros(bytes, '\0');
    return copyIn(destination, zeros.data(), bytes);
  }
  if (Status s = driver_->check(result, "cuMemsetAsync"); !s)
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
