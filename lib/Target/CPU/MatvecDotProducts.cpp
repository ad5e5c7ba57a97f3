//===- MatvecDotProducts.cpp - Few-row matmuls as dot products ------------===//
//
// A decoding step multiplies one row per sequence by every weight: a
// matrix-vector product, bound by the bytes of the weights. The register
// tiles of kiln-tile-and-vectorize-contractions suit many rows; for one row
// a weight read transposed ([N, K], a linear's [out, in] or a tied LM head)
// is packed panel by panel before it is read, and a quantized one is
// dequantized into that packing first, which for one row costs more than
// reading the weight (measured: gpt2-small's f32 decoding step at 9 GB/s,
// w8 and w4 slower than f32). Here `kiln.matmul %x, %w transpose_rhs` with
// few rows, `%w` an f32 [N, K] tensor or a `kiln.dequantize` of 8- or
// 4-bit codes, becomes dot products that read each weight row once per row
// of x: for each output column n (in parallel) and row m, 16 weights at a
// time are loaded (codes converted to f32: bytes, or 8 bytes split into
// nibbles; the group's zero point taken off) and multiplied with x into
// independent partial sums; each group's sum is scaled once. A 2:4 weight
// stored compressed (`kiln.expand_2of4`) skips its zeros: 16 groups of
// four at a time, each group's two kept values are multiplied with the
// elements of x their positions pick (two gathers), half the multiply-adds
// on 9/16 of the bytes. With a dynamic row count the kernel sits in an
// scf.if on `rows <= max-rows`, the matmul as it was in the other branch.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_MATVECDOTPRODUCTSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// f32 lanes per step (one AVX-512 register, two AVX2 ones).
constexpr int64_t kLanes = 16;

