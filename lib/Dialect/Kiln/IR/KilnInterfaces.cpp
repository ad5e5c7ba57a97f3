//===- KilnInterfaces.cpp - Cost helpers and generated interfaces ---------===//
//
// The default cost rules shared by many ops, and the generated interface
// definitions.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnInterfaces.h"
#include "mlir/Dialect/Quant/IR/QuantTypes.h"

using namespace mlir;
using namespace mlir::kiln;

#include "kiln/Dialect/Kiln/IR/KilnInterfaces.cpp.inc"

double mlir::kiln::getNumElements(ShapedType type,
                                  const CostOptions &options) {
  double count = 1;
  for (int64_t dim : type.getShape())
    count *= ShapedType::isDynamic(dim) ? options.dynamicDimSize : dim;
  return count;
}

double mlir::kiln::getElementByteSize(Type elementType) {
  if (auto quantized = dyn_cast<quant::QuantizedType>(elementType))
    elementType = quantized.getStorageType();
  unsigned bits = elementType.getIntOrFloatBitWidth();
  return bits == 1 ? 1.0 : (bits + 7) / 8;
}

double mlir::kiln::getTensorBytes(Type type, const CostOptions &options) {
  auto shaped = dyn_cast<ShapedType>(type);
  if (!shaped || !shaped.hasRank())
    return 0;
  return getNumElements(shaped, options) *
         getElementByteSize(shaped.getElementType());
}

OpCost mlir::kiln::estimateDataMovementCost(Operation *op,
                                            const CostOptions &options) {
  OpCost cost;
  for (Type type : op->getOperandTypes())
    cost.bytesRead += getTensorBytes(type, options);
  for (Type type : op->getResultTypes())
    cost.bytesWritten += getTensorBytes(type, options);
  return cost;
}

OpCost mlir::kiln::estimateElementwiseCost(Operation *op,
                                           const CostOptions &options,
                                           double flopsPerElement) {
  OpCost cost = estimateDataMovementCost(op, options);
  for (Type type : op->getResultTypes())
    if (auto shaped = dyn_cast<ShapedType>(type))
      cost.flops += flopsPerElement * getNumElements(shaped, options);
  return cost;
}
