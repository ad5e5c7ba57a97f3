//===- KilnDecompositions.cpp - Composites in terms of primitives ---------===//
//
// DecomposableOpInterface for every kiln composite: each one is rewritten
// into kiln primitives (matmul, elementwise math, reductions, shape ops,
// generators). Dynamic sizes that generators need come from `tensor.dim`.
// Every decomposition returns values of exactly the op's result types; a
// `tensor.cast` reconciles the rare case where the primitives infer a more
// (or less) static shape than the op declares.
//
//===----------------------------------------------------------------------===//

#include "KilnBuildHelpers.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::detail;

namespace {

/// x·Wᵀ (+ bias) for a 2-D weight stored [out, in] (or [in, out]); inputs of
/// any rank >= 1.
Value buildAffine(OpBuilder &b, Location loc, Value x, Value weight, Value bias,
                  bool weightInOut) {
  auto xType = tensorType(x);
  Value lhs = x;
  if (xType.getRank() == 1)
    lhs = reshape(b, loc, x, {1, xType.getDimSize(0)});
  Value result = matmul(b, loc, lhs, weight, /*transposeRhs=*/!weightInOut);
  if (xType.getRank() == 1)
    result = reshape(b, loc, result, {tensorType(result).getDimSize(1)});
  if (bias)
    result = AddOp::create(b, loc, result, bias);
  return result;
}

/// `[B, Hkv, S, D]` -> `[B, Hkv·group, S, D]`, head `h` copying kv head
/// `h / group`.
Value repeatKvHeads(OpBuilder &b, Location loc, Value kv, int64_t group) {
  auto type = tensorType(kv);
  ArrayRef<int64_t> s = type.getShape();
  Value expanded = reshape(b, loc, kv, {s[0], s[1], 1, s[2], s[3]});
  auto broadcastType = RankedTensorType::get({s[0], s[1], group, s[2], s[3]},
                                             type.getElementType());
  SmallVector<Value> sizes =
      dynamicSizes(b, loc, broadcastType,
                   {{kv, 0}, {kv, 1}, {Value(), 0}, {kv, 2}, {kv, 3}});
  Value broadcast =
      BroadcastToOp::create(b, loc, broadcastType, expanded, sizes);
  return reshape(b, loc, broadcast, {s[0], s[1] * group, s[2], s[3]});
}

/// The rows of `padded` (axis 2) that kernel row `kh` sees.
Value windowRows(OpBuilder &b, Location loc, Value padded, int64_t kh,
                 ArrayRef<int64_t> outSize, ArrayRef<int64_t> stride,
                 ArrayRef<int64_t> dilation) {
  int64_t h0 = kh * dilation[0];
  return slice(b, loc, padded, 2, h0, h0 + (outSize[0] - 1) * stride[0] + 1,
               stride[0]);
}

/// The columns of `rows` (axis 3) that kernel column `kw` sees: with
/// windowRows, the strided `[N, C, OH, OW]` window of tap (kh, kw).
Value windowColumns(OpBuilder &b, Location loc, Value rows, int64_t kw,
                    ArrayRef<int64_t> outSize, ArrayRef<int64_t> stride,
                    ArrayRef<int64_t> dilation) {
  int64_t w0 = kw * dilation[1];
  return slice(b, loc, rows, 3, w0, w0 + (outSize[1] - 1) * stride[1] + 1,
               stride[1]);
}

/// Pads the two spatial dimensions of an NCHW tensor by `padding` with
/// `value`.
Value padSpatial(OpBuilder &b, Location loc, Value x, ArrayRef<int64_t> padding,
                 double value) {
  if (padding[0] == 0 && padding[1] == 0)
    return x;
  SmallVector<int64_t> pads = {0, 0, padding[0], padding[1]};
  return PadOp::create(b, loc, x, pads, pads, APFloat(value));
}

/// Output spatial sizes of a window op: its verified result type already
/// holds them (shape inference requires static spatial dims).
SmallVector<int64_t> windowOutputSizes(Value result) {
  return llvm::to_vector(tensorType(result).getShape().drop_front(2));
}

/// Reduces the KH·KW taps of a pooling window with `combine`.
template <typename CombineOp>
Value poolTaps(OpBuilder &b, Location loc, Value padded,
               ArrayRef<int64_t> kernel, ArrayRef<int64_t> outSize,
               ArrayRef<int64_t> stride) {
  SmallVector<int64_t> dilation = {1, 1};
  Value acc;
  for (int64_t kh = 0; kh < kernel[0]; ++kh) {
    Value rows = windowRows(b, loc, padded, kh, outSize, stride, dilation);
    for (int64_t kw = 0; kw < kernel[1]; ++kw) {
      Value tap = windowColumns(b, loc, rows, kw, outSize, stride, dilation);
      acc = acc ? Value(CombineOp::create(b, loc, acc, tap)) : tap;
    }
  }
  return acc;
}

/// Checks the static spatial dims a pooling decomposition needs.
LogicalResult checkStaticSpatial(Operation *op, Value input) {
  auto type = tensorType(input);
  if (type.isDynamicDim(2) || type.isDynamicDim(3))
    return op->emitOpError("cannot decompose with dynamic spatial dims: ")
           << type;
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Normalizations and activations
//===----------------------------------------------------------------------===//

// softmax(x) = exp(x - max(x)) / sum(exp(x - max(x))) along axis.
FailureOr<SmallVector<Value>> SoftmaxOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  int64_t rank = tensorType(getInput()).getRank();
  FailureOr<int64_t> axis = normalizeAxis(loc, getAxis(), rank);
  if (failed(axis))
    return failure();
  Value result = buildSoftmax(builder, loc, getInput(), *axis);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// log_softmax(x) = (x - max(x)) - log(sum(exp(x - max(x)))) along axis.
FailureOr<SmallVector<Value>> LogSoftmaxOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  int64_t rank = tensorType(getInput()).getRank();
  FailureOr<int64_t> axis = normalizeAxis(loc, getAxis(), rank);
  if (failed(axis))
    return failure();
  Value result = buildLogSoftmax(builder, loc, getInput(), *axis);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// layer_norm(x) = (x - mean) * rsqrt(mean((x - mean)^2) + eps) * w + b over
// the last dim. Narrow floats are normalized in f32 and rounded once at the
// end, as PyTorch's kernel does.
FailureOr<SmallVector<Value>> LayerNormOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = widenNarrowFloat(builder, loc, getInput());
  auto type = tensorType(x);
  int64_t last = type.getRank() - 1;
  Type et = type.getElementType();
  Value mean = reduce(builder, loc, ReduceKind::mean, x, {last}, true);
  Value centered = SubOp::create(builder, loc, x, mean);
  Value squares = MulOp::create(builder, loc, centered, centered);
  Value var = reduce(builder, loc, ReduceKind::mean, squares, {last}, true);
  Value eps = floatConst(builder, loc, et, getEps().convertToDouble());
  Value inv =
      RsqrtOp::create(builder, loc, AddOp::create(builder, loc, var, eps));
  Value result = MulOp::create(builder, loc, centered, inv);
  if (Value weight = getWeight())
    result = MulOp::create(builder, loc, result,
                           widenNarrowFloat(builder, loc, weight));
  if (Value bias = getBias())
    result = AddOp::create(builder, loc, result,
                           widenNarrowFloat(builder, loc, bias));
  result = convert(builder, loc, result, getType().getElementType());
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// rms_norm(x) = x * rsqrt(mean(x^2) + eps) * w over the last dim. Narrow
// floats are normalized in f32 and rounded before the scale, as Hugging
// Face's LlamaRMSNorm does.
FailureOr<SmallVector<Value>> RMSNormOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = widenNarrowFloat(builder, loc, getInput());
  auto type = tensorType(x);
  int64_t last = type.getRank() - 1;
  Value squares = MulOp::create(builder, loc, x, x);
  Value meanSq = reduce(builder, loc, ReduceKind::mean, squares, {last}, true);
  Value eps = floatConst(builder, loc, type.getElementType(),
                         getEps().convertToDouble());
  Value inv =
      RsqrtOp::create(builder, loc, AddOp::create(builder, loc, meanSq, eps));
  Value normed = convert(builder, loc, MulOp::create(builder, loc, x, inv),
                         tensorType(getInput()).getElementType());
  Value result = MulOp::create(builder, loc, normed, getWeight());
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// gelu(x) = 0.5·x·(1 + erf(x/√2)), or 0.5·x·(1 + tanh(√(2/π)·(x +
// 0.044715·x³))); narrow floats in f32, rounded once.
FailureOr<SmallVector<Value>> GeluOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = widenNarrowFloat(builder, loc, getInput());
  Type et = tensorType(x).getElementType();
  Value inner;
  if (getApproximate() == GeluApproximation::erf) {
    Value scaled =
        MulOp::create(builder, loc, x,
                      floatConst(builder, loc, et, llvm::numbers::inv_sqrt2));
    inner = ErfOp::create(builder, loc, scaled);
  } else {
    Value cube =
        MulOp::create(builder, loc, MulOp::create(builder, loc, x, x), x);
    Value poly =
        AddOp::create(builder, loc, x,
                      MulOp::create(builder, loc, cube,
                                    floatConst(builder, loc, et, 0.044715)));
    Value arg = MulOp::create(
        builder, loc, poly,
        floatConst(builder, loc, et, std::sqrt(2.0 / llvm::numbers::pi)));
    inner = TanhOp::create(builder, loc, arg);
  }
  Value onePlus =
      AddOp::create(builder, loc, inner, floatConst(builder, loc, et, 1.0));
  Value half =
      MulOp::create(builder, loc, x, floatConst(builder, loc, et, 0.5));
  Value result = convert(builder, loc, MulOp::create(builder, loc, half, onePlus),
                         getType().getElementType());
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// silu(x) = x · sigmoid(x); narrow floats in f32, rounded once.
FailureOr<SmallVector<Value>> SiluOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = widenNarrowFloat(builder, loc, getInput());
  Value result =
      convert(builder, loc,
              MulOp::create(builder, loc, x, SigmoidOp::create(builder, loc, x)),
              getType().getElementType());
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

//===----------------------------------------------------------------------===//
// Linear layers, embedding, attention, rope
//===----------------------------------------------------------------------===//

// linear(x) = matmul(x, W, transpose_rhs unless weight_in_out) + bias.
FailureOr<SmallVector<Value>> LinearOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value result = buildAffine(builder, loc, getInput(), getWeight(), getBias(),
                             getWeightInOut());
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// embedding(table, ids) = gather(table, ids, axis = 0).
FailureOr<SmallVector<Value>> EmbeddingOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value result = GatherOp::create(builder, loc, getTable(), getIds(),
                                  builder.getI64IntegerAttr(0));
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// attention = softmax(select(causal, q·kᵀ·scale + mask, lowest)) · v, with
// kv heads repeated H/Hkv times for grouped-query attention.
FailureOr<SmallVector<Value>> AttentionOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value q = getQuery(), k = getKey(), v = getValue();
  Value originalKey = k;
  auto qType = tensorType(q), kType = tensorType(k);
  Type et = qType.getElementType();
  int64_t heads = qType.getDimSize(1), kvHeads = kType.getDimSize(1);
  // Hkv == 1 broadcasts in the matmul batch dims; equal static counts need
  // nothing; other static counts repeat the kv heads.
  if (kvHeads != 1) {
    if (ShapedType::isDynamic(heads) || ShapedType::isDynamic(kvHeads))
      return emitOpError("cannot decompose with a dynamic number of query "
                         "or key/value heads (query ")
             << qType << ", key " << kType
             << "): grouped-query attention needs static head counts";
    if (heads != kvHeads) {
      int64_t group = heads / kvHeads;
      k = repeatKvHeads(builder, loc, k, group);
      v = repeatKvHeads(builder, loc, v, group);
    }
  }

  Value scores = matmul(builder, loc, q, k, /*transposeRhs=*/true);
  Value scale;
  if (std::optional<APFloat> s = getScale()) {
    scale = floatConst(builder, loc, et, s->convertToDouble());
  } else if (!qType.isDynamicDim(3)) {
    scale =
        floatConst(builder, loc, et,
                   1.0 / std::sqrt(static_cast<double>(qType.getDimSize(3))));
  } else {
    scale = RsqrtOp::create(builder, loc, sizeAsFloat(builder, loc, q, 3, et));
  }
  scores = MulOp::create(builder, loc, scores, scale);
  if (Value mask = getMask())
    scores =
        AddOp::create(builder, loc, scores, convert(builder, loc, mask, et));
  if (Value lengths = getKeyLengths())
    scores = AddOp::create(
        builder, loc, scores,
        keyLengthMask(builder, loc, lengths, originalKey, et));
  if (getCausal()) {
    auto maskType = RankedTensorType::get(
        {qType.getDimSize(2), kType.getDimSize(2)}, builder.getI1Type());
    SmallVector<Value> sizes =
        dynamicSizes(builder, loc, maskType, {{q, 2}, {originalKey, 2}});
    Value causal = CausalMaskOp::create(builder, loc, maskType, sizes);
    scores = SelectOp::create(builder, loc, causal, scores,
                              lowestConst(builder, loc, et));
  }
  Value probs = buildSoftmax(builder, loc, scores, 3);
  Value result = matmul(builder, loc, probs, v);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// rope(x) = x·cos(p·inv_freq) + rotate_half(x)·sin(p·inv_freq), angles in f32
// with inv_freq[i] = theta^(-2i/D) repeated for both halves.
FailureOr<SmallVector<Value>> RopeOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = getInput();
  auto xType = tensorType(x);
  Type et = xType.getElementType();
  int64_t dim = xType.getDimSize(3);
  if (ShapedType::isDynamic(dim) || dim % 2 != 0)
    return emitOpError("expected a static, even head dim, found ") << xType;
  int64_t half = dim / 2;
  Type f32 = builder.getF32Type();

  // inv_freq as given, or as Hugging Face computes it: 1 / theta^(2i / D),
  // in f32.
  double theta = getTheta().convertToDouble();
  SmallVector<float> invFreq;
  if (std::optional<ArrayRef<double>> given = getInvFreq()) {
    if (static_cast<int64_t>(given->size()) != half)
      return emitOpError("expected ") << half << " inv_freq values";
    for (double f : *given)
      invFreq.push_back(static_cast<float>(f));
  } else {
    for (int64_t i = 0; i < half; ++i)
      invFreq.push_back(static_cast<float>(
          1.0 / std::pow(theta, static_cast<double>(2 * i) / dim)));
  }
  Value inv =
      makeConst(builder, loc,
                DenseElementsAttr::get(RankedTensorType::get({half}, f32),
                                       ArrayRef<float>(invFreq)));

  Value positions;
  if (Value given = getPositions()) {
    positions = convert(builder, loc, given, f32);
  } else {
    auto posType = RankedTensorType::get({xType.getDimSize(2)}, f32);
    positions = IotaOp::create(builder, loc, posType,
                               dynamicSizes(builder, loc, posType, {{x, 2}}),
                               builder.getI64IntegerAttr(0));
  }
  auto posType = tensorType(positions);
  SmallVector<int64_t> colShape(posType.getShape());
  colShape.push_back(1);
  Value column = reshape(builder, loc, positions, colShape);
  Value freqs = MulOp::create(builder, loc, column, inv); // [..., S, D/2]
  Value angles = concat(builder, loc, {freqs, freqs}, posType.getRank());
  Value cos = convert(builder, loc, CosOp::create(builder, loc, angles), et);
  Value sin = convert(builder, loc, SinOp::create(builder, loc, angles), et);
  if (posType.getRank() == 2) {
    // [B, S, D] -> [B, 1, S, D] to broadcast over heads.
    ArrayRef<int64_t> s = tensorType(cos).getShape();
    cos = reshape(builder, loc, cos, {s[0], 1, s[1], s[2]});
    sin = reshape(builder, loc, sin, {s[0], 1, s[1], s[2]});
  }

  Value x1 = slice(builder, loc, x, 3, 0, half);
  Value x2 = slice(builder, loc, x, 3, half, dim);
  Value rotated =
      concat(builder, loc, {NegOp::create(builder, loc, x2), x1}, 3);
  Value cosTerm = MulOp::create(builder, loc, x, cos);
  Value sinTerm = MulOp::create(builder, loc, rotated, sin);
  Value result = AddOp::create(builder, loc, cosTerm, sinTerm);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

//===----------------------------------------------------------------------===//
// Convolution and pooling
//===----------------------------------------------------------------------===//

// conv2d = reshape(matmul(W[g, O/g, C/g·KH·KW], im2col(pad(x))[N, g, C/g·KH·KW,
// OH·OW])) + bias, im2col from one strided slice per kernel tap, or from a
// reshape and transpose when the windows tile the input.
FailureOr<SmallVector<Value>> Conv2dOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = getInput(), weight = getWeight();
  auto xType = tensorType(x), wType = tensorType(weight);
  if (xType.isDynamicDim(1) || xType.isDynamicDim(2) || xType.isDynamicDim(3) ||
      !wType.hasStaticShape())
    return emitOpError("cannot decompose with dynamic channel or spatial "
                       "dims or a dynamic weight: input ")
           << xType << ", weight " << wType;
  int64_t n = xType.getDimSize(0), channels = xType.getDimSize(1);
  int64_t outChannels = wType.getDimSize(0);
  int64_t kh = wType.getDimSize(2), kw = wType.getDimSize(3);
  int64_t groups = getGroups();
  ArrayRef<int64_t> stride = getStride(), padding = getPadding(),
                    dilation = getDilation();
  SmallVector<int64_t> outSize = windowOutputSizes(getResult());
  int64_t taps = kh * kw, spatial = outSize[0] * outSize[1];
  int64_t groupChannels = channels / groups, groupOut = outChannels / groups;

  Value columns; // [N, C, KH·KW, OH, OW]
  bool disjointWindows = stride[0] == kh && stride[1] == kw &&
                         dilation[0] == 1 && dilation[1] == 1 &&
                         padding[0] == 0 && padding[1] == 0;
  if (disjointWindows) {
    // Windows that tile the input (a patch embedding): each pixel is in one
    // window, so im2col is a reshape and one transpose,
    // [N, C, OH, KH, OW, KW] -> [N, C, KH, KW, OH, OW], instead of KH·KW
    // strided slices. Rows and columns past the last window are dropped.
    Value tiled = slice(builder, loc, x, 2, 0, outSize[0] * kh);
    tiled = slice(builder, loc, tiled, 3, 0, outSize[1] * kw);
    tiled = reshape(builder, loc, tiled,
                    {n, channels, outSize[0], kh, outSize[1], kw});
    columns = TransposeOp::create(builder, loc, tiled,
                                  ArrayRef<int64_t>{0, 1, 3, 5, 2, 4});
  } else {
    Value padded = padSpatial(builder, loc, x, padding, 0.0);
    // One [N, C, 1, OH, OW] slab per tap, concatenated to
    // [N, C, KH·KW, OH, OW] so the columns come out in the weight's
    // (c, kh, kw) order.
    SmallVector<Value> slabs;
    for (int64_t i = 0; i < kh; ++i) {
      Value rows =
          windowRows(builder, loc, padded, i, outSize, stride, dilation);
      for (int64_t j = 0; j < kw; ++j) {
        Value tap =
            windowColumns(builder, loc, rows, j, outSize, stride, dilation);
        slabs.push_back(reshape(builder, loc, tap,
                                {n, channels, 1, outSize[0], outSize[1]}));
      }
    }
    columns = concat(builder, loc, slabs, 2);
  }
  Value result;
  if (groups == 1) {
    Value patches =
        reshape(builder, loc, columns, {n, channels * taps, spatial});
    Value w = reshape(builder, loc, weight, {outChannels, channels * taps});
    result = matmul(builder, loc, w, patches); // [N, O, OH·OW]
  } else {
    Value patches = reshape(builder, loc, columns,
                            {n, groups, groupChannels * taps, spatial});
    Value w =
        reshape(builder, loc, weight, {groups, groupOut, groupChannels * taps});
    result = matmul(builder, loc, w, patches); // [N, g, O/g, OH·OW]
  }
  result =
      reshape(builder, loc, result, {n, outChannels, outSize[0], outSize[1]});
  if (Value bias = getBias())
    result = AddOp::create(builder, loc, result,
                           reshape(builder, loc, bias, {outChannels, 1, 1}));
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// max_pool2d = max over taps of strided slices of pad(x, lowest).
FailureOr<SmallVector<Value>> MaxPool2dOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = getInput();
  if (failed(checkStaticSpatial(*this, x)))
    return failure();
  auto xType = tensorType(x);
  ArrayRef<int64_t> kernel = getKernel(), stride = getStride(),
                    padding = getPadding();
  SmallVector<int64_t> outSize = windowOutputSizes(getResult());
  double lowest = lowestFinite(xType.getElementType()).convertToDouble();
  Value padded = padSpatial(builder, loc, x, padding, lowest);
  Value result = poolTaps<MaxOp>(builder, loc, padded, kernel, outSize, stride);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// avg_pool2d = sum over taps of strided slices of pad(x, 0) / (KH·KW).
FailureOr<SmallVector<Value>> AvgPool2dOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = getInput();
  if (failed(checkStaticSpatial(*this, x)))
    return failure();
  auto xType = tensorType(x);
  ArrayRef<int64_t> kernel = getKernel(), stride = getStride(),
                    padding = getPadding();
  SmallVector<int64_t> outSize = windowOutputSizes(getResult());
  Value padded = padSpatial(builder, loc, x, padding, 0.0);
  Value sum = poolTaps<AddOp>(builder, loc, padded, kernel, outSize, stride);
  Value count = floatConst(builder, loc, xType.getElementType(),
                           static_cast<double>(kernel[0] * kernel[1]));
  Value result = DivOp::create(builder, loc, sum, count);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

//===----------------------------------------------------------------------===//
// Recurrent cells
//===----------------------------------------------------------------------===//

// gru: r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), n = tanh(gi_n + r·gh_n),
// h' = n + z·(h - n), with gi = x·W_ihᵀ + b_ih and gh = h·W_hhᵀ + b_hh.
FailureOr<SmallVector<Value>> GRUCellOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value h = getHidden();
  int64_t size = tensorType(h).getDimSize(1);
  if (ShapedType::isDynamic(size))
    return emitOpError("cannot decompose with a dynamic hidden size");
  Value gi = buildAffine(builder, loc, getInput(), getWIh(), getBIh(), false);
  Value gh = buildAffine(builder, loc, h, getWHh(), getBHh(), false);
  // Operands are built one statement at a time so the IR order does not
  // depend on the compiler's argument evaluation order.
  auto gate = [&](Value gates, int64_t index) {
    return slice(builder, loc, gates, 1, index * size, (index + 1) * size);
  };
  auto gateSum = [&](int64_t index) {
    Value fromInput = gate(gi, index);
    Value fromHidden = gate(gh, index);
    return AddOp::create(builder, loc, fromInput, fromHidden);
  };
  Value r = SigmoidOp::create(builder, loc, gateSum(0));
  Value z = SigmoidOp::create(builder, loc, gateSum(1));
  Value inN = gate(gi, 2);
  Value hidN = MulOp::create(builder, loc, r, gate(gh, 2));
  Value n =
      TanhOp::create(builder, loc, AddOp::create(builder, loc, inN, hidN));
  Value result = AddOp::create(
      builder, loc, n,
      MulOp::create(builder, loc, z, SubOp::create(builder, loc, h, n)));
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// lstm: [i, f, g, o] = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh,
// c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c').
FailureOr<SmallVector<Value>> LSTMCellOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value h = getHidden(), c = getCell();
  int64_t size = tensorType(h).getDimSize(1);
  if (ShapedType::isDynamic(size))
    return emitOpError("cannot decompose with a dynamic hidden size");
  Value gi = buildAffine(builder, loc, getInput(), getWIh(), getBIh(), false);
  Value gh = buildAffine(builder, loc, h, getWHh(), getBHh(), false);
  Value gates = AddOp::create(builder, loc, gi, gh);
  auto gate = [&](int64_t index) {
    return slice(builder, loc, gates, 1, index * size, (index + 1) * size);
  };
  Value i = SigmoidOp::create(builder, loc, gate(0));
  Value f = SigmoidOp::create(builder, loc, gate(1));
  Value g = TanhOp::create(builder, loc, gate(2));
  Value o = SigmoidOp::create(builder, loc, gate(3));
  Value keptCell = MulOp::create(builder, loc, f, c);
  Value written = MulOp::create(builder, loc, i, g);
  Value newCell = AddOp::create(builder, loc, keptCell, written);
  Value newHidden =
      MulOp::create(builder, loc, o, TanhOp::create(builder, loc, newCell));
  return SmallVector<Value>{
      matchType(builder, loc, newHidden, getNewHidden().getType()),
      matchType(builder, loc, newCell, getNewCell().getType())};
}

//===----------------------------------------------------------------------===//
// Training ops
//===----------------------------------------------------------------------===//

// dropout(x) = select(random_uniform(seed) >= p, x / (1 - p), 0).
FailureOr<SmallVector<Value>> DropoutOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value x = getInput();
  auto type = tensorType(x);
  Type et = type.getElementType();
  double p = getP().convertToDouble();
  if (p == 0.0)
    return SmallVector<Value>{matchType(builder, loc, x, getType())};
  Value uniform = RandomUniformOp::create(
      builder, loc, type, getSeed(), dynamicSizesLike(builder, loc, type, x));
  Value keep = CompareOp::create(builder, loc, ComparePredicate::ge, uniform,
                                 floatConst(builder, loc, et, p));
  Value scaled =
      DivOp::create(builder, loc, x, floatConst(builder, loc, et, 1.0 - p));
  Value result = SelectOp::create(builder, loc, keep, scaled,
                                  floatConst(builder, loc, et, 0.0));
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// cross_entropy: loss = select(target != ignore, -sum(onehot(target) ·
// log_softmax(logits)), 0), mean divides by the count of kept targets; a
// kept target outside [0, C) gives NaN (targetInRange).
FailureOr<SmallVector<Value>> CrossEntropyOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value logits = getLogits(), target = getTarget();
  auto logitsType = tensorType(logits), targetType = tensorType(target);
  Type et = logitsType.getElementType();
  Type it = targetType.getElementType();
  int64_t classAxis = logitsType.getRank() - 1;

