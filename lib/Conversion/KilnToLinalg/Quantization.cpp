//===- Quantization.cpp - kiln quantize/dequantize to linalg --------------===//
//
// Blockwise scales as plain broadcasting: every dim whose scale covers
// blocks of several elements is split into (blocks, block size), the scale
// is read with a projected map over the block dims, and the result is
// collapsed back. 4-bit codes split the last dim once more into (bytes, 2)
// and pick the nibble by the index of that pair dim. Every indexing map is
// a projected permutation, so tiling and vectorization see ordinary
// elementwise generics.
//
//===----------------------------------------------------------------------===//

#include "Utils.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::to_linalg;

namespace {

/// The iteration space of a blockwise (de)quantization.
struct BlockSpace {
  /// Loop sizes (static, or kDynamic with the value's dim as the source).
  SmallVector<int64_t> loops;
  /// Per value dim, its loops (the reassociation of the collapse).
  SmallVector<ReassociationIndices> groups;
  /// Per value dim: the loop the scale reads, or -1 (a broadcast dim).
  SmallVector<int64_t> scaleLoop;
  /// The pair loop of 4-bit codes (-1 for 8 bits).
  int64_t pairLoop = -1;
};

/// Splits each dim of `shape` by the scale's block count; `bits` 4 splits
/// the last dim's innermost loop into (bytes, 2).
BlockSpace buildBlockSpace(ArrayRef<int64_t> shape, RankedTensorType scale,
                           int64_t bits) {
  BlockSpace space;
  for (auto [dim, size] : llvm::enumerate(shape)) {
    int64_t count = scale.getDimSize(dim);
    ReassociationIndices group;
    bool last = dim + 1 == shape.size();
    auto addLoop = [&](int64_t loopSize) {
      group.push_back(space.loops.size());
      space.loops.push_back(loopSize);
    };
    // The loops inside the block: the whole dim (a broadcast scale), one
    // element (a scale per element), or the block of a split dim.
    int64_t inner = size;
    if (count == 1) {
      space.scaleLoop.push_back(-1);
    } else if (ShapedType::isDynamic(count) || count == size) {
      space.scaleLoop.push_back(space.loops.size());
      inner = -1;
      addLoop(size);
    } else {
      space.scaleLoop.push_back(space.loops.size());
      addLoop(count);
      inner = size / count;
    }
    if (inner != -1 && bits == 4 && last) {
      // Verified even and static where a scale splits it.
      addLoop(ShapedType::isDynamic(inner) ? inner : inner / 2);
      space.pairLoop = space.loops.size();
      addLoop(2);
    } else if (inner != -1) {
      addLoop(inner);
    }
    space.groups.push_back(group);
  }
  return space;
}

/// The reassociation of the codes tensor (the value's, less the pair loop).
SmallVector<ReassociationIndices> codeGroups(const BlockSpace &space) {
  SmallVector<ReassociationIndices> groups;
  int64_t next = 0;
  for (const ReassociationIndices &group : space.groups) {
    ReassociationIndices codes;
    for (int64_t loop : group)
      if (loop != space.pairLoop)
        codes.push_back(next++);
    groups.push_back(codes);
  }
  return groups;
}

/// `value` (shaped like the value, or the codes) expanded to `groups`.
Value expandTo(OpBuilder &b, Location loc, Value value,
               ArrayRef<int64_t> loopSizes,
               ArrayRef<ReassociationIndices> groups) {
  auto type = tensorType(value);
  if (static_cast<int64_t>(loopSizes.size()) == type.getRank())
    return value;
  auto expanded = RankedTensorType::get(loopSizes, type.getElementType());
  return tensor::ExpandShapeOp::create(b, loc, expanded, value, groups);
}

/// The scale (or zero point) with its broadcast dims dropped, and the map
/// that reads it.
std::pair<Value, AffineMap> scaleOperand(OpBuilder &b, Location loc,
                                         Value scale, const BlockSpace &space) {
  auto type = tensorType(scale);
  SmallVector<AffineExpr> exprs;
  SmallVector<int64_t> kept;
  SmallVector<ReassociationIndices> groups;
  for (auto [dim, loop] : llvm::enumerate(space.scaleLoop)) {
    if (loop < 0)
      continue;
    exprs.push_back(b.getAffineDimExpr(loop));
    kept.push_back(type.getDimSize(dim));
  }
  // Collapse the size-1 dims into their neighbours.
  Value collapsed = scale;
  if (static_cast<int64_t>(kept.size()) != type.getRank()) {
    ReassociationIndices current;
    for (auto [dim, loop] : llvm::enumerate(space.scaleLoop)) {
      current.push_back(dim);
      if (loop >= 0) {
        groups.push_back(current);
        current.clear();
      }
    }
    if (!groups.empty())
      groups.back().append(current.begin(), current.end());
    collapsed = tensor::CollapseShapeOp::create(
        b, loc, RankedTensorType::get(kept, type.getElementType()), scale,
        groups);
  }
  return {collapsed, AffineMap::get(space.loops.size(), 0, exprs,
                                    b.getContext())};
}

/// The projected map over every loop but `skip`.
AffineMap mapWithout(MLIRContext *ctx, int64_t loops, int64_t skip) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < loops; ++i)
    if (i != skip)
      exprs.push_back(getAffineDimExpr(i, ctx));
  return AffineMap::get(loops, 0, exprs, ctx);
}

