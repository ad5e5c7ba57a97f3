//===- KilnShapeInference.cpp - Result types of kiln ops ------------------===//
//
// inferReturnTypes for every op whose result follows from its operands. The
// generated verifiers compare these against the declared types, so the
// messages here are the ones people see for malformed shapes.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallSet.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::kiln;

namespace {
using Loc = std::optional<Location>;
using Types = SmallVectorImpl<Type>;

RankedTensorType tensorOf(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// Formats a dimension size for messages.
std::string dimString(int64_t dim) {
  return ShapedType::isDynamic(dim) ? "?" : std::to_string(dim);
}

/// True unless both sizes are static and differ.
bool dimsMatch(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// The more static of two compatible sizes.
int64_t mergeDims(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) ? b : a;
}

LogicalResult expectSameElementType(Loc loc, StringRef what, Type a, Type b) {
  if (getElementTypeOrSelf(a) == getElementTypeOrSelf(b))
    return success();
  return emitOptionalError(loc, "expected ", what, " to have element type ",
                           getElementTypeOrSelf(a), ", found ",
                           getElementTypeOrSelf(b));
}

LogicalResult expectDim(Loc loc, StringRef what, int64_t found,
                        int64_t expected) {
  if (dimsMatch(found, expected))
    return success();
  return emitOptionalError(loc, "expected ", what, " to be ",
                           dimString(expected), ", found ", dimString(found));
}

/// A 1-D `[size]` vector operand.
LogicalResult expectVector(Loc loc, StringRef what, Value value,
                           int64_t size) {
  if (!value)
    return success();
  auto type = tensorOf(value);
  if (type.getRank() != 1 || !dimsMatch(type.getDimSize(0), size))
    return emitOptionalError(loc, "expected ", what, " of shape [",
                             dimString(size), "], found [",
                             formatShape(type.getShape()), "]");
  return success();
}

/// Result type of a loss with `reduction` over per-element shape `shape`.
Type lossType(LossReduction reduction, ArrayRef<int64_t> shape,
              Type elementType) {
  if (reduction == LossReduction::none)
    return RankedTensorType::get(shape, elementType);
  return RankedTensorType::get({}, elementType);
}
} // namespace

//===----------------------------------------------------------------------===//
// Primitives
//===----------------------------------------------------------------------===//

LogicalResult CompareOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                          Adaptor adaptor, Types &types) {
  SmallVector<Type> broadcast;
  if (failed(inferBroadcastElementwiseType(loc, adaptor.getLhs().getType(),
                                           adaptor.getRhs().getType(),
                                           broadcast)))
    return failure();
  types.push_back(cast<RankedTensorType>(broadcast[0])
                      .clone(IntegerType::get(context, 1)));
  return success();
}

LogicalResult SelectOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  auto cond = tensorOf(adaptor.getCondition());
  auto onTrue = tensorOf(adaptor.getOnTrue());
  auto onFalse = tensorOf(adaptor.getOnFalse());
  SmallVector<Type> values;
  if (failed(inferBroadcastElementwiseType(loc, onTrue, onFalse, values)))
    return failure();
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(
          loc, cond.getShape(),
          cast<RankedTensorType>(values[0]).getShape(), shape)))
    return failure();
  types.push_back(RankedTensorType::get(shape, onTrue.getElementType()));
  return success();
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  auto lhs = tensorOf(adaptor.getLhs());
  auto rhs = tensorOf(adaptor.getRhs());
  if (lhs.getRank() < 2 || rhs.getRank() < 2)
    return emitOptionalError(loc, "expected operands of rank >= 2, found ",
                             lhs.getRank(), " and ", rhs.getRank());
  if (failed(expectSameElementType(loc, "rhs", lhs, rhs)))
    return failure();
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  int64_t m = l[l.size() - 2], lk = l[l.size() - 1];
  if (adaptor.getTransposeLhs())
    std::swap(m, lk);
  int64_t rk = r[r.size() - 2], n = r[r.size() - 1];
  if (adaptor.getTransposeRhs())
    std::swap(rk, n);
  if (!dimsMatch(lk, rk))
    return emitOptionalError(
        loc, "contraction dimensions differ: lhs ", formatShape(l),
        adaptor.getTransposeLhs() ? " (transposed)" : "", " has K = ",
        dimString(lk), ", rhs ", formatShape(r),
        adaptor.getTransposeRhs() ? " (transposed)" : "", " has K = ",
        dimString(rk));
  SmallVector<int64_t> batch;
  if (failed(broadcastShapes(loc, l.drop_back(2), r.drop_back(2), batch)))
    return failure();
  batch.push_back(m);
  batch.push_back(n);
  types.push_back(RankedTensorType::get(batch, lhs.getElementType()));
  return success();
}

