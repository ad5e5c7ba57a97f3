//===- LowerAMXAttention.cpp - bf16 attention on AMX tiles ----------------===//
//
// A flash-attention forward for bf16 kiln.attention on AMX tiles. The fused
// lowering (convert-kiln-attention) walks one query row at a time in f32
// vectors: every score is a dot product ending in a horizontal sum. Here a
// block of 32 query rows meets a block of 32 keys at a time, and both
// products of the block are tile multiplications (tdpbf16ps, bf16 x bf16
// summed in f32):
//
//   Sᵀ[32 keys, 32 queries] = K_blk[32, D] · Q_blkᵀ
//   Oᵀ[Dv, 32 queries]    += V_blkᵀ[Dv, 32] · Pᵀ[32 keys, 32 queries]
//
// Scores are kept transposed (keys down, queries across) so the online
// softmax of each query is elementwise across the rows of the block: the
// running max m, sum l and rescaling factor are vectors of 32 queries and
// no lane is ever reduced horizontally. The exponentials are rounded to
// bf16 once, into the pair layout the rhs tile takes (keys 2p and 2p+1
// interleaved per query), as flash attention rounds its probabilities to
// the operands' type.
//
// Before the blocks run, K is copied zero-padded to a multiple of 32 keys
// ([B, KVH, Sk', D]; its rows are the lhs tiles of the scores) and V is
// transposed per block of keys ([B, KVH, Sk'/32, Dv, 32]; its rows are the
// lhs tiles of the product), once per key/value head, at the tensor level.
// Each iteration of the parallel loop over (batch, head, block of queries)
// packs its queries as pairs of d (a 16 x 16 transpose of 32-bit words per
// tile), walks the key blocks its rows can see, and writes its rows of the
// result, normalized by l and rounded to bf16.
//
// Masks follow the fused lowering: a causally hidden key scores the lowest
// f32 (a row that sees no key averages every key uniformly), keys past the
// end count for nothing. Attention with a mask operand or key lengths,
// head dims that are not multiples of 32 and fewer than 16 query rows keep
// the fused lowering.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>
#include <limits>

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERAMXATTENTIONPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// Query rows and keys per block; also the f32 lanes of the softmax state.
constexpr int64_t kBlock = 32;
/// Rows of a tile.
constexpr int64_t kTileRows = 16;

RankedTensorType rankedType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// Whether the tile kernel takes `op`: bf16 operands, no mask or key
/// lengths, static head dims that are multiples of 32, the head counts the
/// fused lowering takes, and (where static) at least a tile of query rows.
bool takesOnTiles(AttentionOp op) {
  if (op.getMask() || op.getKeyLengths())
    return false;
  RankedTensorType q = rankedType(op.getQuery()), k = rankedType(op.getKey()),
                   v = rankedType(op.getValue()),
                   out = rankedType(op.getResult());
  for (RankedTensorType type : {q, k, v, out})
    if (!type.getElementType().isBF16())
      return false;
  if (!canLowerAttentionFused(q, k, v) || k.isDynamicDim(3))
    return false;
  int64_t headDim = q.getDimSize(3), valueDim = v.getDimSize(3);
  if (headDim % kBlock != 0 || valueDim % kBlock != 0 ||
      k.getDimSize(3) != headDim)
    return false;
  return q.isDynamicDim(2) || q.getDimSize(2) >= kTileRows;
}

/// Builds the kernel of one attention op before it.
class TileAttention {
public:
  TileAttention(OpBuilder &b, AttentionOp op)
      : b(b), loc(op.getLoc()), op(op) {}

  Value build();

private:
  Value index(int64_t value) {
    return arith::ConstantIndexOp::create(b, loc, value);
  }
  Value f32(OpBuilder &nb, double value) {
    return arith::ConstantOp::create(
        nb, loc, nb.getF32Type(),
        nb.getF32FloatAttr(static_cast<float>(value)));
  }
  Value splat(OpBuilder &nb, VectorType type, Value scalar) {
    return vector::BroadcastOp::create(nb, loc, type, scalar);
  }
  Value dim(Value tensor, int64_t i) {
    return linalg::createOrFoldDimOp(b, loc, tensor, i);
  }
  /// ceil(value / kBlock).
  Value blocksOf(OpBuilder &nb, Value value) {
    return arith::CeilDivUIOp::create(nb, loc, value, index(kBlock));
  }