Value extendCode(OpBuilder &b, Location loc, Value code, bool isUnsigned) {
  Type i32 = b.getI32Type();
  if (isUnsigned)
    return arith::ExtUIOp::create(b, loc, i32, code);
  return arith::ExtSIOp::create(b, loc, i32, code);
}

/// An i32 constant of `bits` (written as the unsigned pattern).
Value bitsConstant(OpBuilder &b, Location loc, uint32_t bits) {
  return arith::ConstantIntOp::create(b, loc, b.getI32Type(),
                                      static_cast<int32_t>(bits));
}

/// The f32 `value` as an fp8 e4m3 code (f8E4M3FN), as kiln::encodeE4M3
/// (include/kiln/Runtime/Float8.h) computes it: clamp to ±448, round to
/// nearest even, NaN to NaN. Integer operations on the f32 bits, and one
/// f32 addition that rounds the subnormal codes.
Value encodeE4M3(OpBuilder &b, Location loc, Value value) {
  Type i32 = b.getI32Type();
  auto c = [&](uint32_t bits) { return bitsConstant(b, loc, bits); };
  Value bits = arith::BitcastOp::create(b, loc, i32, value);
  Value sign = arith::AndIOp::create(b, loc, bits, c(0x80000000u));
  Value magnitude = arith::XOrIOp::create(b, loc, bits, sign);
  Value isNaN = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt,
                                      magnitude, c(0x7F800000u));
  Value clamped = arith::MinUIOp::create(b, loc, magnitude, c(0x43E00000u));
  // Below 2^-6: the subnormal code is what adding 2^14 leaves in the low
  // bits of the f32 sum.
  Value isSubnormal = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                            clamped, c(121u << 23));
  Value denormMask = c(141u << 23);
  Value sum = arith::AddFOp::create(
      b, loc, arith::BitcastOp::create(b, loc, b.getF32Type(), clamped),
      arith::BitcastOp::create(b, loc, b.getF32Type(), denormMask));
  Value subnormal = arith::SubIOp::create(
      b, loc, arith::BitcastOp::create(b, loc, i32, sum), denormMask);
  // Normal: rebias the exponent, round the 20 dropped bits to nearest even.
  Value odd = arith::AndIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, clamped, c(20)), c(1));
  Value rounded = arith::AddIOp::create(
      b, loc,
      arith::AddIOp::create(
          b, loc, clamped,
          c(static_cast<uint32_t>(7 - 127) * (1u << 23) + 0x7FFFFu)),
      odd);
  Value normal = arith::ShRUIOp::create(b, loc, rounded, c(20));
  Value code = arith::SelectOp::create(b, loc, isSubnormal, subnormal, normal);
  code = arith::SelectOp::create(b, loc, isNaN, c(0x7F), code);
  code = arith::OrIOp::create(b, loc, code,
                              arith::ShRUIOp::create(b, loc, sign, c(24)));
  Value byte = arith::TruncIOp::create(b, loc, b.getI8Type(), code);
  return arith::BitcastOp::create(b, loc, b.getType<Float8E4M3FNType>(), byte);
}

