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
// on 9/16 of the bytes. One in compressed sparse rows (`kiln.expand_csr`)
// walks each output's entries 16 at a time under a mask and gathers x at
// their indices. An f32 weight read as stored, [K, N] (GPT-2's Conv1D),
// is not a dot product: for one row, each parallel iteration owns up to 64
// output columns and adds x[k] times row k of the weight into them, where
// the register tiles would pack the whole weight for a single row. With a
// dynamic row count the kernel sits in an
// scf.if on `rows <= max-rows`, the matmul as it was in the other branch.
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
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
  /// An f32 weight read as it is stored, `[K, N]` (GPT-2's Conv1D): rows
  /// of x times rows of the weight, 16 outputs a lane (no dot products).
  bool rowMajor = false;

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
  /// 4-bit codes looked up in a 16-lane f32 table (vpermps, `permps`):
  /// the group's (code - zero point) · scale for every code, so a code
  /// costs no conversion and no group sum is scaled; x is read
  /// deinterleaved (the low nibbles' inputs, then the high ones').
  func::FuncOp permps;
  /// Rows multiplied together by the dense and quantized kernels, sharing
  /// each weight vector (the pass option row-block; 1 for the sparse ones).
  int64_t rowBlock = 1;
};

/// A match of `op` whose weight rows are one group of `k` (no scales).
Matvec wholeRows(MatmulOp op, int64_t k) {
  Matvec m;
  m.matmul = op;
  m.k = k;
  m.groups = 1;
  m.groupSize = k;
  return m;
}

