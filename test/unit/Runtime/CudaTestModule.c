/*===- CudaTestModule.c - A hand-written CUDA module.so for runtime tests -===//
//
// What kiln-compile's CUDA host code does, by hand: a global constructor
// registers kernel images with mgpuModuleLoad / mgpuModuleLoadJIT (before
// the runtime binds the module), entry points allocate device results with
// mgpuMemAlloc, copy with mgpuMemcpy and launch kernels with
// mgpuModuleGetFunction + mgpuLaunchKernel; gemm calls kiln_gpu_gemm. It is
// linked with kiln_gpu_module_support and runs on the fake CUDA driver,
// whose one kernel, kiln_fake_add_one_f32(float *data, int64_t count), adds 1
// in place. Entry points (w: F32 [4], m: F32 [4] optimizer state):
//   forward(x: F32 [?]) -> y = x + 1, v = w + 1
//   alias(x: F32 [?]) -> a = x + 1, b (a's buffer), c (x itself), d (w)
//   transposed(x: F32 [?, 4]) -> y = x, returned column-major at offset 1
//   train(x: F32 [4]) -> w += 1 and m += 1 in place; returns m (a copy)
//   gemm(a, b, c: F32 [?]) -> c after kiln_gpu_gemm with the arguments
//       kiln_test_set_gemm stored (kiln_gpu_gemm_scaled, with scale
//       pointers into b, after kiln_test_set_gemm_scales)
//   missing_kernel() -> y: launches a kernel the image does not have
//   jit_error() -> y: launches a kernel of a PTX image that fails to JIT
//
//===----------------------------------------------------------------------===*/

#include "kiln/Runtime/ArtifactAbi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

void *mgpuModuleLoad(void *data, size_t gpuBlobSize);
void *mgpuModuleLoadJIT(void *data, int optLevel);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *stream);
void mgpuStreamSynchronize(void *stream);
void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, size_t paramsCount);
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream);
void kiln_gpu_gemm(int32_t dtype, int32_t transA, int32_t transB,
                   int64_t batch, int64_t m, int64_t n, int64_t k,
                   const void *a, int64_t lda, int64_t strideA, const void *b,
                   int64_t ldb, int64_t strideB, void *c, int64_t ldc,
                   int64_t strideC, float alpha, float beta);
void kiln_gpu_gemm_scaled(int32_t dtype, int32_t transA, int32_t transB,
                          int64_t batch, int64_t m, int64_t n, int64_t k,
                          const void *a, int64_t lda, int64_t strideA,
                          const void *b, int64_t ldb, int64_t strideB, void *c,
                          int64_t ldc, int64_t strideC, float alpha, float beta,
                          const void *scaleA, const void *scaleB);

typedef struct { float *allocated, *aligned; int64_t offset, sizes[1], strides[1]; } M1;
typedef struct { float *allocated, *aligned; int64_t offset, sizes[2], strides[2]; } M2;

/* A "cubin": the fake driver finds kernels by name in the image's text. */
static char kImage[] = "fake cubin: kiln_fake_add_one_f32";
static char kBadPtx[] = "// FAKE_JIT_ERROR\n.entry kiln_fake_add_one_f32";
static void *gImage, *gBadPtx;

__attribute__((constructor)) static void registerImages(void) {
  gImage = mgpuModuleLoad(kImage, sizeof(kImage));
  gBadPtx = mgpuModuleLoadJIT(kBadPtx, 2);
}

__attribute__((destructor)) static void unregisterImages(void) {
  mgpuModuleUnload(gImage);
  mgpuModuleUnload(gBadPtx);
}

int kiln_abi_version(void) { return KILN_MODULE_ABI_VERSION; }

static void set1(M1 *m, float *buffer, int64_t n) {
  m->allocated = m->aligned = buffer;
  m->offset = 0;
  m->sizes[0] = n;
  m->strides[0] = 1;
}

static void addOne(void *image, const char *kernel, float *data, int64_t n) {
  void *stream = mgpuStreamCreate();
  void *function = mgpuModuleGetFunction(image, kernel);
  void *params[] = {&data, &n};
  mgpuLaunchKernel(function, (n + 127) / 128 + (n == 0), 1, 1, 128, 1, 1, 0,
                   stream, params, NULL, 2);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}

/* A device copy of a rank-1 f32 descriptor plus one. */
static float *plusOne(const M1 *x) {
  int64_t n = x->sizes[0];
  float *y = mgpuMemAlloc(n * sizeof(float), NULL, false);
  mgpuMemcpy(y, x->aligned + x->offset, n * sizeof(float), NULL);
  addOne(gImage, "kiln_fake_add_one_f32", y, n);
  return y;
}

struct ForwardResults { M1 y, v; };
void kiln_entry_forward(void **args) {
  struct ForwardResults *r = args[0];
  const M1 *x = args[1], *w = args[2];
  set1(&r->y, plusOne(x), x->sizes[0]);
  set1(&r->v, plusOne(w), 4);
}

