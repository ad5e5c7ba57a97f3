//===- MatmulRows.h - Matmul operands as rows of a buffer -------*- C++ -*-===//
//
// The buffer-level matmul kernels (kiln-lower-integer-matmuls,
// kiln-lower-amx-matmuls) see an lhs [batch..., M, K] and an output
// [batch..., M, N] as [M', K] and [M', N]: all leading dims collapsed into
// rows; and the body of a mixed-precision matmul they (and
// kiln-widen-bf16-matmuls) recognize. Private to lib/Target/CPU.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_TARGET_CPU_MATMULROWS_H
#define KILN_LIB_TARGET_CPU_MATMULROWS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::kiln {

/// Whether `body` (three block arguments: lhs, rhs, sum) yields sum +
/// ext(lhs) · ext(rhs), either order of the operands: a matmul of narrow
/// floats (bf16) widened to f32 and summed in f32, as
/// convert-kiln-to-linalg builds it.
inline bool isWidenedSumOfProducts(Block &body) {
  if (body.getNumArguments() != 3)
    return false;
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != 1)
    return false;
  Operation *add = yield.getOperand(0).getDefiningOp();
  if (!add || !isa<arith::AddFOp>(add))
    return false;
  Value sum = body.getArgument(2);
  Value product = add->getOperand(0) == sum   ? add->getOperand(1)
                  : add->getOperand(1) == sum ? add->getOperand(0)
                                              : Value();
  auto mul = product ? product.getDefiningOp<arith::MulFOp>() : nullptr;
  if (!mul)
    return false;
  auto extended = [&](Value value, unsigned arg) {
    auto ext = value.getDefiningOp<arith::ExtFOp>();
    return ext && ext.getIn() == body.getArgument(arg);
  };
  return (extended(mul.getLhs(), 0) && extended(mul.getRhs(), 1)) ||
         (extended(mul.getLhs(), 1) && extended(mul.getRhs(), 0));
}

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