/// `op` if it is `x · dequantize(codes, scales[, zero points])ᵀ` with f32
/// x and scales, a static K that 16-lane steps cover, groups of a multiple
/// of 16 along K, and at most one dynamic dim among x's rows.
std::optional<Matvec> match(MatmulOp op) {
  if (op.getTransposeLhs())
    return std::nullopt;
  if (!op.getTransposeRhs()) {
    // x [..., K] · w [K, N]: N a multiple of 16, the weight f32.
    auto lhs = cast<RankedTensorType>(op.getLhs().getType());
    auto weight = cast<RankedTensorType>(op.getRhs().getType());
    if (!op.getRhs().getDefiningOp<ReadParamOp>() || weight.getRank() != 2 ||
        !weight.hasStaticShape() ||
        !weight.getElementType().isF32() || !lhs.getElementType().isF32() ||
        lhs.getRank() < 2 || weight.getDimSize(1) % kLanes != 0 ||
        lhs.getDimSize(lhs.getRank() - 1) != weight.getDimSize(0) ||
        cast<RankedTensorType>(op.getType()).getRank() != lhs.getRank() ||
        llvm::count_if(lhs.getShape().drop_back(), ShapedType::isDynamic) > 1)
      return std::nullopt;
    Matvec m = wholeRows(op, weight.getDimSize(0));
    m.weight = op.getRhs();
    m.rowMajor = true;
    return m;
  }
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
    Matvec m = wholeRows(op, k);
    m.expand = expand;
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
    Matvec m = wholeRows(op, k);
    m.csr = csr;
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
    Matvec m = wholeRows(op, k);
    m.weight = op.getRhs();
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

/// Group `j`'s zero point of weight row `scaleRow` as 16 f32 lanes,
/// converted as the dequantization converts it (unsigned codes' unsigned).
Value groupZeroPoint(OpBuilder &b, Location loc, const Matvec &m,
                     Value zeroPoints, Value scaleRow, Value j) {
  Value z =
      tensor::ExtractOp::create(b, loc, zeroPoints, ValueRange{scaleRow, j});
  Value zf = m.isUnsigned
                 ? Value(arith::UIToFPOp::create(b, loc, b.getF32Type(), z))
                 : Value(arith::SIToFPOp::create(b, loc, b.getF32Type(), z));
  return vector::BroadcastOp::create(
      b, loc, VectorType::get({kLanes}, b.getF32Type()), zf);
}

/// AVX-512's vpermps: lane i of the result is `table[index[i] & 15]`.
constexpr llvm::StringLiteral kPermps = "llvm.x86.avx512.permvar.sf.512";

/// Codes per step of the table kernel: 16 bytes, a low and a high nibble
/// each.
constexpr int64_t kPairLanes = 2 * kLanes;

/// `x2` [rows, K] with each block of 32 inputs deinterleaved: its 16 even
/// elements, then its 16 odd ones (the low and the high nibbles' inputs of
/// 16 code bytes).
Value deinterleaveBlocks(OpBuilder &b, Location loc, Value x2, Value rows,
                         int64_t k) {
  Type f32 = b.getF32Type();
  auto type = RankedTensorType::get({ShapedType::kDynamic, k}, f32);
  auto pairType = VectorType::get({kPairLanes}, f32);
  Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
  Value out = tensor::EmptyOp::create(b, loc, type, ValueRange{rows});
  auto perRow = scf::ForOp::create(
      b, loc, index(b, loc, 0), rows, index(b, loc, 1), ValueRange{out},
      [&](OpBuilder &rb, Location, Value row, ValueRange acc) {
        auto blocks = scf::ForOp::create(
            rb, loc, index(rb, loc, 0), index(rb, loc, k),
            index(rb, loc, kPairLanes), ValueRange{acc[0]},
            [&](OpBuilder &bb, Location, Value at, ValueRange into) {
              Value pair = vector::TransferReadOp::create(
                  bb, loc, pairType, x2, ValueRange{row, at}, zero,
                  ArrayRef<bool>{true});
              auto halves = vector::DeinterleaveOp::create(bb, loc, pair);
              Value result = vector::TransferWriteOp::create(
                                 bb, loc, halves.getRes1(), into[0],
                                 ValueRange{row, at}, ArrayRef<bool>{true})
                                 .getResult();
              Value odd =
                  arith::AddIOp::create(bb, loc, at, index(bb, loc, kLanes));
              result = vector::TransferWriteOp::create(
                           bb, loc, halves.getRes2(), result,
                           ValueRange{row, odd}, ArrayRef<bool>{true})
                           .getResult();
              scf::YieldOp::create(bb, loc, ValueRange{result});
            });
        scf::YieldOp::create(rb, loc, blocks.getResults());
      });
  return perRow.getResult(0);
}

/// `x[r] · dequantize(codes)[n]` for each row r of `rows`, 4-bit codes
/// through the table (Matvec::permps): per group the 16 values a code can
/// stand for, `(q - z) · s` as the dequantization computes them; per step
/// 16 code bytes, each byte's low nibble looking up the value that
/// multiplies an even input and its high nibble an odd one (`xd`:
/// deinterleaveBlocks), the lookups shared by the rows; independent partial
/// sums over the whole row (two per row, four for a single row), lanes
/// summed at the end.
SmallVector<Value> tableDotProducts(OpBuilder &b, Location loc, const Matvec &m,
                                    Value xd, Value codes, Value scales,
                                    Value zeroPoints, ArrayRef<Value> rows,
                                    Value n) {
  auto f32Vector = VectorType::get({kLanes}, b.getF32Type());
  auto i32Vector = VectorType::get({kLanes}, b.getI32Type());
  auto bytesType = VectorType::get({kLanes}, b.getI8Type());
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  // The codes' values: 0..15, or two's complement nibbles 0..7, -8..-1.
  SmallVector<float> values;
  for (int64_t q = 0; q < 16; ++q)
    values.push_back(static_cast<float>(m.isUnsigned || q < 8 ? q : q - 16));
  Value codeValues = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, ArrayRef(values)));
  Value four = arith::ConstantOp::create(
      b, loc, i32Vector,
      DenseElementsAttr::get(i32Vector, b.getI32IntegerAttr(4)));
  Value zero8 = arith::ConstantIntOp::create(b, loc, b.getI8Type(), 0);
  Value f32Zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
  Value scaleRow = m.perRowScale ? n : index(b, loc, 0);
  int64_t count = rows.size();
  int64_t steps = m.groupSize / kPairLanes;
  int64_t unroll = count == 1 && steps % 2 == 0 ? 2 : 1;
  // Partial sums: [row][step of the unroll][low, high].
  auto at = [&](int64_t r, int64_t u, int64_t half) {
    return (r * unroll + u) * 2 + half;
  };
  SmallVector<Value> init(count * unroll * 2, zeros);
  auto group = scf::ForOp::create(
      b, loc, index(b, loc, 0), index(b, loc, m.groups), index(b, loc, 1), init,
      [&](OpBuilder &gb, Location, Value j, ValueRange acc) {
        Value base =
            arith::MulIOp::create(gb, loc, j, index(gb, loc, m.groupSize));
        Value table = codeValues;
        if (zeroPoints)
          table = arith::SubFOp::create(
              gb, loc, table,
              groupZeroPoint(gb, loc, m, zeroPoints, scaleRow, j));
        Value scale =
            tensor::ExtractOp::create(gb, loc, scales, ValueRange{scaleRow, j});
        table = arith::MulFOp::create(
            gb, loc, table,
            vector::BroadcastOp::create(gb, loc, f32Vector, scale));
        auto inner = scf::ForOp::create(
            gb, loc, index(gb, loc, 0), index(gb, loc, steps),
            index(gb, loc, unroll), acc,
            [&](OpBuilder &ib, Location, Value t, ValueRange partial) {
              SmallVector<Value> next(partial.begin(), partial.end());
              for (int64_t u = 0; u < unroll; ++u) {
                Value step =
                    arith::AddIOp::create(ib, loc, t, index(ib, loc, u));
                Value k = arith::AddIOp::create(
                    ib, loc, base,
                    arith::MulIOp::create(ib, loc, step,
                                          index(ib, loc, kPairLanes)));
                Value byte =
                    arith::DivUIOp::create(ib, loc, k, index(ib, loc, 2));
                Value bytes = arith::ExtUIOp::create(
                    ib, loc, i32Vector,
                    vector::TransferReadOp::create(ib, loc, bytesType, codes,
                                                   ValueRange{n, byte}, zero8,
                                                   ArrayRef<bool>{true}));
                Value high = arith::ShRUIOp::create(ib, loc, bytes, four);
                auto lookUp = [&](Value lanes) {
                  return func::CallOp::create(ib, loc, m.permps,
                                              ValueRange{table, lanes})
                      .getResult(0);
                };
                Value oddAt =
                    arith::AddIOp::create(ib, loc, k, index(ib, loc, kLanes));
                auto inputs = [&](Value row, Value from) -> Value {
                  return vector::TransferReadOp::create(
                      ib, loc, f32Vector, xd, ValueRange{row, from}, f32Zero,
                      ArrayRef<bool>{true});
                };
                // Named values keep the reads and lookups in this order.
                Value low = lookUp(bytes);
                for (int64_t r = 0; r < count; ++r) {
                  Value even = inputs(rows[r], k);
                  next[at(r, u, 0)] = vector::FMAOp::create(
                      ib, loc, low, even, partial[at(r, u, 0)]);
                }
                Value highValues = lookUp(high);
                for (int64_t r = 0; r < count; ++r) {
                  Value odd = inputs(rows[r], oddAt);
                  next[at(r, u, 1)] = vector::FMAOp::create(
                      ib, loc, highValues, odd, partial[at(r, u, 1)]);
                }
              }
              scf::YieldOp::create(ib, loc, next);
            });
        scf::YieldOp::create(gb, loc, inner.getResults());
      });
  SmallVector<Value> results;
  for (int64_t r = 0; r < count; ++r) {
    Value sum = group.getResult(at(r, 0, 0));
    for (int64_t u = 0; u < unroll; ++u)
      for (int64_t half = 0; half < 2; ++half)
        if (u || half)
          sum = arith::AddFOp::create(b, loc, sum,
                                      group.getResult(at(r, u, half)));
    results.push_back(
        vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, sum,
                                    arith::FastMathFlags::reassoc));
  }
  return results;
}

