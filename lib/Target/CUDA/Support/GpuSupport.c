/*===- GpuSupport.c - MLIR's mgpu* ABI, linked into every CUDA module.so --===//
//
// Upstream MLIR lowers gpu.launch_func, gpu.alloc, gpu.memcpy, gpu.memset
// and the kernel binaries it embeds into calls of the `mgpu*` functions of
// its CUDA runtime wrappers. Those wrappers link libcuda; an artifact must
// not, so kiln-compile links this small static library into a CUDA
// module.so instead. Every call is forwarded to the KilnGpuApi table that
// libkiln_runtime installs with kiln_gpu_bind() right after dlopen
// (include/kiln/Runtime/GpuApi.h). Plain C, no dependencies beyond libc.
//
// The kernel images are registered by global constructors, which run while
// module.so is being dlopen'ed, before the table is bound. So
// mgpuModuleLoad only records the image; it is loaded through the table
// when a kernel of it is first looked up.
//
//===----------------------------------------------------------------------===*/

#include "kiln/Runtime/GpuApi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The table; NULL until kiln_gpu_bind. Calls are serialized by the runtime
 * (one entry point of a CUDA artifact runs at a time). */
static const KilnGpuApi *gApi;

/* A kernel image registered by a global constructor, loaded on first use. */
typedef struct {
  const void *image;
  uint64_t size;
  int32_t kind;
  void *loaded; /* the table's module, or NULL */
} KilnGpuModuleHandle;

static const KilnGpuApi *boundApi(const char *caller) {
  if (!gApi) {
    fprintf(stderr,
            "kiln: %s was called before kiln_gpu_bind: a CUDA module.so "
            "runs only when loaded by the Kiln runtime (libkiln_runtime), "
            "which binds it to the CUDA driver; it cannot be dlopen'ed and "
            "called directly\n",
            caller);
    abort();
  }
  return gApi;
}

int kiln_gpu_bind(const KilnGpuApi *api) {
  /* A newer runtime may append fields; an older table lacks some. */
  if (!api || api->version != KILN_GPU_API_VERSION ||
      api->size < sizeof(KilnGpuApi))
    return -1;
  gApi = api;
  return 0;
}

//===----------------------------------------------------------------------===//
// Kernel images and functions
//===----------------------------------------------------------------------===//

static void *registerImage(const void *image, uint64_t size, int32_t kind) {
  KilnGpuModuleHandle *handle =
      (KilnGpuModuleHandle *)calloc(1, sizeof(KilnGpuModuleHandle));
  if (!handle) {
    fprintf(stderr, "kiln: out of memory registering a kernel image\n");
    abort();
  }
  handle->image = image;
  handle->size = size;
  handle->kind = kind;
  return handle;
}

/* A cubin or fatbin of gpuBlobSize bytes. */
void *mgpuModuleLoad(void *data, size_t gpuBlobSize) {
  return registerImage(data, gpuBlobSize, KILN_GPU_IMAGE_BINARY);
}

/* NUL-terminated PTX; the driver JIT-compiles it (optLevel is left to the
 * runtime's defaults). */
void *mgpuModuleLoadJIT(void *data, int optLevel) {
  (void)optLevel;
  size_t size = 0;
  while (((const char *)data)[size])
    ++size;
  return registerImage(data, size + 1, KILN_GPU_IMAGE_PTX);
}

/* Runs from a destructor at dlclose. The table is still valid then: the
 * runtime keeps it alive until dlclose returns. */
void mgpuModuleUnload(void *module) {
  KilnGpuModuleHandle *handle = (KilnGpuModuleHandle *)module;
  if (!handle)
    return;
  if (handle->loaded && gApi)
    gApi->unloadModule(gApi->context, handle->loaded);
  free(handle);
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  const KilnGpuApi *api = boundApi("mgpuModuleGetFunction");
  KilnGpuModuleHandle *handle = (KilnGpuModuleHandle *)module;
  if (!handle)
    return NULL;
  if (!handle->loaded)
    handle->loaded = api->loadModule(api->context, handle->image,
                                     handle->size, handle->kind);
  if (!handle->loaded)
    return NULL; /* the runtime recorded why */
  return api->getFunction(api->context, handle->loaded, name);
}

//===----------------------------------------------------------------------===//
// Streams and launches
//===----------------------------------------------------------------------===//

/* The runtime has one stream; generated code's streams all stand for it. */
static char gStream;

void *mgpuStreamCreate(void) { return &gStream; }

void mgpuStreamDestroy(void *stream) { (void)stream; }