LogicalResult ReduceOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  llvm::SmallSet<int64_t, 4> axes;
  for (int64_t axis : adaptor.getAxes()) {
    if (axis < 0 || axis >= input.getRank())
      return emitOptionalError(loc, "axis ", axis,
                               " is out of range for rank ", input.getRank());
    if (!axes.insert(axis).second)
      return emitOptionalError(loc, "axis ", axis, " is listed twice");
  }
  if (adaptor.getAxes().empty())
    return emitOptionalError(loc, "expected at least one axis to reduce");
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < input.getRank(); ++i) {
    if (!axes.contains(i))
      shape.push_back(input.getDimSize(i));
    else if (adaptor.getKeepdim())
      shape.push_back(1);
  }
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                            Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (static_cast<int64_t>(perm.size()) != input.getRank())
    return emitOptionalError(loc, "expected a permutation of ",
                             input.getRank(), " dims, found ", perm.size());
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= input.getRank() || seen[p])
      return emitOptionalError(loc, "expected a permutation of [0, ",
                               input.getRank(), "), found [",
                               llvm::join(llvm::map_range(perm, [](int64_t v) {
                                            return std::to_string(v);
                                          }),
                                          ", "),
                               "]");
    seen[p] = true;
    shape.push_back(input.getDimSize(p));
  }
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult UnpackPanelsOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                               Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  int64_t columns = adaptor.getColumns();
  if ((input.getRank() != 3 && input.getRank() != 4) || !input.hasStaticShape())
    return emitOptionalError(loc,
                             "expected static [panels, rows, width] or "
                             "[panels, rows / g, width, g] panels, "
                             "found ",
                             input);
  int64_t panels = input.getDimSize(0), width = input.getDimSize(2);
  int64_t group = input.getRank() == 4 ? input.getDimSize(3) : 1;
  if (group < 1)
    return emitOptionalError(loc, "expected at least 1 row per group, found ",
                             group);
  int64_t needed = width < 1 ? 0 : columns / width + (columns % width != 0);
  if (width < 1 || columns < 1 || panels != needed)
    return emitOptionalError(loc, columns, " columns in panels of ", width,
                             " take ", needed, " panels, found ", panels);
  int64_t rows = input.getDimSize(1);
  if (rows > std::numeric_limits<int64_t>::max() / group)
    return emitOptionalError(loc, rows, " rows in groups of ", group,
                             " overflow");
  SmallVector<int64_t> shape = {rows * group, columns};
  if (adaptor.getTransposed())
    std::swap(shape[0], shape[1]);
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                        Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  int64_t axis = adaptor.getAxis(), start = adaptor.getStart(),
          end = adaptor.getEnd(), step = adaptor.getStep();
  if (axis < 0 || axis >= input.getRank())
    return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                             input.getRank());
  if (step < 1)
    return emitOptionalError(loc, "expected step >= 1, found ", step);
  if (start < 0 || start > end)
    return emitOptionalError(loc, "expected 0 <= start <= end, found [",
                             start, " : ", end, "]");
  int64_t size = input.getDimSize(axis);
  if (!ShapedType::isDynamic(size) && end > size)
    return emitOptionalError(loc, "slice end ", end,
                             " is past the end of axis ", axis, " of size ",
                             size);
  SmallVector<int64_t> shape(input.getShape());
  shape[axis] = (end - start + step - 1) / step;
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  if (adaptor.getInputs().empty())
    return emitOptionalError(loc, "expected at least one input");
  auto first = tensorOf(adaptor.getInputs()[0]);
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= first.getRank())
    return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                             first.getRank());
  SmallVector<int64_t> shape(first.getShape());
  for (auto [index, value] : llvm::enumerate(adaptor.getInputs().drop_front())) {
    auto type = tensorOf(value);
    if (type.getElementType() != first.getElementType() ||
        type.getRank() != first.getRank())
      return emitOptionalError(loc, "input ", index + 1, " is ", type,
                               ", expected rank ", first.getRank(),
                               " and element type ", first.getElementType());
    for (int64_t d = 0; d < first.getRank(); ++d) {
      if (d == axis) {
        shape[d] = ShapedType::isDynamic(shape[d]) ||
                           type.isDynamicDim(d)
                       ? ShapedType::kDynamic
                       : shape[d] + type.getDimSize(d);
        continue;
      }
      if (!dimsMatch(shape[d], type.getDimSize(d)))
        return emitOptionalError(loc, "input ", index + 1, " has dimension ",
                                 d, " of size ", dimString(type.getDimSize(d)),
                                 ", expected ", dimString(shape[d]));
      shape[d] = mergeDims(shape[d], type.getDimSize(d));
    }
  }
  types.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult PadOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                      Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> low = adaptor.getLow(), high = adaptor.getHigh();
  if (static_cast<int64_t>(low.size()) != input.getRank() ||
      static_cast<int64_t>(high.size()) != input.getRank())
    return emitOptionalError(loc, "expected ", input.getRank(),
                             " low and high paddings, found ", low.size(),
                             " and ", high.size());
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < input.getRank(); ++d) {
    if (low[d] < 0 || high[d] < 0)
      return emitOptionalError(loc, "expected non-negative padding, found ",
                               low[d], " and ", high[d], " on dimension ", d);
    int64_t size = input.getDimSize(d);
    shape.push_back(ShapedType::isDynamic(size) ? size
                                                : size + low[d] + high[d]);
  }
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto indices = tensorOf(adaptor.getIndices());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= input.getRank())
    return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                             input.getRank());
  SmallVector<int64_t> shape(input.getShape().take_front(axis));
  llvm::append_range(shape, indices.getShape());
  llvm::append_range(shape, input.getShape().drop_front(axis + 1));
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult ScatterAddOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                             Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto indices = tensorOf(adaptor.getIndices());
  auto updates = tensorOf(adaptor.getUpdates());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= input.getRank())
    return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                             input.getRank());
  if (failed(expectSameElementType(loc, "updates", input, updates)))
    return failure();
  SmallVector<int64_t> expected(input.getShape().take_front(axis));
  llvm::append_range(expected, indices.getShape());
  llvm::append_range(expected, input.getShape().drop_front(axis + 1));
  bool matches = updates.getRank() == static_cast<int64_t>(expected.size());
  for (int64_t i = 0; matches && i < updates.getRank(); ++i)
    matches = dimsMatch(updates.getDimSize(i), expected[i]);
  if (!matches)
    return emitOptionalError(
        loc, "expected updates of shape ",
        RankedTensorType::get(expected, input.getElementType()),
        " (input dims around the axis, indices dims at it), found ", updates);
  types.push_back(input);
  return success();
}