Value index(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

/// A matmul this pass rewrites, with what the kernel needs to know.
struct Matvec {
  MatmulOp matmul;
  /// The quantized weight's dequantization, or null for an f32 weight
  /// (`weight`, [N, K]) read as it is.
  DequantizeOp dequantize;
  /// A 2:4 weight stored compressed, or null: its kept values are
  /// multiplied with the elements of x their positions pick (gathered),
  /// so half the multiply-adds and 9/16 of the weight bytes.
  Expand2of4Op expand;
  /// A weight stored as compressed sparse rows, or null: each output's
  /// kept values are multiplied with the elements of x their indices pick.
  ExpandCSROp csr;
  Value weight;

  /// The op that makes the weight from its stored parts, if any.
  Operation *producer() const {
    if (dequantize)
      return dequantize;
    if (expand)
      return expand;
    if (csr)
      return csr;
    return nullptr;
  }
  int64_t k = 0, groups = 0, groupSize = 0, bits = 8;
  bool perRowScale = false, isUnsigned = false;
};

/// `op` if it is `x · dequantize(codes, scales[, zero points])ᵀ` with f32
/// x and scales, a static K that 16-lane steps cover, groups of a multiple
/// of 16 along K, and at most one dynamic dim among x's rows.
std::optional<Matvec> match(MatmulOp op) {
  if (!op.getTransposeRhs() || op.getTransposeLhs())
    return std::nullopt;
  auto dequantize = op.getRhs().getDefiningOp<DequantizeOp>();
  auto lhs = cast<RankedTensorType>(op.getLhs().getType());
  auto weight = cast<RankedTensorType>(op.getRhs().getType());
  if (auto expand = op.getRhs().getDefiningOp<Expand2of4Op>()) {
    // 16 groups of four (64 weights) a step.
    int64_t k = weight.getRank() == 2 ? weight.getDimSize(1) : 0;
    if (weight.getRank() != 2 || !weight.getElementType().isF32() ||
        !lhs.getElementType().isF32() || lhs.getRank() < 2 ||
        ShapedType::isDynamic(k) || k % (4 * kLanes) != 0 ||
        lhs.getDimSize(lhs.getRank() - 1) != k ||
        cast<RankedTensorType>(op.getType()).getRank() != lhs.getRank() ||
        llvm::count_if(lhs.getShape().drop_back(), ShapedType::isDynamic) > 1)
      return std::nullopt;
    Matvec m;
    m.matmul = op;
    m.expand = expand;
    m.k = k;
    m.groups = 1;
    m.groupSize = k;
    return m;
  }
  if (auto csr = op.getRhs().getDefiningOp<ExpandCSROp>()) {
    int64_t k = weight.getDimSize(1);
    if (!weight.getElementType().isF32() || !lhs.getElementType().isF32() ||
        lhs.getRank() < 2 || lhs.getDimSize(lhs.getRank() - 1) != k ||
        cast<RankedTensorType>(op.getType()).getRank() != lhs.getRank() ||
        ShapedType::isDynamic(
            cast<RankedTensorType>(csr.getValues().getType()).getDimSize(0)) ||
        llvm::count_if(lhs.getShape().drop_back(), ShapedType::isDynamic) > 1)
      return std::nullopt;
    Matvec m;
    m.matmul = op;
    m.csr = csr;
    m.k = k;
    m.groups = 1;
    m.groupSize = k;
    return m;
  }
  if (!dequantize) {
    // An f32 weight read transposed (a tied LM head): the same dot
    // products over its rows.
    int64_t k = weight.getRank() == 2 ? weight.getDimSize(1) : 0;
    if (weight.getRank() != 2 || !weight.getElementType().isF32() ||
        !lhs.getElementType().isF32() || lhs.getRank() < 2 ||
        ShapedType::isDynamic(k) || k % kLanes != 0 ||
        lhs.getDimSize(lhs.getRank() - 1) != k ||
        llvm::count_if(lhs.getShape().drop_back(), ShapedType::isDynamic) > 1)
      return std::nullopt;
    Matvec m;
    m.matmul = op;
    m.weight = op.getRhs();
    m.k = k;
    m.groups = 1;
    m.groupSize = k;
    return m;
  }
  auto scale = cast<RankedTensorType>(dequantize.getScale().getType());
  if (!lhs.getElementType().isF32() || !weight.getElementType().isF32() ||
      weight.getRank() != 2 || lhs.getRank() < 2 ||
      cast<RankedTensorType>(op.getType()).getRank() != lhs.getRank())
    return std::nullopt;
  int64_t k = weight.getDimSize(1);
  if (ShapedType::isDynamic(k) || k % kLanes != 0 ||
      lhs.getDimSize(lhs.getRank() - 1) != k)
    return std::nullopt;
  if (llvm::count_if(lhs.getShape().drop_back(), ShapedType::isDynamic) > 1)
    return std::nullopt;
  // Scales per output row (or one for all rows) and per group along K.
  int64_t scaleRows = scale.getDimSize(0), groups = scale.getDimSize(1);
  if (ShapedType::isDynamic(scaleRows) || ShapedType::isDynamic(groups) ||
      (scaleRows != 1 && scaleRows != weight.getDimSize(0)) || groups < 1 ||
      k % groups != 0 || (k / groups) % kLanes != 0)
    return std::nullopt;
  Matvec m;
  m.matmul = op;
  m.dequantize = dequantize;
  m.k = k;
  m.groups = groups;
  m.groupSize = k / groups;
  m.bits = static_cast<int64_t>(dequantize.getBits());
  m.perRowScale = scaleRows != 1;
  m.isUnsigned = dequantize.getUnsignedCodes();
  return m;
}

/// 16 codes of weight row `n` from element `k` on, as f32 (sign- or
/// zero-extended; 4-bit codes from 8 bytes, low nibble first).
Value loadCodes(OpBuilder &b, Location loc, const Matvec &m, Value codes,
                Value n, Value k) {
  auto f32Vector = VectorType::get({kLanes}, b.getF32Type());
  Value zero8 = arith::ConstantIntOp::create(b, loc, b.getI8Type(), 0);
  Value lanes;
  if (!m.dequantize)
    return vector::TransferReadOp::create(
        b, loc, f32Vector, codes, ValueRange{n, k},
        arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0)),
        ArrayRef<bool>{true});
  if (m.bits == 8) {
    auto type = VectorType::get({kLanes}, b.getI8Type());
    lanes = vector::TransferReadOp::create(b, loc, type, codes,
                                           ValueRange{n, k}, zero8,
                                           ArrayRef<bool>{true});
  } else {
    auto bytesType = VectorType::get({kLanes / 2}, b.getI8Type());
    Value byte = arith::DivUIOp::create(b, loc, k, index(b, loc, 2));
    Value bytes = vector::TransferReadOp::create(
        b, loc, bytesType, codes, ValueRange{n, byte}, zero8,
        ArrayRef<bool>{true});
    auto splat = [&](int64_t v) {
      return arith::ConstantOp::create(
          b, loc, bytesType,
          DenseElementsAttr::get(bytesType, b.getI8IntegerAttr(v)));
    };
    Value low, high;
    if (m.isUnsigned) {
      low = arith::AndIOp::create(b, loc, bytes, splat(15));
      high = arith::ShRUIOp::create(b, loc, bytes, splat(4));
    } else {
      low = arith::ShRSIOp::create(
          b, loc, arith::ShLIOp::create(b, loc, bytes, splat(4)), splat(4));
      high = arith::ShRSIOp::create(b, loc, bytes, splat(4));
    }
    lanes = vector::InterleaveOp::create(b, loc, low, high);
  }
  if (m.isUnsigned)
    return arith::UIToFPOp::create(b, loc, f32Vector, lanes);
  return arith::SIToFPOp::create(b, loc, f32Vector, lanes);
}

