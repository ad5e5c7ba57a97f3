//===- Encoders.cpp - Pieces the encoder families share -------------------===//
//
// Patch embeddings and class tokens (ViT, CLIP's image tower), the pre-norm
// encoder layer (ViT, CLIP), L2-normalized embeddings and picking one
// token's hidden state per row (CLIP's end-of-text pooling, a reward
// model's last token).
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

Value GraphBuilder::patchEmbedding(Value pixels, StringRef prefix,
                                   int64_t hidden, std::array<int64_t, 2> patch,
                                   bool bias, double std) {
  ArrayRef<int64_t> shape = shapeOf(pixels); // [B, C, H, W]
  Value weight = normalParam((prefix + ".weight").str(),
                             {hidden, shape[1], patch[0], patch[1]}, std);
  Value b = bias ? zerosParam((prefix + ".bias").str(), {hidden}) : Value();
  Value conv = Conv2dOp::create(
      builder, loc, pixels, weight, b, ArrayRef<int64_t>(patch),
      ArrayRef<int64_t>{0, 0}, ArrayRef<int64_t>{1, 1}, /*groups=*/1);
  ArrayRef<int64_t> grid = shapeOf(conv); // [B, hidden, H/PH, W/PW]
  Value flat = reshape(conv, {grid[0], hidden, grid[2] * grid[3]});
  return transpose(flat, {0, 2, 1});
}

Value GraphBuilder::prependToken(Value tokens, Value token) {
  ArrayRef<int64_t> shape = shapeOf(tokens); // [B, N, E]
  auto type = RankedTensorType::get(
      {shape[0], 1, shape[2]},
      cast<RankedTensorType>(tokens.getType()).getElementType());
  SmallVector<Value> sizes;
  if (ShapedType::isDynamic(shape[0]))
    sizes.push_back(tensor::DimOp::create(builder, loc, tokens, 0));
  Value rows = BroadcastToOp::create(builder, loc, type, token, sizes);
  return ConcatOp::create(builder, loc, ValueRange{rows, tokens}, /*axis=*/1);
}

Value GraphBuilder::preNormEncoderLayer(Value x, const EncoderLayerNames &names,
                                        const EncoderLayerSpec &spec,
                                        Value mask, bool causal) {
  int64_t e = spec.hidden, headDim = spec.hidden / spec.heads;
  Value n = layerNorm(x, names.norm1, e, spec.eps);
  Value q = linear(n, names.query, e, e, spec.qkvBias, spec.qkvStd);
  Value k = linear(n, names.key, e, e, spec.qkvBias, spec.qkvStd);
  Value v = linear(n, names.value, e, e, spec.qkvBias, spec.qkvStd);
  // Named locals keep the ops in q, k, v order.
  Value qh = splitHeads(q, spec.heads, headDim);
  Value kh = splitHeads(k, spec.heads, headDim);
  Value vh = splitHeads(v, spec.heads, headDim);
  Value attn = AttentionOp::create(builder, loc, qh, kh, vh, mask,
                                   /*key_lengths=*/Value(), causal,
                                   /*scale=*/FloatAttr());
  Value out =
      linear(mergeHeads(attn), names.output, e, e, true, spec.outputStd);
  x = AddOp::create(builder, loc, x, out);

  Value m = layerNorm(x, names.norm2, e, spec.eps);
  m = linear(m, names.fc1, e, spec.intermediate, true, spec.fc1Std);
  m = activation(m, spec.activation);
  m = linear(m, names.fc2, spec.intermediate, e, true, spec.fc2Std);
  return AddOp::create(builder, loc, x, m);
}

Value GraphBuilder::l2Normalize(Value x) {
  int64_t last = static_cast<int64_t>(shapeOf(x).size()) - 1;
  Value squares = MulOp::create(builder, loc, x, x);
  Value sum = ReduceOp::create(builder, loc, ReduceKind::sum, squares,
                               ArrayRef<int64_t>{last}, /*keepdim=*/true);
  return MulOp::create(builder, loc, x, RsqrtOp::create(builder, loc, sum));
}

Value GraphBuilder::tokenAt(Value all, Value index, int64_t batch,
                            bool keepdim) {
  // A one-hot sum over the sequence: [S, 1] == [B, 1, 1] -> [B, S, 1]
  // (named locals keep the ops in one order whatever order a compiler
  // evaluates arguments in).
  Value positions = this->positions(all, /*dim=*/1);
  Value column = reshape(positions, {shapeOf(positions)[0], 1});
  Value indexColumn = reshape(index, {batch, 1, 1});
  Value pick = CompareOp::create(builder, loc, ComparePredicate::eq, column,
                                 indexColumn);
  Value zero = scalar(0.0, computeType);
  Value picked = SelectOp::create(builder, loc, pick, all, zero);
  return ReduceOp::create(builder, loc, ReduceKind::sum, picked,
                          ArrayRef<int64_t>{1}, keepdim);
}