  Value logProbs = buildLogSoftmax(builder, loc, logits, classAxis);
  // One-hot of the target along the class axis: iota [C] == target[..., None].
  auto classesType =
      RankedTensorType::get({logitsType.getDimSize(classAxis)}, it);
  Value classes = IotaOp::create(
      builder, loc, classesType,
      dynamicSizes(builder, loc, classesType, {{logits, classAxis}}),
      builder.getI64IntegerAttr(0));
  SmallVector<int64_t> expandedShape(targetType.getShape());
  expandedShape.push_back(1);
  Value expanded = reshape(builder, loc, target, expandedShape);
  Value onehot =
      CompareOp::create(builder, loc, ComparePredicate::eq, expanded, classes);
  Value zero = floatConst(builder, loc, et, 0.0);
  Value picked = SelectOp::create(builder, loc, onehot, logProbs, zero);
  Value targetLogProb = reduce(builder, loc, ReduceKind::sum, picked,
                               {classAxis}, /*keepdim=*/false);
  Value nll = NegOp::create(builder, loc, targetLogProb);
  Value kept = CompareOp::create(builder, loc, ComparePredicate::ne, target,
                                 intConst(builder, loc, it, getIgnoreIndex()));
  Value nan = floatConst(builder, loc, et, NAN);
  Value inRange = targetInRange(builder, loc, target, logits);
  Value checked = SelectOp::create(builder, loc, inRange, nll, nan);
  Value loss = SelectOp::create(builder, loc, kept, checked, zero);

