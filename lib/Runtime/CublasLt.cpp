//===- CublasLt.cpp - kiln_gpu_gemm on cuBLASLt ---------------------------===//
//
// The matrix products of cuda artifacts (kiln_gpu_gemm, through
// CudaDriver::gemm): cuBLASLt, loaded with dlopen at the first one
// ($KILN_CUBLASLT, or libcublasLt.so.13, .12 or unversioned), with a handle,
// a workspace, and descriptors and an algorithm chosen once per shape. The
// row-major products are mapped onto cuBLASLt's column-major ones.
// KILN_CUDA_TF32=1 lets f32 products use TF32. int8 products
// (KILN_GPU_I8_I32) run on cuBLASLt's int8 gemm, whose layout rules are
// checked here so that a call that misses one fails with a message that
// names it rather than cuBLASLt's NOT_SUPPORTED.
//
//===----------------------------------------------------------------------===//

#include "CublasLt.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <vector>

namespace kiln::runtime::cuda {

namespace {

/// Resolves every function of cuBLASLt in `library`; false (with `missing`
/// set) when one is absent.
bool resolveCublasLt(void *library, CublasLtFunctions &functions,
                     std::string &missing) {
  bool ok = true;
  KILN_CUBLASLT_FUNCTIONS(KILN_CUDA_RESOLVE)
  return ok;
}

/// The largest power of two (up to 256) dividing `pointer`'s address.
uint32_t alignmentOf(const void *pointer) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0)
    alignment /= 2;
  return alignment;
}

/// Why cuBLASLt's int8 kernels cannot take `g` (empty if they can). The
/// regular (column-major) order's rules: "TN" (its A transposed, its B not:
/// ours swapped, so our A plain and our B transposed), its m and k (our n
/// and k) multiples of 4, leading dims multiples of 4, pointers 4-byte
/// aligned (so batch strides multiples of 4 elements too), and integer
/// alpha and beta (the scale type is int32).
std::string int8Violation(const KilnGpuGemm &g) {
  if (g.transA != 0 || g.transB != 1)
    return "needs transA 0 and transB 1 (got " + std::to_string(g.transA) +
           ", " + std::to_string(g.transB) + ")";
  if (g.n % 4 != 0 || g.k % 4 != 0)
    return "needs n and k multiples of 4";
  if (g.lda % 4 != 0 || g.ldb % 4 != 0 || g.ldc % 4 != 0)
    return "needs lda, ldb and ldc multiples of 4 (got " +
           std::to_string(g.lda) + ", " + std::to_string(g.ldb) + ", " +
           std::to_string(g.ldc) + ")";
  if (g.batch > 1 &&
      (g.strideA % 4 != 0 || g.strideB % 4 != 0 || g.strideC % 4 != 0))
    return "needs batch strides multiples of 4";
  if (alignmentOf(g.a) < 4 || alignmentOf(g.b) < 4 || alignmentOf(g.c) < 4)
    return "needs 4-byte aligned pointers";
  for (float scalar : {g.alpha, g.beta})
    if (scalar != static_cast<float>(static_cast<int32_t>(scalar)))
      return "needs integer alpha and beta";
  return "";
}

/// Why cuBLASLt's fp8 kernels cannot take `g` (empty if they can): "TN"
/// as for int8, its m and k (our n and k) multiples of 16, the leading
/// dims and batch strides of the e4m3 operands multiples of 16 (bytes),
/// the f32 output's multiples of 4 (16 bytes), 16-byte aligned pointers,
/// and beta 0 (kiln's fp8 products overwrite their output; an f32 C with
/// fp8 inputs would need its own checks).
std::string fp8Violation(const KilnGpuGemm &g) {
  if (g.transA != 0 || g.transB != 1)
    return "needs transA 0 and transB 1 (got " + std::to_string(g.transA) +
           ", " + std::to_string(g.transB) + ")";
  if (g.n % 16 != 0 || g.k % 16 != 0)
    return "needs n and k multiples of 16";
  if (g.lda % 16 != 0 || g.ldb % 16 != 0 || g.ldc % 4 != 0)
    return "needs lda and ldb multiples of 16 and ldc of 4 (got " +
           std::to_string(g.lda) + ", " + std::to_string(g.ldb) + ", " +
           std::to_string(g.ldc) + ")";
  if (g.batch > 1 &&
      (g.strideA % 16 != 0 || g.strideB % 16 != 0 || g.strideC % 4 != 0))
    return "needs batch strides multiples of 16 (A, B) and 4 (C)";
  if (alignmentOf(g.a) < 16 || alignmentOf(g.b) < 16 || alignmentOf(g.c) < 16)
    return "needs 16-byte aligned pointers";
  if (g.beta != 0)
    return "needs beta 0";
  return "";
}