LogicalResult CacheWriteOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                             Adaptor adaptor, Types &types) {
  auto cache = tensorOf(adaptor.getCache());
  auto update = tensorOf(adaptor.getUpdate());
  if (failed(expectSameElementType(loc, "update", cache, update)))
    return failure();
  // [B, H, S, D] into [B, H, T, D]: the same rows, heads and width, and no
  // more new slots than the cache has.
  for (int64_t d : {0, 1, 3})
    if (!dimsMatch(update.getDimSize(d), cache.getDimSize(d)))
      return emitOptionalError(loc, "update ", update,
                               " does not fit the cache ", cache,
                               " (expected the same batch, heads and width)");
  if (!ShapedType::isDynamic(update.getDimSize(2)) &&
      !ShapedType::isDynamic(cache.getDimSize(2)) &&
      update.getDimSize(2) > cache.getDimSize(2))
    return emitOptionalError(loc, "update ", update, " has more slots than the cache ",
                             cache);
  if (Value positions = adaptor.getPositions()) {
    auto type = tensorOf(positions);
    if (!dimsMatch(type.getDimSize(0), cache.getDimSize(0)))
      return emitOptionalError(loc, "positions ", type,
                               " must have one entry per batch row of the cache ",
                               cache);
  }
  types.push_back(cache);
  return success();
}

//===----------------------------------------------------------------------===//
// Composites
//===----------------------------------------------------------------------===//

LogicalResult SoftmaxOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                          Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  if (failed(normalizeAxis(loc, adaptor.getAxis(), input.getRank())))
    return failure();
  types.push_back(input);
  return success();
}

LogicalResult LogSoftmaxOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                             Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  if (failed(normalizeAxis(loc, adaptor.getAxis(), input.getRank())))
    return failure();
  types.push_back(input);
  return success();
}

/// Checks the `[D]` weight/bias of a last-dimension normalization.
static LogicalResult inferNormType(Loc loc, RankedTensorType input,
                                   Value weight, Value bias, Types &types) {
  if (input.getRank() < 1)
    return emitOptionalError(loc, "expected an input of rank >= 1");
  int64_t dim = input.getShape().back();
  if (failed(expectVector(loc, "weight", weight, dim)) ||
      failed(expectVector(loc, "bias", bias, dim)))
    return failure();
  for (Value v : {weight, bias})
    if (v && failed(expectSameElementType(loc, "weight and bias", input,
                                          v.getType())))
      return failure();
  types.push_back(input);
  return success();
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                            Adaptor adaptor, Types &types) {
  return inferNormType(loc, tensorOf(adaptor.getInput()), adaptor.getWeight(),
                       adaptor.getBias(), types);
}