  Value result;
  switch (getReduction()) {
  case LossReduction::none:
    result = loss;
    break;
  case LossReduction::sum:
    result = reduceAll(builder, loc, ReduceKind::sum, loss);
    break;
  case LossReduction::mean: {
    Value total = reduceAll(builder, loc, ReduceKind::sum, loss);
    Value count = reduceAll(builder, loc, ReduceKind::sum,
                            convert(builder, loc, kept, et));
    result = DivOp::create(builder, loc, total, count);
    break;
  }
  case LossReduction::batchmean:
    return emitOpError("reduction 'batchmean' is only for kl_div");
  }
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

namespace {
/// `none` keeps the per-element losses; `sum` and `mean` reduce all of
/// them (`batchmean` is handled by the op that allows it).
Value reduceLoss(OpBuilder &builder, Location loc, LossReduction reduction,
                 Value losses) {
  if (reduction == LossReduction::none)
    return losses;
  return reduceAll(builder, loc,
                   reduction == LossReduction::sum ? ReduceKind::sum
                                                   : ReduceKind::mean,
                   losses);
}
} // namespace

// mse = reduce((input - target)^2) with mean, sum or none.
FailureOr<SmallVector<Value>> MSEOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value diff = SubOp::create(builder, loc, getInput(), getTarget());
  Value squares = MulOp::create(builder, loc, diff, diff);
  if (getReduction() == LossReduction::batchmean)
    return emitOpError("reduction 'batchmean' is only for kl_div");
  Value result = reduceLoss(builder, loc, getReduction(), squares);
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}