const char *dtypeName(int32_t dtype) {
  switch (dtype) {
  case KILN_GPU_F16:
    return "f16";
  case KILN_GPU_BF16:
    return "bf16";
  case KILN_GPU_F16_F32:
    return "f16 -> f32";
  case KILN_GPU_BF16_F32:
    return "bf16 -> f32";
  case KILN_GPU_I8_I32:
    return "i8 -> i32";
  case KILN_GPU_E4M3_F32:
    return "e4m3 -> f32";
  }
  return "f32";
}

} // namespace

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
  if (Status s = lt->check(lt->lt_.create(&lt->handle_), "cublasLtCreate"); !s)
    return s;
  if (Status s =
          driver.check(driver.cu.memAlloc(&lt->workspace_, kWorkspaceBytes),
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
  bool int8 = g.dtype == KILN_GPU_I8_I32;
  bool fp8 = g.dtype == KILN_GPU_E4M3_F32;
  int dataType =
      (g.dtype == KILN_GPU_F16 || g.dtype == KILN_GPU_F16_F32)     ? CUDA_R_16F
      : (g.dtype == KILN_GPU_BF16 || g.dtype == KILN_GPU_BF16_F32) ? CUDA_R_16BF
      : int8                                                       ? CUDA_R_8I
      : fp8 ? CUDA_R_8F_E4M3
            : CUDA_R_32F;
  int resultType =
      (g.dtype == KILN_GPU_F16_F32 || g.dtype == KILN_GPU_BF16_F32 || fp8)
          ? CUDA_R_32F
      : int8 ? CUDA_R_32I
             : dataType;
  // int8: int32 accumulation, and alpha and beta int32 (CUBLAS_COMPUTE_32I
  // with an int32 output takes scale type CUDA_R_32I only).
  int compute = int8 ? CUBLAS_COMPUTE_32I
                : (tf32_ && g.dtype == KILN_GPU_F32)
                    ? CUBLAS_COMPUTE_32F_FAST_TF32
                    : CUBLAS_COMPUTE_32F;
  int scaleType = int8 ? CUDA_R_32I : CUDA_R_32F;
  Plan plan;
  auto fail = [&](Status status) -> Expected<Plan> {
    destroy(plan);
    return Status::error(what + ": " + status.message());
  };
  if (Status s = check(lt_.matmulDescCreate(&plan.desc, compute, scaleType),
                       "cublasLtMatmulDescCreate");
      !s)
    return fail(s);
  int32_t opA = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  int32_t opB = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (Status s =
          check(lt_.matmulDescSetAttribute(
                    plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)),
                "cublasLtMatmulDescSetAttribute(TRANSA)");
      !s)
    return fail(s);
  if (Status s =
          check(lt_.matmulDescSetAttribute(
                    plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)),
                "cublasLtMatmulDescSetAttribute(TRANSB)");
      !s)
    return fail(s);

  // fp8: the scales as cuBLASLt's; its A is our B. They are set again
  // before every call (the pointers change); set here too, so that the
  // heuristic sees a scaled fp8 product.
  if (fp8)
    if (Status s = setScales(plan, g); !s)
      return fail(s);

  auto layout = [&](cublasLtMatrixLayout_t &result, int64_t rows, int64_t cols,
                    int64_t ld, int64_t stride, const char *name) -> Status {
    int type = std::string(name) == "C" ? resultType : dataType;
    if (Status s = check(
            lt_.matrixLayoutCreate(&result, type, static_cast<uint64_t>(rows),
                                   static_cast<uint64_t>(cols), ld),
            std::string("cublasLtMatrixLayoutCreate(") + name + ")");
        !s)
      return s;
    int32_t count = static_cast<int32_t>(g.batch);
    if (Status s = check(lt_.matrixLayoutSetAttribute(
                             result, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                             sizeof(count)),
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
    set = lt_.matmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.c,
                                     plan.c, preference, 1, &result, &found);
  lt_.matmulPreferenceDestroy(preference);
  if (Status s = check(set, "cublasLtMatmulAlgoGetHeuristic"); !s)
    return fail(s);
  if (found < 1)
    return fail(Status::error("cublasLtMatmulAlgoGetHeuristic found no "
                              "algorithm"));
  plan.algo = result.algo;
  return plan;
}

/// cuBLASLt's A scale is our B's, its B scale our A's (the operands are
/// swapped into its column-major product).
Status CublasLt::setScales(const Plan &plan, const KilnGpuGemm &g) {
  const void *scaleOfItsA = g.scaleB, *scaleOfItsB = g.scaleA;
  if (Status s = check(lt_.matmulDescSetAttribute(
                           plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                           &scaleOfItsA, sizeof(scaleOfItsA)),
                       "cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)");
      !s)
    return s;
  return check(lt_.matmulDescSetAttribute(plan.desc,
                                          CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                          &scaleOfItsB, sizeof(scaleOfItsB)),
               "cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)");
}

Status CublasLt::gemm(CudaDriver &driver, const KilnGpuGemm &g) {
  std::string what = "kiln_gpu_gemm(" + std::string(dtypeName(g.dtype)) +
                     ", batch " + std::to_string(g.batch) + ", m " +
                     std::to_string(g.m) + ", n " + std::to_string(g.n) +
                     ", k " + std::to_string(g.k) + ")";
  if (g.dtype == KILN_GPU_I8_I32)
    if (std::string why = int8Violation(g); !why.empty())
      return Status::error(what + ": cuBLASLt's int8 gemm " + why);
  if (g.dtype == KILN_GPU_E4M3_F32)
    if (std::string why = fp8Violation(g); !why.empty())
      return Status::error(what + ": cuBLASLt's fp8 gemm " + why);
  ShapeKey key{g.dtype,
               g.transA,
               g.transB,
               g.batch,
               g.m,
               g.n,
               g.k,
               g.lda,
               g.ldb,
               g.ldc,
               g.strideA,
               g.strideB,
               g.strideC,
               alignmentOf(g.a),
               alignmentOf(g.b),
               alignmentOf(g.c)};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    Expected<Plan> plan = makePlan(g, what);
    if (!plan)
      return plan.status();
    it = plans_.emplace(key, *plan).first;
  }
  const Plan &plan = it->second;
  if (g.dtype == KILN_GPU_E4M3_F32)
    if (Status s = setScales(plan, g); !s)
      return Status::error(what + ": " + s.message());
  // alpha and beta in the scale type: int32 for int8 (checked integral).
  int32_t alpha32 = static_cast<int32_t>(g.alpha),
          beta32 = static_cast<int32_t>(g.beta);
  bool int8 = g.dtype == KILN_GPU_I8_I32;
  const void *alpha = int8 ? static_cast<const void *>(&alpha32) : &g.alpha;
  const void *beta = int8 ? static_cast<const void *>(&beta32) : &g.beta;
  return check(lt_.matmul(handle_, plan.desc, alpha, g.b, plan.a, g.a, plan.b,
                          beta, g.c, plan.c, g.c, plan.c, &plan.algo,
                          reinterpret_cast<void *>(workspace_), kWorkspaceBytes,
                          driver.stream),
               what + ": cublasLtMatmul");
}

