//===- FusedAttention.cpp - kiln.attention as fused loop nests ------------===//
//
// Flash-attention style lowering of kiln.attention and kiln.attention_grad.
// The forward is one parallel loop over (batch, head, query row); each
// iteration walks the visible keys once with an online softmax (running
// max m, running sum l, accumulator rescaled by exp(m_old - m_new)) held in
// registers as vectors of the head dim, so the [Sq, Sk] score matrix never
// exists in memory. The gradient recomputes the statistics the same way:
//
//   per query row i:  m_i, l_i, o_i as above; δ_i = g_i·o_i;
//                     p_ij = exp(s_ij - m_i)/l_i, ds_ij = p_ij (g_i·v_j - δ_i),
//                     dq_i = scale Σ_j ds_ij k_j
//   per key row j:    dv_j = Σ_i p_ij g_i,  dk_j = scale Σ_i ds_ij q_i
//
// (the key-row loop reads m, 1/l and δ that the query-row loop stored), so
// neither pass needs atomics. Everything is computed in f32 whatever the
// element type; results are rounded once. The loops are scf.forall over
// tensors, which bufferize in place; the CPU backend runs the outer loop on
// threads and the CUDA backend gives each row a GPU thread.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"
#include "Utils.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Decomposition.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>
#include <type_traits>

namespace mlir::kiln {
#define GEN_PASS_DEF_CONVERTKILNATTENTIONPASS
#include "kiln/Conversion/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::to_linalg;

namespace {

Value f32Const(OpBuilder &b, Location loc, double value) {
  return arith::ConstantOp::create(
      b, loc, b.getF32Type(), b.getF32FloatAttr(static_cast<float>(value)));
}

/// row + keyLength - queryLength + 1.
Value causalVisibleEnd(OpBuilder &b, Location loc, Value row, Value queryLength,
                       Value keyLength) {
  Value shifted = arith::AddIOp::create(
      b, loc, row, arith::SubIOp::create(b, loc, keyLength, queryLength));
  return arith::AddIOp::create(b, loc, shifted, indexConstant(b, loc, 1));
}

/// Converts a scalar or vector of a narrower float type to f32.
Value toF32(OpBuilder &b, Location loc, Value value) {
  Type type = value.getType();
  Type element = getElementTypeOrSelf(type);
  if (element.isF32())
    return value;
  Type target = b.getF32Type();
  if (auto vector = dyn_cast<VectorType>(type))
    target = vector.clone(target);
  return arith::ExtFOp::create(b, loc, target, value);
}

/// Rounds an f32 vector to `element`.
Value fromF32(OpBuilder &b, Location loc, Value value, Type element) {
  if (element.isF32())
    return value;
  return arith::TruncFOp::create(
      b, loc, cast<VectorType>(value.getType()).clone(element), value);
}

/// The body of a blocked loop: given the first index of a step and the
/// number of indices it covers (a compile-time width), the state in, the
/// state out.
using BlockBody = function_ref<SmallVector<Value>(
    OpBuilder &, Value first, int64_t width, ValueRange state)>;

/// `for (i = lo; i + width <= hi; i += width) body(i, width)` and then
/// `for (; i < hi; ++i) body(i, 1)`, threading `init` through
/// both; returns the final state. Blocks give a row's keys (or a key's
/// rows) independent dot products and one vector exp per step.
SmallVector<Value> blockedLoop(OpBuilder &b, Location loc, int64_t width,
                               Value lo, Value hi, ValueRange init,
                               BlockBody body) {
  Value block = indexConstant(b, loc, width);
  auto build = [&](Value from, Value to, Value step, int64_t width,
                   ValueRange state) {
    auto loop = scf::ForOp::create(
        b, loc, from, to, step, state,
        [&](OpBuilder &nb, Location, Value first, ValueRange inner) {
          scf::YieldOp::create(nb, loc, body(nb, first, width, inner));
        });
    return SmallVector<Value>(loop.getResults());
  };
  if (width == 1)
    return build(lo, hi, block, 1, init);
  Value span = arith::SubIOp::create(b, loc, hi, lo);
  Value blockedEnd = arith::AddIOp::create(
      b, loc, lo,
      arith::MulIOp::create(b, loc, arith::DivSIOp::create(b, loc, span, block),
                            block));
  SmallVector<Value> state = build(lo, blockedEnd, block, width, init);
  return build(blockedEnd, hi, indexConstant(b, loc, 1), 1, state);
}

/// `scalars` as a vector (one scalar: a vector<1>).
Value gather(OpBuilder &b, Location loc, ArrayRef<Value> scalars) {
  auto type = VectorType::get({static_cast<int64_t>(scalars.size())},
                              scalars.front().getType());
  return vector::FromElementsOp::create(b, loc, type, scalars);
}

/// Everything the row computations of one attention op share: operands,
/// sizes and the constants of the online softmax.
struct AttentionProblem {
  Location loc;
  Value query, key, value, mask;
  /// kiln.attention's `key_lengths` (`[B]`), or null.
  Value keyLengths;
  bool causal;
  Type element;
  int64_t headDim, valueDim;
  // Index values, computed once outside the loops.
  Value batch, heads, kvHeads, queryLength, keyLength;
  // Query heads per key/value head.
  Value group;
  Value scale;
  VectorType headVector, valueVector;
  // Keys (or query rows) per step of the blocked loops.
  int64_t blockWidth;