// kl_div pointwise = select(target == 0, 0, target·(log(target) - input)), or
// exp(target)·(target - input) with log_target; then mean/sum/batchmean/none.
FailureOr<SmallVector<Value>> KLDivOp::decompose(OpBuilder &builder) {
  Location loc = getLoc();
  Value input = getInput(), target = getTarget();
  Type et = tensorType(input).getElementType();
  Value pointwise;
  if (getLogTarget()) {
    Value prob = ExpOp::create(builder, loc, target);
    Value diff = SubOp::create(builder, loc, target, input);
    pointwise = MulOp::create(builder, loc, prob, diff);
  } else {
    Value zero = floatConst(builder, loc, et, 0.0);
    Value terms = MulOp::create(
        builder, loc, target,
        SubOp::create(builder, loc, LogOp::create(builder, loc, target),
                      input));
    Value isZero =
        CompareOp::create(builder, loc, ComparePredicate::eq, target, zero);
    pointwise = SelectOp::create(builder, loc, isZero, zero, terms);
  }
  Value result;
  if (getReduction() == LossReduction::batchmean) {
    if (tensorType(input).getRank() < 1)
      return emitOpError("'batchmean' needs an input of rank >= 1");
    Value total = reduceAll(builder, loc, ReduceKind::sum, pointwise);
    result = DivOp::create(builder, loc, total,
                           sizeAsFloat(builder, loc, input, 0, et));
  } else {
    result = reduceLoss(builder, loc, getReduction(), pointwise);
  }
  return SmallVector<Value>{matchType(builder, loc, result, getType())};
}
