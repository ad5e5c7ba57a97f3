//===- FakeCublasLt.cpp - cuBLASLt matmuls on the host, for runtime tests -===//
//
// libkiln_fake_cublaslt.so exports the subset of the cuBLASLt API
// libkiln_runtime calls and computes what cuBLASLt documents, column-major:
//   D[i] = alpha * op(A[i]) * op(B[i]) + beta * C[i]
// with op(A) m x k (A stored m x k, or k x m under CUBLAS_OP_T, leading
// dimension ld >= rows), batches CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT apart by
// STRIDED_BATCH_OFFSET elements, and C not read when beta is 0. Inconsistent
// layouts fail with CUBLAS_STATUS_INVALID_VALUE, as the real library's do.
// f32 data is computed (the runtime's row-major mapping does not depend on
// the type), and int8 (CUDA_R_8I operands, CUDA_R_32I results, compute
// CUBLAS_COMPUTE_32I with int32 alpha and beta) exactly, with the rules of
// cuBLASLt's int8 kernels in the regular order enforced as NOT_SUPPORTED:
// "TN" (A transposed, B not), m and k multiples of 4, leading dims
// multiples of 4, pointers 4-byte aligned. FAKE_CUBLASLT_FAIL=<function>
// makes that function fail with CUBLAS_STATUS_NOT_SUPPORTED, and
// FAKE_CUBLASLT_REPORT=1 prints the number of matmuls (and of int8 and
// fp8 ones) to stderr when the library is unloaded. fp8 (CUDA_R_8F_E4M3
// operands, CUDA_R_32F C and D, CUBLAS_COMPUTE_32F with f32 alpha and
// beta) is computed from the e4m3 codes (kiln/Runtime/Float8.h) with the
// A and B scale pointers (CUBLASLT_MATMUL_DESC_A/B_SCALE_POINTER, read as
// one f32 each; NULL: 1), and the fp8 kernels' rules enforced as
// NOT_SUPPORTED: "TN", m and k multiples of 16, A's and B's leading dims
// multiples of 16, C's and D's of 4, pointers 16-byte aligned.
//
//===----------------------------------------------------------------------===//

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kiln/Runtime/Float8.h"