/// `x[m] · dequantize(codes)[n]`: per group, `unroll` independent partial
/// sums over 16-lane steps, added and scaled once; lanes summed at the end.
Value dotProduct(OpBuilder &b, Location loc, const Matvec &m, Value x,
                 Value codes, Value scales, Value zeroPoints, Value row,
                 Value n) {
  auto f32Vector = VectorType::get({kLanes}, b.getF32Type());
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  int64_t steps = m.groupSize / kLanes;
  int64_t unroll = steps % 4 == 0 ? 4 : steps % 2 == 0 ? 2 : 1;
  Value scaleRow = m.perRowScale ? n : index(b, loc, 0);
  auto group = scf::ForOp::create(
      b, loc, index(b, loc, 0), index(b, loc, m.groups), index(b, loc, 1),
      ValueRange{zeros},
      [&](OpBuilder &gb, Location, Value j, ValueRange acc) {
        Value base = arith::MulIOp::create(gb, loc, j, index(gb, loc, m.groupSize));
        // The group's zero point comes off the codes before the products,
        // as the dequantization takes it off: (q - z)·x.
        Value zeroPoint;
        if (zeroPoints) {
          Value z = tensor::ExtractOp::create(gb, loc, zeroPoints,
                                              ValueRange{scaleRow, j});
          Value zf =
              m.isUnsigned
                  ? Value(arith::UIToFPOp::create(gb, loc, gb.getF32Type(), z))
                  : Value(arith::SIToFPOp::create(gb, loc, gb.getF32Type(), z));
          zeroPoint = vector::BroadcastOp::create(gb, loc, f32Vector, zf);
        }
        SmallVector<Value> init(unroll, zeros);
        auto inner = scf::ForOp::create(
            gb, loc, index(gb, loc, 0), index(gb, loc, steps),
            index(gb, loc, unroll), init,
            [&](OpBuilder &ib, Location, Value t, ValueRange partial) {
              SmallVector<Value> next;
              for (int64_t u = 0; u < unroll; ++u) {
                Value step = arith::AddIOp::create(ib, loc, t, index(ib, loc, u));
                Value k = arith::AddIOp::create(
                    ib, loc, base,
                    arith::MulIOp::create(ib, loc, step, index(ib, loc, kLanes)));
                Value w = loadCodes(ib, loc, m, codes, n, k);
                if (zeroPoint)
                  w = arith::SubFOp::create(ib, loc, w, zeroPoint);
                Value xs = vector::TransferReadOp::create(
                    ib, loc, f32Vector, x, ValueRange{row, k},
                    arith::ConstantOp::create(ib, loc, ib.getF32FloatAttr(0)),
                    ArrayRef<bool>{true});
                next.push_back(
                    vector::FMAOp::create(ib, loc, w, xs, partial[u]));
              }
              scf::YieldOp::create(ib, loc, next);
            });
        Value sum = inner.getResult(0);
        for (int64_t u = 1; u < unroll; ++u)
          sum = arith::AddFOp::create(gb, loc, sum, inner.getResult(u));
        if (!scales) {
          scf::YieldOp::create(
              gb, loc, ValueRange{arith::AddFOp::create(gb, loc, acc[0], sum)});
          return;
        }
        Value scale = tensor::ExtractOp::create(gb, loc, scales,
                                                ValueRange{scaleRow, j});
        Value scaled = vector::FMAOp::create(
            gb, loc, vector::BroadcastOp::create(gb, loc, f32Vector, scale), sum,
            acc[0]);
        scf::YieldOp::create(gb, loc, ValueRange{scaled});
      });
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                     group.getResult(0),
                                     arith::FastMathFlags::reassoc);
}

