//===- KilnOps.h - kiln op classes ------------------------------*- C++ -*-===//
//
// Declares the kiln ops and the shape helpers their verifiers, shape
// inference and decompositions share.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNOPS_H
#define KILN_DIALECT_KILN_IR_KILNOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Quant/IR/QuantTypes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnInterfaces.h"

#include "kiln/Dialect/Kiln/IR/KilnEnums.h.inc"

namespace mlir::kiln {

/// True when each declared result type is the inferred one or a refinement
/// of it (same rank and element type, `?` may become a size).
bool areCompatibleReturnTypes(TypeRange inferred, TypeRange actual);

/// Broadcasts two shapes NumPy-style. Fails (with a message naming both
/// shapes and the offending dimension) when they are incompatible.
LogicalResult broadcastShapes(std::optional<Location> loc,
                              ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs,
                              SmallVectorImpl<int64_t> &result);

/// Result type of an elementwise binary op: broadcast shape, common element
/// type (it is an error for the element types to differ).
LogicalResult inferBroadcastElementwiseType(std::optional<Location> loc,
                                            Type lhs, Type rhs,
                                            SmallVectorImpl<Type> &types);

/// Normalizes a possibly negative axis against `rank`; fails with a message
/// when it is out of range.
FailureOr<int64_t> normalizeAxis(std::optional<Location> loc, int64_t axis,
                                 int64_t rank, StringRef what = "axis");

/// Prints a shape as `2x?x768` for diagnostics.
std::string formatShape(ArrayRef<int64_t> shape);

} // namespace mlir::kiln

#define GET_OP_CLASSES
#include "kiln/Dialect/Kiln/IR/KilnOps.h.inc"

#endif // KILN_DIALECT_KILN_IR_KILNOPS_H