/// `x[r] · dequantize(codes)[n]` for each row r of `rows`: per group,
/// independent partial sums over 16-lane steps (`unroll` of them for a
/// single row, two per row for several), each code vector loaded and
/// converted once for all the rows, added and scaled once per group; lanes
/// summed at the end.
SmallVector<Value> dotProducts(OpBuilder &b, Location loc, const Matvec &m,
                               Value x, Value codes, Value scales,
                               Value zeroPoints, ArrayRef<Value> rows,
                               Value n) {
  auto f32Vector = VectorType::get({kLanes}, b.getF32Type());
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  int64_t count = rows.size();
  int64_t steps = m.groupSize / kLanes;
  int64_t unroll = count > 1        ? (steps % 2 == 0 ? 2 : 1)
                   : steps % 4 == 0 ? 4
                   : steps % 2 == 0 ? 2
                                    : 1;
  Value scaleRow = m.perRowScale ? n : index(b, loc, 0);
  SmallVector<Value> groupInit(count, zeros);
  auto group = scf::ForOp::create(
      b, loc, index(b, loc, 0), index(b, loc, m.groups), index(b, loc, 1),
      groupInit, [&](OpBuilder &gb, Location, Value j, ValueRange acc) {
        Value base = arith::MulIOp::create(gb, loc, j, index(gb, loc, m.groupSize));
        // The group's zero point comes off the codes before the products,
        // as the dequantization takes it off: (q - z)·x.
        Value zeroPoint;
        if (zeroPoints)
          zeroPoint = groupZeroPoint(gb, loc, m, zeroPoints, scaleRow, j);
        // Partial sums: [row][step of the unroll].
        SmallVector<Value> init(count * unroll, zeros);
        auto inner = scf::ForOp::create(
            gb, loc, index(gb, loc, 0), index(gb, loc, steps),
            index(gb, loc, unroll), init,
            [&](OpBuilder &ib, Location, Value t, ValueRange partial) {
              SmallVector<Value> next(partial.begin(), partial.end());
              for (int64_t u = 0; u < unroll; ++u) {
                Value step = arith::AddIOp::create(ib, loc, t, index(ib, loc, u));
                Value k = arith::AddIOp::create(
                    ib, loc, base,
                    arith::MulIOp::create(ib, loc, step, index(ib, loc, kLanes)));
                Value w = loadCodes(ib, loc, m, codes, n, k);
                if (zeroPoint)
                  w = arith::SubFOp::create(ib, loc, w, zeroPoint);
                for (int64_t r = 0; r < count; ++r) {
                  Value xs = vector::TransferReadOp::create(
                      ib, loc, f32Vector, x, ValueRange{rows[r], k},
                      arith::ConstantOp::create(ib, loc, ib.getF32FloatAttr(0)),
                      ArrayRef<bool>{true});
                  next[r * unroll + u] = vector::FMAOp::create(
                      ib, loc, w, xs, partial[r * unroll + u]);
                }
              }
              scf::YieldOp::create(ib, loc, next);
            });
        SmallVector<Value> sums;
        for (int64_t r = 0; r < count; ++r) {
          Value sum = inner.getResult(r * unroll);
          for (int64_t u = 1; u < unroll; ++u)
            sum = arith::AddFOp::create(gb, loc, sum,
                                        inner.getResult(r * unroll + u));
          sums.push_back(sum);
        }
        Value scale;
        if (scales)
          scale = vector::BroadcastOp::create(
              gb, loc, f32Vector,
              tensor::ExtractOp::create(gb, loc, scales,
                                        ValueRange{scaleRow, j}));
        for (int64_t r = 0; r < count; ++r)
          sums[r] =
              scale ? Value(vector::FMAOp::create(gb, loc, scale, sums[r],
                                                  acc[r]))
                    : Value(arith::AddFOp::create(gb, loc, acc[r], sums[r]));
        scf::YieldOp::create(gb, loc, sums);
      });
  SmallVector<Value> results;
  for (int64_t r = 0; r < count; ++r)
    results.push_back(vector::ReductionOp::create(
        b, loc, vector::CombiningKind::ADD, group.getResult(r),
        arith::FastMathFlags::reassoc));
  return results;
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

/// Where output `n`'s entries of a CSR weight start and end, the offsets
/// read unsigned and clamped into [0, nnz], the end not before the start
/// (as kiln.expand_csr's lowering reads them).
std::pair<Value, Value> csrEntries(OpBuilder &b, Location loc, ExpandCSROp e,
                                   Value n) {
  Value count = index(
      b, loc, cast<RankedTensorType>(e.getValues().getType()).getDimSize(0));
  auto offsetAt = [&](Value at) -> Value {
    Value raw = tensor::ExtractOp::create(b, loc, e.getOffsets(), at);
    Value wide = arith::ExtUIOp::create(b, loc, b.getI64Type(), raw);
    Value i = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), wide);
    return arith::MinUIOp::create(b, loc, i, count);
  };
  Value start = offsetAt(n);
  Value end = arith::MaxUIOp::create(
      b, loc, start, offsetAt(arith::AddIOp::create(b, loc, n, index(b, loc, 1))));
  return {start, end};
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
  // Named values, not a structured binding: lambdas below capture them.
  std::pair<Value, Value> bounds = csrEntries(b, loc, e, n);
  Value start = bounds.first, end = bounds.second;
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

