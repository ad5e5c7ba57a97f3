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

/// Whether the tile kernels take an attention op with these operands (and
/// results): bf16 throughout, no mask (or key lengths), static head dims
/// that are multiples of 32, the head counts the fused lowering takes, and
/// (where static) at least a tile of query rows.
bool takesOnTiles(Value query, Value key, Value value, bool masked,
                  TypeRange more) {
  if (masked)
    return false;
  RankedTensorType q = rankedType(query), k = rankedType(key),
                   v = rankedType(value);
  SmallVector<Type> types = {q, k, v};
  llvm::append_range(types, more);
  for (Type type : types) {
    auto shaped = cast<RankedTensorType>(type);
    // The kernels build their results and read a gradient with the static
    // head dims of q and v (shape inference allows a dynamic one there).
    if (!shaped.getElementType().isBF16() || shaped.isDynamicDim(3))
      return false;
  }
  if (!canLowerAttentionFused(q, k, v))
    return false;
  int64_t headDim = q.getDimSize(3), valueDim = v.getDimSize(3);
  if (headDim % kBlock != 0 || valueDim % kBlock != 0 ||
      k.getDimSize(3) != headDim)
    return false;
  return q.isDynamicDim(2) || q.getDimSize(2) >= kTileRows;
}

/// A tile of an operand of a block product: the lhs tile of rows
/// `16 * half` at step `step` of k, or the rhs tile of columns `16 * half`.
using TileFn = function_ref<Value(OpBuilder &, int64_t half, int64_t step)>;
/// The initial sum tile of rows `16 * r` and columns `16 * c` (null: zero).
using InitFn = function_ref<Value(OpBuilder &, int64_t r, int64_t c)>;
/// Where the sum tile of rows `16 * r` and columns `16 * c` goes.
using StoreFn = function_ref<void(OpBuilder &, int64_t r, int64_t c, Value)>;

/// Builds the kernels of one attention op (or its gradient) before it.
class TileAttention {
public:
  TileAttention(OpBuilder &b, Location loc, Value query, Value key, Value value,
                bool causal, std::optional<APFloat> scale);

  /// kiln.attention's result.
  Value forward(Type resultType);
  /// kiln.attention_grad's (dq, dk, dv) for the output gradient `grad`.
  SmallVector<Value> backward(Value grad, TypeRange resultTypes);

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
  OpFoldResult dimOrSize(Value tensor, int64_t i) {
    auto type = rankedType(tensor);
    if (type.isDynamicDim(i))
      return dim(tensor, i);
    return b.getIndexAttr(type.getDimSize(i));
  }
  /// The constant vector 0, 1, ..., 31 (i32): query lanes.
  Value laneIndices(OpBuilder &nb) {
    SmallVector<int32_t> values(kBlock);
    for (int64_t i = 0; i < kBlock; ++i)
      values[i] = static_cast<int32_t>(i);
    return arith::ConstantOp::create(
        nb, loc, i32Lanes, DenseElementsAttr::get(i32Lanes, ArrayRef(values)));
  }
  /// ceil(value / kBlock).
  Value blocksOf(OpBuilder &nb, Value value) {
    return arith::CeilDivUIOp::create(nb, loc, value, index(kBlock));
  }
  /// An empty tensor of `type` whose dynamic dims are those of `like`.
  Value emptyLike(Type type, Value like) {
    auto shaped = cast<RankedTensorType>(type);
    SmallVector<Value> dynamic;
    for (int64_t i = 0; i < shaped.getRank(); ++i)
      if (shaped.isDynamicDim(i))
        dynamic.push_back(dim(like, i));
    return tensor::EmptyOp::create(b, loc, shaped.getShape(),
                                   shaped.getElementType(), dynamic);
  }
  Value alloc(OpBuilder &nb, ArrayRef<int64_t> shape, Type element) {
    return memref::AllocOp::create(nb, loc, MemRefType::get(shape, element));
  }
  /// Zeros rows [0, rows) of the f32 buffer `buffer` of `width` columns.
  void zeroRows(OpBuilder &nb, Value buffer, int64_t rows, int64_t width);