/// The f32 value of an e4m3 `code` (f8E4M3FN), as kiln::decodeE4M3.
Value decodeE4M3(OpBuilder &b, Location loc, Value code) {
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  auto c = [&](uint32_t bits) { return bitsConstant(b, loc, bits); };
  Value byte = arith::BitcastOp::create(b, loc, b.getI8Type(), code);
  Value word = arith::ExtUIOp::create(b, loc, i32, byte);
  Value sign = arith::ShLIOp::create(
      b, loc, arith::AndIOp::create(b, loc, word, c(0x80)), c(24));
  Value exponent = arith::AndIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, word, c(3)), c(15));
  Value mantissa = arith::AndIOp::create(b, loc, word, c(7));
  Value normal = arith::OrIOp::create(
      b, loc,
      arith::ShLIOp::create(
          b, loc, arith::AddIOp::create(b, loc, exponent, c(120)), c(23)),
      arith::ShLIOp::create(b, loc, mantissa, c(20)));
  Value subnormal = arith::BitcastOp::create(
      b, loc, i32,
      arith::MulFOp::create(b, loc,
                            arith::UIToFPOp::create(b, loc, f32, mantissa),
                            scalarConstant(b, loc, f32, 1.0 / 512.0)));
  Value isSubnormal =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, exponent, c(0));
  Value magnitude =
      arith::SelectOp::create(b, loc, isSubnormal, subnormal, normal);
  Value isNaN = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::eq,
      arith::AndIOp::create(b, loc, word, c(0x7F)), c(0x7F));
  magnitude = arith::SelectOp::create(b, loc, isNaN, c(0x7FC00000u), magnitude);
  return arith::BitcastOp::create(
      b, loc, f32, arith::OrIOp::create(b, loc, magnitude, sign));
}

/// The (de)quantization generic over `space`: `first` (the codes or the
/// floats, expanded to the space) read with `firstMap`, then the scale and
/// the zero point, into a `resultType` value collapsed back from the
/// space. Dynamic loops are whole dims of `first`'s unexpanded source
/// `sizeSource` (a 4-bit last dim is static wherever it is split).
Value buildBlockwise(OpBuilder &b, Location loc, const BlockSpace &space,
                     Value first, AffineMap firstMap, Value scale,
                     Value zeroPoint, Value sizeSource,
                     RankedTensorType resultType,
                     function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  MLIRContext *ctx = b.getContext();
  int64_t loops = space.loops.size();
  auto [scaleValue, scaleMap] = scaleOperand(b, loc, scale, space);
  SmallVector<Value> inputs{first, scaleValue};
  SmallVector<AffineMap> maps{firstMap, scaleMap};
  if (zeroPoint) {
    auto [zero, zeroMap] = scaleOperand(b, loc, zeroPoint, space);
    inputs.push_back(zero);
    maps.push_back(zeroMap);
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(loops, ctx));
  SmallVector<Value> dynamic;
  for (auto [dim, group] : llvm::enumerate(space.groups))
    for (int64_t loop : group)
      if (ShapedType::isDynamic(space.loops[loop]))
        dynamic.push_back(tensor::DimOp::create(b, loc, sizeSource, dim));
  auto expandedType =
      RankedTensorType::get(space.loops, resultType.getElementType());
  Value init = tensor::EmptyOp::create(b, loc, expandedType, dynamic);
  SmallVector<utils::IteratorType> iterators(loops,
                                             utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, expandedType, inputs, init, maps, iterators,
      [&](OpBuilder &nested, Location l, ValueRange args) {
        linalg::YieldOp::create(nested, l,
                                ValueRange{body(nested, l, args)});
      });
  Value result = generic.getResult(0);
  if (loops != resultType.getRank())
    result = tensor::CollapseShapeOp::create(b, loc, resultType, result,
                                             space.groups);
  return result;
}