/// `x2` [rows, K] times an f32 `[K, N]` weight: each parallel iteration
/// owns `width` (16, 32 or 64) output columns and, per row of x, walks K
/// with x[row, k] broadcast against the weight row's `width` values, two
/// k at a time into separate sums (8 chains of FMAs for 64 columns). A
/// block's weights (K x width) are read once per row, from L2 after the
/// first.
Value buildRowMajorKernel(OpBuilder &b, Location loc, const Matvec &m,
                          Value x2, Value rows) {
  auto weightType = cast<RankedTensorType>(m.weight.getType());
  int64_t k = weightType.getDimSize(0), outputs = weightType.getDimSize(1);
  int64_t vectors = outputs % (4 * kLanes) == 0   ? 4
                    : outputs % (2 * kLanes) == 0 ? 2
                                                  : 1;
  int64_t width = vectors * kLanes;
  int64_t kStep = k % 2 == 0 ? 2 : 1;
  Type f32 = b.getF32Type();
  auto f32Vector = VectorType::get({kLanes}, f32);
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  auto outType = RankedTensorType::get({ShapedType::kDynamic, outputs}, f32);
  Value out = tensor::EmptyOp::create(b, loc, outType, ValueRange{rows});
  auto forall = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{b.getIndexAttr(outputs / width)},
      ValueRange{out}, std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    Value n0 = arith::MulIOp::create(b, loc, forall.getInductionVars()[0],
                                     index(b, loc, width));
    auto tileType = RankedTensorType::get({ShapedType::kDynamic, width}, f32);
    Value tile = tensor::EmptyOp::create(b, loc, tileType, ValueRange{rows});
    auto perRow = scf::ForOp::create(
        b, loc, index(b, loc, 0), rows, index(b, loc, 1), ValueRange{tile},
        [&](OpBuilder &rb, Location, Value row, ValueRange t) {
          SmallVector<Value> init(vectors * kStep, zeros);
          auto walk = scf::ForOp::create(
              rb, loc, index(rb, loc, 0), index(rb, loc, k),
              index(rb, loc, kStep), init,
              [&](OpBuilder &kb, Location, Value k0, ValueRange acc) {
                SmallVector<Value> next;
                for (int64_t s = 0; s < kStep; ++s) {
                  Value kk = arith::AddIOp::create(kb, loc, k0, index(kb, loc, s));
                  Value xs = vector::BroadcastOp::create(
                      kb, loc, f32Vector,
                      tensor::ExtractOp::create(kb, loc, x2,
                                                ValueRange{row, kk}));
                  for (int64_t v = 0; v < vectors; ++v) {
                    Value col = arith::AddIOp::create(
                        kb, loc, n0, index(kb, loc, v * kLanes));
                    Value w = vector::TransferReadOp::create(
                        kb, loc, f32Vector, m.weight, ValueRange{kk, col},
                        arith::ConstantOp::create(kb, loc, kb.getF32FloatAttr(0)),
                        ArrayRef<bool>{true});
                    next.push_back(vector::FMAOp::create(
                        kb, loc, xs, w, acc[s * vectors + v]));
                  }
                }
                scf::YieldOp::create(kb, loc, next);
              });
          Value result = t[0];
          for (int64_t v = 0; v < vectors; ++v) {
            Value sum = walk.getResult(v);
            for (int64_t s = 1; s < kStep; ++s)
              sum = arith::AddFOp::create(rb, loc, sum,
                                          walk.getResult(s * vectors + v));
            result = vector::TransferWriteOp::create(
                         rb, loc, sum, result,
                         ValueRange{row, index(rb, loc, v * kLanes)},
                         ArrayRef<bool>{true})
                         .getResult();
          }
          scf::YieldOp::create(rb, loc, ValueRange{result});
        });
    b.setInsertionPointToEnd(forall.getTerminator().getBody());
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    tensor::ParallelInsertSliceOp::create(
        b, loc, perRow.getResult(0), forall.getRegionIterArgs()[0],
        ArrayRef<OpFoldResult>{zero, n0},
        ArrayRef<OpFoldResult>{rows, b.getIndexAttr(width)},
        ArrayRef<OpFoldResult>{one, one});
  }
  return forall.getResult(0);
}