namespace {
using Status = int;
constexpr Status kSuccess = 0, kInvalidValue = 7, kNotSupported = 15;

struct Desc {
  int compute, scale;
  int32_t transA = 0, transB = 0;
  const float *scaleA = nullptr, *scaleB = nullptr;
};
struct Layout {
  int type;
  uint64_t rows, cols;
  int64_t ld;
  int32_t batch = 1;
  int64_t stride = 0;
};
struct Algo {
  uint64_t data[8];
};
struct Heuristic {
  Algo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

int gHandle;
int64_t gMatmuls = 0, gInt8Matmuls = 0, gFp8Matmuls = 0;
// The scale pointers of the last fp8 matmul (cuBLASLt's A and B).
const void *gLastScales[2] = {nullptr, nullptr};
int gLastCompute = -1, gLastScaleType = -1;
// The last matmul's leading dims of A, B, C and D (cuBLASLt's).
int64_t gLastLd[4] = {-1, -1, -1, -1};
// cudaDataType of A, B, C and D of the last cublasLtMatmul call (as
// cuBLASLt's A/B, i.e. after the runtime's row-major swap).
int gLastTypes[4] = {-1, -1, -1, -1};

bool failing(const char *name) {
  const char *fail = std::getenv("FAKE_CUBLASLT_FAIL");
  return fail && std::strcmp(fail, name) == 0;
}

/// Element (i, j) of a column-major matrix.
template <typename T> T &at(T *base, int64_t ld, int64_t i, int64_t j) {
  return base[i + j * ld];
}

constexpr int kR32F = 0, kR8I = 3, kR32I = 10, kR8FE4M3 = 28;
constexpr int kCompute32F = 68, kCompute32I = 72, kCompute32FFastTf32 = 77;

bool aligned(const void *pointer, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(pointer) % bytes == 0;
}

struct Report {
  ~Report() {
    const char *report = std::getenv("FAKE_CUBLASLT_REPORT");
    if (report && std::strcmp(report, "1") == 0)
      std::fprintf(stderr, "fake-cublaslt: %lld matmuls, %lld int8, %lld fp8\n",
                   static_cast<long long>(gMatmuls),
                   static_cast<long long>(gInt8Matmuls),
                   static_cast<long long>(gFp8Matmuls));
  }
} gReport;

/// D = alpha op(A) op(B) + beta C for one batch of one element type; T
/// the operands', R the results', S alpha's and beta's, W the sums'.
template <typename T, typename R, typename S, typename W>
void multiply(const Desc *desc, const S *alpha, const void *a, Layout *la,
              const void *b, Layout *lb, const S *beta, const void *c,
              Layout *lc, void *d, Layout *ld, int64_t m, int64_t n,
              int64_t k) {
  for (int32_t batch = 0; batch < ld->batch; ++batch) {
    auto *A = const_cast<T *>(static_cast<const T *>(a)) + batch * la->stride;
    auto *B = const_cast<T *>(static_cast<const T *>(b)) + batch * lb->stride;
    auto *C = const_cast<R *>(static_cast<const R *>(c)) + batch * lc->stride;
    R *D = static_cast<R *>(d) + batch * ld->stride;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        W sum = 0;
        for (int64_t p = 0; p < k; ++p)
          sum += W(desc->transA ? at(A, la->ld, p, i) : at(A, la->ld, i, p)) *
                 W(desc->transB ? at(B, lb->ld, j, p) : at(B, lb->ld, p, j));
        R result = static_cast<R>(*alpha * static_cast<S>(sum));
        if (*beta != 0)
          result += static_cast<R>(*beta * at(C, lc->ld, i, j));
        at(D, ld->ld, i, j) = result;
      }
  }
}
/// D = alpha · scaleA · scaleB · op(A) op(B) + beta C from e4m3 codes,
/// summed in double.
void multiplyE4M3(const Desc *desc, float alpha, const void *a, Layout *la,
                  const void *b, Layout *lb, float beta, const void *c,
                  Layout *lc, void *d, Layout *ld, int64_t m, int64_t n,
                  int64_t k) {
  float scale = (desc->scaleA ? *desc->scaleA : 1.0f) *
                (desc->scaleB ? *desc->scaleB : 1.0f);
  for (int32_t batch = 0; batch < ld->batch; ++batch) {
    const auto *A = static_cast<const uint8_t *>(a) + batch * la->stride;
    const auto *B = static_cast<const uint8_t *>(b) + batch * lb->stride;
    const auto *C = static_cast<const float *>(c) + batch * lc->stride;
    float *D = static_cast<float *>(d) + batch * ld->stride;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p)
          sum += double(kiln::decodeE4M3(desc->transA ? A[p + i * la->ld]
                                                      : A[i + p * la->ld])) *
                 double(kiln::decodeE4M3(desc->transB ? B[j + p * lb->ld]
                                                      : B[p + j * lb->ld]));
        float result = alpha * scale * static_cast<float>(sum);
        if (beta != 0)
          result += beta * C[i + j * lc->ld];
        D[i + j * ld->ld] = result;
      }
  }
}
} // namespace