//===----------------------------------------------------------------------===//
// CudaDriver's matrix products
//===----------------------------------------------------------------------===//

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
  if (g.dtype < KILN_GPU_F32 || g.dtype > KILN_GPU_E4M3_F32)
    return Status::error("kiln_gpu_gemm: unknown dtype " +
                         std::to_string(g.dtype));
  if ((g.transA != 0 && g.transA != 1) || (g.transB != 0 && g.transB != 1) ||
      g.batch < 0 || g.m < 0 || g.n < 0 || g.k < 0 || g.batch > INT32_MAX)
    return Status::error(
        "kiln_gpu_gemm: invalid arguments (transA " + std::to_string(g.transA) +
        ", transB " + std::to_string(g.transB) + ", batch " +
        std::to_string(g.batch) + ", m " + std::to_string(g.m) + ", n " +
        std::to_string(g.n) + ", k " + std::to_string(g.k) + ")");
  // Scales are fp8's (kiln_gpu_gemm_scaled): another product would drop
  // them and compute an unscaled result.
  if (g.dtype != KILN_GPU_E4M3_F32 && (g.scaleA || g.scaleB))
    return Status::error("kiln_gpu_gemm(" + std::string(dtypeName(g.dtype)) +
                         "): scale pointers are for e4m3 products "
                         "(KILN_GPU_E4M3_F32) only; this product would "
                         "ignore them");
  if (g.batch == 0 || g.m == 0 || g.n == 0)
    return Status::ok();
  Expected<CublasLt *> lt = cublasLt();
  if (!lt)
    return lt.status();
  return (*lt)->gemm(*this, g);
}

} // namespace kiln::runtime::cuda