LogicalResult RMSNormOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                          Adaptor adaptor, Types &types) {
  return inferNormType(loc, tensorOf(adaptor.getInput()), adaptor.getWeight(),
                       Value(), types);
}

LogicalResult GeluOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                       Adaptor adaptor, Types &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult SiluOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                       Adaptor adaptor, Types &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto weight = tensorOf(adaptor.getWeight());
  if (input.getRank() < 1)
    return emitOptionalError(loc, "expected an input of rank >= 1");
  if (failed(expectSameElementType(loc, "weight", input, weight)))
    return failure();
  int64_t in = weight.getDimSize(1), out = weight.getDimSize(0);
  if (adaptor.getWeightInOut())
    std::swap(in, out);
  if (!dimsMatch(input.getShape().back(), in))
    return emitOptionalError(
        loc, "input features ", dimString(input.getShape().back()),
        " do not match weight ", formatShape(weight.getShape()),
        adaptor.getWeightInOut() ? " ([in, out])" : " ([out, in])",
        " which expects ", dimString(in));
  if (failed(expectVector(loc, "bias", adaptor.getBias(), out)))
    return failure();
  SmallVector<int64_t> shape(input.getShape().drop_back());
  shape.push_back(out);
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                            Adaptor adaptor, Types &types) {
  auto table = tensorOf(adaptor.getTable());
  auto ids = tensorOf(adaptor.getIds());
  SmallVector<int64_t> shape(ids.getShape());
  shape.push_back(table.getDimSize(1));
  types.push_back(RankedTensorType::get(shape, table.getElementType()));
  return success();
}

/// The result type of attention over `query`, `key`, `value` and the
/// optional `mask` (shared by kiln.attention and kiln.attention_grad).
static FailureOr<RankedTensorType> inferAttentionType(Loc loc, Value query,
                                                      Value key, Value value,
                                                      Value mask) {
  auto q = tensorOf(query);
  auto k = tensorOf(key);
  auto v = tensorOf(value);
  if (failed(expectSameElementType(loc, "key", q, k)) ||
      failed(expectSameElementType(loc, "value", q, v)))
    return failure();
  if (failed(expectDim(loc, "key batch", k.getDimSize(0), q.getDimSize(0))) ||
      failed(expectDim(loc, "value batch", v.getDimSize(0), q.getDimSize(0))) ||
      failed(expectDim(loc, "key head dim", k.getDimSize(3), q.getDimSize(3))) ||
      failed(expectDim(loc, "value heads", v.getDimSize(1), k.getDimSize(1))) ||
      failed(expectDim(loc, "value length", v.getDimSize(2), k.getDimSize(2))))
    return failure();
  int64_t heads = q.getDimSize(1), kvHeads = k.getDimSize(1);
  if (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(kvHeads) &&
      (kvHeads == 0 || heads % kvHeads != 0))
    return emitOptionalError(loc, "query heads (", heads,
                             ") must be a multiple of key/value heads (",
                             kvHeads, ")");
  SmallVector<int64_t> shape = {q.getDimSize(0), heads, q.getDimSize(2),
                                v.getDimSize(3)};
  if (mask) {
    auto maskType = tensorOf(mask);
    SmallVector<int64_t> scores = {q.getDimSize(0), heads, q.getDimSize(2),
                                   k.getDimSize(2)};
    SmallVector<int64_t> merged;
    if (maskType.getRank() > 4 ||
        failed(broadcastShapes(std::nullopt, maskType.getShape(), scores,
                               merged))) {
      (void)emitOptionalError(loc, "mask ", formatShape(maskType.getShape()),
                              " does not broadcast to the scores ",
                              formatShape(scores));
      return failure();
    }
  }
  return RankedTensorType::get(shape, q.getElementType());
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                            Adaptor adaptor, Types &types) {
  FailureOr<RankedTensorType> result =
      inferAttentionType(loc, adaptor.getQuery(), adaptor.getKey(),
                         adaptor.getValue(), adaptor.getMask());
  if (failed(result))
    return failure();
  if (Value lengths = adaptor.getKeyLengths()) {
    auto type = tensorOf(lengths);
    if (!dimsMatch(type.getDimSize(0), tensorOf(adaptor.getQuery()).getDimSize(0)))
      return emitOptionalError(loc, "key_lengths ", type,
                               " must have one entry per batch row of the query ",
                               tensorOf(adaptor.getQuery()));
  }
  types.push_back(*result);
  return success();
}