  // Layouts, at the tensor level, before the parallel loops.
  /// `tensor` [B, H, L, W] zero-padded to `blocks` * 32 rows.
  Value padRows(Value tensor, Value blocks);
  /// Padded rows as [B, H, n, W, 32]: each block of 32 rows transposed.
  Value transposedBlocks(Value padded, Value blocks);
  /// Padded rows as [B, H, n, W/2, 64]: per block, row p holds the columns
  /// 2p and 2p + 1 of each of the 32 rows side by side (pairs of columns:
  /// the rhs tile layout for a product over the columns).
  Value columnPairs(Value padded, Value blocks);
  /// Padded rows as [B, H, n, 16, 2W]: per block, row r holds rows 2r and
  /// 2r + 1 interleaved (pairs of rows: the rhs tile layout for a product
  /// over the rows).
  Value rowPairs(Value padded, Value blocks);
  Value readOnlyBuffer(Value tensor) {
    auto type = rankedType(tensor);
    return bufferization::ToBufferOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
        /*read_only=*/true);
  }

  // Pieces of the loop bodies.
  /// A 32 x 32 block of f32 sums on four 16 x 16 tiles over `steps` steps of
  /// 32 in k.
  void blockProduct(OpBuilder &nb, int64_t steps, TileFn lhs, TileFn rhs,
                    InitFn init, StoreFn store);
  /// A tile loaded from `buffer` at `prefix` followed by (row, column).
  Value loadTile(OpBuilder &nb, Value buffer, ValueRange prefix, int64_t row,
                 int64_t column, Value rowBase = {});
  /// For p in [0, 16): the f32 lanes `row(j)` of key rows j = 2p and
  /// 2p + 1, rounded to bf16 and interleaved into row p of `pairs` (the
  /// rhs tile layout of a product over the keys). `row` may fold them into
  /// the one vector the loop carries from `init`; returns its final value.
  Value keyPairs(OpBuilder &nb, Value pairs, Value init,
                 function_ref<Value(OpBuilder &, Value j, Value &carried)> row);
  /// sums[c0 + r, c] (+)= Σ_k blocked[prefix..., c0 + r, k] pairs[k, c] for
  /// c0 in steps of 32 below `width`: a block transposed per 32 keys times
  /// key pairs, added to the f32 [width, 32] `sums` or stored over it.
  void transposedBlockProduct(OpBuilder &nb, Value blocked, ValueRange prefix,
                              Value pairs, int64_t width, Value sums,
                              bool accumulate);
  /// Stores the sum tile of rows `16 * r` and columns `16 * c` of a 32 x 32
  /// block into `block`.
  void storeTile(OpBuilder &nb, Value block, int64_t r, int64_t c, Value tile) {
    amx::TileStoreOp::create(
        nb, loc, block, ValueRange{index(r * kTileRows), index(c * kTileRows)},
        tile);
  }
  /// Sᵀ of keys [key0, key0 + 32) by the 32 queries whose column pairs
  /// `queryTile` gives, into `scores` [32, 32].
  void transposedScores(OpBuilder &nb, Value bi, Value kvh, Value key0,
                        TileFn queryTile, Value scores);
  /// dPᵀ = V_blk · gᵀ of keys [key0, key0 + 32) by the 32 query rows of
  /// block `queryBlock` of head `h` (the gradient's column pairs), into
  /// `dps` [32, 32].
  void transposedOutputGrads(OpBuilder &nb, Value bi, Value kvh, Value h,
                             Value queryBlock, Value key0, Value gradColumns,
                             Value valueRows, Value dps);
  /// Key row j of the stored scores, scaled, with what the masks hide at
  /// the lowest f32; also whether each query lane sees the key under the
  /// causal mask (null without it) and whether the key exists.
  struct ScoreRow {
    Value scores, visible, inside;
  };
  ScoreRow scoreRow(OpBuilder &nb, Value scores, Value j, Value key0, Value q0);
  /// How many key blocks the query rows [q0, q0 + 32) visit.
  Value keyBlocks(OpBuilder &nb, Value q0);
  /// The forward's walk over the key blocks of the query block at q0:
  /// Oᵀ (unnormalized) into `outT` [Dv, 32], returns (m, l).
  std::pair<Value, Value> forwardBlocks(OpBuilder &nb, Value bi, Value h,
                                        Value kvh, Value q0, TileFn queryTile,
                                        Value outT);
  /// `rowsT` [W, 32] (times `rowScale`, a vector of 32 lanes), transposed
  /// and rounded, as rows [0, n) of the [n, W] tensor `slice`; returns it.
  Value writeTransposed(OpBuilder &nb, Value rowsT, Value rowScale,
                        int64_t width, Value slice);
  /// Rows [0, count) of the f32 buffer `rows` [32, W] times `factor`,
  /// rounded, into the [count, W] tensor `slice`; returns it.
  Value writeRows(OpBuilder &nb, Value rows, Value count, int64_t width,
                  double factor, Value slice);
  /// The [count, W] slice at (bi, h, row0) of the 4-d tensor `out`, and
  /// its offsets, sizes and strides.
  struct Slice {
    Value tensor;
    SmallVector<OpFoldResult> offsets, sizes, strides;
  };
  Slice rowSlice(OpBuilder &nb, Value out, Value bi, Value h, Value row0,
                 Value count, int64_t width, Type element);
  void insertInParallel(OpBuilder &nb, scf::ForallOp forall, Value written,
                        Value out, const Slice &slice);

  OpBuilder &b;
  Location loc;
  Value query, key, value;
  bool causal;
  int64_t headDim, valueDim;
  double scale;
  Value heads, kvHeads, batch, queryLength, keyLength, group;
  Value keyBlockCount;
  // Buffers of the layouts.
  Value keyRows, valuesT;
  VectorType lanes, i32Lanes;
  Type bf16, f32Type;
  amx::TileType operandTile, sumTile;
};

TileAttention::TileAttention(OpBuilder &b, Location loc, Value query, Value key,
                             Value value, bool causal,
                             std::optional<APFloat> scaleAttr)
    : b(b), loc(loc), query(query), key(key), value(value), causal(causal) {
  headDim = rankedType(query).getDimSize(3);
  valueDim = rankedType(value).getDimSize(3);
  scale = scaleAttr ? scaleAttr->convertToDouble()
                    : 1.0 / std::sqrt(static_cast<double>(headDim));
  batch = dim(query, 0);
  heads = dim(query, 1);
  kvHeads = dim(key, 1);
  queryLength = dim(query, 2);
  keyLength = dim(key, 2);
  group = arith::DivUIOp::create(b, loc, heads, kvHeads);
  keyBlockCount = blocksOf(b, keyLength);
  bf16 = b.getBF16Type();
  f32Type = b.getF32Type();
  lanes = VectorType::get({kBlock}, f32Type);
  i32Lanes = VectorType::get({kBlock}, b.getI32Type());
  operandTile = amx::TileType::get({kTileRows, kBlock}, bf16);
  sumTile = amx::TileType::get({kTileRows, kTileRows}, f32Type);
}

void TileAttention::zeroRows(OpBuilder &nb, Value buffer, int64_t rows,
                             int64_t width) {
  auto type = VectorType::get({width}, f32Type);
  Value zeros = arith::ConstantOp::create(nb, loc, type,
                                          DenseElementsAttr::get(type, 0.0f));
  scf::ForOp::create(nb, loc, index(0), index(rows), index(1), ValueRange{},
                     [&](OpBuilder &lb, Location, Value r, ValueRange) {
                       vector::StoreOp::create(lb, loc, zeros, buffer,
                                               ValueRange{r, index(0)});
                       scf::YieldOp::create(lb, loc);
                     });
}

Value TileAttention::padRows(Value tensor, Value blocks) {
  auto type = rankedType(tensor);
  Value padded = arith::MulIOp::create(b, loc, blocks, index(kBlock));
  SmallVector<int64_t> shape(type.getShape());
  shape[2] = ShapedType::kDynamic;
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < 4; ++i)
    if (i == 2)
      dynamic.push_back(padded);
    else if (type.isDynamicDim(i))
      dynamic.push_back(dim(tensor, i));
  Value empty =
      tensor::EmptyOp::create(b, loc, shape, type.getElementType(), dynamic);
  Value zero = arith::ConstantOp::create(
      b, loc, type.getElementType(), b.getFloatAttr(type.getElementType(), 0));
  Value filled =
      linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{empty})
          .getResult(0);
  SmallVector<OpFoldResult> offsets(4, b.getIndexAttr(0)),
      strides(4, b.getIndexAttr(1));
  SmallVector<OpFoldResult> sizes = {dimOrSize(tensor, 0), dimOrSize(tensor, 1),
                                     dimOrSize(tensor, 2),
                                     b.getIndexAttr(type.getDimSize(3))};
  return tensor::InsertSliceOp::create(b, loc, tensor, filled, offsets, sizes,
                                       strides);
}