/// `x[m] · expand_2of4(first, second, positions)[n]`: per step 16 groups
/// of four inputs, the kept values times x gathered at their positions
/// (`4g + position`), `unroll` independent partial sums, lanes summed at
/// the end.
Value sparseDotProduct(OpBuilder &b, Location loc, const Matvec &m, Value x,
                       Value row, Value n) {
  Expand2of4Op e = m.expand;
  auto f32Vector = VectorType::get({kLanes}, b.getF32Type());
  auto i32Vector = VectorType::get({kLanes}, b.getI32Type());
  auto i8Vector = VectorType::get({kLanes}, b.getI8Type());
  auto i1Vector = VectorType::get({kLanes}, b.getI1Type());
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  auto splat32 = [&](OpBuilder &ob, int32_t v) -> Value {
    return arith::ConstantOp::create(
        ob, loc, i32Vector,
        DenseElementsAttr::get(i32Vector, ob.getI32IntegerAttr(v)));
  };
  SmallVector<int32_t> laneValues;
  for (int32_t i = 0; i < kLanes; ++i)
    laneValues.push_back(4 * i);
  Value laneOffsets = arith::ConstantOp::create(
      b, loc, i32Vector,
      DenseElementsAttr::get(i32Vector, ArrayRef<int32_t>(laneValues)));
  Value allLanes = arith::ConstantOp::create(
      b, loc, i1Vector, DenseElementsAttr::get(i1Vector, true));
  int64_t steps = m.k / (4 * kLanes);
  int64_t unroll = steps % 4 == 0 ? 4 : steps % 2 == 0 ? 2 : 1;
  SmallVector<Value> init(unroll, zeros);
  auto loop = scf::ForOp::create(
      b, loc, index(b, loc, 0), index(b, loc, steps), index(b, loc, unroll),
      init, [&](OpBuilder &ib, Location, Value t, ValueRange partial) {
        SmallVector<Value> next;
        Value zero = index(ib, loc, 0);
        for (int64_t u = 0; u < unroll; ++u) {
          Value step = arith::AddIOp::create(ib, loc, t, index(ib, loc, u));
          Value g = arith::MulIOp::create(ib, loc, step, index(ib, loc, kLanes));
          auto read = [&](Value source, VectorType type, Value padding) {
            return vector::TransferReadOp::create(ib, loc, type, source,
                                                  ValueRange{n, g}, padding,
                                                  ArrayRef<bool>{true});
          };
          Value f32Zero =
              arith::ConstantOp::create(ib, loc, ib.getF32FloatAttr(0));
          Value first = read(e.getFirst(), f32Vector, f32Zero);
          Value second = read(e.getSecond(), f32Vector, f32Zero);
          Value positions = arith::ExtUIOp::create(
              ib, loc, i32Vector,
              read(e.getPositions(), i8Vector,
                   arith::ConstantIntOp::create(ib, loc, ib.getI8Type(), 0)));
          // Element 4g of x for each lane's group, plus the positions.
          Value base = arith::AddIOp::create(
              ib, loc, laneOffsets,
              vector::BroadcastOp::create(
                  ib, loc, i32Vector,
                  arith::IndexCastOp::create(
                      ib, loc, ib.getI32Type(),
                      arith::MulIOp::create(ib, loc, g, index(ib, loc, 4)))));
          Value three = splat32(ib, 3);
          Value at0 = arith::AddIOp::create(
              ib, loc, base, arith::AndIOp::create(ib, loc, positions, three));
          Value at1 = arith::AddIOp::create(
              ib, loc, base,
              arith::AndIOp::create(
                  ib, loc,
                  arith::ShRUIOp::create(ib, loc, positions, splat32(ib, 2)),
                  three));
          Value x0 = vector::GatherOp::create(ib, loc, f32Vector, x,
                                              ValueRange{row, zero}, at0,
                                              allLanes, zeros, IntegerAttr());
          Value x1 = vector::GatherOp::create(ib, loc, f32Vector, x,
                                              ValueRange{row, zero}, at1,
                                              allLanes, zeros, IntegerAttr());
          Value sum = vector::FMAOp::create(ib, loc, first, x0, partial[u]);
          next.push_back(vector::FMAOp::create(ib, loc, second, x1, sum));
        }
        scf::YieldOp::create(ib, loc, next);
      });
  Value sum = loop.getResult(0);
  for (int64_t u = 1; u < unroll; ++u)
    sum = arith::AddFOp::create(b, loc, sum, loop.getResult(u));
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, sum,
                                     arith::FastMathFlags::reassoc);
}