/// Many rows of x times a CSR weight, skipping its zeros: x is transposed
/// once into `xt` ([K, rows], zero columns up to a multiple of 16), and for
/// each output n (in parallel) each of its entries (input c, value v) adds
/// v · xt[c, m0 .. m0 + 64) into 4 accumulators, 64 rows at a time (the
/// rows past the last 64 16 at a time): one load and one FMA per 16 rows
/// and entry, on the kept weights only. The result comes out as
/// [N, rows] and is transposed back.
Value buildSparseRowsKernel(OpBuilder &b, Location loc, const Matvec &m,
                            Value x2, Value rows) {
  constexpr int64_t wide = 4 * kLanes;
  Type f32 = b.getF32Type();
  auto f32Vector = VectorType::get({kLanes}, f32);
  ExpandCSROp e = m.csr;
  int64_t outputs =
      cast<RankedTensorType>(m.matmul->getOperand(1).getType()).getDimSize(0);
  int64_t k = m.k;
  Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
  Value zeros = arith::ConstantOp::create(
      b, loc, f32Vector, DenseElementsAttr::get(f32Vector, 0.0f));
  // Rows padded to whole vectors; the first `whole` in chunks of 64, the
  // rest 16 at a time.
  auto roundDown = [&](Value v, int64_t to) -> Value {
    return arith::MulIOp::create(
        b, loc, arith::DivUIOp::create(b, loc, v, index(b, loc, to)),
        index(b, loc, to));
  };
  Value padded = roundDown(
      arith::AddIOp::create(b, loc, rows, index(b, loc, kLanes - 1)), kLanes);
  Value whole = roundDown(padded, wide);
  auto dynamic2 = [&](int64_t d0) {
    return RankedTensorType::get({d0, ShapedType::kDynamic}, f32);
  };
  Value xtEmpty =
      tensor::EmptyOp::create(b, loc, dynamic2(k), ValueRange{padded});
  Value xt = linalg::FillOp::create(b, loc, zero, xtEmpty).getResult(0);
  Value xtRows = tensor::EmptyOp::create(b, loc, dynamic2(k), ValueRange{rows});
  if (!cast<RankedTensorType>(x2.getType()).isDynamicDim(0))
    x2 = tensor::CastOp::create(
        b, loc, RankedTensorType::get({ShapedType::kDynamic, k}, f32), x2);
  Value transposed =
      linalg::TransposeOp::create(b, loc, x2, xtRows, ArrayRef<int64_t>{1, 0})
          .getResult()[0];
  OpFoldResult zeroIndex = b.getIndexAttr(0), one = b.getIndexAttr(1);
  xt = tensor::InsertSliceOp::create(
      b, loc, transposed, xt, ArrayRef<OpFoldResult>{zeroIndex, zeroIndex},
      ArrayRef<OpFoldResult>{b.getIndexAttr(k), rows},
      ArrayRef<OpFoldResult>{one, one});

  Value yt = tensor::EmptyOp::create(b, loc, dynamic2(outputs),
                                     ValueRange{padded});
  auto forall = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{b.getIndexAttr(outputs)}, ValueRange{yt},
      std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    Value n = forall.getInductionVars()[0];
    auto rowType = RankedTensorType::get({ShapedType::kDynamic}, f32);
    Value line = tensor::EmptyOp::create(b, loc, rowType, ValueRange{padded});
    // Named values, not a structured binding: lambdas below capture them.
    std::pair<Value, Value> bounds = csrEntries(b, loc, e, n);
    Value start = bounds.first, end = bounds.second;
    Value lastColumn = index(b, loc, k - 1);
    // Rows [from, to) in chunks of `vectors` x 16: for each chunk, every
    // entry adds value · xt[index, m0 ..) into `vectors` accumulators.
    auto chunkLoop = [&](Value from, Value to, int64_t vectors, Value into) {
      return scf::ForOp::create(
          b, loc, from, to, index(b, loc, vectors * kLanes), ValueRange{into},
          [&](OpBuilder &cb, Location, Value m0, ValueRange out) {
            SmallVector<Value> init(vectors, zeros);
            auto entries = scf::ForOp::create(
                cb, loc, start, end, index(cb, loc, 1), init,
                [&](OpBuilder &eb, Location, Value j, ValueRange acc) {
                  Value raw =
                      tensor::ExtractOp::create(eb, loc, e.getIndices(), j);
                  Value column = arith::MinUIOp::create(
                      eb, loc,
                      arith::IndexCastUIOp::create(
                          eb, loc, eb.getIndexType(),
                          arith::ExtUIOp::create(eb, loc, eb.getI64Type(), raw)),
                      lastColumn);
                  Value v = vector::BroadcastOp::create(
                      eb, loc, f32Vector,
                      tensor::ExtractOp::create(eb, loc, e.getValues(), j));
                  SmallVector<Value> next;
                  for (int64_t u = 0; u < vectors; ++u) {
                    Value at = arith::AddIOp::create(
                        eb, loc, m0, index(eb, loc, u * kLanes));
                    Value xs = vector::TransferReadOp::create(
                        eb, loc, f32Vector, xt, ValueRange{column, at}, zero,
                        ArrayRef<bool>{true});
                    next.push_back(vector::FMAOp::create(eb, loc, v, xs, acc[u]));
                  }
                  scf::YieldOp::create(eb, loc, next);
                });
            Value result = out[0];
            for (int64_t u = 0; u < vectors; ++u) {
              Value at =
                  arith::AddIOp::create(cb, loc, m0, index(cb, loc, u * kLanes));
              result = vector::TransferWriteOp::create(
                           cb, loc, entries.getResult(u), result,
                           ValueRange{at}, ArrayRef<bool>{true})
                           .getResult();
            }
            scf::YieldOp::create(cb, loc, ValueRange{result});
          });
    };
    auto chunks = chunkLoop(index(b, loc, 0), whole, 4, line);
    auto tail = chunkLoop(whole, padded, 1, chunks.getResult(0));
    b.setInsertionPointToEnd(forall.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(
        b, loc, tail.getResult(0), forall.getRegionIterArgs()[0],
        ArrayRef<OpFoldResult>{n, zeroIndex},
        ArrayRef<OpFoldResult>{one, padded}, ArrayRef<OpFoldResult>{one, one});
  }
  // [N, rows] of the padded [N, padded], transposed to [rows, N].
  Value ytRows = tensor::ExtractSliceOp::create(
      b, loc, dynamic2(outputs), forall.getResult(0),
      ArrayRef<OpFoldResult>{zeroIndex, zeroIndex},
      ArrayRef<OpFoldResult>{b.getIndexAttr(outputs), rows},
      ArrayRef<OpFoldResult>{one, one});
  Value y = tensor::EmptyOp::create(
      b, loc, RankedTensorType::get({ShapedType::kDynamic, outputs}, f32),
      ValueRange{rows});
  return linalg::TransposeOp::create(b, loc, ytRows, y, ArrayRef<int64_t>{1, 0})
      .getResult()[0];
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
  Value xd = m.permps ? deinterleaveBlocks(b, loc, x2, rows, m.k) : Value();
  // The output columns in parallel, each over the rows: in blocks of
  // `block` rows (sharing each weight vector's load and conversion or
  // lookup) and then one at a time, or one at a time only (block 1).
  auto buildForall = [&](OpBuilder &b, int64_t block) -> Value {
    auto forall = scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{columns},
                                        ValueRange{out}, std::nullopt);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    Value n = forall.getInductionVars()[0];
    auto colType = RankedTensorType::get({ShapedType::kDynamic}, f32);
    Value column = tensor::EmptyOp::create(b, loc, colType, ValueRange{rows});
    // Dot products of `count` rows from `first` on, inserted into `c`.
    auto products = [&](OpBuilder &rb, Value first, int64_t count, Value c) {
      SmallVector<Value> rowIndices{first};
      for (int64_t r = 1; r < count; ++r)
        rowIndices.push_back(
            arith::AddIOp::create(rb, loc, first, index(rb, loc, r)));
      SmallVector<Value> values;
      if (m.expand)
        values.push_back(sparseDotProduct(rb, loc, m, x2, first, n));
      else if (m.csr)
        values.push_back(csrDotProduct(rb, loc, m, x2, first, n));
      else if (m.permps)
        values = tableDotProducts(rb, loc, m, xd, codes, scales, zeroPoints,
                                  rowIndices, n);
      else
        values = dotProducts(rb, loc, m, x2, codes, scales, zeroPoints,
                             rowIndices, n);
      for (int64_t r = 0; r < count; ++r)
        c = tensor::InsertOp::create(rb, loc, values[r], c, rowIndices[r]);
      return c;
    };
    Value start = index(b, loc, 0);
    if (block > 1) {
      Value step = index(b, loc, block);
      start = arith::SubIOp::create(b, loc, rows,
                                    arith::RemUIOp::create(b, loc, rows, step));
      auto blocks = scf::ForOp::create(
          b, loc, index(b, loc, 0), start, step, ValueRange{column},
          [&](OpBuilder &rb, Location, Value first, ValueRange c) {
            scf::YieldOp::create(rb, loc,
                                 ValueRange{products(rb, first, block, c[0])});
          });
      column = blocks.getResult(0);
    }
    auto perRow = scf::ForOp::create(
        b, loc, start, rows, index(b, loc, 1), ValueRange{column},
        [&](OpBuilder &rb, Location, Value row, ValueRange c) {
          scf::YieldOp::create(rb, loc, ValueRange{products(rb, row, 1, c[0])});
        });
    b.setInsertionPointToEnd(forall.getTerminator().getBody());
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    tensor::ParallelInsertSliceOp::create(
        b, loc, perRow.getResult(0), forall.getRegionIterArgs()[0],
        ArrayRef<OpFoldResult>{zero, n}, ArrayRef<OpFoldResult>{rows, one},
        ArrayRef<OpFoldResult>{one, one});
    return forall.getResult(0);
  };
  if (m.rowBlock <= 1)
    return buildForall(b, 1);
  // Fewer rows than a block (a decoding step of one sequence) take the
  // one-row kernel alone: the blocked loop nest measured 5% slower there
  // (gpt2-small w4g128 + head, one row: 4.39 against 4.17 ms).
  Value blocks = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, rows,
                                       index(b, loc, m.rowBlock));
  auto branch = scf::IfOp::create(
      b, loc, blocks,
      [&](OpBuilder &tb, Location l) {
        scf::YieldOp::create(tb, l, ValueRange{buildForall(tb, m.rowBlock)});
      },
      [&](OpBuilder &eb, Location l) {
        scf::YieldOp::create(eb, l, ValueRange{buildForall(eb, 1)});
      });
  return branch.getResult(0);
}

