/*===- GpuApi.h - The runtime's GPU services, as a CUDA module sees them -*- C -*-===*\
|*                                                                            *|
|* A CUDA artifact's module.so is host code that launches kernels. Upstream   *|
|* MLIR lowers gpu.launch_func, gpu.alloc, gpu.memcpy and gpu.memset to calls *|
|* of the `mgpu*` functions (MLIR's CUDA runtime wrappers ABI). Kiln links    *|
|* its own small implementation of them into every CUDA module.so            *|
|* (lib/Target/CUDA/Support/GpuSupport.c); they forward to this table, which  *|
|* the runtime hands to the module with kiln_gpu_bind() after dlopen and      *|
|* before any entry point runs. The runtime owns the CUDA driver (loaded with *|
|* dlopen), the context, the stream, device memory and cuBLASLt; module.so    *|
|* depends on nothing but libc.                                               *|
|*                                                                            *|
|* Memory: every pointer the module sees (parameters, inputs, results,        *|
|* temporaries) is device memory. Generated host code never dereferences     *|
|* one; it only passes them to kernels and to these functions.               *|
|*                                                                            *|
|* Errors: the table's functions cannot return errors into generated code.   *|
|* The runtime records the first failure of a call (sticky until the entry    *|
|* point returns), turns every later operation of that call into a no-op,     *|
|* and reports the failure from Artifact::run as a Status.                    *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef KILN_RUNTIME_GPUAPI_H
#define KILN_RUNTIME_GPUAPI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: KilnGpuGemm gained scaleA and scaleB (fp8); modules and runtimes of
 * version 1 refuse each other at kiln_gpu_bind. */
#define KILN_GPU_API_VERSION 2

/* Kinds of kernel images a module hands to loadModule. */
enum {
  KILN_GPU_IMAGE_PTX = 0,    /* NUL-terminated PTX text, JIT-compiled   */
  KILN_GPU_IMAGE_BINARY = 1, /* a cubin or fatbin of `size` bytes       */
};

/* Element types of kiln_gpu_gemm operands (float products accumulate in
 * f32). The first three give the result the operands' type; the next two
 * write an f32 result from f16 or bf16 operands (the f32 accumulator kiln's
 * narrow matmuls keep before rounding). KILN_GPU_I8_I32 multiplies signed
 * 8-bit codes into exact int32 sums (cuBLASLt's int8 gemm: alpha and beta
 * must be integers, and the layout must be what its int8 kernels take:
 * transA = 0, transB = 1, k and n multiples of 4, lda, ldb, ldc and the
 * batch strides multiples of 4, pointers 4-byte aligned).
 * KILN_GPU_E4M3_F32 multiplies fp8 e4m3 codes (CUDA_R_8F_E4M3) into an f32
 * result, summed in f32 and multiplied by *scaleA and *scaleB (device
 * pointers to one f32 each; NULL: 1), on cuBLASLt's fp8 gemm (sm_89 and
 * later): transA = 0, transB = 1, k and n multiples of 16, lda, ldb and
 * the batch strides of A and B multiples of 16, ldc and strideC multiples
 * of 4, pointers 16-byte aligned, beta 0. */
enum {
  KILN_GPU_F32 = 0,
  KILN_GPU_F16 = 1,
  KILN_GPU_BF16 = 2,
  KILN_GPU_F16_F32 = 3,
  KILN_GPU_BF16_F32 = 4,
  KILN_GPU_I8_I32 = 5,
  KILN_GPU_E4M3_F32 = 6,
};

/* A batched, row-major matrix product:
 *   C[i] = alpha * op(A[i]) * op(B[i]) + beta * C[i],  i in [0, batch)
 * with C[i] an m x n matrix of row stride ldc starting at c + i * strideC
 * (elements, not bytes). op(A[i]) is m x k: A[i] is stored m x k with row
 * stride lda, or k x m (transposed, transA = 1). Likewise op(B[i]) is
 * k x n, stored k x n or n x k (transB = 1). A batch stride of 0
 * broadcasts one matrix over the batch. scaleA and scaleB (fp8 only, else
 * NULL; the runtime refuses them with another dtype) scale the product:
 *   C[i] = alpha * (*scaleA) * (*scaleB) * op(A[i]) * op(B[i]) + beta * C[i].
 */
typedef struct KilnGpuGemm {
  int32_t dtype;
  int32_t transA, transB;
  int64_t batch, m, n, k;
  const void *a;
  int64_t lda, strideA;
  const void *b;
  int64_t ldb, strideB;
  void *c;
  int64_t ldc, strideC;
  float alpha, beta;
  const float *scaleA, *scaleB;
} KilnGpuGemm;

typedef struct KilnGpuApi {
  uint32_t version; /* KILN_GPU_API_VERSION */
  uint32_t size;    /* sizeof(KilnGpuApi) */
  void *context;    /* passed back as the first argument of every call */

  /* Loads a kernel image (KILN_GPU_IMAGE_*); NULL on failure. */
  void *(*loadModule)(void *context, const void *image, uint64_t size,
                      int32_t kind);
  void (*unloadModule)(void *context, void *module);
  /* The kernel `name` of a loaded module; NULL on failure. */
  void *(*getFunction)(void *context, void *module, const char *name);
  /* Launches on the runtime's stream; `params` as cuLaunchKernel takes
   * them (one pointer per kernel argument). */
  void (*launch)(void *context, void *function, int64_t gridX, int64_t gridY,
                 int64_t gridZ, int64_t blockX, int64_t blockY, int64_t blockZ,
                 int32_t sharedMemoryBytes, void **params);
  /* Waits for everything queued on the runtime's stream. */
  void (*synchronize)(void *context);
  /* Device memory, at least 256-byte aligned; NULL on failure. 0 bytes
   * returns a valid, unique pointer. */
  void *(*allocate)(void *context, uint64_t bytes);
  void (*deallocate)(void *context, void *pointer);
  /* Stream-ordered copy between any two pointers (host or device). */
  void (*copy)(void *context, void *destination, const void *source,
               uint64_t bytes);
  /* Stream-ordered fill of `count` 32-bit or 16-bit words. */
  void (*fill32)(void *context, void *destination, uint32_t value,
                 uint64_t count);
  void (*fill16)(void *context, void *destination, uint16_t value,
                 uint64_t count);
  /* A matrix product on the runtime's stream (cuBLASLt). */
  void (*gemm)(void *context, const KilnGpuGemm *gemm);
} KilnGpuApi;

/* Exported by every CUDA module.so: installs the table. Returns 0, or -1
 * when the table's version or size is not the one the module was built
 * for. */
typedef int (*KilnGpuBindFunction)(const KilnGpuApi *api);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_GPUAPI_H */