/// `x[m] · expand_csr(offsets, indices, values)[n]`: output n's entries,
/// `unroll` vectors of 16 at a time under masks (a row's entries are not
/// a multiple of 16), times x gathered at their indices, independent
/// partial sums, lanes summed at the end. Offsets and indices are clamped
/// into range as kiln.expand_csr's lowering clamps them.
Value csrDotProduct(OpBuilder &b, Location loc, const Matvec &m, Value x,
                    Value row, Value n) {
  ExpandCSROp e = m.csr;
  auto f32Vector = VectorType::get({kLanes}, b.getF32Type());
  auto i32Vector = VectorType::get({kLanes}, b.getI32Type());
  auto indexElement =
      cast<RankedTensorType>(e.getIndices().getType()).getElementType();
  auto indexVector = VectorType::get({kLanes}, indexElement);
  auto maskType = VectorType::get({kLanes}, b.getI1Type());
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  int64_t nnz =
      cast<RankedTensorType>(e.getValues().getType()).getDimSize(0);
  Value count = index(b, loc, nnz);
  auto offsetAt = [&](Value at) -> Value {
    Value raw = tensor::ExtractOp::create(b, loc, e.getOffsets(), at);
    Value wide = arith::ExtUIOp::create(b, loc, b.getI64Type(), raw);
    Value i = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), wide);
    return arith::MinUIOp::create(b, loc, i, count);
  };
  Value start = offsetAt(n);
  Value end = arith::MaxUIOp::create(
      b, loc, start,
      offsetAt(arith::AddIOp::create(b, loc, n, index(b, loc, 1))));
  Value lastColumn = arith::ConstantOp::create(
      b, loc, i32Vector,
      DenseElementsAttr::get(i32Vector,
                             b.getI32IntegerAttr(static_cast<int32_t>(m.k - 1))));
  constexpr int64_t unroll = 2;
  SmallVector<Value> init(unroll, zeros);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  ArrayAttr outOfBounds = b.getBoolArrayAttr({false});
  auto loop = scf::ForOp::create(
      b, loc, start, end, index(b, loc, unroll * kLanes), init,
      [&](OpBuilder &ib, Location, Value j, ValueRange partial) {
        SmallVector<Value> next;
        Value zero = index(ib, loc, 0);
        for (int64_t u = 0; u < unroll; ++u) {
          Value at = arith::AddIOp::create(ib, loc, j, index(ib, loc, u * kLanes));
          // Lanes at or past the row's end are off (a negative count: all).
          Value left = arith::SubIOp::create(ib, loc, end, at);
          Value mask = vector::CreateMaskOp::create(ib, loc, maskType,
                                                    ValueRange{left});
          Value values = vector::TransferReadOp::create(
              ib, loc, f32Vector, e.getValues(), ValueRange{at}, identity,
              arith::ConstantOp::create(ib, loc, ib.getF32FloatAttr(0)), mask,
              outOfBounds);
          Value raw = vector::TransferReadOp::create(
              ib, loc, indexVector, e.getIndices(), ValueRange{at}, identity,
              arith::ConstantOp::create(ib, loc,
                                        ib.getIntegerAttr(indexElement, 0)),
              mask, outOfBounds);
          Value columns =
              indexElement.isInteger(32)
                  ? raw
                  : Value(arith::ExtUIOp::create(ib, loc, i32Vector, raw));
          columns = arith::MinUIOp::create(ib, loc, columns, lastColumn);
          Value xs = vector::GatherOp::create(ib, loc, f32Vector, x,
                                              ValueRange{row, zero}, columns,
                                              mask, zeros, IntegerAttr());
          next.push_back(vector::FMAOp::create(ib, loc, values, xs, partial[u]));
        }
        scf::YieldOp::create(ib, loc, next);
      });
  Value sum = loop.getResult(0);
  for (int64_t u = 1; u < unroll; ++u)
    sum = arith::AddFOp::create(b, loc, sum, loop.getResult(u));
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, sum,
                                     arith::FastMathFlags::reassoc);
}

