//===- bert.cpp - BERT (Hugging Face BertModel) ---------------------------===//
//
// BERT as Hugging Face's BertModel computes it (with the pooler): word,
// position and token-type embeddings summed and normalized, post-norm
// encoder layers of bidirectional self-attention (padding hidden by the
// attention mask) and an erf-GELU MLP, and the pooler `tanh(dense(h[:, 0]))`.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
struct BertConfig {
  int64_t vocab, hidden, layers, heads, intermediate, maxPositions, typeVocab;
  double eps, initStd;
  Activation activation;
  /// Per layer, the heads and intermediate channels removed
  /// (`pruned_heads`, `pruned_ffn_channels`).
  std::vector<std::vector<int64_t>> prunedHeads, prunedChannels;
};

llvm::Expected<BertConfig> readConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "bert");
  BertConfig c;
  c.vocab = reader.getInt("vocab_size");
  c.hidden = reader.getInt("hidden_size");
  c.layers = reader.getLayerCount("num_hidden_layers");
  c.heads = reader.getInt("num_attention_heads");
  c.intermediate = reader.getInt("intermediate_size");
  c.maxPositions = reader.getInt("max_position_embeddings");
  c.typeVocab = reader.getInt("type_vocab_size", 2, /*min=*/1);
  c.eps = reader.getPositiveNumber("layer_norm_eps", 1e-12);
  c.initStd = reader.getPositiveNumber("initializer_range", 0.02);
  c.activation = reader.getActivation("hidden_act", "gelu");
  reader.requireDivisible("hidden_size", c.hidden, "num_attention_heads",
                          c.heads);
  c.prunedHeads =
      reader.getPrunedUnits("pruned_heads", c.layers, c.heads, "heads");
  c.prunedChannels = reader.getPrunedUnits(
      "pruned_ffn_channels", c.layers, c.intermediate, "intermediate channels");
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}
} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildBert(MLIRContext &context,
                              const llvm::json::Object &json,
                              const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "bert"))
    return std::move(error);
  auto config = readConfig(json);
  if (!config)
    return config.takeError();
  const BertConfig &c = *config;
  auto shape = resolveInputShape(options, "bert", "max_position_embeddings",
                                 c.maxPositions);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "bert", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  Type f32 = b.getF32Type();
  int64_t B = shape->batch, S = shape->seq;
  auto idsType = RankedTensorType::get({B, S}, b.getI64Type());
  auto hiddenType = RankedTensorType::get({B, S, c.hidden}, f32);
  auto pooledType = RankedTensorType::get({B, c.hidden}, f32);
  func::FuncOp forward = g.beginFunction("forward", {idsType, idsType, idsType},
                                         {hiddenType, pooledType});
  g.nameEntryPoint(forward, {"input_ids", "token_type_ids", "attention_mask"},
                   {"last_hidden_state", "pooler_output"});
  g.limitSequence(forward, c.maxPositions);
  Value ids = forward.getArgument(0);
  Value tokenTypes = forward.getArgument(1);
  Value attentionMask = forward.getArgument(2);

  // Embeddings.
  Value words = g.normalParam("embeddings.word_embeddings.weight",
                              {c.vocab, c.hidden}, c.initStd);
  Value positionTable = g.normalParam("embeddings.position_embeddings.weight",
                                      {c.maxPositions, c.hidden}, c.initStd);
  Value typeTable = g.normalParam("embeddings.token_type_embeddings.weight",
                                  {c.typeVocab, c.hidden}, c.initStd);
  Value h = EmbeddingOp::create(b, loc, words, ids);
  h = AddOp::create(b, loc, h,
                    EmbeddingOp::create(b, loc, typeTable, tokenTypes));
  h = AddOp::create(
      b, loc, h,
      EmbeddingOp::create(b, loc, positionTable, g.positions(ids, 1)));
  h = g.layerNorm(h, "embeddings.LayerNorm", c.hidden, c.eps);

  // Additive mask [B, 1, 1, S]: 0 for tokens, the lowest float (of the
  // compute type) for padding.
  Value mask = PaddingMaskOp::create(
      b, loc, RankedTensorType::get({B, 1, 1, S}, g.getComputeType()),
      attentionMask);

  int64_t headDim = c.hidden / c.heads;
  for (int64_t i = 0; i < c.layers; ++i) {
    std::string p = llvm::formatv("encoder.layer.{0}", i).str();
    std::string self = p + ".attention.self";
    // A layer with pruned heads projects to the heads it keeps.
    int64_t heads = c.heads - static_cast<int64_t>(c.prunedHeads[i].size());
    int64_t width = heads * headDim;
    Value q = g.linear(h, self + ".query", c.hidden, width, true, c.initStd);
    Value k = g.linear(h, self + ".key", c.hidden, width, true, c.initStd);
    Value v = g.linear(h, self + ".value", c.hidden, width, true, c.initStd);
    // Named locals keep the ops in q, k, v order.
    Value qh = g.splitHeads(q, heads, headDim);
    Value kh = g.splitHeads(k, heads, headDim);
    Value vh = g.splitHeads(v, heads, headDim);
    Value attn = AttentionOp::create(b, loc, qh, kh, vh, mask,
                                     /*key_lengths=*/Value(), /*causal=*/false,
                                     /*scale=*/FloatAttr());
    Value out = g.linear(g.mergeHeads(attn), p + ".attention.output.dense",
                         width, c.hidden, true, c.initStd);
    h = g.layerNorm(AddOp::create(b, loc, out, h),
                    p + ".attention.output.LayerNorm", c.hidden, c.eps);

    int64_t inner =
        c.intermediate - static_cast<int64_t>(c.prunedChannels[i].size());
    Value x =
        g.linear(h, p + ".intermediate.dense", c.hidden, inner, true, c.initStd);
    x = g.activation(x, c.activation);
    x = g.linear(x, p + ".output.dense", inner, c.hidden, true, c.initStd);
    h = g.layerNorm(AddOp::create(b, loc, x, h), p + ".output.LayerNorm",
                    c.hidden, c.eps);
  }

  // Pooler: tanh(dense(h[:, 0])).
  Value first = SliceOp::create(b, loc, h, /*axis=*/1, /*start=*/0, /*end=*/1);
  first = g.reshape(first, {B, c.hidden});
  Value pooled = TanhOp::create(
      b, loc,
      g.linear(first, "pooler.dense", c.hidden, c.hidden, true, c.initStd));
  g.endFunction({h, pooled});
  return g.takeModule();
}