struct DequantizePattern : OpConversionPattern<DequantizeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(DequantizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getType());
    int64_t bits = op.getBits();
    bool isUnsigned = op.getUnsignedCodes();
    BlockSpace space = buildBlockSpace(
        resultType.getShape(), tensorType(adaptor.getScale()), bits);
    int64_t loops = space.loops.size();
    SmallVector<int64_t> codeLoops;
    for (int64_t i = 0; i < loops; ++i)
      if (i != space.pairLoop)
        codeLoops.push_back(space.loops[i]);
    Value codes = expandTo(rewriter, loc, adaptor.getInput(), codeLoops,
                           codeGroups(space));
    int64_t pairLoop = space.pairLoop;
    Type floatType = resultType.getElementType();
    Value result = buildBlockwise(
        rewriter, loc, space, codes,
        mapWithout(rewriter.getContext(), loops, pairLoop), adaptor.getScale(),
        adaptor.getZeroPoint(), adaptor.getInput(), resultType,
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value code = args[0];
          if (isa<Float8E4M3FNType>(code.getType())) {
            Value value = decodeE4M3(b, l, code);
            if (!floatType.isF32())
              value = arith::TruncFOp::create(b, l, floatType, value);
            return arith::MulFOp::create(b, l, value, args[1]);
          }
          if (pairLoop >= 0) {
            Value four = arith::ConstantIntOp::create(b, l, b.getI8Type(), 4);
            Value low, high;
            if (isUnsigned) {
              Value mask = arith::ConstantIntOp::create(b, l, b.getI8Type(), 15);
              low = arith::AndIOp::create(b, l, code, mask);
              high = arith::ShRUIOp::create(b, l, code, four);
            } else {
              low = arith::ShRSIOp::create(
                  b, l, arith::ShLIOp::create(b, l, code, four), four);
              high = arith::ShRSIOp::create(b, l, code, four);
            }
            Value pair = linalg::IndexOp::create(b, l, pairLoop);
            Value isLow = arith::CmpIOp::create(
                b, l, arith::CmpIPredicate::eq, pair,
                arith::ConstantIndexOp::create(b, l, 0));
            code = arith::SelectOp::create(b, l, isLow, low, high);
          }
          Value integer = extendCode(b, l, code, isUnsigned);
          if (args.size() == 4)
            integer = arith::SubIOp::create(
                b, l, integer, extendCode(b, l, args[2], isUnsigned));
          Value value = arith::SIToFPOp::create(b, l, floatType, integer);
          return arith::MulFOp::create(b, l, value, args[1]);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// kiln.expand_2of4 as a generic over (..., group, position) that picks
/// first, second or zero at each position, collapsed to [..., 4G]. It
/// reads its operands elementwise, so the CPU matmul expands a weight panel
/// by panel into its packing, like a dequantized one.
struct Expand2of4Pattern : OpConversionPattern<Expand2of4Op> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(Expand2of4Op op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getType());
    auto valuesType = cast<RankedTensorType>(adaptor.getFirst().getType());
    int64_t rank = valuesType.getRank();
    MLIRContext *ctx = rewriter.getContext();
    // [..., G, 4] of the result's element type.
    SmallVector<int64_t> blocked(valuesType.getShape());
    blocked.push_back(4);
    SmallVector<Value> dynamicSizes;
    for (int64_t d = 0; d < rank; ++d)
      if (valuesType.isDynamicDim(d))
        dynamicSizes.push_back(
            tensor::DimOp::create(rewriter, loc, adaptor.getFirst(), d));
    Value empty = tensor::EmptyOp::create(
        rewriter, loc, blocked, resultType.getElementType(), dynamicSizes);
    AffineMap operandMap = AffineMap::getMultiDimIdentityMap(rank + 1, ctx)
                               .getMajorSubMap(rank);
    AffineMap outMap = AffineMap::getMultiDimIdentityMap(rank + 1, ctx);
    SmallVector<utils::IteratorType> iterators(rank + 1,
                                               utils::IteratorType::parallel);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, empty.getType(),
        ValueRange{adaptor.getFirst(), adaptor.getSecond(),
                   adaptor.getPositions()},
        ValueRange{empty},
        SmallVector<AffineMap>{operandMap, operandMap, operandMap, outMap},
        iterators, [&](OpBuilder &b, Location l, ValueRange args) {
          Type i8 = b.getI8Type();
          Value position = arith::IndexCastOp::create(
              b, l, i8, linalg::IndexOp::create(b, l, rank));
          Value three = arith::ConstantIntOp::create(b, l, i8, 3);
          Value two = arith::ConstantIntOp::create(b, l, i8, 2);
          Value firstAt = arith::AndIOp::create(b, l, args[2], three);
          Value secondAt = arith::AndIOp::create(
              b, l, arith::ShRUIOp::create(b, l, args[2], two), three);
          Value zero = arith::ConstantOp::create(
              b, l, b.getFloatAttr(args[0].getType(), 0.0));
          Value isSecond = arith::CmpIOp::create(
              b, l, arith::CmpIPredicate::eq, position, secondAt);
          Value isFirst = arith::CmpIOp::create(
              b, l, arith::CmpIPredicate::eq, position, firstAt);
          Value value = arith::SelectOp::create(b, l, isSecond, args[1], zero);
          value = arith::SelectOp::create(b, l, isFirst, args[0], value);
          linalg::YieldOp::create(b, l, value);
        });
    SmallVector<ReassociationIndices> groups;
    for (int64_t d = 0; d + 1 < rank; ++d)
      groups.push_back({d});
    groups.push_back({rank - 1, rank});
    rewriter.replaceOpWithNewOp<tensor::CollapseShapeOp>(
        op, resultType, generic.getResult(0), groups);
    return success();
  }
};