  /// K zero-padded to whole blocks of keys, [B, KVH, Sk', D].
  Value padKeys(Value keys);
  /// V transposed per block of keys, [B, KVH, Sk'/32, Dv, 32].
  Value transposeValues(Value values);
  Value readOnlyBuffer(Value tensor) {
    auto type = rankedType(tensor);
    return bufferization::ToBufferOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
        /*read_only=*/true);
  }

  /// The body of the parallel loop: one block of query rows.
  void queryBlock(OpBuilder &nb, scf::ForallOp forall);
  /// How many key blocks the query rows [q0, q0 + 32) visit.
  Value keyBlocks(OpBuilder &nb, Value q0);

  OpBuilder &b;
  Location loc;
  AttentionOp op;
  int64_t headDim = 0, valueDim = 0;
  Value batch, heads, kvHeads, queryLength, keyLength, group;
  Value keys, valuesT; // buffers
  double scale = 0;
};

Value TileAttention::padKeys(Value key) {
  auto type = rankedType(key);
  Value padded =
      arith::MulIOp::create(b, loc, blocksOf(b, keyLength), index(kBlock));
  SmallVector<int64_t> shape(type.getShape());
  shape[2] = ShapedType::kDynamic;
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < 4; ++i)
    if (i == 2)
      dynamic.push_back(padded);
    else if (type.isDynamicDim(i))
      dynamic.push_back(dim(key, i));
  Value empty =
      tensor::EmptyOp::create(b, loc, shape, type.getElementType(), dynamic);
  Value zero = arith::ConstantOp::create(
      b, loc, type.getElementType(), b.getFloatAttr(type.getElementType(), 0));
  Value filled =
      linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{empty})
          .getResult(0);
  SmallVector<OpFoldResult> offsets(4, b.getIndexAttr(0)),
      strides(4, b.getIndexAttr(1));
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0; i < 4; ++i)
    sizes.push_back(type.isDynamicDim(i) ? OpFoldResult(dim(key, i))
                                         : b.getIndexAttr(type.getDimSize(i)));
  return tensor::InsertSliceOp::create(b, loc, key, filled, offsets, sizes,
                                       strides);
}

Value TileAttention::transposeValues(Value value) {
  Value padded = padKeys(value);
  auto type = rankedType(padded);
  // [B, KVH, Sk'/32, 32, Dv] -> [B, KVH, Sk'/32, Dv, 32].
  SmallVector<int64_t> blocked = {type.getDimSize(0), type.getDimSize(1),
                                  ShapedType::kDynamic, kBlock, valueDim};
  SmallVector<OpFoldResult> blockedSizes = {
      type.isDynamicDim(0) ? OpFoldResult(dim(padded, 0))
                           : b.getIndexAttr(type.getDimSize(0)),
      type.isDynamicDim(1) ? OpFoldResult(dim(padded, 1))
                           : b.getIndexAttr(type.getDimSize(1)),
      OpFoldResult(blocksOf(b, keyLength)), b.getIndexAttr(kBlock),
      b.getIndexAttr(valueDim)};
  Value expanded = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get(blocked, type.getElementType()), padded,
      SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4}}, blockedSizes);
  SmallVector<int64_t> transposed = {blocked[0], blocked[1], blocked[2],
                                     valueDim, kBlock};
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < 3; ++i)
    if (ShapedType::isDynamic(transposed[i]))
      dynamic.push_back(tensor::DimOp::create(b, loc, expanded, i));
  Value init = tensor::EmptyOp::create(b, loc, transposed,
                                       type.getElementType(), dynamic);
  return linalg::TransposeOp::create(b, loc, expanded, init,
                                     ArrayRef<int64_t>{0, 1, 2, 4, 3})
      ->getResult(0);
}

Value TileAttention::keyBlocks(OpBuilder &nb, Value q0) {
  if (!op.getCausal())
    return blocksOf(nb, keyLength);
  // Keys row i sees: [0, i + Sk - Sq + 1) clamped to Sk, or all Sk when
  // that is empty. The first row of the block sees the fewest unless it
  // sees none; the last (q0 + 31, or Sq - 1) the most.
  auto keyCount = [&](Value row) {
    Value end = arith::AddIOp::create(
        nb, loc, arith::SubIOp::create(nb, loc, row, queryLength),
        arith::AddIOp::create(nb, loc, keyLength, index(1)));
    Value positive = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::sgt,
                                           end, index(0));
    Value clamped = arith::MinSIOp::create(nb, loc, end, keyLength);
    return arith::SelectOp::create(nb, loc, positive, clamped, keyLength);
  };
  Value last = arith::MinSIOp::create(
      nb, loc, arith::AddIOp::create(nb, loc, q0, index(kBlock - 1)),
      arith::SubIOp::create(nb, loc, queryLength, index(1)));
  Value count = arith::MaxSIOp::create(nb, loc, keyCount(q0), keyCount(last));
  return blocksOf(nb, count);
}