/// Rows up to which the 2:4 gather kernel beats expanding the weight into
/// the register tiles' packing. Measured on gpt2-small's decoding step
/// (Zen 4, 2 threads): 2.25x f32 at one row, 0.69x at eight: each row
/// gathers its own x, so the gathers, not the bytes, bound it as rows grow.
constexpr int64_t kSparseMaxRows = 4;
/// Rows up to which the CSR gather kernel beats the alternatives (each row
/// gathers its own x): below sparsity 0.5 one row (more expand the
/// weight); from 0.5 two rows, more take the many-row kernel. Measured on
/// gpt2-small's decoding step (Zen 4, 2 threads, tokens/s against f32), at
/// sparsity 0.5 / 0.7: one row, gather 1.34x / 1.73x, many-row 0.59x /
/// 0.86x; two rows, gather 1.25x / 1.79x, many-row 0.99x / 1.40x; four
/// rows, many-row 1.27-1.41x / 1.85-1.88x, gather 0.74x / 1.10x.
int64_t csrMaxRows(const Matvec &m) {
  auto dense = cast<RankedTensorType>(m.csr->getResult(0).getType());
  auto values = cast<RankedTensorType>(m.csr->getOperand(2).getType());
  double density = double(values.getDimSize(0)) /
                   double(dense.getDimSize(0) * dense.getDimSize(1));
  return density <= 0.5 ? 2 : 1;
}

