//===- CublasLt.h - cuBLASLt for kiln_gpu_gemm (private) --------*- C++ -*-===//
//
// cuBLASLt, loaded with dlopen at a process's first matrix product, and what
// it keeps between products (CublasLt.cpp). Declared here for CudaDriver,
// which owns it (and destroys it before the context). Private to
// libkiln_runtime.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_CUBLASLT_H
#define KILN_LIB_RUNTIME_CUBLASLT_H

#include "CudaDriver.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace kiln::runtime::cuda {

/// cuBLASLt's functions, resolved.
struct CublasLtFunctions {
  KILN_CUBLASLT_FUNCTIONS(KILN_CUDA_DECLARE)
};

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
  using ShapeKey =
      std::tuple<int32_t, int32_t, int32_t, int64_t, int64_t, int64_t, int64_t,
                 int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, uint32_t,
                 uint32_t, uint32_t>;
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };

  std::string describe(cublasStatus_t status) const;
  Status check(cublasStatus_t status, const std::string &call) const;
  Expected<Plan> makePlan(const KilnGpuGemm &gemm, const std::string &what);
  void destroy(Plan &plan);
  /// Sets an fp8 plan's scale pointers to `gemm`'s.
  Status setScales(const Plan &plan, const KilnGpuGemm &gemm);

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

} // namespace kiln::runtime::cuda

#endif // KILN_LIB_RUNTIME_CUBLASLT_H
