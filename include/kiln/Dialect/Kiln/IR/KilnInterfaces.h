//===- KilnInterfaces.h - Cost, decomposition, gradient ---------*- C++ -*-===//
//
// The C++ side of KilnInterfaces.td: the cost record and the helpers the
// default cost rules use.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNINTERFACES_H
#define KILN_DIALECT_KILN_IR_KILNINTERFACES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Support/LLVM.h"

namespace mlir::kiln {

/// How costs are counted.
struct CostOptions {
  /// Size assumed for every dynamic (`?`) dimension.
  int64_t dynamicDimSize = 1;
};

/// The cost of one execution of an op.
struct OpCost {
  double flops = 0;
  double bytesRead = 0;
  double bytesWritten = 0;

  double bytes() const { return bytesRead + bytesWritten; }
  OpCost &operator+=(const OpCost &other) {
    flops += other.flops;
    bytesRead += other.bytesRead;
    bytesWritten += other.bytesWritten;
    return *this;
  }
};

/// Number of elements of `type`, with dynamic dims taken as in `options`.
double getNumElements(ShapedType type, const CostOptions &options);
/// Size in bytes of one element of `type` (sub-byte types round up).
double getElementByteSize(Type elementType);
/// Bytes of a tensor value, with dynamic dims taken as in `options`.
double getTensorBytes(Type type, const CostOptions &options);

/// No FLOPs; bytes of every tensor operand read and every result written.
OpCost estimateDataMovementCost(Operation *op, const CostOptions &options);
/// `flopsPerElement` FLOPs per result element plus data movement.
OpCost estimateElementwiseCost(Operation *op, const CostOptions &options,
                               double flopsPerElement);

} // namespace mlir::kiln

#include "kiln/Dialect/Kiln/IR/KilnInterfaces.h.inc"

#endif // KILN_DIALECT_KILN_IR_KILNINTERFACES_H