/// Whether more rows than the gather kernel takes run the many-row CSR
/// kernel (buildSparseRowsKernel) rather than the dense product of the
/// expanded weight: at a density of at most 0.5. Measured on gpt2-small's
/// 1 x 128 forward (Zen 4, 2 threads, against f32): sparsity 0.5 1.00x
/// (0.91x expanded), 0.7 1.41x, 0.9 1.98x (1.03x expanded). A 2:4 weight
/// keeps the expansion into the packing (1.11x; the same kernel over its
/// groups measured 1.02x).
bool sparseRowsWin(const Matvec &m) {
  if (!m.csr)
    return false;
  auto dense = cast<RankedTensorType>(m.csr->getResult(0).getType());
  auto values = cast<RankedTensorType>(m.csr->getOperand(2).getType());
  double density = double(values.getDimSize(0)) /
                   double(dense.getDimSize(0) * dense.getDimSize(1));
  return density <= 0.5;
}

/// Rows up to which the `[K, N]` kernel beats packing the weight for the
/// register tiles. Measured on gpt2-small's decoding step (Zen 4, 2
/// threads): 1.19x at one row, 0.88x at two, 0.81x at four.
constexpr int64_t kRowMajorMaxRows = 1;

void rewrite(IRRewriter &rewriter, Matvec m, int64_t maxRows) {
  if (m.expand)
    maxRows = std::min(maxRows, kSparseMaxRows);
  if (m.csr)
    maxRows = std::min(maxRows, csrMaxRows(m));
  if (m.rowMajor)
    maxRows = std::min(maxRows, kRowMajorMaxRows);
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
  bool manyRowsKernel = sparseRowsWin(m);
  if (!dynamicRows && staticRows > maxRows && !manyRowsKernel)
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
  auto kernel = [&](OpBuilder &b, Location l, bool many) -> Value {
    Value x2 = op.getLhs();
    if (rank > 2)
      x2 = tensor::CollapseShapeOp::create(b, l, x2, leading);
    Value y2 = many         ? buildSparseRowsKernel(b, l, m, x2, rows)
               : m.rowMajor ? buildRowMajorKernel(b, l, m, x2, rows)
                            : buildKernel(b, l, m, x2, rows);
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
    rewriter.replaceOp(op, kernel(rewriter, loc, staticRows > maxRows));
    return;
  }
  Value few = arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::ule,
                                    rows, index(rewriter, loc, maxRows));
  Operation *producer = m.producer();
  bool soleUse = producer && producer->hasOneUse();
  auto branch = scf::IfOp::create(
      rewriter, loc, few,
      [&](OpBuilder &b, Location l) {
        scf::YieldOp::create(b, l, ValueRange{kernel(b, l, false)});
      },
      [&](OpBuilder &b, Location l) {
        if (manyRowsKernel) {
          scf::YieldOp::create(b, l, ValueRange{kernel(b, l, true)});
          return;
        }
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

/// The declaration of vpermps (kPermps) in `module`: a function named
/// after the intrinsic, which LLVM takes for it.
func::FuncOp declarePermps(IRRewriter &rewriter, ModuleOp module) {
  if (auto existing = module.lookupSymbol<func::FuncOp>(kPermps))
    return existing;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToEnd(module.getBody());
  auto f32Vector = VectorType::get({kLanes}, rewriter.getF32Type());
  auto i32Vector = VectorType::get({kLanes}, rewriter.getI32Type());
  auto function = func::FuncOp::create(
      rewriter, module.getLoc(), kPermps,
      rewriter.getFunctionType({f32Vector, i32Vector}, {f32Vector}));
  function.setPrivate();
  return function;
}

struct MatvecDotProductsPass
    : kiln::impl::MatvecDotProductsPassBase<MatvecDotProductsPass> {
  using Base::Base;

  void runOnOperation() final {
    if (maxRows < 1 || rowBlock < 1 || rowBlock > 8) {
      getOperation().emitError() << "kiln-matvec-dot-products: max-rows "
                                    "must be positive and row-block in 1..8";
      return signalPassFailure();
    }
    SmallVector<Matvec> work;
    getOperation().walk([&](MatmulOp op) {
      if (std::optional<Matvec> m = match(op))
        work.push_back(*m);
    });
    IRRewriter rewriter(&getContext());
    func::FuncOp permps;
    for (Matvec &m : work) {
      if (nibbleTable && m.dequantize && m.bits == 4 &&
          m.groupSize % kPairLanes == 0) {
        if (!permps) {
          Operation *existing = getOperation().lookupSymbol(kPermps);
          if (existing && !isa<func::FuncOp>(existing)) {
            existing->emitError() << "kiln-matvec-dot-products: '" << kPermps
                                  << "' names something other than the "
                                     "intrinsic's declaration";
            return signalPassFailure();
          }
          permps = declarePermps(rewriter, getOperation());
        }
        m.permps = permps;
      }
      if (!m.expand && !m.csr && !m.rowMajor)
        m.rowBlock = rowBlock;
      rewrite(rewriter, m, maxRows);
    }
    // Matmuls of more rows than max-rows are left alone: no call then.
    if (permps && permps.symbolKnownUseEmpty(getOperation()))
      permps.erase();
  }
};
} // namespace
