//===- transformer.cpp - The original encoder-decoder Transformer ---------===//
//
// "Attention Is All You Need" as torch.nn.Transformer computes it, with the
// parts a translation model adds around it: scaled source and target
// embeddings, the sinusoidal positional encoding (computed in the graph, so
// any length up to `max_len` works) and a linear `generator` to target-vocab
// logits. Layers are post-norm (or pre-norm with `norm_first`), the encoder
// and decoder stacks end in `encoder.norm` / `decoder.norm` as in
// torch.nn.Transformer, and the target self-attention is causal. Dropout is
// a training-time concern and is not in the forward graph.
//
// Parameter names are the torch state-dict names of nn.Transformer
// (`encoder.layers.0.self_attn.in_proj_weight`, ...), plus `src_embed.weight`,
// `tgt_embed.weight` and `generator.{weight,bias}`. Initialization follows
// nn.Transformer._reset_parameters: Xavier-uniform for every matrix, zero
// attention biases, torch.nn.Linear's default U(±1/√fan_in) for the other
// biases, LayerNorm ones and zeros.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
struct TransformerConfig {
  int64_t dModel, heads, encoderLayers, decoderLayers, feedforward, srcVocab,
      tgtVocab, maxLen;
  double eps;
  bool normFirst;
  std::string activation;
};

llvm::Expected<TransformerConfig> readConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "transformer");
  TransformerConfig c;
  // Defaults are torch.nn.Transformer's (those of "Attention Is All You
  // Need"); only the vocabularies have none.
  c.dModel = reader.getInt("d_model", 512, /*min=*/1);
  c.heads = reader.getInt("nhead", 8, /*min=*/1);
  c.encoderLayers = reader.getLayerCount("num_encoder_layers", 6);
  c.decoderLayers = reader.getLayerCount("num_decoder_layers", 6);
  c.feedforward = reader.getInt("dim_feedforward", 2048, /*min=*/1);
  c.srcVocab = reader.getInt("src_vocab_size");
  c.tgtVocab = reader.getInt("tgt_vocab_size");
  c.maxLen = reader.getInt("max_len", 5000, /*min=*/1);
  c.eps = reader.getPositiveNumber("layer_norm_eps", 1e-5);
  c.normFirst = reader.getBool("norm_first", false);
  c.activation = reader.getString("activation", "relu");
  if (c.activation != "relu" && c.activation != "gelu")
    reader.fail("key 'activation' must be 'relu' or 'gelu', found '" +
                c.activation + "'");
  reader.requireDivisible("d_model", c.dModel, "nhead", c.heads);
  if (!reader.failed() && c.dModel % 2 != 0)
    reader.fail(llvm::formatv("key 'd_model' must be even for the sinusoidal "
                              "positional encoding, found {0}",
                              c.dModel));
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}

/// Builds the layers; holds the config and the graph builder they share.
class TransformerBuilder {
public:
  TransformerBuilder(GraphBuilder &g, const TransformerConfig &c)
      : g(g), b(g.getBuilder()), loc(g.getLoc()), c(c) {}

  /// `embed(ids) · √d_model + PE`.
  Value embed(Value ids, StringRef table, int64_t vocab);
  Value encoderLayer(Value x, const std::string &prefix);
  Value decoderLayer(Value x, Value memory, const std::string &prefix);
  /// The generator: logits over the target vocabulary.
  Value generator(Value x);
  Value layerNorm(Value x, const std::string &prefix) {
    return g.layerNorm(x, prefix, c.dModel, c.eps);
  }

private:
  /// torch.nn.MultiheadAttention (batch-first semantics) with packed
  /// `in_proj_weight` `[3d, d]`. Self-attention when `memory` is null.
  Value multiheadAttention(Value x, Value memory, bool causal,
                           const std::string &prefix);
  Value feedForward(Value x, const std::string &prefix);
  /// torch.nn.Linear with Xavier-uniform weight and U(±1/√in) bias.
  Value linear(Value x, const std::string &prefix, int64_t in, int64_t out);
  /// The [S, d] sinusoidal table for the sequence dimension of `ids`.
  Value positionalEncoding(Value ids);

  static double xavierBound(int64_t fanOut, int64_t fanIn) {
    return std::sqrt(6.0 / static_cast<double>(fanIn + fanOut));
  }