  AttentionProblem(Location loc, int64_t blockWidth)
      : loc(loc), blockWidth(blockWidth) {}

  /// Reads row `row` of head `head` of a [B, H, S, D] tensor as f32.
  Value readRow(OpBuilder &b, Value tensor, Value batchIndex, Value head,
                Value row) const {
    auto type = tensorType(tensor);
    auto vectorType =
        VectorType::get({type.getDimSize(3)}, type.getElementType());
    Value zero = indexConstant(b, loc, 0);
    Value padding =
        arith::ConstantOp::create(b, loc, type.getElementType(),
                                  b.getFloatAttr(type.getElementType(), 0.0));
    Value read = vector::TransferReadOp::create(
        b, loc, vectorType, tensor, ValueRange{batchIndex, head, row, zero},
        padding, ArrayRef<bool>{true});
    return toF32(b, loc, read);
  }

  /// The key/value head that query head `head` reads.
  Value kvHead(OpBuilder &b, Value head) const {
    return arith::DivUIOp::create(b, loc, head, group);
  }

  /// One past the last key query row `row` sees under the causal mask: key
  /// j is visible when j < row + keyLength - queryLength + 1 (the bound may
  /// be <= 0 or > keyLength).
  Value visibleEnd(OpBuilder &b, Value row) const {
    return causalVisibleEnd(b, loc, row, queryLength, keyLength);
  }

  /// The number of keys row `row` visits: all of them without a causal
  /// mask; under it the visible ones, or all of them (every one masked,
  /// which the softmax turns into a uniform average, as the decomposition
  /// does) when none is visible.
  Value keyCount(OpBuilder &b, Value row) const {
    if (!causal)
      return keyLength;
    return causalKeyCount(b, loc, row, queryLength, keyLength);
  }

  /// `value` where key `keyIndex` is visible from `row`, `hidden` where
  /// the causal mask hides it (`value` itself without a causal mask).
  Value hideCausal(OpBuilder &b, Value value, Value row, Value keyIndex,
                   Value hidden) const {
    if (!causal)
      return value;
    Value visible = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                          keyIndex, visibleEnd(b, row));
    return arith::SelectOp::create(b, loc, visible, value, hidden);
  }

  /// The score of (row, key): the scaled query row (already multiplied by
  /// `scale`) dotted with the key row, plus the mask, replaced by the lowest
  /// f32 where the causal mask hides the key.
  Value score(OpBuilder &b, Value scaledQuery, Value keyRow, Value batchIndex,
              Value head, Value row, Value keyIndex) const {
    Value s = dot(b, scaledQuery, keyRow);
    if (mask) {
      auto maskType = tensorType(mask);
      int64_t rank = maskType.getRank();
      Value ivs[4] = {batchIndex, head, row, keyIndex};
      SmallVector<int64_t> scoreShape = {
          tensorType(query).getDimSize(0), tensorType(query).getDimSize(1),
          tensorType(query).getDimSize(2), tensorType(key).getDimSize(2)};
      SmallVector<Value> indices;
      for (int64_t i = 0; i < rank; ++i) {
        int64_t scoreDim = 4 - rank + i;
        bool broadcast =
            maskType.getDimSize(i) == 1 && scoreShape[scoreDim] != 1;
        indices.push_back(broadcast ? indexConstant(b, loc, 0) : ivs[scoreDim]);
      }
      Value maskValue = tensor::ExtractOp::create(b, loc, mask, indices);
      s = arith::AddFOp::create(b, loc, s, toF32(b, loc, maskValue));
    }
    return hideCausal(b, s, row, keyIndex, lowest(b));
  }

