//===- KilnOps.cpp - kiln op verifiers and shared shape helpers -----------===//
//
// Verifiers of the ops whose result type is given rather than inferred, the
// shape helpers shared by verifiers, shape inference and decompositions, and
// the generated op definitions.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Interfaces/FunctionInterfaces.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::kiln;

#include "kiln/Dialect/Kiln/IR/KilnEnums.cpp.inc"

#define GET_OP_CLASSES
#include "kiln/Dialect/Kiln/IR/KilnOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

std::string mlir::kiln::formatShape(ArrayRef<int64_t> shape) {
  if (shape.empty())
    return "scalar";
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(
      shape, os,
      [&](int64_t dim) {
        if (ShapedType::isDynamic(dim))
          os << '?';
        else
          os << dim;
      },
      "x");
  return text;
}

bool mlir::kiln::areCompatibleReturnTypes(TypeRange inferred,
                                          TypeRange actual) {
  if (inferred.size() != actual.size())
    return false;
  for (auto [want, have] : llvm::zip(inferred, actual)) {
    auto wantTensor = dyn_cast<RankedTensorType>(want);
    auto haveTensor = dyn_cast<RankedTensorType>(have);
    if (!wantTensor || !haveTensor) {
      if (want != have)
        return false;
      continue;
    }
    if (wantTensor.getElementType() != haveTensor.getElementType() ||
        wantTensor.getRank() != haveTensor.getRank())
      return false;
    for (auto [w, h] : llvm::zip(wantTensor.getShape(), haveTensor.getShape()))
      if (!ShapedType::isDynamic(w) && w != h)
        return false;
  }
  return true;
}

LogicalResult mlir::kiln::broadcastShapes(std::optional<Location> loc,
                                          ArrayRef<int64_t> lhs,
                                          ArrayRef<int64_t> rhs,
                                          SmallVectorImpl<int64_t> &result) {
  size_t rank = std::max(lhs.size(), rhs.size());
  result.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t l = i < lhs.size() ? lhs[lhs.size() - 1 - i] : 1;
    int64_t r = i < rhs.size() ? rhs[rhs.size() - 1 - i] : 1;
    int64_t &out = result[rank - 1 - i];
    if (l == 1)
      out = r;
    else if (r == 1)
      out = l;
    else if (ShapedType::isDynamic(l))
      out = r;
    else if (ShapedType::isDynamic(r) || l == r)
      out = l;
    else
      return emitOptionalError(
          loc, "shapes ", formatShape(lhs), " and ", formatShape(rhs),
          " do not broadcast: dimension ", rank - 1 - i, " is ", l, " vs ", r);
  }
  return success();
}

LogicalResult mlir::kiln::inferBroadcastElementwiseType(
    std::optional<Location> loc, Type lhs, Type rhs,
    SmallVectorImpl<Type> &types) {
  auto lhsType = cast<RankedTensorType>(lhs);
  auto rhsType = cast<RankedTensorType>(rhs);
  if (lhsType.getElementType() != rhsType.getElementType())
    return emitOptionalError(loc, "expected operands of one element type, "
                                  "found ",
                             lhsType.getElementType(), " and ",
                             rhsType.getElementType());
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(loc, lhsType.getShape(), rhsType.getShape(),
                             shape)))
    return failure();
  types.push_back(RankedTensorType::get(shape, lhsType.getElementType()));
  return success();
}

FailureOr<int64_t> mlir::kiln::normalizeAxis(std::optional<Location> loc,
                                             int64_t axis, int64_t rank,
                                             StringRef what) {
  int64_t normalized = axis < 0 ? axis + rank : axis;
  if (normalized < 0 || normalized >= rank) {
    (void)emitOptionalError(loc, what, " ", axis, " is out of range for rank ",
                            rank, " (expected ", -rank, " <= ", what, " < ",
                            rank, ")");
    return failure();
  }
  return normalized;
}

/// Checks that `dynamicSizes` has one value per dynamic dimension of `type`.
static LogicalResult verifyDynamicSizes(Operation *op, ShapedType type,
                                        ValueRange dynamicSizes) {
  if (static_cast<int64_t>(dynamicSizes.size()) !=
      static_cast<int64_t>(type.getNumDynamicDims()))
    return op->emitOpError("expected ")
           << type.getNumDynamicDims()
           << " dynamic size operand(s), one per '?' in " << type
           << ", found " << dynamicSizes.size();
  return success();
}