LogicalResult AttentionGradOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                                Adaptor adaptor,
                                                Types &types) {
  FailureOr<RankedTensorType> result =
      inferAttentionType(loc, adaptor.getQuery(), adaptor.getKey(),
                         adaptor.getValue(), adaptor.getMask());
  if (failed(result))
    return failure();
  auto grad = tensorOf(adaptor.getGrad());
  if (grad.getElementType() != result->getElementType() ||
      failed(verifyCompatibleShape(grad.getShape(), result->getShape())))
    return emitOptionalError(loc, "grad ", grad,
                             " must have the attention result's type ",
                             *result);
  types.push_back(adaptor.getQuery().getType());
  types.push_back(adaptor.getKey().getType());
  types.push_back(adaptor.getValue().getType());
  return success();
}

LogicalResult RopeOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                       Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  int64_t dim = input.getDimSize(3);
  if (!ShapedType::isDynamic(dim) && dim % 2 != 0)
    return emitOptionalError(loc, "expected an even head dim, found ", dim);
  if (ShapedType::isDynamic(dim))
    return emitOptionalError(loc, "expected a static head dim");
  if (std::optional<ArrayRef<double>> invFreq = adaptor.getInvFreq()) {
    if (static_cast<int64_t>(invFreq->size()) != dim / 2)
      return emitOptionalError(loc, "expected ", dim / 2,
                               " inv_freq values (head dim / 2), found ",
                               invFreq->size());
    for (double f : *invFreq)
      if (!(f > 0) || !std::isfinite(f))
        return emitOptionalError(loc, "expected positive finite inv_freq "
                                      "values, found ",
                                 f);
  }
  if (Value positions = adaptor.getPositions()) {
    auto type = tensorOf(positions);
    int64_t seq = input.getDimSize(2);
    bool ok = (type.getRank() == 1 && dimsMatch(type.getDimSize(0), seq)) ||
              (type.getRank() == 2 && dimsMatch(type.getDimSize(1), seq) &&
               dimsMatch(type.getDimSize(0), input.getDimSize(0)));
    if (!ok)
      return emitOptionalError(loc, "expected positions of shape [",
                               dimString(seq), "] or [",
                               dimString(input.getDimSize(0)), ", ",
                               dimString(seq), "], found [",
                               llvm::join(llvm::map_range(type.getShape(),
                                                          dimString),
                                          ", "),
                               "]");
  }
  types.push_back(input);
  return success();
}

