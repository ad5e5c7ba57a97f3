//===- CudaDriver.h - CUDA driver and cuBLASLt APIs (private) ---*- C++ -*-===//
//
// libkiln_runtime loads the CUDA driver (libcuda.so.1) and cuBLASLt with
// dlopen at run time and never includes the toolkit's headers, so it builds
// and links on machines without CUDA. This header declares the handful of
// types, enum values and function types it calls. The values are copied
// from the CUDA 13 toolkit headers named beside each group; they are part
// of the drivers' stable ABI.
//
// It also declares CudaDriver, the process's driver, device, context and
// stream (CudaDriver.cpp), which cuBLASLt (CublasLt.cpp), the GPU API table
// (CudaGpuApi.cpp) and the cuda module (CudaModule.cpp) share. Private to
// libkiln_runtime.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_CUDADRIVER_H
#define KILN_LIB_RUNTIME_CUDADRIVER_H

#include "kiln/Runtime/CudaTarget.h"
#include "kiln/Runtime/GpuApi.h"
#include "kiln/Runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace kiln::runtime::cuda {

//===----------------------------------------------------------------------===//
// Driver API (cuda.h)
//===----------------------------------------------------------------------===//

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long; // 64-bit hosts only
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
using CUcontext = CUctx_st *;
using CUmodule = CUmod_st *;
using CUfunction = CUfunc_st *;
using CUstream = CUstream_st *;
using CUjit_option = int;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

// CUdevice_attribute
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

// CUjit_option
constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER = 3;
constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