/// Padded [B, H, n * 32, W] expanded (dims 2.. as `inner`, dim 2 split by
/// `reassociation`), permuted by `permutation` and collapsed by `collapse`
/// (none: kept).
static Value relayout(OpBuilder &b, Location loc, Value padded, Value blocks,
                      ArrayRef<int64_t> inner,
                      ArrayRef<ReassociationIndices> expansion,
                      ArrayRef<int64_t> permutation,
                      ArrayRef<ReassociationIndices> collapse) {
  auto type = rankedType(padded);
  SmallVector<int64_t> expandedShape = {type.getDimSize(0), type.getDimSize(1),
                                        ShapedType::kDynamic};
  expandedShape.append(inner.begin(), inner.end());
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0; i < 2; ++i)
    sizes.push_back(
        type.isDynamicDim(i)
            ? OpFoldResult(linalg::createOrFoldDimOp(b, loc, padded, i))
            : b.getIndexAttr(type.getDimSize(i)));
  sizes.push_back(blocks);
  for (int64_t size : inner)
    sizes.push_back(b.getIndexAttr(size));
  Value expanded = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get(expandedShape, type.getElementType()),
      padded, expansion, sizes);
  SmallVector<int64_t> permutedShape;
  SmallVector<Value> dynamic;
  for (int64_t i : permutation) {
    permutedShape.push_back(expandedShape[i]);
    if (ShapedType::isDynamic(expandedShape[i]))
      dynamic.push_back(tensor::DimOp::create(b, loc, expanded, i));
  }
  Value init = tensor::EmptyOp::create(b, loc, permutedShape,
                                       type.getElementType(), dynamic);
  Value permuted =
      linalg::TransposeOp::create(b, loc, expanded, init, permutation)
          ->getResult(0);
  if (collapse.empty())
    return permuted;
  return tensor::CollapseShapeOp::create(b, loc, permuted, collapse);
}

Value TileAttention::transposedBlocks(Value padded, Value blocks) {
  int64_t width = rankedType(padded).getDimSize(3);
  return relayout(b, loc, padded, blocks, {kBlock, width},
                  {{0}, {1}, {2, 3}, {4}}, {0, 1, 2, 4, 3}, {});
}

Value TileAttention::columnPairs(Value padded, Value blocks) {
  int64_t width = rankedType(padded).getDimSize(3);
  return relayout(b, loc, padded, blocks, {kBlock, width / 2, 2},
                  {{0}, {1}, {2, 3}, {4, 5}}, {0, 1, 2, 4, 3, 5},
                  {{0}, {1}, {2}, {3}, {4, 5}});
}

Value TileAttention::rowPairs(Value padded, Value blocks) {
  int64_t width = rankedType(padded).getDimSize(3);
  return relayout(b, loc, padded, blocks, {kTileRows, 2, width},
                  {{0}, {1}, {2, 3, 4}, {5}}, {0, 1, 2, 3, 5, 4},
                  {{0}, {1}, {2}, {3}, {4, 5}});
}

void TileAttention::blockProduct(OpBuilder &nb, int64_t steps, TileFn lhs,
                                 TileFn rhs, InitFn init, StoreFn store) {
  Value sums[2][2];
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 2; ++c) {
      Value start = init ? init(nb, r, c) : Value();
      sums[r][c] = start ? start : amx::TileZeroOp::create(nb, loc, sumTile);
    }
  for (int64_t step = 0; step < steps; ++step) {
    Value a[2] = {lhs(nb, 0, step), lhs(nb, 1, step)};
    Value w[2] = {rhs(nb, 0, step), rhs(nb, 1, step)};
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t c = 0; c < 2; ++c)
        sums[r][c] =
            amx::TileMulFOp::create(nb, loc, sumTile, a[r], w[c], sums[r][c]);
  }
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 2; ++c)
      store(nb, r, c, sums[r][c]);
}

Value TileAttention::loadTile(OpBuilder &nb, Value buffer, ValueRange prefix,
                              int64_t row, int64_t column, Value rowBase) {
  SmallVector<Value> indices(prefix);
  Value r = index(row);
  if (rowBase)
    r = arith::AddIOp::create(nb, loc, rowBase, r);
  indices.append({r, index(column)});
  auto type = cast<MemRefType>(buffer.getType()).getElementType().isF32()
                  ? sumTile
                  : operandTile;
  return amx::TileLoadOp::create(nb, loc, type, buffer, indices);
}

void TileAttention::transposedScores(OpBuilder &nb, Value bi, Value kvh,
                                     Value key0, TileFn queryTile,
                                     Value scores) {
  blockProduct(
      nb, headDim / kBlock,
      [&](OpBuilder &tb, int64_t half, int64_t step) {
        return loadTile(tb, keyRows, {bi, kvh}, half * kTileRows, step * kBlock,
                        key0);
      },
      queryTile, {},
      [&](OpBuilder &tb, int64_t r, int64_t c, Value tile) {
        storeTile(tb, scores, r, c, tile);
      });
}

void TileAttention::transposedOutputGrads(OpBuilder &nb, Value bi, Value kvh,
                                          Value h, Value queryBlock, Value key0,
                                          Value gradColumns, Value valueRows,
                                          Value dps) {
  blockProduct(
      nb, valueDim / kBlock,
      [&](OpBuilder &tb, int64_t half, int64_t step) {
        return loadTile(tb, valueRows, {bi, kvh}, half * kTileRows,
                        step * kBlock, key0);
      },
      [&](OpBuilder &tb, int64_t half, int64_t step) {
        return loadTile(tb, gradColumns, {bi, h, queryBlock}, step * kTileRows,
                        half * kBlock);
      },
      {},
      [&](OpBuilder &tb, int64_t r, int64_t c, Value tile) {
        storeTile(tb, dps, r, c, tile);
      });
}

TileAttention::ScoreRow TileAttention::scoreRow(OpBuilder &nb, Value scores,
                                                Value j, Value key0, Value q0) {
  Value lowest = splat(nb, lanes, f32(nb, -std::numeric_limits<float>::max()));
  Value key = arith::AddIOp::create(nb, loc, key0, j);
  Value s =
      vector::LoadOp::create(nb, loc, lanes, scores, ValueRange{j, index(0)});
  s = arith::MulFOp::create(nb, loc, s, splat(nb, lanes, f32(nb, scale)));
  ScoreRow row;
  if (causal) {
    // Query row i sees key j when i >= j + Sq - Sk: lanes from
    // j + Sq - Sk - q0 on (clamped into [-1, 33] before narrowing).
    Value first = arith::AddIOp::create(
        nb, loc, key,
        arith::SubIOp::create(
            nb, loc, arith::SubIOp::create(nb, loc, queryLength, keyLength),
            q0));
    first = arith::MaxSIOp::create(nb, loc, first, index(-1));
    first = arith::MinSIOp::create(nb, loc, first, index(kBlock + 1));
    first = arith::IndexCastOp::create(nb, loc, nb.getI32Type(), first);
    row.visible =
        arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::sge,
                              laneIndices(nb), splat(nb, i32Lanes, first));
    s = arith::SelectOp::create(nb, loc, row.visible, s, lowest);
  }
  // Keys past the end: the lowest score here (no effect on the max),
  // nothing in the sums (the callers zero their exponentials).
  row.inside =
      arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::slt, key, keyLength);
  row.scores = arith::SelectOp::create(nb, loc, row.inside, s, lowest);
  return row;
}