/// Output size of a convolution or pooling window along one dimension.
static int64_t windowOutputSize(int64_t size, int64_t kernel, int64_t stride,
                                int64_t pad, int64_t dilation) {
  if (ShapedType::isDynamic(size))
    return ShapedType::kDynamic;
  return (size + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

static LogicalResult checkPair(Loc loc, StringRef what, ArrayRef<int64_t> v,
                               int64_t minimum) {
  if (v.size() != 2)
    return emitOptionalError(loc, "expected 2 values for ", what, ", found ",
                             v.size());
  for (int64_t x : v)
    if (x < minimum)
      return emitOptionalError(loc, "expected ", what, " >= ", minimum,
                               ", found ", x);
  return success();
}

LogicalResult Conv2dOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                         Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto weight = tensorOf(adaptor.getWeight());
  if (failed(checkPair(loc, "stride", adaptor.getStride(), 1)) ||
      failed(checkPair(loc, "padding", adaptor.getPadding(), 0)) ||
      failed(checkPair(loc, "dilation", adaptor.getDilation(), 1)))
    return failure();
  if (failed(expectSameElementType(loc, "weight", input, weight)))
    return failure();
  if (!weight.hasStaticShape() || input.isDynamicDim(1) ||
      input.isDynamicDim(2) || input.isDynamicDim(3))
    return emitOptionalError(loc, "expected static channel and spatial "
                                  "dims and a static weight, found input ",
                             input, " and weight ", weight);
  int64_t groups = adaptor.getGroups();
  int64_t channels = input.getDimSize(1), outChannels = weight.getDimSize(0);
  if (groups < 1 || channels % groups != 0 || outChannels % groups != 0)
    return emitOptionalError(loc, "groups ", groups,
                             " must divide input channels ", channels,
                             " and output channels ", outChannels);
  if (weight.getDimSize(1) != channels / groups)
    return emitOptionalError(loc, "expected weight dimension 1 to be ",
                             channels / groups, " (channels / groups), found ",
                             weight.getDimSize(1));
  if (failed(expectVector(loc, "bias", adaptor.getBias(), outChannels)))
    return failure();
  SmallVector<int64_t> shape = {input.getDimSize(0), outChannels};
  for (int d = 0; d < 2; ++d) {
    int64_t out = windowOutputSize(input.getDimSize(2 + d),
                                   weight.getDimSize(2 + d),
                                   adaptor.getStride()[d],
                                   adaptor.getPadding()[d],
                                   adaptor.getDilation()[d]);
    if (out < 1)
      return emitOptionalError(loc, "the kernel does not fit: spatial "
                                    "dimension ",
                               d, " would have size ", out);
    shape.push_back(out);
  }
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

static LogicalResult inferPoolType(Loc loc, RankedTensorType input,
                                   ArrayRef<int64_t> kernel,
                                   ArrayRef<int64_t> stride,
                                   ArrayRef<int64_t> padding, Types &types) {
  if (failed(checkPair(loc, "kernel", kernel, 1)) ||
      failed(checkPair(loc, "stride", stride, 1)) ||
      failed(checkPair(loc, "padding", padding, 0)))
    return failure();
  if (input.isDynamicDim(2) || input.isDynamicDim(3))
    return emitOptionalError(loc, "expected static spatial dims, found ",
                             input);
  SmallVector<int64_t> shape = {input.getDimSize(0), input.getDimSize(1)};
  for (int d = 0; d < 2; ++d) {
    if (padding[d] * 2 > kernel[d])
      return emitOptionalError(loc, "padding ", padding[d],
                               " must be at most half the kernel ", kernel[d]);
    int64_t out = windowOutputSize(input.getDimSize(2 + d), kernel[d],
                                   stride[d], padding[d], 1);
    if (out < 1)
      return emitOptionalError(loc, "the window does not fit: spatial "
                                    "dimension ",
                               d, " would have size ", out);
    shape.push_back(out);
  }
  types.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

LogicalResult MaxPool2dOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                            Adaptor adaptor, Types &types) {
  return inferPoolType(loc, tensorOf(adaptor.getInput()), adaptor.getKernel(),
                       adaptor.getStride(), adaptor.getPadding(), types);
}

LogicalResult AvgPool2dOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                            Adaptor adaptor, Types &types) {
  return inferPoolType(loc, tensorOf(adaptor.getInput()), adaptor.getKernel(),
                       adaptor.getStride(), adaptor.getPadding(), types);
}

/// Checks the shapes of a recurrent cell with `gates` gates.
static LogicalResult checkRecurrentCell(Loc loc, int64_t gates, Value input,
                                        Value hidden, Value wIh, Value wHh,
                                        Value bIh, Value bHh) {
  auto x = tensorOf(input), h = tensorOf(hidden);
  auto wi = tensorOf(wIh), wh = tensorOf(wHh);
  int64_t hiddenSize = h.getDimSize(1);
  if (ShapedType::isDynamic(hiddenSize))
    return emitOptionalError(loc, "expected a static hidden size");
  int64_t rows = gates * hiddenSize;
  std::string giH = std::to_string(gates) + "H";
  if (failed(expectDim(loc, "hidden batch", h.getDimSize(0), x.getDimSize(0))) ||
      failed(expectDim(loc, "w_ih rows (" + giH + ")", wi.getDimSize(0), rows)) ||
      failed(expectDim(loc, "w_ih columns (input size)", wi.getDimSize(1),
                       x.getDimSize(1))) ||
      failed(expectDim(loc, "w_hh rows (" + giH + ")", wh.getDimSize(0), rows)) ||
      failed(expectDim(loc, "w_hh columns (hidden size)", wh.getDimSize(1),
                       hiddenSize)) ||
      failed(expectVector(loc, "b_ih", bIh, rows)) ||
      failed(expectVector(loc, "b_hh", bHh, rows)))
    return failure();
  for (Value v : {hidden, wIh, wHh, bIh, bHh})
    if (failed(expectSameElementType(loc, "every operand", x, v.getType())))
      return failure();
  return success();
}

LogicalResult GRUCellOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                          Adaptor adaptor, Types &types) {
  if (failed(checkRecurrentCell(loc, 3, adaptor.getInput(),
                                adaptor.getHidden(), adaptor.getWIh(),
                                adaptor.getWHh(), adaptor.getBIh(),
                                adaptor.getBHh())))
    return failure();
  types.push_back(adaptor.getHidden().getType());
  return success();
}

LogicalResult LSTMCellOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                           Adaptor adaptor, Types &types) {
  if (failed(checkRecurrentCell(loc, 4, adaptor.getInput(),
                                adaptor.getHidden(), adaptor.getWIh(),
                                adaptor.getWHh(), adaptor.getBIh(),
                                adaptor.getBHh())))
    return failure();
  auto h = tensorOf(adaptor.getHidden()), c = tensorOf(adaptor.getCell());
  if (h != c)
    return emitOptionalError(loc, "expected cell state of type ", h,
                             ", found ", c);
  types.push_back(h);
  types.push_back(h);
  return success();
}