  GraphBuilder &g;
  OpBuilder &b;
  Location loc;
  const TransformerConfig &c;
};
} // namespace

Value TransformerBuilder::linear(Value x, const std::string &prefix, int64_t in,
                                 int64_t out) {
  Value weight =
      g.uniformParam(prefix + ".weight", {out, in}, xavierBound(out, in));
  Value bias =
      g.uniformParam(prefix + ".bias", {out}, 1.0 / std::sqrt(double(in)));
  return LinearOp::create(b, loc, x, weight, bias, /*weight_in_out=*/false);
}

Value TransformerBuilder::positionalEncoding(Value ids) {
  Type f32 = b.getF32Type();
  int64_t half = c.dModel / 2;
  int64_t S = GraphBuilder::shapeOf(ids)[1];

  // angle[p, i] = p · exp(2i · -ln(10000) / d)
  Value pos = g.positions(ids, /*dim=*/1);
  pos = CastOp::create(b, loc, RankedTensorType::get({S}, f32), pos);
  pos = g.reshape(pos, {S, 1});
  Value i = IotaOp::create(b, loc, RankedTensorType::get({half}, f32),
                           ValueRange(), /*dim=*/0);
  Value divTerm =
      ExpOp::create(b, loc,
                    MulOp::create(b, loc, i,
                                  g.scalar(-2.0 * std::log(10000.0) /
                                           static_cast<double>(c.dModel))));
  Value angle = MulOp::create(b, loc, pos, divTerm); // [S, d/2]

  // Interleave: pe[:, 2i] = sin, pe[:, 2i+1] = cos.
  Value sin = g.reshape(SinOp::create(b, loc, angle), {S, half, 1});
  Value cos = g.reshape(CosOp::create(b, loc, angle), {S, half, 1});
  Value pairs = ConcatOp::create(b, loc, ValueRange{sin, cos}, /*axis=*/2);
  return g.reshape(pairs, {S, c.dModel});
}

Value TransformerBuilder::embed(Value ids, StringRef tableName, int64_t vocab) {
  Value table = g.uniformParam(tableName, {vocab, c.dModel},
                               xavierBound(vocab, c.dModel));
  Value x = EmbeddingOp::create(b, loc, table, ids);
  x = MulOp::create(
      b, loc, x, g.scalar(std::sqrt(double(c.dModel)), g.getComputeType()));
  // The encoding is computed in f32 and rounded once to the compute type.
  return AddOp::create(b, loc, x, g.toCompute(positionalEncoding(ids)));
}

Value TransformerBuilder::multiheadAttention(Value x, Value memory, bool causal,
                                             const std::string &prefix) {
  int64_t d = c.dModel, headDim = d / c.heads;
  Value weight = g.uniformParam(prefix + ".in_proj_weight", {3 * d, d},
                                xavierBound(3 * d, d));
  Value bias = g.zerosParam(prefix + ".in_proj_bias", {3 * d});
  Value q, k, v;
  if (!memory) {
    Value qkv = LinearOp::create(b, loc, x, weight, bias, false);
    q = SliceOp::create(b, loc, qkv, 2, 0, d);
    k = SliceOp::create(b, loc, qkv, 2, d, 2 * d);
    v = SliceOp::create(b, loc, qkv, 2, 2 * d, 3 * d);
  } else {
    // Queries from the decoder, keys and values from the encoder memory.
    Value wq = SliceOp::create(b, loc, weight, 0, 0, d);
    Value bq = SliceOp::create(b, loc, bias, 0, 0, d);
    Value wkv = SliceOp::create(b, loc, weight, 0, d, 3 * d);
    Value bkv = SliceOp::create(b, loc, bias, 0, d, 3 * d);
    q = LinearOp::create(b, loc, x, wq, bq, false);
    Value kv = LinearOp::create(b, loc, memory, wkv, bkv, false);
    k = SliceOp::create(b, loc, kv, 2, 0, d);
    v = SliceOp::create(b, loc, kv, 2, d, 2 * d);
  }
  // Named locals keep the ops in q, k, v order.
  Value qh = g.splitHeads(q, c.heads, headDim);
  Value kh = g.splitHeads(k, c.heads, headDim);
  Value vh = g.splitHeads(v, c.heads, headDim);
  Value attn = AttentionOp::create(b, loc, qh, kh, vh, /*mask=*/Value(),
                                   /*key_lengths=*/Value(), causal,
                                   /*scale=*/FloatAttr());
  Value outWeight =
      g.uniformParam(prefix + ".out_proj.weight", {d, d}, xavierBound(d, d));
  Value outBias = g.zerosParam(prefix + ".out_proj.bias", {d});
  return LinearOp::create(b, loc, g.mergeHeads(attn), outWeight, outBias,
                          false);
}