  Value lowest(OpBuilder &b) const {
    return f32Const(b, loc, -std::numeric_limits<float>::max());
  }

  Value splat(OpBuilder &b, VectorType type, Value scalar) const {
    return vector::BroadcastOp::create(b, loc, type, scalar);
  }

  /// Σ of a vector's lanes, in any order.
  Value sum(OpBuilder &b, Value vector) const {
    return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD,
                                       vector, arith::FastMathFlags::reassoc);
  }

  Value dot(OpBuilder &b, Value lhs, Value rhs) const {
    return sum(b, arith::MulFOp::create(b, loc, lhs, rhs));
  }

  Value zeros(OpBuilder &b, VectorType type) const {
    return arith::ConstantOp::create(b, loc, type,
                                     DenseElementsAttr::get(type, 0.0f));
  }

  /// exp(s - m) / l elementwise, from the stored max m and 1/l.
  Value probabilities(OpBuilder &b, Value scores, Value maxes,
                      Value inverseSums) const {
    Value shifted = arith::SubFOp::create(b, loc, scores, maxes);
    return arith::MulFOp::create(b, loc, math::ExpOp::create(b, loc, shifted),
                                 inverseSums);
  }

  /// ds = p (dp - δ) for one query row's block of keys (m, 1/l and δ
  /// scalars of the row).
  Value scoreGradients(OpBuilder &b, Value scores, Value m, Value inverseSum,
                       Value dps, Value delta) const {
    auto type = cast<VectorType>(scores.getType());
    Value maxes = splat(b, type, m);
    Value inverseSums = splat(b, type, inverseSum);
    Value prob = probabilities(b, scores, maxes, inverseSums);
    Value deltas = splat(b, type, delta);
    Value centered = arith::SubFOp::create(b, loc, dps, deltas);
    return arith::MulFOp::create(b, loc, prob, centered);
  }

  /// The scaled query row of (batch, head, row).
  Value scaledQueryRow(OpBuilder &b, Value batchIndex, Value head,
                       Value row) const {
    Value q = readRow(b, query, batchIndex, head, row);
    return arith::MulFOp::create(b, loc, q, splat(b, headVector, scale));
  }

  /// The online softmax over the keys of one query row: returns the row
  /// max m, the sum l of exp(s - m) and the unnormalized Σ exp(s - m) v.
  /// Each step takes a block of keys: their scores are independent dot
  /// products, the max and the rescaling happen once per block and the
  /// exponentials are one vector op, which keeps the row's loop-carried
  /// chain short.
  /// `count` limited to the keys row `batchIndex` has filled
  /// (`key_lengths`, clamped to at least 1); `count` without key lengths.
  Value limitToKeyLength(OpBuilder &b, Value count, Value batchIndex) const {
    if (!keyLengths)
      return count;
    Value length = tensor::ExtractOp::create(b, loc, keyLengths, batchIndex);
    length = arith::IndexCastOp::create(b, loc, b.getIndexType(), length);
    length = arith::MaxSIOp::create(b, loc, length, indexConstant(b, loc, 1));
    return arith::MinSIOp::create(b, loc, count, length);
  }