LogicalResult DropoutOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                          Adaptor adaptor, Types &types) {
  double p = adaptor.getP().convertToDouble();
  if (!(p >= 0.0 && p < 1.0))
    return emitOptionalError(loc, "expected 0 <= p < 1, found ", p);
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                               Adaptor adaptor, Types &types) {
  auto logits = tensorOf(adaptor.getLogits());
  auto target = tensorOf(adaptor.getTarget());
  if (logits.getRank() < 1 || target.getRank() != logits.getRank() - 1)
    return emitOptionalError(loc, "expected target of rank ",
                             logits.getRank() - 1, " for logits ",
                             formatShape(logits.getShape()), ", found ",
                             formatShape(target.getShape()));
  for (int64_t d = 0; d < target.getRank(); ++d)
    if (failed(expectDim(loc, "target dimension " + std::to_string(d),
                         target.getDimSize(d), logits.getDimSize(d))))
      return failure();
  if (adaptor.getReduction() == LossReduction::batchmean)
    return emitOptionalError(loc, "reduction 'batchmean' is only for kl_div");
  types.push_back(lossType(adaptor.getReduction(), target.getShape(),
                           logits.getElementType()));
  return success();
}

LogicalResult MSEOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                      Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto target = tensorOf(adaptor.getTarget());
  if (failed(verifyCompatibleShape(input, target)) ||
      input.getElementType() != target.getElementType())
    return emitOptionalError(loc, "expected target of type ", input,
                             ", found ", target);
  if (adaptor.getReduction() == LossReduction::batchmean)
    return emitOptionalError(loc, "reduction 'batchmean' is only for kl_div");
  types.push_back(lossType(adaptor.getReduction(), input.getShape(),
                           input.getElementType()));
  return success();
}