/// The kernel: `x2` [rows, K] times the dequantized weight's transpose,
/// [rows, N].
Value buildKernel(OpBuilder &b, Location loc, const Matvec &m, Value x2,
                  Value rows) {
  DequantizeOp dq = m.dequantize;
  Expand2of4Op expand = m.expand;
  Value codes = dq       ? dq.getInput()
                : expand ? expand.getFirst()
                         : m.weight;
  Value scales = dq ? dq.getScale() : Value();
  Value zeroPoints = dq ? dq.getZeroPoint() : Value();
  Type f32 = b.getF32Type();
  // Output columns: the weight's rows (a CSR weight's are static).
  int64_t outputs =
      m.csr ? cast<RankedTensorType>(m.csr->getResult(0).getType()).getDimSize(0)
            : cast<RankedTensorType>(codes.getType()).getDimSize(0);
  Value columns = m.csr ? index(b, loc, outputs)
                        : Value(tensor::DimOp::create(b, loc, codes, 0));
  auto outType = RankedTensorType::get({ShapedType::kDynamic, outputs}, f32);
  SmallVector<Value> outSizes{rows};
  if (outType.isDynamicDim(1))
    outSizes.push_back(columns);
  Value out = tensor::EmptyOp::create(b, loc, outType, outSizes);
  auto forall = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{columns}, ValueRange{out}, std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    Value n = forall.getInductionVars()[0];
    auto colType = RankedTensorType::get({ShapedType::kDynamic}, f32);
    Value column = tensor::EmptyOp::create(b, loc, colType, ValueRange{rows});
    auto perRow = scf::ForOp::create(
        b, loc, index(b, loc, 0), rows, index(b, loc, 1), ValueRange{column},
        [&](OpBuilder &rb, Location, Value row, ValueRange c) {
          Value value = m.expand ? sparseDotProduct(rb, loc, m, x2, row, n)
                        : m.csr  ? csrDotProduct(rb, loc, m, x2, row, n)
                                 : dotProduct(rb, loc, m, x2, codes, scales,
                                              zeroPoints, row, n);
          scf::YieldOp::create(
              rb, loc,
              ValueRange{tensor::InsertOp::create(rb, loc, value, c[0], row)});
        });
    b.setInsertionPointToEnd(forall.getTerminator().getBody());
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    tensor::ParallelInsertSliceOp::create(
        b, loc, perRow.getResult(0), forall.getRegionIterArgs()[0],
        ArrayRef<OpFoldResult>{zero, n}, ArrayRef<OpFoldResult>{rows, one},
        ArrayRef<OpFoldResult>{one, one});
  }
  return forall.getResult(0);
}

/// Rows up to which the 2:4 gather kernel beats expanding the weight into
/// the register tiles' packing. Measured on gpt2-small's decoding step
/// (Zen 4, 2 threads): 2.25x f32 at one row, 0.69x at eight: each row
/// gathers its own x, so the gathers, not the bytes, bound it as rows grow.
constexpr int64_t kSparseMaxRows = 4;