struct AliasResults { M1 a, b, c, d; };
void kiln_entry_alias(void **args) {
  struct AliasResults *r = args[0];
  const M1 *x = args[1], *w = args[2];
  float *a = plusOne(x);
  set1(&r->a, a, x->sizes[0]);
  set1(&r->b, a, x->sizes[0]);
  r->c = *x;
  r->d = *w;
}

void kiln_entry_transposed(void **args) {
  M2 *y = args[0];
  const M2 *x = args[1];
  int64_t n = x->sizes[0];
  float *buffer = mgpuMemAlloc((n * 4 + 1) * sizeof(float), NULL, false);
  mgpuMemset32(buffer, 0, n * 4 + 1, NULL);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 4; ++j)
      mgpuMemcpy(buffer + 1 + j * n + i,
                 x->aligned + x->offset + i * x->strides[0] + j * x->strides[1],
                 sizeof(float), NULL);
  y->allocated = y->aligned = buffer;
  y->offset = 1;
  y->sizes[0] = n;
  y->sizes[1] = 4;
  y->strides[0] = 1;
  y->strides[1] = n;
}

void kiln_entry_train(void **args) {
  M1 *result = args[0];
  M1 *w = args[2], *m = args[3];
  addOne(gImage, "kiln_fake_add_one_f32", w->aligned + w->offset, 4);
  addOne(gImage, "kiln_fake_add_one_f32", m->aligned + m->offset, 4);
  float *copy = mgpuMemAlloc(4 * sizeof(float), NULL, false);
  mgpuMemcpy(copy, m->aligned + m->offset, 4 * sizeof(float), NULL);
  set1(result, copy, 4);
}

/* kiln_gpu_gemm's arguments but the pointers, set by the test. */
static struct {
  int32_t dtype, transA, transB;
  int64_t batch, m, n, k, lda, strideA, ldb, strideB, ldc, strideC;
  float alpha, beta;
} gGemm;

void kiln_test_set_gemm(int32_t transA, int32_t transB, int64_t batch,
                        int64_t m, int64_t n, int64_t k, int64_t lda,
                        int64_t strideA, int64_t ldb, int64_t strideB,
                        int64_t ldc, int64_t strideC, float alpha,
                        float beta) {
  gGemm.transA = transA;
  gGemm.transB = transB;
  gGemm.batch = batch;
  gGemm.m = m;
  gGemm.n = n;
  gGemm.k = k;
  gGemm.lda = lda;
  gGemm.strideA = strideA;
  gGemm.ldb = ldb;
  gGemm.strideB = strideB;
  gGemm.ldc = ldc;
  gGemm.strideC = strideC;
  gGemm.alpha = alpha;
  gGemm.beta = beta;
}

void kiln_test_set_gemm_dtype(int32_t dtype) { gGemm.dtype = dtype; }

/* Scale pointers for kiln_gpu_gemm_scaled: the f32 words of b at these
 * offsets (in words); -1 passes NULL. Both -2: kiln_gpu_gemm. */
static int64_t gScaleA = -2, gScaleB = -2;

void kiln_test_set_gemm_scales(int64_t scaleA, int64_t scaleB) {
  gScaleA = scaleA;
  gScaleB = scaleB;
}

void kiln_entry_gemm(void **args) {
  M1 *out = args[0];
  const M1 *a = args[1], *b = args[2], *c = args[3];
  int64_t size = c->sizes[0];
  float *result = mgpuMemAlloc(size * sizeof(float), NULL, false);
  mgpuMemcpy(result, c->aligned + c->offset, size * sizeof(float), NULL);
  if (gScaleA == -2 && gScaleB == -2) {
    kiln_gpu_gemm(gGemm.dtype, gGemm.transA, gGemm.transB, gGemm.batch, gGemm.m,
                  gGemm.n, gGemm.k, a->aligned + a->offset, gGemm.lda,
                  gGemm.strideA, b->aligned + b->offset, gGemm.ldb,
                  gGemm.strideB, result, gGemm.ldc, gGemm.strideC, gGemm.alpha,
                  gGemm.beta);
  } else {
    const float *words = b->aligned + b->offset;
    kiln_gpu_gemm_scaled(
        gGemm.dtype, gGemm.transA, gGemm.transB, gGemm.batch, gGemm.m, gGemm.n,
        gGemm.k, a->aligned + a->offset, gGemm.lda, gGemm.strideA, words,
        gGemm.ldb, gGemm.strideB, result, gGemm.ldc, gGemm.strideC, gGemm.alpha,
        gGemm.beta, gScaleA >= 0 ? words + gScaleA : NULL,
        gScaleB >= 0 ? words + gScaleB : NULL);
  }
  set1(out, result, size);
}

void kiln_entry_missing_kernel(void **args) {
  M1 *y = args[0];
  float *buffer = mgpuMemAlloc(4 * sizeof(float), NULL, false);
  addOne(gImage, "kiln_missing_kernel", buffer, 4);
  set1(y, buffer, 4);
}

void kiln_entry_jit_error(void **args) {
  M1 *y = args[0];
  float *buffer = mgpuMemAlloc(4 * sizeof(float), NULL, false);
  addOne(gBadPtx, "kiln_fake_add_one_f32", buffer, 4);
  set1(y, buffer, 4);
}