//===----------------------------------------------------------------------===//
// ParameterOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  if (!isa<ModuleOp>((*this)->getParentOp()))
    return emitOpError("expected to be at module level, found inside '")
           << (*this)->getParentOp()->getName() << "'";
  InitKind kind = getInit();
  if (getStd() && kind != InitKind::normal)
    return emitOpError("'std' only applies to 'normal' init, found init '")
           << stringifyInitKind(kind) << "'";
  if ((getLow() || getHigh()) && kind != InitKind::uniform)
    return emitOpError("'range' only applies to 'uniform' init, found init '")
           << stringifyInitKind(kind) << "'";
  if (kind == InitKind::normal) {
    if (!getStd())
      return emitOpError("'normal' init needs 'std = <value>'");
    if (getStd()->convertToDouble() < 0)
      return emitOpError("expected std >= 0, found ")
             << getStd()->convertToDouble();
  }
  if (kind == InitKind::uniform) {
    if (!getLow() || !getHigh())
      return emitOpError("'uniform' init needs 'range(<low>, <high>)'");
    if (getLow()->convertToDouble() > getHigh()->convertToDouble())
      return emitOpError("expected low <= high in range, found (")
             << getLow()->convertToDouble() << ", "
             << getHigh()->convertToDouble() << ")";
  }
  if (!getTensorType().hasStaticShape())
    return emitOpError("expected a static shape, found ") << getType();
  return success();
}

//===----------------------------------------------------------------------===//
// ReadParamOp
//===----------------------------------------------------------------------===//

LogicalResult
ReadParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param =
      symbolTable.lookupNearestSymbolFrom<ParameterOp>(*this, getNameAttr());
  if (!param)
    return emitOpError("refers to '")
           << getName() << "', which is not a kiln.parameter in this module";
  if (param.getType() != getType())
    return emitOpError("result type ")
           << getType() << " does not match parameter '" << getName()
           << "' of type " << param.getType();
  return success();
}

//===----------------------------------------------------------------------===//
// WriteParamOp, StoreParamOp
//===----------------------------------------------------------------------===//

LogicalResult
WriteParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param =
      symbolTable.lookupNearestSymbolFrom<ParameterOp>(*this, getNameAttr());
  if (!param)
    return emitOpError("refers to '")
           << getName() << "', which is not a kiln.parameter in this module";
  if (param.getType() != getValue().getType())
    return emitOpError("value type ")
           << getValue().getType() << " does not match parameter '"
           << getName() << "' of type " << param.getType();
  return success();
}

LogicalResult StoreParamOp::verify() {
  auto arg = dyn_cast<BlockArgument>(getDest());
  auto func = arg ? dyn_cast<FunctionOpInterface>(arg.getOwner()->getParentOp())
                  : FunctionOpInterface();
  if (!func || arg.getOwner() != &func.getFunctionBody().front() ||
      (!func.getArgAttr(arg.getArgNumber(), attrs::kParameter) &&
       !func.getArgAttr(arg.getArgNumber(), attrs::kInPlace)))
    return emitOpError("expected the destination to be a function argument "
                       "with a 'kiln.parameter' or 'kiln.in_place' "
                       "attribute");
  return success();
}

//===----------------------------------------------------------------------===//
// Generators
//===----------------------------------------------------------------------===//

LogicalResult IotaOp::verify() {
  auto type = getResult().getType();
  if (failed(verifyDynamicSizes(*this, type, getDynamicSizes())))
    return failure();
  // I64Attr's accessor returns the value as uint64_t; compare it signed.
  int64_t dim = static_cast<int64_t>(getDim());
  if (dim < 0 || dim >= type.getRank())
    return emitOpError("dim ") << dim << " is out of range for rank "
                               << type.getRank();
  return success();
}

LogicalResult CausalMaskOp::verify() {
  return verifyDynamicSizes(*this, getResult().getType(), getDynamicSizes());
}

LogicalResult RandomUniformOp::verify() {
  return verifyDynamicSizes(*this, getResult().getType(), getDynamicSizes());
}

LogicalResult PaddingMaskOp::verify() {
  auto input = getMask().getType();
  auto result = getResult().getType();
  if (input.getRank() != 2)
    return emitOpError("expected a [batch, seq] mask, found rank ")
           << input.getRank();
  int64_t b = input.getDimSize(0), s = input.getDimSize(1);
  SmallVector<int64_t> expected = {b, 1, 1, s};
  if (result.getRank() != 4 ||
      !areCompatibleReturnTypes(
          RankedTensorType::get(expected, result.getElementType()), result))
    return emitOpError("expected result shape ")
           << formatShape(expected) << ", found "
           << formatShape(result.getShape());
  return success();
}

//===----------------------------------------------------------------------===//
// CastOp, ReshapeOp, BroadcastToOp
//===----------------------------------------------------------------------===//

LogicalResult CastOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  if (failed(verifyCompatibleShape(in, out)))
    return emitOpError("expected the result shape to equal the input shape ")
           << formatShape(in.getShape()) << ", found "
           << formatShape(out.getShape());
  return success();
}