  std::array<Value, 3> forwardRow(OpBuilder &b, Value batchIndex, Value head,
                                  Value row, Value scaledQuery) const {
    Value kvh = kvHead(b, head);
    Value firstKey = indexConstant(b, loc, 0);
    Value keyEnd = limitToKeyLength(b, keyCount(b, row), batchIndex);
    Value initialMax = lowest(b);
    Value initialSum = f32Const(b, loc, 0.0);
    Value initialAcc = zeros(b, valueVector);
    SmallVector<Value> state = blockedLoop(
        b, loc, blockWidth, firstKey, keyEnd,
        ValueRange{initialMax, initialSum, initialAcc},
        [&](OpBuilder &nb, Value first, int64_t width, ValueRange in) {
          Value m = in[0], l = in[1], acc = in[2];
          SmallVector<Value> keys, scores;
          for (int64_t t = 0; t < width; ++t) {
            Value j = arith::AddIOp::create(nb, loc, first, indexConstant(nb, loc, t));
            keys.push_back(j);
            Value keyRow = readRow(nb, key, batchIndex, kvh, j);
            scores.push_back(
                score(nb, scaledQuery, keyRow, batchIndex, head, row, j));
          }
          Value s = gather(nb, loc, scores);
          auto vectorType = cast<VectorType>(s.getType());
          Value blockMax = vector::ReductionOp::create(
              nb, loc, vector::CombiningKind::MAXIMUMF, s);
          Value newMax = arith::MaximumFOp::create(nb, loc, m, blockMax);
          Value alpha = math::ExpOp::create(
              nb, loc, arith::SubFOp::create(nb, loc, m, newMax));
          Value p = math::ExpOp::create(
              nb, loc,
              arith::SubFOp::create(nb, loc, s, splat(nb, vectorType, newMax)));
          Value rescaledSum = arith::MulFOp::create(nb, loc, l, alpha);
          Value blockSum = sum(nb, p);
          Value newSum = arith::AddFOp::create(nb, loc, rescaledSum, blockSum);
          Value newAcc = arith::MulFOp::create(nb, loc, acc,
                                               splat(nb, valueVector, alpha));
          for (int64_t t = 0; t < width; ++t) {
            Value valueRow = readRow(nb, value, batchIndex, kvh, keys[t]);
            Value pt = vector::ExtractOp::create(nb, loc, p, t);
            newAcc = vector::FMAOp::create(nb, loc, splat(nb, valueVector, pt),
                                           valueRow, newAcc);
          }
          return SmallVector<Value>{newMax, newSum, newAcc};
        });
    return {state[0], state[1], state[2]};
  }
};

/// Fills `problem` from an attention op's operands; fails (with an error on
/// `op`) for shapes the fused lowering does not handle.
LogicalResult initProblem(OpBuilder &b, Operation *op, AttentionProblem &p,
                          Value query, Value key, Value value, Value mask,
                          bool causal, std::optional<APFloat> scale) {
  Location loc = op->getLoc();
  p.query = query;
  p.key = key;
  p.value = value;
  p.mask = mask;
  p.causal = causal;
  auto qType = tensorType(query), kType = tensorType(key),
       vType = tensorType(value);
  p.element = qType.getElementType();
  p.headDim = qType.getDimSize(3);
  p.valueDim = vType.getDimSize(3);
  if (!canLowerAttentionFused(qType, kType, vType)) {
    if (ShapedType::isDynamic(p.headDim) || ShapedType::isDynamic(p.valueDim))
      return op->emitOpError("needs static head dims for the fused lowering, "
                             "found query ")
             << qType << " and value " << vType
             << " (decompose it: kiln-compile --attention decomposed, or "
                "kiln.attention left out of keep=)";
    return op->emitOpError("needs static head counts for grouped-query "
                           "attention, found query ")
           << qType << " and key " << kType;
  }
  p.batch = linalg::createOrFoldDimOp(b, loc, query, 0);
  p.heads = linalg::createOrFoldDimOp(b, loc, query, 1);
  p.kvHeads = linalg::createOrFoldDimOp(b, loc, key, 1);
  p.queryLength = linalg::createOrFoldDimOp(b, loc, query, 2);
  p.keyLength = linalg::createOrFoldDimOp(b, loc, key, 2);
  p.group = arith::DivUIOp::create(b, loc, p.heads, p.kvHeads);
  double s = scale ? scale->convertToDouble()
                   : 1.0 / std::sqrt(static_cast<double>(p.headDim));
  p.scale = f32Const(b, loc, s);
  p.headVector = VectorType::get({p.headDim}, b.getF32Type());
  p.valueVector = VectorType::get({p.valueDim}, b.getF32Type());
  return success();
}

/// The problem of kiln.attention or kiln.attention_grad (same operands and
/// attributes), with the rewriter placed before `op`.
template <typename OpTy>
FailureOr<AttentionProblem> problemOf(IRRewriter &rewriter, OpTy op,
                                      int64_t blockWidth) {
  rewriter.setInsertionPoint(op);
  AttentionProblem p(op.getLoc(), blockWidth);
  if (failed(initProblem(rewriter, op, p, op.getQuery(), op.getKey(),
                         op.getValue(), op.getMask(), op.getCausal(),
                         op.getScale())))
    return failure();
  if constexpr (std::is_same_v<OpTy, AttentionOp>)
    p.keyLengths = op.getKeyLengths();
  return p;
}