/// kiln.expand_csr as loops that add each row's entries into a zeroed
/// matrix. Offsets and indices come from the weights file: they are
/// clamped into range (offsets read unsigned to [0, nnz], non-decreasing;
/// an index to the last column), so a corrupt file gives wrong numbers,
/// never an access outside the tensors.
struct ExpandCSRPattern : OpConversionPattern<ExpandCSROp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ExpandCSROp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getType());
    Value offsets = adaptor.getOffsets(), indices = adaptor.getIndices(),
          values = adaptor.getValues();
    Type elementType = resultType.getElementType();
    Value zero =
        arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(elementType));
    Value empty = tensor::EmptyOp::create(rewriter, loc, resultType.getShape(),
                                          elementType);
    Value zeroed =
        linalg::FillOp::create(rewriter, loc, zero, empty).getResult(0);
    auto c = [&](OpBuilder &b, int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    Value nnz = tensor::DimOp::create(rewriter, loc, values, 0);
    Value lastColumn = c(rewriter, resultType.getDimSize(1) - 1);
    auto offsetAt = [&](OpBuilder &b, Value at) -> Value {
      Value raw = tensor::ExtractOp::create(b, loc, offsets, at);
      Value wide = arith::ExtUIOp::create(b, loc, b.getI64Type(), raw);
      Value index = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), wide);
      return arith::MinUIOp::create(b, loc, index, nnz);
    };
    auto rows = scf::ForOp::create(
        rewriter, loc, c(rewriter, 0), c(rewriter, resultType.getDimSize(0)),
        c(rewriter, 1), ValueRange{zeroed},
        [&](OpBuilder &b, Location, Value row, ValueRange acc) {
          Value start = offsetAt(b, row);
          Value end = arith::MaxUIOp::create(
              b, loc, start,
              offsetAt(b, arith::AddIOp::create(b, loc, row, c(b, 1))));
          auto entries = scf::ForOp::create(
              b, loc, start, end, c(b, 1), ValueRange{acc[0]},
              [&](OpBuilder &eb, Location, Value j, ValueRange matrix) {
                Value raw = tensor::ExtractOp::create(eb, loc, indices, j);
                Value wide =
                    arith::ExtUIOp::create(eb, loc, eb.getI64Type(), raw);
                Value column = arith::MinUIOp::create(
                    eb, loc,
                    arith::IndexCastUIOp::create(eb, loc, eb.getIndexType(),
                                                 wide),
                    lastColumn);
                Value value = tensor::ExtractOp::create(eb, loc, values, j);
                Value old = tensor::ExtractOp::create(eb, loc, matrix[0],
                                                      ValueRange{row, column});
                Value sum = arith::AddFOp::create(eb, loc, old, value);
                scf::YieldOp::create(
                    eb, loc,
                    ValueRange{tensor::InsertOp::create(
                        eb, loc, sum, matrix[0], ValueRange{row, column})});
              });
          scf::YieldOp::create(b, loc, entries.getResults());
        });
    rewriter.replaceOp(op, rows.getResult(0));
    return success();
  }
};