void rewrite(IRRewriter &rewriter, Matvec m, int64_t maxRows) {
  if (m.expand || m.csr)
    maxRows = std::min(maxRows, kSparseMaxRows);
  MatmulOp op = m.matmul;
  Location loc = op.getLoc();
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto resultType = cast<RankedTensorType>(op.getType());
  int64_t rank = lhsType.getRank();
  rewriter.setInsertionPoint(op);

  // Rows: the product of x's leading dims.
  int64_t staticRows = 1;
  bool dynamicRows = false;
  for (int64_t d = 0; d + 1 < rank; ++d) {
    if (lhsType.isDynamicDim(d))
      dynamicRows = true;
    else
      staticRows *= lhsType.getDimSize(d);
  }
  if (!dynamicRows && staticRows > maxRows)
    return;
  Value rows = index(rewriter, loc, staticRows);
  SmallVector<OpFoldResult> resultSizes;
  for (int64_t d = 0; d + 1 < rank; ++d) {
    if (lhsType.isDynamicDim(d)) {
      Value size = tensor::DimOp::create(rewriter, loc, op.getLhs(), d);
      rows = arith::MulIOp::create(rewriter, loc, rows, size);
      resultSizes.push_back(size);
    } else {
      resultSizes.push_back(rewriter.getIndexAttr(lhsType.getDimSize(d)));
    }
  }
  resultSizes.push_back(
      resultType.isDynamicDim(rank - 1)
          ? OpFoldResult(
                tensor::DimOp::create(rewriter, loc, op.getRhs(), 0).getResult())
          : OpFoldResult(rewriter.getIndexAttr(resultType.getDimSize(rank - 1))));

  SmallVector<ReassociationIndices> leading = {
      llvm::to_vector(llvm::seq<int64_t>(0, rank - 1)), {rank - 1}};
  auto kernel = [&](OpBuilder &b, Location l) -> Value {
    Value x2 = op.getLhs();
    if (rank > 2)
      x2 = tensor::CollapseShapeOp::create(b, l, x2, leading);
    Value y2 = buildKernel(b, l, m, x2, rows);
    // [rows, N] with rows static when they are, then x's leading dims.
    auto y2Type = cast<RankedTensorType>(y2.getType());
    auto rowsType = y2Type.clone(
        {dynamicRows ? ShapedType::kDynamic : staticRows, y2Type.getDimSize(1)});
    if (rowsType != y2Type)
      y2 = tensor::CastOp::create(b, l, rowsType, y2);
    if (rank == 2)
      return y2.getType() == resultType
                 ? y2
                 : Value(tensor::CastOp::create(b, l, resultType, y2));
    return tensor::ExpandShapeOp::create(b, l, resultType, y2, leading,
                                         resultSizes);
  };
  if (!dynamicRows) {
    rewriter.replaceOp(op, kernel(rewriter, loc));
    return;
  }
  Value few = arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::ule,
                                    rows, index(rewriter, loc, maxRows));
  Operation *producer = m.producer();
  bool soleUse = producer && producer->hasOneUse();
  auto branch = scf::IfOp::create(
      rewriter, loc, few,
      [&](OpBuilder &b, Location l) {
        scf::YieldOp::create(b, l, ValueRange{kernel(b, l)});
      },
      [&](OpBuilder &b, Location l) {
        IRMapping mapping;
        if (soleUse)
          b.clone(*producer, mapping);
        Operation *clone = b.clone(*op, mapping);
        scf::YieldOp::create(b, l, clone->getResults());
      });
  rewriter.replaceOp(op, branch.getResults());
  if (producer && producer->use_empty())
    rewriter.eraseOp(producer);
}

struct MatvecDotProductsPass
    : kiln::impl::MatvecDotProductsPassBase<MatvecDotProductsPass> {
  using Base::Base;

  void runOnOperation() final {
    if (maxRows < 1) {
      getOperation().emitError()
          << "kiln-matvec-dot-products: max-rows must be positive";
      return signalPassFailure();
    }
    SmallVector<Matvec> work;
    getOperation().walk([&](MatmulOp op) {
      if (std::optional<Matvec> m = match(op))
        work.push_back(*m);
    });
    IRRewriter rewriter(&getContext());
    for (const Matvec &m : work)
      rewrite(rewriter, m, maxRows);
  }
};
} // namespace