/// An empty tensor of `shape` and `element` whose dynamic dim i has the
/// size of `like`'s dim i.
Value emptyFrom(OpBuilder &b, Location loc, Value like, ArrayRef<int64_t> shape,
                Type element) {
  SmallVector<Value> sizes;
  for (auto [i, size] : llvm::enumerate(shape))
    if (ShapedType::isDynamic(size))
      sizes.push_back(tensor::DimOp::create(b, loc, like, i));
  return tensor::EmptyOp::create(b, loc, shape, element, sizes);
}

/// An empty tensor shaped like `like`, of `element`.
Value emptyLike(OpBuilder &b, Location loc, Value like, Type element) {
  return emptyFrom(b, loc, like, tensorType(like).getShape(), element);
}

/// Inserts `written` into the forall's shared output `out` at the slice
/// (`offsets`, `sizes`, `strides`), in its terminator.
void insertInParallel(OpBuilder &b, Location loc, scf::ForallOp forall,
                      Value written, Value out, ArrayRef<OpFoldResult> offsets,
                      ArrayRef<OpFoldResult> sizes,
                      ArrayRef<OpFoldResult> strides) {
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(b, loc, written, out, offsets, sizes,
                                        strides);
}

/// Writes the f32 vector `row` (rounded to the tensor's element type) as
/// row (i0, i1, i2) of the forall's shared output `out`.
void writeRow(OpBuilder &b, Location loc, scf::ForallOp forall, Value out,
              ValueRange position, Value row) {
  auto type = tensorType(out);
  int64_t width = type.getDimSize(3);
  OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
  SmallVector<OpFoldResult> offsets = {position[0], position[1], position[2],
                                       zero};
  SmallVector<OpFoldResult> sizes = {one, one, one, b.getIndexAttr(width)};
  SmallVector<OpFoldResult> strides(4, one);
  auto sliceType = RankedTensorType::get({width}, type.getElementType());
  Value slice = tensor::ExtractSliceOp::create(b, loc, sliceType, out, offsets,
                                               sizes, strides);
  Value rounded = fromF32(b, loc, row, type.getElementType());
  Value written = vector::TransferWriteOp::create(b, loc, rounded, slice,
                                                  ValueRange{indexConstant(b, loc, 0)},
                                                  ArrayRef<bool>{true})
                      .getResult();
  insertInParallel(b, loc, forall, written, out, offsets, sizes, strides);
}

/// Writes the f32 scalar `value` at (i0, i1, i2) of the [B, H, Sq] shared
/// output `out`.
void writeScalar(OpBuilder &b, Location loc, scf::ForallOp forall, Value out,
                 ValueRange position, Value value) {
  OpFoldResult one = b.getIndexAttr(1);
  SmallVector<OpFoldResult> offsets = {position[0], position[1], position[2]};
  SmallVector<OpFoldResult> sizes(3, one), strides(3, one);
  auto sliceType = RankedTensorType::get({1}, b.getF32Type());
  Value slice = tensor::ExtractSliceOp::create(b, loc, sliceType, out, offsets,
                                               sizes, strides);
  Value written = tensor::InsertOp::create(b, loc, value, slice,
                                           ValueRange{indexConstant(b, loc, 0)});
  insertInParallel(b, loc, forall, written, out, offsets, sizes, strides);
}

/// An scf.forall over `bounds` with `outputs`; the builder is left at the
/// start of its body. Returns the op; its induction variables and shared
/// outputs are the body's arguments.
scf::ForallOp beginForall(OpBuilder &b, Location loc, ValueRange bounds,
                          ValueRange outputs) {
  SmallVector<OpFoldResult> ubs(bounds.begin(), bounds.end());
  auto forall = scf::ForallOp::create(b, loc, ubs, outputs, std::nullopt);
  b.setInsertionPointToStart(forall.getBody());
  return forall;
}