extern "C" {

int64_t fake_cublaslt_matmuls() { return gMatmuls; }
int64_t fake_cublaslt_last_compute_type() { return gLastCompute; }
int64_t fake_cublaslt_last_scale_type() { return gLastScaleType; }
int64_t fake_cublaslt_int8_matmuls() { return gInt8Matmuls; }
int64_t fake_cublaslt_fp8_matmuls() { return gFp8Matmuls; }
/// The last fp8 matmul's A (0) or B (1) scale pointer, as an integer.
int64_t fake_cublaslt_last_scale_pointer(int64_t which) {
  return which >= 0 && which < 2
             ? static_cast<int64_t>(
                   reinterpret_cast<uintptr_t>(gLastScales[which]))
             : -1;
}
int64_t fake_cublaslt_last_ld(int64_t which) {
  return which >= 0 && which < 4 ? gLastLd[which] : -1;
}
int64_t fake_cublaslt_last_type(int64_t which) {
  return which >= 0 && which < 4 ? gLastTypes[which] : -1;
}

Status cublasLtCreate(void **handle) {
  *handle = &gHandle;
  return kSuccess;
}
Status cublasLtDestroy(void *handle) {
  return handle == &gHandle ? kSuccess : kInvalidValue;
}
const char *cublasLtGetStatusName(Status status) {
  switch (status) {
  case kSuccess:
    return "CUBLAS_STATUS_SUCCESS";
  case kInvalidValue:
    return "CUBLAS_STATUS_INVALID_VALUE";
  case kNotSupported:
    return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasLtGetStatusString(Status status) {
  switch (status) {
  case kSuccess:
    return "success";
  case kInvalidValue:
    return "an invalid value was used as an argument";
  case kNotSupported:
    return "the functionality requested is not supported";
  }
  return "unknown status";
}

Status cublasLtMatmulDescCreate(Desc **desc, int compute, int scale) {
  if (compute != kCompute32F && compute != kCompute32FFastTf32 &&
      compute != kCompute32I)
    return kNotSupported;
  // The scale type of alpha and beta: int32 with int32 accumulation.
  if (scale != (compute == kCompute32I ? kR32I : kR32F))
    return kNotSupported;
  *desc = new Desc{compute, scale};
  return kSuccess;
}
Status cublasLtMatmulDescDestroy(Desc *desc) {
  delete desc;
  return kSuccess;
}
Status cublasLtMatmulDescSetAttribute(Desc *desc, int attribute,
                                      const void *value, size_t bytes) {
  // CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, _B_SCALE_POINTER: a device
  // pointer, for fp8 only (with CUBLAS_COMPUTE_32F, the scales f32).
  if (attribute == 17 || attribute == 18) {
    if (bytes != sizeof(void *) || desc->compute != kCompute32F)
      return kInvalidValue;
    const float *pointer;
    std::memcpy(&pointer, value, sizeof(pointer));
    (attribute == 17 ? desc->scaleA : desc->scaleB) = pointer;
    return kSuccess;
  }
  if (bytes != sizeof(int32_t))
    return kInvalidValue;
  int32_t op;
  std::memcpy(&op, value, sizeof(op));
  if (op != 0 && op != 1)
    return kInvalidValue;
  if (attribute == 3)
    desc->transA = op;
  else if (attribute == 4)
    desc->transB = op;
  else
    return kInvalidValue;
  return kSuccess;
}

Status cublasLtMatrixLayoutCreate(Layout **layout, int type, uint64_t rows,
                                  uint64_t cols, int64_t ld) {
  if (ld < static_cast<int64_t>(rows) || ld < 1)
    return kInvalidValue;
  *layout = new Layout{type, rows, cols, ld};
  return kSuccess;
}
Status cublasLtMatrixLayoutDestroy(Layout *layout) {
  delete layout;
  return kSuccess;
}
Status cublasLtMatrixLayoutSetAttribute(Layout *layout, int attribute,
                                        const void *value, size_t bytes) {
  if (attribute == 5 && bytes == sizeof(int32_t)) {
    std::memcpy(&layout->batch, value, bytes);
    return layout->batch >= 1 ? kSuccess : kInvalidValue;
  }
  if (attribute == 6 && bytes == sizeof(int64_t)) {
    std::memcpy(&layout->stride, value, bytes);
    return kSuccess;
  }
  return kInvalidValue;
}

Status cublasLtMatmulPreferenceCreate(void **preference) {
  *preference = new int(0);
  return kSuccess;
}
Status cublasLtMatmulPreferenceDestroy(void *preference) {
  delete static_cast<int *>(preference);
  return kSuccess;
}
Status cublasLtMatmulPreferenceSetAttribute(void *, int attribute,
                                            const void *, size_t bytes) {
  if (attribute == 1)
    return bytes == sizeof(uint64_t) ? kSuccess : kInvalidValue;
  if (attribute >= 5 && attribute <= 8)
    return bytes == sizeof(uint32_t) ? kSuccess : kInvalidValue;
  return kInvalidValue;
}

Status cublasLtMatmulAlgoGetHeuristic(void *handle, Desc *desc, Layout *a,
                                      Layout *b, Layout *c, Layout *d, void *,
                                      int requested, Heuristic *results,
                                      int *returned) {
  if (failing("cublasLtMatmulAlgoGetHeuristic"))
    return kNotSupported;
  if (handle != &gHandle || !desc || !a || !b || !c || !d || requested < 1)
    return kInvalidValue;
  std::memset(results, 0, sizeof(Heuristic));
  results[0].algo.data[0] = 42;
  *returned = 1;
  return kSuccess;
}

Status cublasLtMatmul(void *handle, Desc *desc, const void *alpha,
                      const void *a, Layout *la, const void *b, Layout *lb,
                      const void *beta, const void *c, Layout *lc, void *d,
                      Layout *ld, const Algo *algo, void *workspace,
                      size_t workspaceBytes, void *stream) {
  (void)workspace;
  (void)workspaceBytes;
  (void)stream;
  if (failing("cublasLtMatmul"))
    return kNotSupported;
  if (handle != &gHandle || !algo || algo->data[0] != 42)
    return kInvalidValue;
  gLastTypes[0] = la->type;
  gLastTypes[1] = lb->type;
  gLastTypes[2] = lc->type;
  gLastTypes[3] = ld->type;
  gLastLd[0] = la->ld;
  gLastLd[1] = lb->ld;
  gLastLd[2] = lc->ld;
  gLastLd[3] = ld->ld;
  gLastScaleType = desc->scale;
  bool f32 = la->type == kR32F && lb->type == kR32F && lc->type == kR32F &&
             ld->type == kR32F && desc->compute != kCompute32I;
  bool int8 = la->type == kR8I && lb->type == kR8I && lc->type == kR32I &&
              ld->type == kR32I && desc->compute == kCompute32I;
  bool fp8 = la->type == kR8FE4M3 && lb->type == kR8FE4M3 &&
             lc->type == kR32F && ld->type == kR32F &&
             desc->compute == kCompute32F;
  // Only f32, int8 and fp8 are computed here; other types are recorded and
  // refused.
  if (!f32 && !int8 && !fp8)
    return kNotSupported;
  // Scale pointers belong to fp8 products (cuBLASLt: INVALID_VALUE for an
  // unsupported combination).
  if (!fp8 && (desc->scaleA || desc->scaleB))
    return kInvalidValue;
  int64_t m = static_cast<int64_t>(ld->rows), n = static_cast<int64_t>(ld->cols);
  int64_t k = static_cast<int64_t>(desc->transA ? la->rows : la->cols);
  // op(A) is m x k, op(B) k x n, C m x n; all batch counts equal.
  if (static_cast<int64_t>(desc->transA ? la->cols : la->rows) != m ||
      static_cast<int64_t>(desc->transB ? lb->cols : lb->rows) != k ||
      static_cast<int64_t>(desc->transB ? lb->rows : lb->cols) != n ||
      lc->rows != ld->rows || lc->cols != ld->cols ||
      la->batch != ld->batch || lb->batch != ld->batch ||
      lc->batch != ld->batch)
    return kInvalidValue;
  if (fp8) {
    // The fp8 kernels' rules (cublasLtMatmul's FP8 requirements: "TN",
    // 16-byte aligned pointers and leading dims, m and k multiples of 16).
    if (!desc->transA || desc->transB || m % 16 != 0 || k % 16 != 0 ||
        la->ld % 16 != 0 || lb->ld % 16 != 0 || lc->ld % 4 != 0 ||
        ld->ld % 4 != 0 || !aligned(a, 16) || !aligned(b, 16) ||
        !aligned(c, 16) || !aligned(d, 16) ||
        (ld->batch > 1 && (la->stride % 16 != 0 || lb->stride % 16 != 0 ||
                           lc->stride % 4 != 0 || ld->stride % 4 != 0)))
      return kNotSupported;
    gLastScales[0] = desc->scaleA;
    gLastScales[1] = desc->scaleB;
    multiplyE4M3(desc, *static_cast<const float *>(alpha), a, la, b, lb,
                 *static_cast<const float *>(beta), c, lc, d, ld, m, n, k);
    ++gFp8Matmuls;
  } else if (int8) {
    // The int8 kernels of the regular order (cublasLtMatmul's "IMMA"
    // requirements).
    if (!desc->transA || desc->transB || m % 4 != 0 || k % 4 != 0 ||
        la->ld % 4 != 0 || lb->ld % 4 != 0 || lc->ld % 4 != 0 ||
        ld->ld % 4 != 0 || !aligned(a, 4) || !aligned(b, 4) || !aligned(c, 4) ||
        !aligned(d, 4) ||
        (ld->batch > 1 && (la->stride % 4 != 0 || lb->stride % 4 != 0 ||
                           lc->stride % 4 != 0 || ld->stride % 4 != 0)))
      return kNotSupported;
    multiply<int8_t, int32_t, int32_t, int64_t>(
        desc, static_cast<const int32_t *>(alpha), a, la, b, lb,
        static_cast<const int32_t *>(beta), c, lc, d, ld, m, n, k);
    ++gInt8Matmuls;
  } else {
    multiply<float, float, float, double>(
        desc, static_cast<const float *>(alpha), a, la, b, lb,
        static_cast<const float *>(beta), c, lc, d, ld, m, n, k);
  }
  ++gMatmuls;
  gLastCompute = desc->compute;
  return kSuccess;
}

} // extern "C"