void mgpuStreamSynchronize(void *stream) {
  const KilnGpuApi *api = boundApi("mgpuStreamSynchronize");
  (void)stream;
  api->synchronize(api->context);
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, size_t paramsCount) {
  const KilnGpuApi *api = boundApi("mgpuLaunchKernel");
  (void)stream;
  (void)extra; /* MLIR passes arguments through params only */
  (void)paramsCount;
  api->launch(api->context, function, gridX, gridY, gridZ, blockX, blockY,
              blockZ, smem, params);
}

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

/* isHostShared (gpu.alloc host_shared) asks for managed memory. Generated
 * host code never dereferences device pointers (GpuApi.h), so plain device
 * memory serves. */
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared) {
  const KilnGpuApi *api = boundApi("mgpuMemAlloc");
  (void)stream;
  (void)isHostShared;
  return api->allocate(api->context, sizeBytes);
}

void mgpuMemFree(void *ptr, void *stream) {
  const KilnGpuApi *api = boundApi("mgpuMemFree");
  (void)stream;
  api->deallocate(api->context, ptr);
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream) {
  const KilnGpuApi *api = boundApi("mgpuMemcpy");
  (void)stream;
  api->copy(api->context, dst, src, sizeBytes);
}

void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream) {
  const KilnGpuApi *api = boundApi("mgpuMemset32");
  (void)stream;
  api->fill32(api->context, dst, value, count);
}

void mgpuMemset16(void *dst, unsigned short value, size_t count,
                  void *stream) {
  const KilnGpuApi *api = boundApi("mgpuMemset16");
  (void)stream;
  api->fill16(api->context, dst, value, count);
}

//===----------------------------------------------------------------------===//
// Library calls
//===----------------------------------------------------------------------===//

/* One gemm through the bound API; `caller` names the entry point in the
 * error when no API is bound. */
static void runGemm(const char *caller, int32_t dtype, int32_t transA,
                    int32_t transB, int64_t batch, int64_t m, int64_t n,
                    int64_t k, const void *a, int64_t lda, int64_t strideA,
                    const void *b, int64_t ldb, int64_t strideB, void *c,
                    int64_t ldc, int64_t strideC, float alpha, float beta,
                    const void *scaleA, const void *scaleB) {
  const KilnGpuApi *api = boundApi(caller);
  KilnGpuGemm gemm;
  gemm.dtype = dtype;
  gemm.transA = transA;
  gemm.transB = transB;
  gemm.batch = batch;
  gemm.m = m;
  gemm.n = n;
  gemm.k = k;
  gemm.a = a;
  gemm.lda = lda;
  gemm.strideA = strideA;
  gemm.b = b;
  gemm.ldb = ldb;
  gemm.strideB = strideB;
  gemm.c = c;
  gemm.ldc = ldc;
  gemm.strideC = strideC;
  gemm.alpha = alpha;
  gemm.beta = beta;
  gemm.scaleA = (const float *)scaleA;
  gemm.scaleB = (const float *)scaleB;
  api->gemm(api->context, &gemm);
}

/* A row-major batched matrix product (KilnGpuGemm in GpuApi.h); generated
 * code calls it for matmuls. */
void kiln_gpu_gemm(int32_t dtype, int32_t transA, int32_t transB, int64_t batch,
                   int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                   int64_t strideA, const void *b, int64_t ldb, int64_t strideB,
                   void *c, int64_t ldc, int64_t strideC, float alpha,
                   float beta) {
  runGemm("kiln_gpu_gemm", dtype, transA, transB, batch, m, n, k, a, lda,
          strideA, b, ldb, strideB, c, ldc, strideC, alpha, beta, NULL, NULL);
}

/* kiln_gpu_gemm with the scales of an fp8 product (KILN_GPU_E4M3_F32):
 * device pointers to one f32 each. */
void kiln_gpu_gemm_scaled(int32_t dtype, int32_t transA, int32_t transB,
                          int64_t batch, int64_t m, int64_t n, int64_t k,
                          const void *a, int64_t lda, int64_t strideA,
                          const void *b, int64_t ldb, int64_t strideB, void *c,
                          int64_t ldc, int64_t strideC, float alpha, float beta,
                          const void *scaleA, const void *scaleB) {
  runGemm("kiln_gpu_gemm_scaled", dtype, transA, transB, batch, m, n, k, a, lda,
          strideA, b, ldb, strideB, c, ldc, strideC, alpha, beta, scaleA,
          scaleB);
}