LogicalResult KLDivOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                        Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto target = tensorOf(adaptor.getTarget());
  if (failed(verifyCompatibleShape(input, target)) ||
      input.getElementType() != target.getElementType())
    return emitOptionalError(loc, "expected target of type ", input,
                             ", found ", target);
  if (adaptor.getReduction() == LossReduction::batchmean &&
      input.getRank() < 1)
    return emitOptionalError(loc, "'batchmean' needs an input of rank >= 1");
  types.push_back(lossType(adaptor.getReduction(), input.getShape(),
                           input.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

namespace {
/// Checks that `scale` covers `shape` in whole blocks: each scale dim is 1,
/// the value's size, or a static divisor of it. `bits` 4 also needs an
/// even block along the last dim (a byte holds two neighbouring codes).
LogicalResult verifyBlockScales(Loc loc, ArrayRef<int64_t> shape,
                                RankedTensorType scale, int64_t bits) {
  if (scale.getRank() != static_cast<int64_t>(shape.size()))
    return emitOptionalError(loc, "expected a scale of rank ", shape.size(),
                             " (one block size per dim), found ", scale);
  for (auto [dim, size] : llvm::enumerate(shape)) {
    int64_t blocks = scale.getDimSize(dim);
    if (blocks == 1 || (ShapedType::isDynamic(blocks) &&
                        ShapedType::isDynamic(size)) ||
        blocks == size)
      continue;
    if (ShapedType::isDynamic(blocks) || ShapedType::isDynamic(size) ||
        blocks <= 0 || size % blocks != 0)
      return emitOptionalError(
          loc, "scale dim ", dim, " (", dimString(blocks),
          ") must be 1, the value's size (", dimString(size),
          ") or a static divisor of it");
  }
  if (bits == 4 && !shape.empty()) {
    int64_t last = shape.back(), blocks = scale.getShape().back();
    int64_t block = blocks == 1 ? last
                    : ShapedType::isDynamic(blocks) || blocks == last
                        ? 1
                        : last / blocks;
    if (!ShapedType::isDynamic(block) && block % 2 != 0)
      return emitOptionalError(loc, "4-bit codes pack two per byte along the "
                               "last dim, so its blocks must be even, found ",
                               block);
  }
  return success();
}
} // namespace

LogicalResult DequantizeOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                             Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto scale = tensorOf(adaptor.getScale());
  int64_t bits = adaptor.getBits();
  if (bits != 4 && bits != 8)
    return emitOptionalError(loc, "bits must be 4 or 8, found ", bits);
  if (isa<Float8E4M3FNType>(input.getElementType()) &&
      (bits != 8 || adaptor.getZeroPoint() || adaptor.getUnsignedCodes()))
    return emitOptionalError(loc, "e4m3 codes take neither bits = 4, a zero "
                                  "point nor unsigned");
  if (input.getRank() == 0 && bits == 4)
    return emitOptionalError(loc, "4-bit codes need a tensor of rank >= 1");
  SmallVector<int64_t> shape(input.getShape());
  if (bits == 4 && !ShapedType::isDynamic(shape.back()))
    shape.back() *= 2;
  if (failed(verifyBlockScales(loc, shape, scale, bits)))
    return failure();
  types.push_back(RankedTensorType::get(shape, scale.getElementType()));
  return success();
}

LogicalResult Expand2of4Op::inferReturnTypes(MLIRContext *context, Loc loc,
                                             Adaptor adaptor, Types &types) {
  auto first = tensorOf(adaptor.getFirst());
  auto second = tensorOf(adaptor.getSecond());
  auto positions = tensorOf(adaptor.getPositions());
  if (failed(expectSameElementType(loc, "second", first, second)))
    return failure();
  if (first.getRank() == 0)
    return emitOptionalError(loc, "expected values of rank >= 1");
  if (first.getShape() != second.getShape() ||
      first.getShape() != positions.getShape())
    return emitOptionalError(loc, "first, second and positions must have "
                             "one shape, found ",
                             first, ", ", second, " and ", positions);
  SmallVector<int64_t> shape(first.getShape());
  if (!ShapedType::isDynamic(shape.back()))
    shape.back() *= 4;
  types.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult QuantizeOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                           Adaptor adaptor, Types &types) {
  auto input = tensorOf(adaptor.getInput());
  auto scale = tensorOf(adaptor.getScale());
  if (failed(expectSameElementType(loc, "scale", input, scale)))
    return failure();
  if (failed(verifyBlockScales(loc, input.getShape(), scale, 8)))
    return failure();
  Type code = adaptor.getE4m3() ? Type(Float8E4M3FNType::get(context))
                                : Type(IntegerType::get(context, 8));
  types.push_back(RankedTensorType::get(input.getShape(), code));
  return success();
}

/// The result shape [..., M, N] of a quantized matmul of `lhs` [..., M, K]
/// by `rhs` ([K, N], or [N, K] when `transposeRhs`); fails with an error
/// when the two K differ.
static FailureOr<SmallVector<int64_t>>
quantizedMatmulShape(Loc loc, RankedTensorType lhs, RankedTensorType rhs,
                     bool transposeRhs) {
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  int64_t lk = l.back(), rk = r[0], n = r[1];
  if (transposeRhs)
    std::swap(rk, n);
  if (!dimsMatch(lk, rk))
    return emitOptionalError(
        loc, "contraction dimensions differ: lhs ", formatShape(l),
        " has K = ", dimString(lk), ", rhs ", formatShape(r),
        transposeRhs ? " (transposed)" : "", " has K = ", dimString(rk));
  SmallVector<int64_t> shape(l.drop_back());
  shape.push_back(n);
  return shape;
}

LogicalResult ScaledFp8MatmulOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                                  Adaptor adaptor,
                                                  Types &types) {
  auto lhs = tensorOf(adaptor.getLhs());
  auto rhs = tensorOf(adaptor.getRhs());
  if (lhs.getRank() < 2)
    return emitOptionalError(loc, "expected an lhs of rank >= 2, found ",
                             lhs.getRank());
  // Static: the kernel reads element 0 (a dynamic size could be 0).
  for (Value scale : {adaptor.getLhsScale(), adaptor.getRhsScale()}) {
    if (tensorOf(scale).getDimSize(0) != 1)
      return emitOptionalError(loc,
                               "expected per-tensor scales of one "
                               "element, found ",
                               scale.getType());
  }
  FailureOr<SmallVector<int64_t>> shape =
      quantizedMatmulShape(loc, lhs, rhs, adaptor.getTransposeRhs());
  if (failed(shape))
    return failure();
  types.push_back(RankedTensorType::get(*shape, Float32Type::get(context)));
  return success();
}

LogicalResult IntegerMatmulOp::inferReturnTypes(MLIRContext *context, Loc loc,
                                                Adaptor adaptor, Types &types) {
  auto lhs = tensorOf(adaptor.getLhs());
  auto rhs = tensorOf(adaptor.getRhs());
  if (lhs.getRank() < 2)
    return emitOptionalError(loc, "expected an lhs of rank >= 2, found ",
                             lhs.getRank());
  FailureOr<SmallVector<int64_t>> shape =
      quantizedMatmulShape(loc, lhs, rhs, adaptor.getTransposeRhs());
  if (failed(shape))
    return failure();
  int64_t lk = lhs.getShape().back();
  if (!ShapedType::isDynamic(lk) && lk > (int64_t(1) << 17))
    return emitOptionalError(loc, "K = ", lk,
                             " could overflow the 32-bit sums (at most 2^17)");
  types.push_back(RankedTensorType::get(*shape, IntegerType::get(context, 32)));
  return success();
}