/// Every driver entry point the runtime calls, with the symbol it is looked
/// up by (the versioned name where the driver exports one) and its type.
/// X(member, symbol, return, parameters)
#define KILN_CUDA_DRIVER_FUNCTIONS(X)                                          \
  X(init, "cuInit", CUresult, (unsigned flags))                                \
  X(driverGetVersion, "cuDriverGetVersion", CUresult, (int *version))          \
  X(getErrorName, "cuGetErrorName", CUresult, (CUresult, const char **))       \
  X(getErrorString, "cuGetErrorString", CUresult, (CUresult, const char **))   \
  X(deviceGetCount, "cuDeviceGetCount", CUresult, (int *count))                \
  X(deviceGet, "cuDeviceGet", CUresult, (CUdevice *, int ordinal))             \
  X(deviceGetAttribute, "cuDeviceGetAttribute", CUresult,                      \
    (int *value, int attribute, CUdevice))                                     \
  X(deviceGetName, "cuDeviceGetName", CUresult, (char *, int, CUdevice))       \
  X(primaryCtxRetain, "cuDevicePrimaryCtxRetain", CUresult,                    \
    (CUcontext *, CUdevice))                                                   \
  X(primaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", CUresult, (CUdevice))   \
  X(ctxSetCurrent, "cuCtxSetCurrent", CUresult, (CUcontext))                   \
  X(streamCreate, "cuStreamCreate", CUresult, (CUstream *, unsigned flags))    \
  X(streamSynchronize, "cuStreamSynchronize", CUresult, (CUstream))            \
  X(streamDestroy, "cuStreamDestroy_v2", CUresult, (CUstream))                 \
  X(memAlloc, "cuMemAlloc_v2", CUresult, (CUdeviceptr *, size_t))              \
  X(memFree, "cuMemFree_v2", CUresult, (CUdeviceptr))                          \
  X(memcpy, "cuMemcpy", CUresult, (CUdeviceptr, CUdeviceptr, size_t))          \
  X(memcpyAsync, "cuMemcpyAsync", CUresult,                                    \
    (CUdeviceptr, CUdeviceptr, size_t, CUstream))                              \
  X(memcpyHtoD, "cuMemcpyHtoD_v2", CUresult,                                   \
    (CUdeviceptr, const void *, size_t))                                       \
  X(memcpyDtoH, "cuMemcpyDtoH_v2", CUresult, (void *, CUdeviceptr, size_t))    \
  X(memsetD32Async, "cuMemsetD32Async", CUresult,                              \
    (CUdeviceptr, unsigned, size_t, CUstream))                                 \
  X(memsetD16Async, "cuMemsetD16Async", CUresult,                              \
    (CUdeviceptr, unsigned short, size_t, CUstream))                           \
  X(moduleLoadData, "cuModuleLoadData", CUresult, (CUmodule *, const void *))  \
  X(moduleLoadDataEx, "cuModuleLoadDataEx", CUresult,                          \
    (CUmodule *, const void *, unsigned, CUjit_option *, void **))             \
  X(moduleUnload, "cuModuleUnload", CUresult, (CUmodule))                      \
  X(moduleGetFunction, "cuModuleGetFunction", CUresult,                        \
    (CUfunction *, CUmodule, const char *))                                    \
  X(launchKernel, "cuLaunchKernel", CUresult,                                  \
    (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,   \
     unsigned, CUstream, void **, void **))

/// Stream-ordered allocation (drivers of CUDA 11.2 and later). Optional: a
/// driver without them gets cuMemAlloc/cuMemFree.
using CUmemoryPool = struct CUmemPoolHandle_st *;
// CUmemPool_attribute
constexpr int CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4;
#define KILN_CUDA_OPTIONAL_DRIVER_FUNCTIONS(X)                                 \
  X(memAllocAsync, "cuMemAllocAsync", CUresult,                                \
    (CUdeviceptr *, size_t, CUstream))                                         \
  X(memFreeAsync, "cuMemFreeAsync", CUresult, (CUdeviceptr, CUstream))         \
  X(deviceGetDefaultMemPool, "cuDeviceGetDefaultMemPool", CUresult,            \
    (CUmemoryPool *, CUdevice))                                                \
  X(memPoolSetAttribute, "cuMemPoolSetAttribute", CUresult,                    \
    (CUmemoryPool, int, void *))

//===----------------------------------------------------------------------===//
// cuBLASLt (cublasLt.h, cublas_api.h, library_types.h)
//===----------------------------------------------------------------------===//

using cublasStatus_t = int;
struct cublasLtContext;
struct cublasLtMatmulDescOpaque_t;
struct cublasLtMatrixLayoutOpaque_t;
struct cublasLtMatmulPreferenceOpaque_t;
using cublasLtHandle_t = cublasLtContext *;
using cublasLtMatmulDesc_t = cublasLtMatmulDescOpaque_t *;
using cublasLtMatrixLayout_t = cublasLtMatrixLayoutOpaque_t *;
using cublasLtMatmulPreference_t = cublasLtMatmulPreferenceOpaque_t *;

/// cublasLtMatmulAlgo_t: opaque, 8 words.
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
/// cublasLtMatmulHeuristicResult_t.
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

constexpr cublasStatus_t CUBLAS_STATUS_SUCCESS = 0;
// cudaDataType_t (library_types.h)
constexpr int CUDA_R_32F = 0;
constexpr int CUDA_R_16F = 2;
constexpr int CUDA_R_16BF = 14;
constexpr int CUDA_R_8I = 3;
constexpr int CUDA_R_32I = 10;
constexpr int CUDA_R_8F_E4M3 = 28;
// cublasComputeType_t (cublas_api.h)
constexpr int CUBLAS_COMPUTE_32F = 68;
constexpr int CUBLAS_COMPUTE_32I = 72;
constexpr int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
// cublasOperation_t (cublas_api.h)
constexpr int32_t CUBLAS_OP_N = 0;
constexpr int32_t CUBLAS_OP_T = 1;
// cublasLtMatmulDescAttributes_t: int32_t values
constexpr int CUBLASLT_MATMUL_DESC_TRANSA = 3;
constexpr int CUBLASLT_MATMUL_DESC_TRANSB = 4;
constexpr int CUBLASLT_MATMUL_DESC_A_SCALE_POINTER = 17;
constexpr int CUBLASLT_MATMUL_DESC_B_SCALE_POINTER = 18;
// cublasLtMatrixLayoutAttribute_t: BATCH_COUNT is int32_t, the offset
// int64_t (elements)
constexpr int CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5;
constexpr int CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6;
// cublasLtMatmulPreferenceAttributes_t: workspace uint64_t, alignments
// uint32_t
constexpr int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8;

/// X(member, symbol, return, parameters), as for the driver.
#define KILN_CUBLASLT_FUNCTIONS(X)                                             \
  X(create, "cublasLtCreate", cublasStatus_t, (cublasLtHandle_t *))            \
  X(destroy, "cublasLtDestroy", cublasStatus_t, (cublasLtHandle_t))            \
  X(getStatusName, "cublasLtGetStatusName", const char *, (cublasStatus_t))    \
  X(getStatusString, "cublasLtGetStatusString", const char *,                  \
    (cublasStatus_t))                                                          \
  X(matmulDescCreate, "cublasLtMatmulDescCreate", cublasStatus_t,              \
    (cublasLtMatmulDesc_t *, int computeType, int scaleType))                  \
  X(matmulDescDestroy, "cublasLtMatmulDescDestroy", cublasStatus_t,            \
    (cublasLtMatmulDesc_t))                                                    \
  X(matmulDescSetAttribute, "cublasLtMatmulDescSetAttribute", cublasStatus_t,  \
    (cublasLtMatmulDesc_t, int, const void *, size_t))                         \
  X(matrixLayoutCreate, "cublasLtMatrixLayoutCreate", cublasStatus_t,          \
    (cublasLtMatrixLayout_t *, int type, uint64_t rows, uint64_t cols,         \
     int64_t ld))                                                              \
  X(matrixLayoutDestroy, "cublasLtMatrixLayoutDestroy", cublasStatus_t,        \
    (cublasLtMatrixLayout_t))                                                  \
  X(matrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute",              \
    cublasStatus_t, (cublasLtMatrixLayout_t, int, const void *, size_t))       \
  X(matmulPreferenceCreate, "cublasLtMatmulPreferenceCreate", cublasStatus_t,  \
    (cublasLtMatmulPreference_t *))                                            \
  X(matmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy",                \
    cublasStatus_t, (cublasLtMatmulPreference_t))                              \
  X(matmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute",      \
    cublasStatus_t, (cublasLtMatmulPreference_t, int, const void *, size_t))   \
  X(matmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic", cublasStatus_t, \
    (cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,           \
     cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,   \
     cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *,       \
     int *))                                                                   \
  X(matmul, "cublasLtMatmul", cublasStatus_t,                                  \
    (cublasLtHandle_t, cublasLtMatmulDesc_t, const void *alpha,                \
     const void *a, cublasLtMatrixLayout_t, const void *b,                     \
     cublasLtMatrixLayout_t, const void *beta, const void *c,                  \
     cublasLtMatrixLayout_t, void *d, cublasLtMatrixLayout_t,                  \
     const cublasLtMatmulAlgo_t *, void *workspace, size_t workspaceBytes,     \
     CUstream))

//===----------------------------------------------------------------------===//
// Function tables
//===----------------------------------------------------------------------===//

/// X(member, symbol, return, parameters) for the lists above, in a struct:
/// a member pointing to the function, null until resolved.
#define KILN_CUDA_DECLARE(member, symbol, result, parameters)                  \
  result(*member) parameters = nullptr;

/// X(member, symbol, return, parameters) for the lists above, in a function
/// with `void *library` (from dlopen; the caller includes <dlfcn.h>), a
/// struct `functions` of KILN_CUDA_DECLARE members, `bool ok` and
/// `std::string missing`: looks the function up. The first one absent sets
/// `ok` false and `missing` to its symbol; those after it are skipped.
#define KILN_CUDA_RESOLVE(member, symbol, result, parameters)                  \
  if (ok) {                                                                    \
    functions.member =                                                         \
        reinterpret_cast<result(*) parameters>(::dlsym(library, symbol));      \
    if (!functions.member) {                                                   \
      ok = false;                                                              \
      missing = symbol;                                                        \
    }                                                                          \
  }

/// The driver's functions, resolved (CudaDriver.cpp).
struct DriverFunctions {
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_CUDA_DECLARE)
  KILN_CUDA_OPTIONAL_DRIVER_FUNCTIONS(KILN_CUDA_DECLARE)
};

//===----------------------------------------------------------------------===//
// The process's driver (CudaDriver.cpp)
//===----------------------------------------------------------------------===//

/// A device address as a pointer, as the driver takes it.
inline CUdeviceptr devicePointer(const void *pointer) {
  return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointer));
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
  /// use; CublasLt.cpp).
  Status gemm(const KilnGpuGemm &gemm);

private:
  CudaDriver() = default;
  Expected<CublasLt *> cublasLt();

  std::mutex cublasLtMutex_;
  std::unique_ptr<CublasLt> cublasLt_;
};

} // namespace kiln::runtime::cuda

#endif // KILN_LIB_RUNTIME_CUDADRIVER_H