Value TransformerBuilder::feedForward(Value x, const std::string &prefix) {
  x = linear(x, prefix + ".linear1", c.dModel, c.feedforward);
  x = c.activation == "relu"
          ? Value(ReluOp::create(b, loc, x))
          : Value(GeluOp::create(b, loc, x, GeluApproximation::erf));
  return linear(x, prefix + ".linear2", c.feedforward, c.dModel);
}

Value TransformerBuilder::encoderLayer(Value x, const std::string &p) {
  if (c.normFirst) {
    x = AddOp::create(b, loc, x,
                      multiheadAttention(layerNorm(x, p + ".norm1"), Value(),
                                         false, p + ".self_attn"));
    return AddOp::create(b, loc, x, feedForward(layerNorm(x, p + ".norm2"), p));
  }
  x = layerNorm(
      AddOp::create(b, loc, x,
                    multiheadAttention(x, Value(), false, p + ".self_attn")),
      p + ".norm1");
  return layerNorm(AddOp::create(b, loc, x, feedForward(x, p)), p + ".norm2");
}

Value TransformerBuilder::decoderLayer(Value x, Value memory,
                                       const std::string &p) {
  if (c.normFirst) {
    x = AddOp::create(b, loc, x,
                      multiheadAttention(layerNorm(x, p + ".norm1"), Value(),
                                         true, p + ".self_attn"));
    x = AddOp::create(b, loc, x,
                      multiheadAttention(layerNorm(x, p + ".norm2"), memory,
                                         false, p + ".multihead_attn"));
    return AddOp::create(b, loc, x, feedForward(layerNorm(x, p + ".norm3"), p));
  }
  x = layerNorm(
      AddOp::create(b, loc, x,
                    multiheadAttention(x, Value(), true, p + ".self_attn")),
      p + ".norm1");
  x = layerNorm(AddOp::create(b, loc, x,
                              multiheadAttention(x, memory, false,
                                                 p + ".multihead_attn")),
                p + ".norm2");
  return layerNorm(AddOp::create(b, loc, x, feedForward(x, p)), p + ".norm3");
}

Value TransformerBuilder::generator(Value x) {
  return linear(x, "generator", c.dModel, c.tgtVocab);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildTransformer(MLIRContext &context,
                                     const llvm::json::Object &json,
                                     const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "transformer"))
    return std::move(error);
  auto config = readConfig(json);
  if (!config)
    return config.takeError();
  const TransformerConfig &c = *config;
  auto shape = resolveInputShape(options, "transformer", "max_len", c.maxLen);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "transformer", options.compute);
  OpBuilder &b = g.getBuilder();
  // Source and target share the batch and sequence options.
  auto idsType =
      RankedTensorType::get({shape->batch, shape->seq}, b.getI64Type());
  auto logitsType = RankedTensorType::get(
      {shape->batch, shape->seq, c.tgtVocab}, b.getF32Type());
  func::FuncOp forward =
      g.beginFunction("forward", {idsType, idsType}, {logitsType});
  g.nameEntryPoint(forward, {"src_ids", "tgt_ids"}, {"logits"});
  g.limitSequence(forward, c.maxLen);
  TransformerBuilder t(g, c);

  Value memory =
      t.embed(forward.getArgument(0), "src_embed.weight", c.srcVocab);
  for (int64_t i = 0; i < c.encoderLayers; ++i)
    memory =
        t.encoderLayer(memory, llvm::formatv("encoder.layers.{0}", i).str());
  memory = t.layerNorm(memory, "encoder.norm");

  Value x = t.embed(forward.getArgument(1), "tgt_embed.weight", c.tgtVocab);
  for (int64_t i = 0; i < c.decoderLayers; ++i)
    x = t.decoderLayer(x, memory, llvm::formatv("decoder.layers.{0}", i).str());
  x = t.layerNorm(x, "decoder.norm");

  g.endFunction(t.generator(x));
  return g.takeModule();
}
