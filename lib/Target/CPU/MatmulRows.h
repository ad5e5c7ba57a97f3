//===- MatmulRows.h - Matmul operands as rows of a buffer -------*- C++ -*-===//
//
// The buffer-level matmul kernels (kiln-lower-integer-matmuls,
// kiln-lower-amx-matmuls) see an lhs [batch..., M, K] and an output
// [batch..., M, N] as [M', K] and [M', N]: all leading dims collapsed into
// rows. Private to lib/Target/CPU.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_TARGET_CPU_MATMULROWS_H
#define KILN_LIB_TARGET_CPU_MATMULROWS_H

#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::kiln {

/// [[0, ..., rank - 2], [rank - 1]]: all leading dims into one.
inline SmallVector<ReassociationIndices> leadingDimsCollapsed(int64_t rank) {
  return {llvm::to_vector(llvm::seq<int64_t>(0, rank - 1)), {rank - 1}};
}

/// Whether the leading dims of `lhs` and `out` collapse into rows without a
/// copy (always for rank 2).
inline bool rowsCollapse(MemRefType lhs, MemRefType out) {
  if (lhs.getRank() <= 2)
    return true;
  SmallVector<ReassociationIndices> rows = leadingDimsCollapsed(lhs.getRank());
  return memref::CollapseShapeOp::isGuaranteedCollapsible(lhs, rows) &&
         memref::CollapseShapeOp::isGuaranteedCollapsible(out, rows);
}

/// `value` ([batch..., M, X]) as [M', X], collapsed where it has leading
/// dims.
inline Value collapseToRows(OpBuilder &b, Location loc, Value value) {
  int64_t rank = cast<MemRefType>(value.getType()).getRank();
  if (rank <= 2)
    return value;
  return memref::CollapseShapeOp::create(b, loc, value,
                                         leadingDimsCollapsed(rank));
}

} // namespace mlir::kiln

#endif // KILN_LIB_TARGET_CPU_MATMULROWS_H