LogicalResult lowerAttention(IRRewriter &rewriter, AttentionOp op,
                             int64_t blockWidth) {
  Location loc = op.getLoc();
  FailureOr<AttentionProblem> problem = problemOf(rewriter, op, blockWidth);
  if (failed(problem))
    return failure();
  const AttentionProblem &p = *problem;
  // [B, H, Sq] from the query, the static value dim.
  Value init = emptyFrom(rewriter, loc, op.getQuery(),
                         tensorType(op.getResult()).getShape(), p.element);
  OpBuilder::InsertionGuard guard(rewriter);
  scf::ForallOp forall =
      beginForall(rewriter, loc, {p.batch, p.heads, p.queryLength}, {init});
  SmallVector<Value> ivs = forall.getInductionVars();
  Value out = forall.getRegionIterArgs()[0];
  Value q = p.scaledQueryRow(rewriter, ivs[0], ivs[1], ivs[2]);
  auto [m, l, acc] = p.forwardRow(rewriter, ivs[0], ivs[1], ivs[2], q);
  (void)m;
  Value row = arith::DivFOp::create(rewriter, loc, acc,
                                    p.splat(rewriter, p.valueVector, l));
  writeRow(rewriter, loc, forall, out, ivs, row);
  rewriter.replaceOp(op, forall.getResults());
  return success();
}