struct QuantizePattern : OpConversionPattern<QuantizeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(QuantizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getType());
    auto inputType = tensorType(adaptor.getInput());
    bool isUnsigned = op.getUnsignedCodes();
    bool isE4M3 = op.getE4m3();
    BlockSpace space = buildBlockSpace(inputType.getShape(),
                                       tensorType(adaptor.getScale()), 8);
    Value input = expandTo(rewriter, loc, adaptor.getInput(), space.loops,
                           space.groups);
    Type floatType = inputType.getElementType();
    Value result = buildBlockwise(
        rewriter, loc, space, input,
        AffineMap::getMultiDimIdentityMap(space.loops.size(),
                                          rewriter.getContext()),
        adaptor.getScale(), adaptor.getZeroPoint(), adaptor.getInput(),
        resultType, [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          // torch: nearbyint(x * (1 / scale)) + zero_point, clamped.
          Value one = scalarConstant(b, l, floatType, 1.0);
          Value inverse = arith::DivFOp::create(b, l, one, args[1]);
          Value scaled = arith::MulFOp::create(b, l, args[0], inverse);
          if (isE4M3) {
            if (!floatType.isF32())
              scaled = arith::ExtFOp::create(b, l, b.getF32Type(), scaled);
            return encodeE4M3(b, l, scaled);
          }
          Value rounded = math::RoundEvenOp::create(b, l, scaled);
          if (args.size() == 4) {
            Value zero = isUnsigned
                             ? Value(arith::UIToFPOp::create(b, l, floatType,
                                                             args[2]))
                             : Value(arith::SIToFPOp::create(b, l, floatType,
                                                             args[2]));
            rounded = arith::AddFOp::create(b, l, rounded, zero);
          }
          Value lo = scalarConstant(b, l, floatType, isUnsigned ? 0 : -128);
          Value hi = scalarConstant(b, l, floatType, isUnsigned ? 255 : 127);
          Value clamped = arith::MaxNumFOp::create(
              b, l, arith::MinNumFOp::create(b, l, rounded, hi), lo);
          if (isUnsigned)
            return arith::FPToUIOp::create(b, l, b.getI8Type(), clamped);
          return arith::FPToSIOp::create(b, l, b.getI8Type(), clamped);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// The loops (batch..., m, k, n) of a matmul of `lhs` [..., M, K] by `rhs`
/// ([K, N], or [N, K] when `transposeRhs`) into a zero-filled `[..., M, N]`
/// of `element`: the output and the lhs, rhs and output indexing maps.
struct MatmulLoops {
  Value init;
  AffineMap lhsMap, rhsMap, outMap;
  SmallVector<utils::IteratorType> iterators;
};

MatmulLoops buildMatmulLoops(OpBuilder &b, Location loc, Value lhs, Value rhs,
                             bool transposeRhs, Type element) {
  MLIRContext *ctx = b.getContext();
  int64_t rank = tensorType(lhs).getRank();
  int64_t m = rank - 2, k = rank - 1, n = rank;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, lhs);
  sizes.back() = tensor::getMixedSizes(b, loc, rhs)[transposeRhs ? 0 : 1];
  Value empty = tensor::EmptyOp::create(b, loc, sizes, element);
  Value zero = scalarConstant(b, loc, element, 0);
  MatmulLoops loops;
  loops.init = linalg::FillOp::create(b, loc, zero, empty).getResult(0);
  SmallVector<AffineExpr> lhsExprs, outExprs;
  for (int64_t d = 0; d < m; ++d) {
    lhsExprs.push_back(getAffineDimExpr(d, ctx));
    outExprs.push_back(getAffineDimExpr(d, ctx));
  }
  AffineExpr mExpr = getAffineDimExpr(m, ctx), kExpr = getAffineDimExpr(k, ctx),
             nExpr = getAffineDimExpr(n, ctx);
  lhsExprs.append({mExpr, kExpr});
  outExprs.append({mExpr, nExpr});
  loops.lhsMap = AffineMap::get(rank + 1, 0, lhsExprs, ctx);
  loops.rhsMap = transposeRhs
                     ? AffineMap::get(rank + 1, 0, {nExpr, kExpr}, ctx)
                     : AffineMap::get(rank + 1, 0, {kExpr, nExpr}, ctx);
  loops.outMap = AffineMap::get(rank + 1, 0, outExprs, ctx);
  loops.iterators.assign(rank + 1, utils::IteratorType::parallel);
  loops.iterators[k] = utils::IteratorType::reduction;
  return loops;
}

/// kiln.integer_matmul as a (batch..., m, k, n) contraction generic of
/// sign-extended codes into i32 sums; a transposed rhs is read in place
/// through its indexing map (the CPU backend's int8 kernel wants the
/// weight's [N, K] rows as they are). The lhs's leading dims stay loops:
/// collapsing them into m and expanding the result back would expand one
/// dynamic dim into two, which upstream expand-strided-metadata does not
/// handle (the CPU kernel collapses its buffers instead).
struct IntegerMatmulPattern : OpConversionPattern<IntegerMatmulOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(IntegerMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value lhs = adaptor.getLhs(), rhs = adaptor.getRhs();
    Type i32 = rewriter.getI32Type();
    MatmulLoops loops =
        buildMatmulLoops(rewriter, loc, lhs, rhs, op.getTransposeRhs(), i32);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, loops.init.getType(), ValueRange{lhs, rhs},
        ValueRange{loops.init}, {loops.lhsMap, loops.rhsMap, loops.outMap},
        loops.iterators, [&](OpBuilder &b, Location l, ValueRange args) {
          Value x = arith::ExtSIOp::create(b, l, i32, args[0]);
          Value y = arith::ExtSIOp::create(b, l, i32, args[1]);
          Value product = arith::MulIOp::create(b, l, x, y);
          linalg::YieldOp::create(
              b, l, ValueRange{arith::AddIOp::create(b, l, args[2], product)});
        });
    rewriter.replaceOp(op, generic.getResult(0));
    return success();
  }
};

