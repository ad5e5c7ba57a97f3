/*===- ModuleSupport.c - Runtime helpers linked into every module.so ------===//
//
// Generated code calls a few helpers that upstream MLIR keeps in its runner
// utility libraries (memrefCopy for strided copies). An artifact must not
// depend on those libraries, so kiln-compile links this small static
// library into module.so instead. Plain C, no dependencies beyond libc.
//
//===----------------------------------------------------------------------===*/

#include <stdint.h>
#include <string.h>

/* An unranked memref as MLIR passes it: the rank and a pointer to a ranked
 * descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}. */
typedef struct {
  int64_t rank;
  void *descriptor;
} KilnUnrankedMemRef;

typedef struct {
  char *allocated;
  char *aligned;
  int64_t offset;
  int64_t sizesAndStrides[];
} KilnRankedDescriptor;

/* Copies every element of `src` into `dst` (same shape, any strides). */
void memrefCopy(int64_t elementSize, KilnUnrankedMemRef *src,
                KilnUnrankedMemRef *dst) {
  int64_t rank = src->rank;
  KilnRankedDescriptor *s = (KilnRankedDescriptor *)src->descriptor;
  KilnRankedDescriptor *d = (KilnRankedDescriptor *)dst->descriptor;
  char *from = s->aligned + s->offset * elementSize;
  char *to = d->aligned + d->offset * elementSize;
  if (rank == 0) {
    memcpy(to, from, (size_t)elementSize);
    return;
  }
  const int64_t *sizes = s->sizesAndStrides;
  const int64_t *srcStrides = s->sizesAndStrides + rank;
  const int64_t *dstStrides = d->sizesAndStrides + rank;
  for (int64_t i = 0; i < rank; ++i)
    if (sizes[i] == 0)
      return;

  /* The innermost dimension is copied as one block when both sides are
   * contiguous there. */
  int64_t inner = sizes[rank - 1];
  int contiguous = srcStrides[rank - 1] == 1 && dstStrides[rank - 1] == 1;
  int64_t index[64] = {0};
  if (rank > 64)
    return; /* ranks this high do not occur in kiln graphs */
  for (;;) {
    if (contiguous) {
      memcpy(to, from, (size_t)(inner * elementSize));
    } else {
      for (int64_t j = 0; j < inner; ++j)
        memcpy(to + j * dstStrides[rank - 1] * elementSize,
               from + j * srcStrides[rank - 1] * elementSize,
               (size_t)elementSize);
    }
    /* Advance the outer dimensions like an odometer. */
    int64_t dim = rank - 2;
    for (; dim >= 0; --dim) {
      ++index[dim];
      from += srcStrides[dim] * elementSize;
      to += dstStrides[dim] * elementSize;
      if (index[dim] < sizes[dim])
        break;
      from -= srcStrides[dim] * sizes[dim] * elementSize;
      to -= dstStrides[dim] * sizes[dim] * elementSize;
      index[dim] = 0;
    }
    if (dim < 0)
      return;
  }
}