Value TileAttention::keyBlocks(OpBuilder &nb, Value q0) {
  if (!causal)
    return keyBlockCount;
  // The first row of the block sees the fewest keys unless it sees none
  // (then all); the last (q0 + 31, or Sq - 1) the most.
  auto keyCount = [&](Value row) {
    return causalKeyCount(nb, loc, row, queryLength, keyLength);
  };
  Value last = arith::MinSIOp::create(
      nb, loc, arith::AddIOp::create(nb, loc, q0, index(kBlock - 1)),
      arith::SubIOp::create(nb, loc, queryLength, index(1)));
  Value count = arith::MaxSIOp::create(nb, loc, keyCount(q0), keyCount(last));
  return blocksOf(nb, count);
}

/// Interleaves two vectors of 32 lanes: a0 b0 a1 b1 ...
static SmallVector<int64_t> interleaveMask() {
  SmallVector<int64_t> mask;
  for (int64_t i = 0; i < kBlock; ++i)
    mask.append({i, i + kBlock});
  return mask;
}

Value TileAttention::keyPairs(
    OpBuilder &nb, Value pairs, Value init,
    function_ref<Value(OpBuilder &, Value j, Value &carried)> row) {
  auto bf16Lanes = VectorType::get({kBlock}, bf16);
  auto loop = scf::ForOp::create(
      nb, loc, index(0), index(kBlock / 2), index(1), ValueRange{init},
      [&](OpBuilder &rb, Location, Value p, ValueRange in) {
        Value j0 = arith::MulIOp::create(rb, loc, p, index(2));
        Value carried = in[0];
        SmallVector<Value> rounded;
        for (int64_t t = 0; t < 2; ++t) {
          Value j = arith::AddIOp::create(rb, loc, j0, index(t));
          rounded.push_back(
              arith::TruncFOp::create(rb, loc, bf16Lanes, row(rb, j, carried)));
        }
        Value pair = vector::ShuffleOp::create(rb, loc, rounded[0], rounded[1],
                                               interleaveMask());
        vector::StoreOp::create(rb, loc, pair, pairs, ValueRange{p, index(0)});
        scf::YieldOp::create(rb, loc, ValueRange{carried});
      });
  return loop.getResult(0);
}

void TileAttention::transposedBlockProduct(OpBuilder &nb, Value blocked,
                                           ValueRange prefix, Value pairs,
                                           int64_t width, Value sums,
                                           bool accumulate) {
  for (int64_t c0 = 0; c0 < width; c0 += kBlock) {
    auto at = [&](int64_t r, int64_t c) {
      return SmallVector<Value>{index(c0 + r * kTileRows),
                                index(c * kTileRows)};
    };
    auto load = [&](OpBuilder &tb, int64_t r, int64_t c) -> Value {
      return amx::TileLoadOp::create(tb, loc, sumTile, sums, at(r, c));
    };
    blockProduct(
        nb, 1,
        [&](OpBuilder &tb, int64_t half, int64_t) {
          return loadTile(tb, blocked, prefix, c0 + half * kTileRows, 0);
        },
        [&](OpBuilder &tb, int64_t half, int64_t) {
          return loadTile(tb, pairs, {}, 0, half * kBlock);
        },
        accumulate ? InitFn(load) : InitFn(),
        [&](OpBuilder &tb, int64_t r, int64_t c, Value tile) {
          amx::TileStoreOp::create(tb, loc, sums, at(r, c), tile);
        });
  }
}