void TileAttention::queryBlock(OpBuilder &nb, scf::ForallOp forall) {
  ValueRange ivs = forall.getInductionVars();
  Value bi = ivs[0], h = ivs[1],
        q0 = arith::MulIOp::create(nb, loc, ivs[2], index(kBlock));
  Value kvh = arith::DivUIOp::create(nb, loc, h, group);
  Type bf16 = nb.getBF16Type(), f32Type = nb.getF32Type(),
       i32 = nb.getI32Type();
  auto operandTile = amx::TileType::get({kTileRows, kBlock}, bf16);
  auto sumTile = amx::TileType::get({kTileRows, kTileRows}, f32Type);
  auto lanes = VectorType::get({kBlock}, f32Type);
  auto alloc = [&](ArrayRef<int64_t> shape, Type element) -> Value {
    return memref::AllocOp::create(nb, loc, MemRefType::get(shape, element));
  };
  // Queries as pairs of d: row p holds (q[2p], q[2p + 1]) of each of the
  // 32 rows, the rhs tile layout.
  Value queries = alloc({headDim / 2, 2 * kBlock}, bf16);
  Value scores = alloc({kBlock, kBlock}, f32Type);
  Value probabilities = alloc({kBlock / 2, 2 * kBlock}, bf16);
  Value products = alloc({valueDim, kBlock}, f32Type);
  Value outT = alloc({valueDim, kBlock}, f32Type);

  Value bf16Zero =
      arith::ConstantOp::create(nb, loc, bf16, nb.getFloatAttr(bf16, 0));
  auto rowsType = VectorType::get({kTileRows, kBlock}, bf16);
  auto wordsType = VectorType::get({kTileRows, kTileRows}, i32);
  for (int64_t half = 0; half < kBlock / kTileRows; ++half)
    for (int64_t d = 0; d < headDim; d += kBlock) {
      Value row = arith::AddIOp::create(nb, loc, q0, index(half * kTileRows));
      Value read = vector::TransferReadOp::create(
          nb, loc, rowsType, op.getQuery(), ValueRange{bi, h, row, index(d)},
          bf16Zero, ArrayRef<bool>{false, true});
      Value words = vector::BitCastOp::create(nb, loc, wordsType, read);
      Value pairs =
          vector::TransposeOp::create(nb, loc, words, ArrayRef<int64_t>{1, 0});
      Value back = vector::BitCastOp::create(nb, loc, rowsType, pairs);
      vector::TransferWriteOp::create(
          nb, loc, back, queries,
          ValueRange{index(d / 2), index(half * 2 * kTileRows)},
          ArrayRef<bool>{true, true});
    }
  Value zeroLanes = arith::ConstantOp::create(
      nb, loc, lanes, DenseElementsAttr::get(lanes, 0.0f));
  scf::ForOp::create(nb, loc, index(0), index(valueDim), index(1), ValueRange{},
                     [&](OpBuilder &lb, Location, Value c, ValueRange) {
                       vector::StoreOp::create(lb, loc, zeroLanes, outT,
                                               ValueRange{c, index(0)});
                       scf::YieldOp::create(lb, loc);
                     });

  // Which query lanes see key `key` under the causal mask: the rows
  // i >= key + Sq - Sk, i.e. lanes >= key + Sq - Sk - q0.
  auto i32Lanes = VectorType::get({kBlock}, i32);
  SmallVector<int32_t> iotaValues(kBlock);
  for (int64_t i = 0; i < kBlock; ++i)
    iotaValues[i] = static_cast<int32_t>(i);
  Value iota = arith::ConstantOp::create(
      nb, loc, i32Lanes,
      DenseElementsAttr::get(i32Lanes, ArrayRef(iotaValues)));
  Value lowest = f32(nb, -std::numeric_limits<float>::max());
  Value lowestLanes = splat(nb, lanes, lowest);
  Value scaleLanes = splat(nb, lanes, f32(nb, scale));
  // key + (Sq - Sk - q0), clamped into [-1, 33] before narrowing to i32.
  Value causalShift = arith::SubIOp::create(
      nb, loc, arith::SubIOp::create(nb, loc, queryLength, keyLength), q0);

  Value keyBlockCount = keyBlocks(nb, q0);
  auto keyLoop = scf::ForOp::create(
      nb, loc, index(0), keyBlockCount, index(1),
      ValueRange{lowestLanes, zeroLanes},
      [&](OpBuilder &kb, Location, Value block, ValueRange state) {
        Value m = state[0], l = state[1];
        Value key0 = arith::MulIOp::create(kb, loc, block, index(kBlock));
        Value key1 = arith::AddIOp::create(kb, loc, key0, index(kTileRows));
        // Sᵀ = K_blk · Q_blkᵀ: four 16 x 16 tiles.
        SmallVector<Value> sums;
        for (int64_t t = 0; t < 4; ++t)
          sums.push_back(amx::TileZeroOp::create(kb, loc, sumTile));
        for (int64_t d = 0; d < headDim; d += kBlock) {
          Value a0 = amx::TileLoadOp::create(
              kb, loc, operandTile, keys, ValueRange{bi, kvh, key0, index(d)});
          Value a1 = amx::TileLoadOp::create(
              kb, loc, operandTile, keys, ValueRange{bi, kvh, key1, index(d)});
          Value b0 =
              amx::TileLoadOp::create(kb, loc, operandTile, queries,
                                      ValueRange{index(d / 2), index(0)});
          Value b1 = amx::TileLoadOp::create(
              kb, loc, operandTile, queries,
              ValueRange{index(d / 2), index(2 * kTileRows)});
          sums[0] = amx::TileMulFOp::create(kb, loc, sumTile, a0, b0, sums[0]);
          sums[1] = amx::TileMulFOp::create(kb, loc, sumTile, a0, b1, sums[1]);
          sums[2] = amx::TileMulFOp::create(kb, loc, sumTile, a1, b0, sums[2]);
          sums[3] = amx::TileMulFOp::create(kb, loc, sumTile, a1, b1, sums[3]);
        }
        for (int64_t t = 0; t < 4; ++t)
          amx::TileStoreOp::create(
              kb, loc, scores,
              ValueRange{index(t / 2 * kTileRows), index(t % 2 * kTileRows)},
              sums[t]);

        // Scale and mask each key's row of scores; the block's max.
        auto maxLoop = scf::ForOp::create(
            kb, loc, index(0), index(kBlock), index(1), ValueRange{lowestLanes},
            [&](OpBuilder &rb, Location, Value j, ValueRange in) {
              Value key = arith::AddIOp::create(rb, loc, key0, j);
              Value s = vector::LoadOp::create(rb, loc, lanes, scores,
                                               ValueRange{j, index(0)});
              s = arith::MulFOp::create(rb, loc, s, scaleLanes);
              if (op.getCausal()) {
                Value first = arith::AddIOp::create(rb, loc, key, causalShift);
                first = arith::MaxSIOp::create(rb, loc, first, index(-1));
                first =
                    arith::MinSIOp::create(rb, loc, first, index(kBlock + 1));
                first = arith::IndexCastOp::create(rb, loc, i32, first);
                Value visible =
                    arith::CmpIOp::create(rb, loc, arith::CmpIPredicate::sge,
                                          iota, splat(rb, i32Lanes, first));
                s = arith::SelectOp::create(rb, loc, visible, s, lowestLanes);
              }
              // Keys past the end: the lowest score here (no effect on the
              // max), nothing in the sums below.
              Value inside = arith::CmpIOp::create(
                  rb, loc, arith::CmpIPredicate::slt, key, keyLength);
              s = arith::SelectOp::create(rb, loc, inside, s, lowestLanes);
              vector::StoreOp::create(rb, loc, s, scores,
                                      ValueRange{j, index(0)});
              scf::YieldOp::create(
                  rb, loc,
                  ValueRange{arith::MaximumFOp::create(rb, loc, in[0], s)});
            });
        Value newMax =
            arith::MaximumFOp::create(kb, loc, m, maxLoop.getResult(0));
        Value alpha = math::ExpOp::create(
            kb, loc, arith::SubFOp::create(kb, loc, m, newMax));

        // Pᵀ = exp(Sᵀ - m) rounded to bf16, keys 2p and 2p + 1 interleaved
        // per query; their f32 sum.
        SmallVector<int64_t> interleave;
        for (int64_t i = 0; i < kBlock; ++i)
          interleave.append({i, i + kBlock});
        auto bf16Lanes = VectorType::get({kBlock}, bf16);
        auto sumLoop = scf::ForOp::create(
            kb, loc, index(0), index(kBlock / 2), index(1),
            ValueRange{zeroLanes},
            [&](OpBuilder &rb, Location, Value p, ValueRange in) {
              Value j0 = arith::MulIOp::create(rb, loc, p, index(2));
              Value j1 = arith::AddIOp::create(rb, loc, j0, index(1));
              SmallVector<Value> rounded;
              Value sum = in[0];
              for (Value j : {j0, j1}) {
                Value s = vector::LoadOp::create(rb, loc, lanes, scores,
                                                 ValueRange{j, index(0)});
                Value e = math::ExpOp::create(
                    rb, loc, arith::SubFOp::create(rb, loc, s, newMax));
                Value key = arith::AddIOp::create(rb, loc, key0, j);
                Value inside = arith::CmpIOp::create(
                    rb, loc, arith::CmpIPredicate::slt, key, keyLength);
                e = arith::SelectOp::create(rb, loc, inside, e, zeroLanes);
                sum = arith::AddFOp::create(rb, loc, sum, e);
                rounded.push_back(
                    arith::TruncFOp::create(rb, loc, bf16Lanes, e));
              }
              Value pair = vector::ShuffleOp::create(rb, loc, rounded[0],
                                                     rounded[1], interleave);
              vector::StoreOp::create(rb, loc, pair, probabilities,
                                      ValueRange{p, index(0)});
              scf::YieldOp::create(rb, loc, ValueRange{sum});
            });
        Value newSum = arith::AddFOp::create(
            kb, loc, arith::MulFOp::create(kb, loc, l, alpha),
            sumLoop.getResult(0));

        // Vᵀ_blk · Pᵀ, 32 value dims at a time, into `products`.
        for (int64_t c = 0; c < valueDim; c += kBlock) {
          SmallVector<Value> pv;
          for (int64_t t = 0; t < 4; ++t)
            pv.push_back(amx::TileZeroOp::create(kb, loc, sumTile));
          Value a0 = amx::TileLoadOp::create(
              kb, loc, operandTile, valuesT,
              ValueRange{bi, kvh, block, index(c), index(0)});
          Value a1 = amx::TileLoadOp::create(
              kb, loc, operandTile, valuesT,
              ValueRange{bi, kvh, block, index(c + kTileRows), index(0)});
          Value b0 =
              amx::TileLoadOp::create(kb, loc, operandTile, probabilities,
                                      ValueRange{index(0), index(0)});
          Value b1 = amx::TileLoadOp::create(
              kb, loc, operandTile, probabilities,
              ValueRange{index(0), index(2 * kTileRows)});
          pv[0] = amx::TileMulFOp::create(kb, loc, sumTile, a0, b0, pv[0]);
          pv[1] = amx::TileMulFOp::create(kb, loc, sumTile, a0, b1, pv[1]);
          pv[2] = amx::TileMulFOp::create(kb, loc, sumTile, a1, b0, pv[2]);
          pv[3] = amx::TileMulFOp::create(kb, loc, sumTile, a1, b1, pv[3]);
          for (int64_t t = 0; t < 4; ++t)
            amx::TileStoreOp::create(kb, loc, products,
                                     ValueRange{index(c + t / 2 * kTileRows),
                                                index(t % 2 * kTileRows)},
                                     pv[t]);
        }
        // Oᵀ = Oᵀ * alpha + Vᵀ_blk · Pᵀ.
        scf::ForOp::create(
            kb, loc, index(0), index(valueDim), index(1), ValueRange{},
            [&](OpBuilder &rb, Location, Value c, ValueRange) {
              Value o = vector::LoadOp::create(rb, loc, lanes, outT,
                                               ValueRange{c, index(0)});
              Value product = vector::LoadOp::create(rb, loc, lanes, products,
                                                     ValueRange{c, index(0)});
              Value next = vector::FMAOp::create(rb, loc, o, alpha, product);
              vector::StoreOp::create(rb, loc, next, outT,
                                      ValueRange{c, index(0)});
              scf::YieldOp::create(rb, loc);
            });
        scf::YieldOp::create(kb, loc, ValueRange{newMax, newSum});
      });

  // Rows [q0, q0 + n) of the result: Oᵀ / l, transposed 16 x 16 at a time
  // and rounded.
  Value l = keyLoop.getResult(1);
  Value inverse =
      arith::DivFOp::create(nb, loc, splat(nb, lanes, f32(nb, 1.0)), l);
  Value out = forall.getRegionIterArgs()[0];
  Value count = arith::MinSIOp::create(
      nb, loc, index(kBlock), arith::SubIOp::create(nb, loc, queryLength, q0));
  OpFoldResult zeroAttr = nb.getIndexAttr(0), oneAttr = nb.getIndexAttr(1);
  SmallVector<OpFoldResult> offsets = {bi, h, q0, zeroAttr};
  SmallVector<OpFoldResult> sizes = {oneAttr, oneAttr, count,
                                     nb.getIndexAttr(valueDim)};
  SmallVector<OpFoldResult> strides(4, oneAttr);
  auto sliceType =
      RankedTensorType::get({ShapedType::kDynamic, valueDim}, bf16);
  Value slice = tensor::ExtractSliceOp::create(nb, loc, sliceType, out, offsets,
                                               sizes, strides);
  auto squareType = VectorType::get({kTileRows, kTileRows}, f32Type);
  for (int64_t half = 0; half < kBlock / kTileRows; ++half) {
    Value inverseHalf = vector::ExtractStridedSliceOp::create(
        nb, loc, inverse, ArrayRef<int64_t>{half * kTileRows},
        ArrayRef<int64_t>{kTileRows}, ArrayRef<int64_t>{1});
    Value inverseSquare = splat(nb, squareType, inverseHalf);
    for (int64_t c = 0; c < valueDim; c += kTileRows) {
      Value f32Zero = f32(nb, 0.0);
      Value block = vector::TransferReadOp::create(
          nb, loc, squareType, outT,
          ValueRange{index(c), index(half * kTileRows)}, f32Zero,
          ArrayRef<bool>{true, true});
      Value normalized = arith::MulFOp::create(nb, loc, block, inverseSquare);
      Value rows = vector::TransposeOp::create(nb, loc, normalized,
                                               ArrayRef<int64_t>{1, 0});
      Value rounded = arith::TruncFOp::create(
          nb, loc, VectorType::get({kTileRows, kTileRows}, bf16), rows);
      slice = vector::TransferWriteOp::create(
                  nb, loc, rounded, slice,
                  ValueRange{index(half * kTileRows), index(c)},
                  ArrayRef<bool>{false, true})
                  .getResult();
    }
  }
  OpBuilder::InsertionGuard guard(nb);
  nb.setInsertionPointToEnd(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(nb, loc, slice, out, offsets, sizes,
                                        strides);
}

Value TileAttention::build() {
  Value query = op.getQuery(), key = op.getKey(), value = op.getValue();
  headDim = rankedType(query).getDimSize(3);
  valueDim = rankedType(value).getDimSize(3);
  batch = dim(query, 0);
  heads = dim(query, 1);
  kvHeads = dim(key, 1);
  queryLength = dim(query, 2);
  keyLength = dim(key, 2);
  group = arith::DivUIOp::create(b, loc, heads, kvHeads);
  scale = op.getScale() ? op.getScale()->convertToDouble()
                        : 1.0 / std::sqrt(static_cast<double>(headDim));
  keys = readOnlyBuffer(padKeys(key));
  valuesT = readOnlyBuffer(transposeValues(value));

  auto resultType = rankedType(op.getResult());
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < 3; ++i)
    if (resultType.isDynamicDim(i))
      dynamic.push_back(dim(query, i));
  Value init = tensor::EmptyOp::create(b, loc, resultType.getShape(),
                                       resultType.getElementType(), dynamic);
  SmallVector<OpFoldResult> bounds = {batch, heads, blocksOf(b, queryLength)};
  auto forall =
      scf::ForallOp::create(b, loc, bounds, ValueRange{init}, std::nullopt);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(forall.getBody());
  queryBlock(b, forall);
  return forall.getResult(0);
}

struct LowerAMXAttentionPass
    : kiln::impl::LowerAMXAttentionPassBase<LowerAMXAttentionPass> {
  void runOnOperation() final {
    SmallVector<AttentionOp> work;
    getOperation().walk([&](AttentionOp op) {
      if (takesOnTiles(op))
        work.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (AttentionOp op : work) {
      rewriter.setInsertionPoint(op);
      Value result = TileAttention(rewriter, op).build();
      rewriter.replaceOp(op, result);
    }
  }
};
} // namespace