/// kiln.scaled_fp8_matmul as one (batch..., m, k, n) generic over the
/// e4m3 codes and the two per-tensor scales (read through constant maps)
/// into a zero-filled f32 output: `out + e4m3(lhs) · e4m3(rhs) · (s_l ·
/// s_r)`. kiln-gpu-matmuls-to-library recognizes this shape (f8E4M3FN
/// inputs, two one-element f32 inputs, an f32 output) and calls cuBLASLt's
/// fp8 gemm with the scales as its scale pointers; elsewhere it is an
/// ordinary generated reduction (the scale is applied per product there,
/// cuBLASLt applies it to the sum: equal up to f32 rounding).
struct ScaledFp8MatmulPattern : OpConversionPattern<ScaledFp8MatmulOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ScaledFp8MatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    Location loc = op.getLoc();
    Value lhs = adaptor.getLhs(), rhs = adaptor.getRhs();
    MatmulLoops loops = buildMatmulLoops(
        rewriter, loc, lhs, rhs, op.getTransposeRhs(), rewriter.getF32Type());
    AffineMap scaleMap =
        AffineMap::get(loops.lhsMap.getNumDims(), 0,
                       {getAffineConstantExpr(0, rewriter.getContext())},
                       rewriter.getContext());
    auto generic = linalg::GenericOp::create(
        rewriter, loc, loops.init.getType(),
        ValueRange{lhs, rhs, adaptor.getLhsScale(), adaptor.getRhsScale()},
        ValueRange{loops.init},
        {loops.lhsMap, loops.rhsMap, scaleMap, scaleMap, loops.outMap},
        loops.iterators, [&](OpBuilder &b, Location l, ValueRange args) {
          Value product = arith::MulFOp::create(b, l, decodeE4M3(b, l, args[0]),
                                                decodeE4M3(b, l, args[1]));
          Value scale = arith::MulFOp::create(b, l, args[2], args[3]);
          Value term = arith::MulFOp::create(b, l, product, scale);
          linalg::YieldOp::create(
              b, l, ValueRange{arith::AddFOp::create(b, l, args[4], term)});
        });
    rewriter.replaceOp(op, generic.getResult(0));
    return success();
  }
};

} // namespace

void mlir::kiln::to_linalg::populateQuantizationPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DequantizePattern, Expand2of4Pattern, ExpandCSRPattern,
               QuantizePattern, IntegerMatmulPattern, ScaledFp8MatmulPattern>(
      patterns.getContext());
}