std::pair<Value, Value> TileAttention::forwardBlocks(OpBuilder &nb, Value bi,
                                                     Value h, Value kvh,
                                                     Value q0, TileFn queryTile,
                                                     Value outT) {
  Value scores = alloc(nb, {kBlock, kBlock}, f32Type);
  Value probabilities = alloc(nb, {kBlock / 2, 2 * kBlock}, bf16);
  Value products = alloc(nb, {valueDim, kBlock}, f32Type);
  zeroRows(nb, outT, valueDim, kBlock);
  Value lowestLanes =
      splat(nb, lanes, f32(nb, -std::numeric_limits<float>::max()));
  Value zeroLanes = arith::ConstantOp::create(
      nb, loc, lanes, DenseElementsAttr::get(lanes, 0.0f));
  auto loop = scf::ForOp::create(
      nb, loc, index(0), keyBlocks(nb, q0), index(1),
      ValueRange{lowestLanes, zeroLanes},
      [&](OpBuilder &kb, Location, Value block, ValueRange state) {
        Value m = state[0], l = state[1];
        Value key0 = arith::MulIOp::create(kb, loc, block, index(kBlock));
        transposedScores(kb, bi, kvh, key0, queryTile, scores);
        // The block's max of the scaled, masked scores.
        auto maxLoop = scf::ForOp::create(
            kb, loc, index(0), index(kBlock), index(1), ValueRange{lowestLanes},
            [&](OpBuilder &rb, Location, Value j, ValueRange in) {
              ScoreRow row = scoreRow(rb, scores, j, key0, q0);
              vector::StoreOp::create(rb, loc, row.scores, scores,
                                      ValueRange{j, index(0)});
              scf::YieldOp::create(rb, loc,
                                   ValueRange{arith::MaximumFOp::create(
                                       rb, loc, in[0], row.scores)});
            });
        Value newMax =
            arith::MaximumFOp::create(kb, loc, m, maxLoop.getResult(0));
        Value alpha = math::ExpOp::create(
            kb, loc, arith::SubFOp::create(kb, loc, m, newMax));
        // Pᵀ = exp(Sᵀ - m) rounded to bf16, keys 2p and 2p + 1 interleaved
        // per query; their f32 sum.
        Value blockSum = keyPairs(
            kb, probabilities, zeroLanes,
            [&](OpBuilder &rb, Value j, Value &sum) {
              Value s = vector::LoadOp::create(rb, loc, lanes, scores,
                                               ValueRange{j, index(0)});
              Value e = math::ExpOp::create(
                  rb, loc, arith::SubFOp::create(rb, loc, s, newMax));
              Value inside = arith::CmpIOp::create(
                  rb, loc, arith::CmpIPredicate::slt,
                  arith::AddIOp::create(rb, loc, key0, j), keyLength);
              e = arith::SelectOp::create(rb, loc, inside, e, zeroLanes);
              sum = arith::AddFOp::create(rb, loc, sum, e);
              return e;
            });
        Value newSum = arith::AddFOp::create(
            kb, loc, arith::MulFOp::create(kb, loc, l, alpha), blockSum);
        // Vᵀ_blk · Pᵀ, 32 value dims at a time, into `products`.
        transposedBlockProduct(kb, valuesT, {bi, kvh, block}, probabilities,
                               valueDim, products, /*accumulate=*/false);
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
  return {loop.getResult(0), loop.getResult(1)};
}

TileAttention::Slice TileAttention::rowSlice(OpBuilder &nb, Value out, Value bi,
                                             Value h, Value row0, Value count,
                                             int64_t width, Type element) {
  Slice slice;
  OpFoldResult zero = nb.getIndexAttr(0), one = nb.getIndexAttr(1);
  slice.offsets = {bi, h, row0, zero};
  slice.sizes = {one, one, count, nb.getIndexAttr(width)};
  slice.strides.assign(4, one);
  auto type = RankedTensorType::get({ShapedType::kDynamic, width}, element);
  slice.tensor = tensor::ExtractSliceOp::create(
      nb, loc, type, out, slice.offsets, slice.sizes, slice.strides);
  return slice;
}

void TileAttention::insertInParallel(OpBuilder &nb, scf::ForallOp forall,
                                     Value written, Value out,
                                     const Slice &slice) {
  OpBuilder::InsertionGuard guard(nb);
  nb.setInsertionPointToEnd(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(nb, loc, written, out, slice.offsets,
                                        slice.sizes, slice.strides);
}

Value TileAttention::writeTransposed(OpBuilder &nb, Value rowsT, Value rowScale,
                                     int64_t width, Value slice) {
  auto squareType = VectorType::get({kTileRows, kTileRows}, f32Type);
  Value zero = f32(nb, 0.0);
  for (int64_t half = 0; half < kBlock / kTileRows; ++half) {
    Value scaleHalf = vector::ExtractStridedSliceOp::create(
        nb, loc, rowScale, ArrayRef<int64_t>{half * kTileRows},
        ArrayRef<int64_t>{kTileRows}, ArrayRef<int64_t>{1});
    Value scaleSquare = splat(nb, squareType, scaleHalf);
    for (int64_t c = 0; c < width; c += kTileRows) {
      Value block = vector::TransferReadOp::create(
          nb, loc, squareType, rowsT,
          ValueRange{index(c), index(half * kTileRows)}, zero,
          ArrayRef<bool>{true, true});
      Value scaled = arith::MulFOp::create(nb, loc, block, scaleSquare);
      Value rows =
          vector::TransposeOp::create(nb, loc, scaled, ArrayRef<int64_t>{1, 0});
      Value rounded = arith::TruncFOp::create(
          nb, loc, VectorType::get({kTileRows, kTileRows}, bf16), rows);
      slice = vector::TransferWriteOp::create(
                  nb, loc, rounded, slice,
                  ValueRange{index(half * kTileRows), index(c)},
                  ArrayRef<bool>{false, true})
                  .getResult();
    }
  }
  return slice;
}

Value TileAttention::writeRows(OpBuilder &nb, Value rows, Value count,
                               int64_t width, double factor, Value slice) {
  auto rowType = VectorType::get({width}, f32Type);
  Value factors = splat(nb, rowType, f32(nb, factor));
  auto loop = scf::ForOp::create(
      nb, loc, index(0), count, index(1), ValueRange{slice},
      [&](OpBuilder &rb, Location, Value r, ValueRange in) {
        Value row = vector::LoadOp::create(rb, loc, rowType, rows,
                                           ValueRange{r, index(0)});
        row = arith::MulFOp::create(rb, loc, row, factors);
        Value rounded = arith::TruncFOp::create(
            rb, loc, VectorType::get({width}, bf16), row);
        Value written = vector::TransferWriteOp::create(rb, loc, rounded, in[0],
                                                        ValueRange{r, index(0)},
                                                        ArrayRef<bool>{true})
                            .getResult();
        scf::YieldOp::create(rb, loc, ValueRange{written});
      });
  return loop.getResult(0);
}

Value TileAttention::forward(Type resultType) {
  Value keysPadded = padRows(key, keyBlockCount);
  Value valuesBlocked =
      transposedBlocks(padRows(value, keyBlockCount), keyBlockCount);
  Value init = emptyLike(resultType, query);
  SmallVector<OpFoldResult> bounds = {batch, heads, blocksOf(b, queryLength)};
  auto forall =
      scf::ForallOp::create(b, loc, bounds, ValueRange{init}, std::nullopt);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(forall.getBody());
  keyRows = readOnlyBuffer(keysPadded);
  valuesT = readOnlyBuffer(valuesBlocked);
  SmallVector<Value> ivs = forall.getInductionVars();
  Value bi = ivs[0], h = ivs[1];
  Value q0 = arith::MulIOp::create(b, loc, ivs[2], index(kBlock));
  Value kvh = arith::DivUIOp::create(b, loc, h, group);

  // The block's queries as column pairs: row p holds (q[2p], q[2p + 1]) of
  // each of the 32 rows (a 16 x 16 transpose of 32-bit words per tile).
  Value queries = alloc(b, {headDim / 2, 2 * kBlock}, bf16);
  Value bf16Zero =
      arith::ConstantOp::create(b, loc, bf16, b.getFloatAttr(bf16, 0));
  auto rowsType = VectorType::get({kTileRows, kBlock}, bf16);
  auto wordsType = VectorType::get({kTileRows, kTileRows}, b.getI32Type());
  for (int64_t half = 0; half < kBlock / kTileRows; ++half)
    for (int64_t d = 0; d < headDim; d += kBlock) {
      Value row = arith::AddIOp::create(b, loc, q0, index(half * kTileRows));
      Value read = vector::TransferReadOp::create(
          b, loc, rowsType, query, ValueRange{bi, h, row, index(d)}, bf16Zero,
          ArrayRef<bool>{false, true});
      Value words = vector::BitCastOp::create(b, loc, wordsType, read);
      Value pairs =
          vector::TransposeOp::create(b, loc, words, ArrayRef<int64_t>{1, 0});
      Value back = vector::BitCastOp::create(b, loc, rowsType, pairs);
      vector::TransferWriteOp::create(
          b, loc, back, queries,
          ValueRange{index(d / 2), index(half * 2 * kTileRows)},
          ArrayRef<bool>{true, true});
    }
  Value outT = alloc(b, {valueDim, kBlock}, f32Type);
  auto [m, l] = forwardBlocks(
      b, bi, h, kvh, q0,
      [&](OpBuilder &tb, int64_t half, int64_t step) {
        return loadTile(tb, queries, {}, step * kTileRows, half * kBlock);
      },
      outT);
  (void)m;
  // Rows [q0, q0 + n) of the result: Oᵀ / l, transposed and rounded.
  Value inverse =
      arith::DivFOp::create(b, loc, splat(b, lanes, f32(b, 1.0)), l);
  Value out = forall.getRegionIterArgs()[0];
  Value count = arith::MinSIOp::create(
      b, loc, index(kBlock), arith::SubIOp::create(b, loc, queryLength, q0));
  Slice slice = rowSlice(b, out, bi, h, q0, count, valueDim, bf16);
  Value written = writeTransposed(b, outT, inverse, valueDim, slice.tensor);
  insertInParallel(b, forall, written, out, slice);
  return forall.getResult(0);
}

SmallVector<Value> TileAttention::backward(Value grad, TypeRange resultTypes) {
  Value queryBlockCount = blocksOf(b, queryLength);
  // The layouts as tensors; each loop body reads them as buffers (made
  // there, so that bufferization sees them read inside the loops and
  // keeps them until the loops are done).
  Value keysPadded = padRows(key, keyBlockCount);
  Value valuesPadded = padRows(value, keyBlockCount);
  Value valuesBlocked = transposedBlocks(valuesPadded, keyBlockCount);
  Value keysBlocked = transposedBlocks(keysPadded, keyBlockCount);
  Value queriesPadded = padRows(query, queryBlockCount);
  Value gradsPadded = padRows(grad, queryBlockCount);
  Value queryColumnsTensor = columnPairs(queriesPadded, queryBlockCount);
  Value queryPairsTensor = rowPairs(queriesPadded, queryBlockCount);
  Value gradColumnsTensor = columnPairs(gradsPadded, queryBlockCount);
  Value gradPairsTensor = rowPairs(gradsPadded, queryBlockCount);
  Value valueRows, keysT, queryColumns, queryPairs, gradColumns, gradPairs;
  Value zeroLanes = arith::ConstantOp::create(
      b, loc, lanes, DenseElementsAttr::get(lanes, 0.0f));
  auto bf16Lanes = VectorType::get({kBlock}, bf16);

  // Pass over query blocks: the forward again for each row's max m, 1/l
  // and δ = g·o (stored for the key blocks, [B, H, n * 32], 1/l = 0 past
  // the last row), then dq = scale Σ ds k.
  Value dqInit = emptyLike(resultTypes[0], query);
  SmallVector<int64_t> statsShape = {rankedType(query).getDimSize(0),
                                     rankedType(query).getDimSize(1),
                                     ShapedType::kDynamic};
  SmallVector<Value> statsDynamic;
  for (int64_t i = 0; i < 2; ++i)
    if (ShapedType::isDynamic(statsShape[i]))
      statsDynamic.push_back(dim(query, i));
  statsDynamic.push_back(
      arith::MulIOp::create(b, loc, queryBlockCount, index(kBlock)));
  Value statsInit =
      tensor::EmptyOp::create(b, loc, statsShape, f32Type, statsDynamic);
  auto queryPass = scf::ForallOp::create(
      b, loc, SmallVector<OpFoldResult>{batch, heads, queryBlockCount},
      ValueRange{dqInit, statsInit, statsInit, statsInit}, std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(queryPass.getBody());
    keyRows = readOnlyBuffer(keysPadded);
    valuesT = readOnlyBuffer(valuesBlocked);
    valueRows = readOnlyBuffer(valuesPadded);
    keysT = readOnlyBuffer(keysBlocked);
    queryColumns = readOnlyBuffer(queryColumnsTensor);
    gradColumns = readOnlyBuffer(gradColumnsTensor);
    SmallVector<Value> ivs = queryPass.getInductionVars();
    Value bi = ivs[0], h = ivs[1], qb = ivs[2];
    Value q0 = arith::MulIOp::create(b, loc, qb, index(kBlock));
    Value kvh = arith::DivUIOp::create(b, loc, h, group);
    auto queryTile = [&](OpBuilder &tb, int64_t half, int64_t step) {
      return loadTile(tb, queryColumns, {bi, h, qb}, step * kTileRows,
                      half * kBlock);
    };
    Value outT = alloc(b, {valueDim, kBlock}, f32Type);
    auto [m, l] = forwardBlocks(b, bi, h, kvh, q0, queryTile, outT);
    // 1/l, zero for the padding rows (their probabilities count for
    // nothing in the key pass).
    Value count = arith::MinSIOp::create(
        b, loc, index(kBlock), arith::SubIOp::create(b, loc, queryLength, q0));
    Value rowInside = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::slt, laneIndices(b),
        splat(b, i32Lanes,
              arith::IndexCastOp::create(b, loc, b.getI32Type(), count)));
    Value inverse = arith::SelectOp::create(
        b, loc, rowInside,
        arith::DivFOp::create(b, loc, splat(b, lanes, f32(b, 1.0)), l),
        zeroLanes);
    // δ = Σ_c o[c] g[c]: the gradient's column pairs split back into
    // columns 2p and 2p + 1 of the 32 rows.
    SmallVector<int64_t> even, odd;
    for (int64_t i = 0; i < kBlock; ++i) {
      even.push_back(2 * i);
      odd.push_back(2 * i + 1);
    }
    auto pairType = VectorType::get({2 * kBlock}, bf16);
    auto deltaLoop = scf::ForOp::create(
        b, loc, index(0), index(valueDim / 2), index(1), ValueRange{zeroLanes},
        [&](OpBuilder &rb, Location, Value p, ValueRange in) {
          Value pair =
              vector::LoadOp::create(rb, loc, pairType, gradColumns,
                                     ValueRange{bi, h, qb, p, index(0)});
          Value sum = in[0];
          for (int64_t t = 0; t < 2; ++t) {
            Value g = vector::ShuffleOp::create(rb, loc, pair, pair,
                                                t == 0 ? even : odd);
            g = arith::ExtFOp::create(rb, loc, lanes, g);
            Value c = arith::AddIOp::create(
                rb, loc, arith::MulIOp::create(rb, loc, p, index(2)), index(t));
            Value o = vector::LoadOp::create(rb, loc, lanes, outT,
                                             ValueRange{c, index(0)});
            sum = vector::FMAOp::create(rb, loc, o, g, sum);
          }
          scf::YieldOp::create(rb, loc, ValueRange{sum});
        });
    Value delta =
        arith::MulFOp::create(b, loc, deltaLoop.getResult(0), inverse);

    // dq: per key block, Sᵀ and dPᵀ = V_blk · gᵀ on tiles, dSᵀ = Pᵀ (dPᵀ - δ)
    // as key pairs, dqᵀ += Kᵀ_blk · dSᵀ summed on its tiles.
    Value scores = alloc(b, {kBlock, kBlock}, f32Type);
    Value dps = alloc(b, {kBlock, kBlock}, f32Type);
    Value dsPairs = alloc(b, {kBlock / 2, 2 * kBlock}, bf16);
    Value dqT = alloc(b, {headDim, kBlock}, f32Type);
    zeroRows(b, dqT, headDim, kBlock);
    scf::ForOp::create(
        b, loc, index(0), keyBlocks(b, q0), index(1), ValueRange{},
        [&](OpBuilder &kb, Location, Value block, ValueRange) {
          Value key0 = arith::MulIOp::create(kb, loc, block, index(kBlock));
          transposedScores(kb, bi, kvh, key0, queryTile, scores);
          transposedOutputGrads(kb, bi, kvh, h, qb, key0, gradColumns,
                                valueRows, dps);
          keyPairs(
              kb, dsPairs, zeroLanes, [&](OpBuilder &rb, Value j, Value &) {
                ScoreRow row = scoreRow(rb, scores, j, key0, q0);
                Value prob = arith::MulFOp::create(
                    rb, loc,
                    math::ExpOp::create(
                        rb, loc, arith::SubFOp::create(rb, loc, row.scores, m)),
                    inverse);
                Value dp = vector::LoadOp::create(rb, loc, lanes, dps,
                                                  ValueRange{j, index(0)});
                Value ds = arith::MulFOp::create(
                    rb, loc, prob, arith::SubFOp::create(rb, loc, dp, delta));
                if (row.visible)
                  ds = arith::SelectOp::create(rb, loc, row.visible, ds,
                                               zeroLanes);
                return arith::SelectOp::create(rb, loc, row.inside, ds,
                                               zeroLanes)
                    .getResult();
              });
          transposedBlockProduct(kb, keysT, {bi, kvh, block}, dsPairs, headDim,
                                 dqT, /*accumulate=*/true);
          scf::YieldOp::create(kb, loc);
        });
    ValueRange outs = queryPass.getRegionIterArgs();
    Slice dqSlice = rowSlice(b, outs[0], bi, h, q0, count, headDim, bf16);
    Value written = writeTransposed(b, dqT, splat(b, lanes, f32(b, scale)),
                                    headDim, dqSlice.tensor);
    insertInParallel(b, queryPass, written, outs[0], dqSlice);
    Value stats[3] = {m, inverse, delta};
    for (int64_t i = 0; i < 3; ++i) {
      Slice statSlice;
      OpFoldResult one = b.getIndexAttr(1);
      statSlice.offsets = {bi, h, q0};
      statSlice.sizes = {one, one, b.getIndexAttr(kBlock)};
      statSlice.strides.assign(3, one);
      statSlice.tensor = tensor::ExtractSliceOp::create(
          b, loc, RankedTensorType::get({kBlock}, f32Type), outs[1 + i],
          statSlice.offsets, statSlice.sizes, statSlice.strides);
      Value statWritten = vector::TransferWriteOp::create(
                              b, loc, stats[i], statSlice.tensor,
                              ValueRange{index(0)}, ArrayRef<bool>{true})
                              .getResult();
      insertInParallel(b, queryPass, statWritten, outs[1 + i], statSlice);
    }
  }

  // Pass over key blocks: dv = Σ Pᵀ g and dk = scale Σ dSᵀ q over the query
  // blocks (and the query heads of the key/value head) that see them.
  Value dkInit = emptyLike(resultTypes[1], key);
  Value dvInit = emptyLike(resultTypes[2], value);
  auto keyPass = scf::ForallOp::create(
      b, loc, SmallVector<OpFoldResult>{batch, kvHeads, keyBlockCount},
      ValueRange{dkInit, dvInit}, std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(keyPass.getBody());
    keyRows = readOnlyBuffer(keysPadded);
    valueRows = readOnlyBuffer(valuesPadded);
    queryColumns = readOnlyBuffer(queryColumnsTensor);
    queryPairs = readOnlyBuffer(queryPairsTensor);
    gradColumns = readOnlyBuffer(gradColumnsTensor);
    gradPairs = readOnlyBuffer(gradPairsTensor);
    Value rowMax = readOnlyBuffer(queryPass.getResult(1));
    Value rowInverse = readOnlyBuffer(queryPass.getResult(2));
    Value rowDelta = readOnlyBuffer(queryPass.getResult(3));
    SmallVector<Value> ivs = keyPass.getInductionVars();
    Value bi = ivs[0], kvh = ivs[1], block = ivs[2];
    Value key0 = arith::MulIOp::create(b, loc, block, index(kBlock));
    Value scores = alloc(b, {kBlock, kBlock}, f32Type);
    Value dps = alloc(b, {kBlock, kBlock}, f32Type);
    Value probRows = alloc(b, {kBlock, kBlock}, bf16);
    Value dsRows = alloc(b, {kBlock, kBlock}, bf16);
    Value dk = alloc(b, {kBlock, headDim}, f32Type);
    Value dv = alloc(b, {kBlock, valueDim}, f32Type);
    zeroRows(b, dk, kBlock, headDim);
    zeroRows(b, dv, kBlock, valueDim);
    // The first query block with a row that sees key0 under the causal
    // mask; all of them when some rows see no key (more queries than
    // keys: those rows average every key).
    Value firstBlock = index(0);
    if (causal)
      firstBlock = arith::DivUIOp::create(
          b, loc, causalFirstRow(b, loc, key0, queryLength, keyLength),
          index(kBlock));
    Value headBase = arith::MulIOp::create(b, loc, kvh, group);
    scf::ForOp::create(
        b, loc, index(0), group, index(1), ValueRange{},
        [&](OpBuilder &hb, Location, Value g, ValueRange) {
          Value h = arith::AddIOp::create(hb, loc, headBase, g);
          scf::ForOp::create(
              hb, loc, firstBlock, queryBlockCount, index(1), ValueRange{},
              [&](OpBuilder &qb, Location, Value queryBlock, ValueRange) {
                Value q0 =
                    arith::MulIOp::create(qb, loc, queryBlock, index(kBlock));
                SmallVector<Value> at = {bi, h, q0};
                Value m = vector::LoadOp::create(qb, loc, lanes, rowMax, at);
                Value inverse =
                    vector::LoadOp::create(qb, loc, lanes, rowInverse, at);
                Value delta =
                    vector::LoadOp::create(qb, loc, lanes, rowDelta, at);
                transposedScores(
                    qb, bi, kvh, key0,
                    [&](OpBuilder &tb, int64_t half, int64_t step) {
                      return loadTile(tb, queryColumns, {bi, h, queryBlock},
                                      step * kTileRows, half * kBlock);
                    },
                    scores);
                transposedOutputGrads(qb, bi, kvh, h, queryBlock, key0,
                                      gradColumns, valueRows, dps);
                // Pᵀ and dSᵀ rows, rounded to bf16.
                scf::ForOp::create(
                    qb, loc, index(0), index(kBlock), index(1), ValueRange{},
                    [&](OpBuilder &rb, Location, Value j, ValueRange) {
                      ScoreRow row = scoreRow(rb, scores, j, key0, q0);
                      Value prob = arith::MulFOp::create(
                          rb, loc,
                          math::ExpOp::create(
                              rb, loc,
                              arith::SubFOp::create(rb, loc, row.scores, m)),
                          inverse);
                      prob = arith::SelectOp::create(rb, loc, row.inside, prob,
                                                     zeroLanes);
                      Value dp = vector::LoadOp::create(
                          rb, loc, lanes, dps, ValueRange{j, index(0)});
                      Value ds = arith::MulFOp::create(
                          rb, loc, prob,
                          arith::SubFOp::create(rb, loc, dp, delta));
                      if (row.visible)
                        ds = arith::SelectOp::create(rb, loc, row.visible, ds,
                                                     zeroLanes);
                      vector::StoreOp::create(
                          rb, loc,
                          arith::TruncFOp::create(rb, loc, bf16Lanes, prob),
                          probRows, ValueRange{j, index(0)});
                      vector::StoreOp::create(
                          rb, loc,
                          arith::TruncFOp::create(rb, loc, bf16Lanes, ds),
                          dsRows, ValueRange{j, index(0)});
                      scf::YieldOp::create(rb, loc);
                    });
                // dv += Pᵀ · g and dk += dSᵀ · q, summed on their tiles.
                auto accumulate = [&](Value lhsRows, Value rhsPairs, Value sums,
                                      int64_t width) {
                  for (int64_t c0 = 0; c0 < width; c0 += kBlock) {
                    auto at = [&](int64_t r, int64_t c) {
                      return SmallVector<Value>{index(r * kTileRows),
                                                index(c0 + c * kTileRows)};
                    };
                    blockProduct(
                        qb, 1,
                        [&](OpBuilder &tb, int64_t half, int64_t) {
                          return loadTile(tb, lhsRows, {}, half * kTileRows, 0);
                        },
                        [&](OpBuilder &tb, int64_t half, int64_t) {
                          return loadTile(tb, rhsPairs, {bi, h, queryBlock}, 0,
                                          2 * (c0 + half * kTileRows));
                        },
                        [&](OpBuilder &tb, int64_t r, int64_t c) -> Value {
                          return amx::TileLoadOp::create(tb, loc, sumTile, sums,
                                                         at(r, c));
                        },
                        [&](OpBuilder &tb, int64_t r, int64_t c, Value tile) {
                          amx::TileStoreOp::create(tb, loc, sums, at(r, c),
                                                   tile);
                        });
                  }
                };
                accumulate(probRows, gradPairs, dv, valueDim);
                accumulate(dsRows, queryPairs, dk, headDim);
                scf::YieldOp::create(qb, loc);
              });
          scf::YieldOp::create(hb, loc);
        });
    ValueRange outs = keyPass.getRegionIterArgs();
    Value count = arith::MinSIOp::create(
        b, loc, index(kBlock), arith::SubIOp::create(b, loc, keyLength, key0));
    Slice dkSlice = rowSlice(b, outs[0], bi, kvh, key0, count, headDim, bf16);
    insertInParallel(b, keyPass,
                     writeRows(b, dk, count, headDim, scale, dkSlice.tensor),
                     outs[0], dkSlice);
    Slice dvSlice = rowSlice(b, outs[1], bi, kvh, key0, count, valueDim, bf16);
    insertInParallel(b, keyPass,
                     writeRows(b, dv, count, valueDim, 1.0, dvSlice.tensor),
                     outs[1], dvSlice);
  }
  return {queryPass.getResult(0), keyPass.getResult(0), keyPass.getResult(1)};
}

struct LowerAMXAttentionPass
    : kiln::impl::LowerAMXAttentionPassBase<LowerAMXAttentionPass> {
  void runOnOperation() final {
    SmallVector<Operation *> work;
    getOperation().walk([&](Operation *op) {
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        if (takesOnTiles(attention.getQuery(), attention.getKey(),
                         attention.getValue(),
                         attention.getMask() || attention.getKeyLengths(),
                         attention->getResultTypes()))
          work.push_back(op);
      } else if (auto grad = dyn_cast<AttentionGradOp>(op)) {
        SmallVector<Type> more(grad->getResultTypes());
        more.push_back(grad.getGrad().getType());
        if (takesOnTiles(grad.getQuery(), grad.getKey(), grad.getValue(),
                         static_cast<bool>(grad.getMask()), more))
          work.push_back(op);
      }
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : work) {
      rewriter.setInsertionPoint(op);
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        TileAttention kernel(rewriter, op->getLoc(), attention.getQuery(),
                             attention.getKey(), attention.getValue(),
                             attention.getCausal(), attention.getScale());
        rewriter.replaceOp(op, kernel.forward(attention.getType()));
        continue;
      }
      auto grad = cast<AttentionGradOp>(op);
      TileAttention kernel(rewriter, op->getLoc(), grad.getQuery(),
                           grad.getKey(), grad.getValue(), grad.getCausal(),
                           grad.getScale());
      rewriter.replaceOp(
          op, kernel.backward(grad.getGrad(), grad->getResultTypes()));
    }
  }
};
} // namespace