LogicalResult lowerAttentionGrad(IRRewriter &rewriter, AttentionGradOp op,
                                 int64_t blockWidth) {
  Location loc = op.getLoc();
  FailureOr<AttentionProblem> problem = problemOf(rewriter, op, blockWidth);
  if (failed(problem))
    return failure();
  const AttentionProblem &p = *problem;
  Value grad = op.getGrad();

  // Query rows: dq, and the statistics the key rows need.
  Value dqInit = emptyLike(rewriter, loc, op.getQuery(), p.element);
  // The per-row statistics, f32 [B, H, Sq].
  Value maxInit = emptyFrom(rewriter, loc, op.getQuery(),
                            tensorType(op.getQuery()).getShape().take_front(3),
                            rewriter.getF32Type());
  scf::ForallOp queryRows;
  {
    OpBuilder::InsertionGuard guard(rewriter);
    queryRows = beginForall(rewriter, loc, {p.batch, p.heads, p.queryLength},
                            {dqInit, maxInit, maxInit, maxInit});
    SmallVector<Value> ivs = queryRows.getInductionVars();
    ValueRange outs = queryRows.getRegionIterArgs();
    Value b = ivs[0], h = ivs[1], i = ivs[2];
    Value q = p.scaledQueryRow(rewriter, b, h, i);
    // Named values, not a structured binding: a lambda below captures them.
    std::array<Value, 3> row = p.forwardRow(rewriter, b, h, i, q);
    Value m = row[0], l = row[1], acc = row[2];
    Value inverseSum =
        arith::DivFOp::create(rewriter, loc, f32Const(rewriter, loc, 1.0), l);
    Value o = arith::MulFOp::create(
        rewriter, loc, acc, p.splat(rewriter, p.valueVector, inverseSum));
    Value g = p.readRow(rewriter, grad, b, h, i);
    Value delta = p.dot(rewriter, g, o);
    Value kvh = p.kvHead(rewriter, h);
    // Keys in blocks: p = exp(s - m)/l and ds = p (g·v - δ) as vectors.
    Value firstKey = indexConstant(rewriter, loc, 0);
    Value keyEnd = p.keyCount(rewriter, i);
    Value dqZeros = p.zeros(rewriter, p.headVector);
    SmallVector<Value> dqSum = blockedLoop(
        rewriter, loc, p.blockWidth, firstKey, keyEnd, ValueRange{dqZeros},
        [&](OpBuilder &nb, Value first, int64_t width, ValueRange in) {
          SmallVector<Value> keys, keyRows, scores, dps;
          for (int64_t t = 0; t < width; ++t) {
            Value j = arith::AddIOp::create(nb, loc, first, indexConstant(nb, loc, t));
            keys.push_back(j);
            keyRows.push_back(p.readRow(nb, p.key, b, kvh, j));
            scores.push_back(p.score(nb, q, keyRows.back(), b, h, i, j));
            dps.push_back(p.dot(nb, g, p.readRow(nb, p.value, b, kvh, j)));
          }
          Value scoreVector = gather(nb, loc, scores);
          Value dpVector = gather(nb, loc, dps);
          Value ds = p.scoreGradients(nb, scoreVector, m, inverseSum, dpVector,
                                      delta);
          Value dq = in[0];
          for (int64_t t = 0; t < width; ++t) {
            Value dsLane = vector::ExtractOp::create(nb, loc, ds, t);
            Value zero = f32Const(nb, loc, 0.0);
            Value dst = p.hideCausal(nb, dsLane, i, keys[t], zero);
            dq = vector::FMAOp::create(nb, loc, p.splat(nb, p.headVector, dst),
                                       keyRows[t], dq);
          }
          return SmallVector<Value>{dq};
        });
    Value dq = arith::MulFOp::create(rewriter, loc, dqSum[0],
                                     p.splat(rewriter, p.headVector, p.scale));
    writeRow(rewriter, loc, queryRows, outs[0], ivs, dq);
    writeScalar(rewriter, loc, queryRows, outs[1], ivs, m);
    writeScalar(rewriter, loc, queryRows, outs[2], ivs, inverseSum);
    writeScalar(rewriter, loc, queryRows, outs[3], ivs, delta);
  }
  Value rowMax = queryRows.getResult(1), rowInverseSum = queryRows.getResult(2),
        rowDelta = queryRows.getResult(3);

  // Key rows: dk and dv, summed over the query heads sharing the key head.
  Value dkInit = emptyLike(rewriter, loc, op.getKey(), p.element);
  Value dvInit = emptyLike(rewriter, loc, op.getValue(), p.element);
  scf::ForallOp keyRows;
  {
    OpBuilder::InsertionGuard guard(rewriter);
    keyRows = beginForall(rewriter, loc, {p.batch, p.kvHeads, p.keyLength},
                          {dkInit, dvInit});
    SmallVector<Value> ivs = keyRows.getInductionVars();
    ValueRange outs = keyRows.getRegionIterArgs();
    Value b = ivs[0], kvh = ivs[1], j = ivs[2];
    Value keyRow = p.readRow(rewriter, p.key, b, kvh, j);
    Value valueRow = p.readRow(rewriter, p.value, b, kvh, j);
    // Under the causal mask, rows before the first that sees key j
    // contribute nothing, unless some rows see no key at all (more queries
    // than keys): those average every key and reach every dv.
    Value first =
        p.causal ? causalFirstRow(rewriter, loc, j, p.queryLength, p.keyLength)
                 : indexConstant(rewriter, loc, 0);
    Value headBase = arith::MulIOp::create(rewriter, loc, kvh, p.group);
    Value firstHead = indexConstant(rewriter, loc, 0);
    Value headStep = indexConstant(rewriter, loc, 1);
    Value dkZeros = p.zeros(rewriter, p.headVector);
    Value dvZeros = p.zeros(rewriter, p.valueVector);
    auto heads = scf::ForOp::create(
        rewriter, loc, firstHead, p.group, headStep,
        ValueRange{dkZeros, dvZeros},
        [&](OpBuilder &hb, Location, Value g, ValueRange headState) {
          Value h = arith::AddIOp::create(hb, loc, headBase, g);
          // Query rows in blocks: their probabilities and score
          // gradients as vectors, from the statistics the rows stored.
          SmallVector<Value> rows = blockedLoop(
              hb, loc, p.blockWidth, first, p.queryLength, headState,
              [&](OpBuilder &nb, Value firstRow, int64_t width, ValueRange in) {
                SmallVector<Value> rowIndices, queries, gradRows, scores, maxes,
                    inverseSums, deltas, dps;
                for (int64_t t = 0; t < width; ++t) {
                  Value i = arith::AddIOp::create(nb, loc, firstRow,
                                                  indexConstant(nb, loc, t));
                  rowIndices.push_back(i);
                  queries.push_back(p.scaledQueryRow(nb, b, h, i));
                  scores.push_back(
                      p.score(nb, queries.back(), keyRow, b, h, i, j));
                  SmallVector<Value> at = {b, h, i};
                  maxes.push_back(
                      tensor::ExtractOp::create(nb, loc, rowMax, at));
                  inverseSums.push_back(
                      tensor::ExtractOp::create(nb, loc, rowInverseSum, at));
                  deltas.push_back(
                      tensor::ExtractOp::create(nb, loc, rowDelta, at));
                  gradRows.push_back(p.readRow(nb, grad, b, h, i));
                  dps.push_back(p.dot(nb, gradRows.back(), valueRow));
                }
                Value scoreVector = gather(nb, loc, scores);
                Value maxVector = gather(nb, loc, maxes);
                Value inverseSumVector = gather(nb, loc, inverseSums);
                Value prob = p.probabilities(nb, scoreVector, maxVector,
                                             inverseSumVector);
                Value deltaVector = gather(nb, loc, deltas);
                Value dpVector = gather(nb, loc, dps);
                Value centered =
                    arith::SubFOp::create(nb, loc, dpVector, deltaVector);
                Value ds = arith::MulFOp::create(nb, loc, prob, centered);
                Value dk = in[0], dv = in[1];
                for (int64_t t = 0; t < width; ++t) {
                  Value pt = vector::ExtractOp::create(nb, loc, prob, t);
                  dv = vector::FMAOp::create(
                      nb, loc, p.splat(nb, p.valueVector, pt), gradRows[t], dv);
                  Value dsLane = vector::ExtractOp::create(nb, loc, ds, t);
                  Value zero = f32Const(nb, loc, 0.0);
                  Value dst =
                      p.hideCausal(nb, dsLane, rowIndices[t], j, zero);
                  dk = vector::FMAOp::create(
                      nb, loc, p.splat(nb, p.headVector, dst), queries[t], dk);
                }
                return SmallVector<Value>{dk, dv};
              });
          scf::YieldOp::create(hb, loc, rows);
        });
    writeRow(rewriter, loc, keyRows, outs[0], ivs, heads.getResult(0));
    writeRow(rewriter, loc, keyRows, outs[1], ivs, heads.getResult(1));
  }
  rewriter.replaceOp(
      op, {queryRows.getResult(0), keyRows.getResult(0), keyRows.getResult(1)});
  return success();
}