LogicalResult ReshapeOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  if (in.getElementType() != out.getElementType())
    return emitOpError("expected the result element type ")
           << in.getElementType() << ", found " << out.getElementType();
  if (in.getNumDynamicDims() != out.getNumDynamicDims())
    return emitOpError("expected as many dynamic dims in the result as in "
                       "the input (")
           << in.getNumDynamicDims() << "), found " << out.getNumDynamicDims();
  auto staticProduct = [](ArrayRef<int64_t> shape) {
    int64_t product = 1;
    for (int64_t dim : shape)
      if (!ShapedType::isDynamic(dim))
        product *= dim;
    return product;
  };
  if (staticProduct(in.getShape()) != staticProduct(out.getShape()))
    return emitOpError("element count differs: ")
           << formatShape(in.getShape()) << " has "
           << staticProduct(in.getShape()) << " static elements, "
           << formatShape(out.getShape()) << " has "
           << staticProduct(out.getShape());
  return success();
}

LogicalResult BroadcastToOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  if (failed(verifyDynamicSizes(*this, out, getDynamicSizes())))
    return failure();
  if (in.getElementType() != out.getElementType())
    return emitOpError("expected the result element type ")
           << in.getElementType() << ", found " << out.getElementType();
  if (in.getRank() > out.getRank())
    return emitOpError("cannot broadcast rank ")
           << in.getRank() << " to lower rank " << out.getRank();
  int64_t offset = out.getRank() - in.getRank();
  for (int64_t i = 0; i < in.getRank(); ++i) {
    int64_t from = in.getDimSize(i), to = out.getDimSize(i + offset);
    if (from == 1 || from == to)
      continue;
    return emitOpError("cannot broadcast ")
           << formatShape(in.getShape()) << " to "
           << formatShape(out.getShape()) << ": input dimension " << i
           << " is " << (ShapedType::isDynamic(from) ? "?" : std::to_string(from))
           << ", expected 1 or "
           << (ShapedType::isDynamic(to) ? "?" : std::to_string(to));
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

namespace {
LogicalResult verifyZeroPoint(Operation *op, Value scale, Value zeroPoint) {
  if (!zeroPoint)
    return success();
  auto s = cast<RankedTensorType>(scale.getType());
  auto z = cast<RankedTensorType>(zeroPoint.getType());
  if (failed(verifyCompatibleShape(s.getShape(), z.getShape())))
    return op->emitOpError("expected a zero point of the scale's shape ")
           << formatShape(s.getShape()) << ", found "
           << formatShape(z.getShape());
  return success();
}
} // namespace

LogicalResult DequantizeOp::verify() {
  return verifyZeroPoint(*this, getScale(), getZeroPoint());
}

SmallVector<int64_t> DequantizeOp::getBlockSizes() {
  auto result = cast<RankedTensorType>(getType());
  auto scale = cast<RankedTensorType>(getScale().getType());
  SmallVector<int64_t> blocks;
  for (int64_t dim = 0; dim < result.getRank(); ++dim) {
    int64_t size = result.getDimSize(dim), count = scale.getDimSize(dim);
    if (count == 1)
      blocks.push_back(size);
    else if (ShapedType::isDynamic(count) || count == size)
      blocks.push_back(1);
    else
      blocks.push_back(size / count);
  }
  return blocks;
}

LogicalResult ExpandCSROp::verify() {
  auto offsets = cast<RankedTensorType>(getOffsets().getType());
  auto indices = cast<RankedTensorType>(getIndices().getType());
  auto values = cast<RankedTensorType>(getValues().getType());
  auto result = cast<RankedTensorType>(getType());
  if (offsets.getRank() != 1 || indices.getRank() != 1 || values.getRank() != 1)
    return emitOpError("expected 1-D offsets, indices and values");
  if (result.getRank() != 2 || !result.hasStaticShape())
    return emitOpError("expected a static 2-D result, found ") << result;
  if (values.getElementType() != result.getElementType())
    return emitOpError("expected values of the result's element type ")
           << result.getElementType() << ", found " << values.getElementType();
  if (!ShapedType::isDynamic(offsets.getDimSize(0)) &&
      offsets.getDimSize(0) != result.getDimSize(0) + 1)
    return emitOpError("expected ")
           << result.getDimSize(0) + 1 << " offsets (rows + 1), found "
           << offsets.getDimSize(0);
  if (!ShapedType::isDynamic(indices.getDimSize(0)) &&
      !ShapedType::isDynamic(values.getDimSize(0)) &&
      indices.getDimSize(0) != values.getDimSize(0))
    return emitOpError("expected one index per value, found ")
           << indices.getDimSize(0) << " indices and " << values.getDimSize(0)
           << " values";
  int64_t columns = result.getDimSize(1);
  if (indices.getElementType().isInteger(16) && columns > (1 << 16))
    return emitOpError("i16 indices address at most 65536 columns, not ")
           << columns;
  return success();
}

LogicalResult QuantizeOp::verify() {
  if (getE4m3() && (getZeroPoint() || getUnsignedCodes()))
    return emitOpError("e4m3 codes take neither a zero point nor unsigned");
  return verifyZeroPoint(*this, getScale(), getZeroPoint());
}