struct ConvertKilnAttentionPass
    : kiln::impl::ConvertKilnAttentionPassBase<ConvertKilnAttentionPass> {
  using ConvertKilnAttentionPassBase::ConvertKilnAttentionPassBase;

  void runOnOperation() final {
    if (block < 1) {
      getOperation()->emitError("convert-kiln-attention: block must be at "
                                "least 1, found ")
          << block;
      return signalPassFailure();
    }
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<AttentionOp, AttentionGradOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      LogicalResult lowered =
          isa<AttentionOp>(op)
              ? lowerAttention(rewriter, cast<AttentionOp>(op), block)
              : lowerAttentionGrad(rewriter, cast<AttentionGradOp>(op), block);
      if (failed(lowered))
        return signalPassFailure();
    }
  }
};

} // namespace

Value mlir::kiln::causalKeyCount(OpBuilder &b, Location loc, Value row,
                                 Value queryLength, Value keyLength) {
  Value end = causalVisibleEnd(b, loc, row, queryLength, keyLength);
  Value positive = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, end,
                                         indexConstant(b, loc, 0));
  Value clamped = arith::MinSIOp::create(b, loc, end, keyLength);
  return arith::SelectOp::create(b, loc, positive, clamped, keyLength);
}

Value mlir::kiln::causalFirstRow(OpBuilder &b, Location loc, Value key,
                                 Value queryLength, Value keyLength) {
  Value first = indexConstant(b, loc, 0);
  Value lastHidden = arith::SubIOp::create(
      b, loc, arith::AddIOp::create(b, loc, key, queryLength), keyLength);
  Value noneHidden = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle,
                                           queryLength, keyLength);
  Value clamped = arith::MaxSIOp::create(b, loc, lastHidden, first);
  return arith::SelectOp::create(b, loc, noneHidden, clamped, first);
}

bool mlir::kiln::canLowerAttentionFused(RankedTensorType q, RankedTensorType k,
                                        RankedTensorType v) {
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4 ||
      q.isDynamicDim(3) || v.isDynamicDim(3))
    return false;
  int64_t heads = q.getDimSize(1), kvHeads = k.getDimSize(1);
  return kvHeads == 1 || heads == kvHeads ||
         (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(kvHeads));
}

namespace {
/// What the fused kernels of this library take: kiln.attention with the
/// shapes canLowerAttentionFused accepts. Every other composite a `keep`
/// list names stays whole as named.
struct FusedKernelsLowering : public KilnLoweringInterface {
  using KilnLoweringInterface::KilnLoweringInterface;
  bool canLowerWhole(Operation *op) const final {
    auto attention = dyn_cast<AttentionOp>(op);
    if (!attention)
      return true;
    return canLowerAttentionFused(tensorType(attention.getQuery()),
                                  tensorType(attention.getKey()),
                                  tensorType(attention.getValue()));
  }
};
} // namespace

void mlir::kiln::registerKilnToLinalgInterfaces(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *, KilnDialect *dialect) {
    dialect->addInterfaces<FusedKernelsLowering>();
  });
}
