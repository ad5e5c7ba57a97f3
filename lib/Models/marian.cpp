//===- marian.cpp - MarianMT (Hugging Face MarianMTModel) -----------------===//
//
// The original Transformer as Hugging Face's MarianMTModel computes it (the
// OPUS-MT translation models): one embedding table shared by the encoder,
// the decoder and the output head, scaled by √d_model with
// `scale_embedding`, plus a sinusoidal position table (sines in the first
// half, cosines in the second, not interleaved; computed, not stored);
// post-norm encoder and decoder layers (attention, add, LayerNorm; then the
// feed-forward, add, LayerNorm) with no final norm; the decoder's self
// attention causal, its cross attention over the encoder output with the
// source padding mask; logits from the shared table plus
// `final_logits_bias`. Linear weights are torch.nn.Linear `[out, in]`.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <vector>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
struct MarianConfig {
  int64_t vocab, dModel, encoderLayers, decoderLayers, encoderHeads,
      decoderHeads, encoderFfn, decoderFfn, maxPositions;
  double initStd;
  bool scaleEmbedding, tied;
  Activation activation;
};

llvm::Expected<MarianConfig> readConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "marian");
  MarianConfig c;
  // Defaults are MarianConfig's.
  c.vocab = reader.getInt("vocab_size", 58101, /*min=*/1);
  int64_t decoderVocab = reader.getInt("decoder_vocab_size", c.vocab, 1);
  c.dModel = reader.getInt("d_model", 1024, 1);
  c.encoderLayers = reader.getLayerCount("encoder_layers", 12);
  c.decoderLayers = reader.getLayerCount("decoder_layers", 12);
  c.encoderHeads = reader.getInt("encoder_attention_heads", 16, 1);
  c.decoderHeads = reader.getInt("decoder_attention_heads", 16, 1);
  c.encoderFfn = reader.getInt("encoder_ffn_dim", 4096, 1);
  c.decoderFfn = reader.getInt("decoder_ffn_dim", 4096, 1);
  c.maxPositions = reader.getInt("max_position_embeddings", 1024, 1);
  c.initStd = reader.getPositiveNumber("init_std", 0.02);
  c.scaleEmbedding = reader.getBool("scale_embedding", false);
  c.tied = reader.getBool("tie_word_embeddings", true);
  c.activation = reader.getActivation("activation_function", "gelu");
  if (!reader.failed() && decoderVocab != c.vocab)
    reader.fail(llvm::formatv("key 'decoder_vocab_size' ({0}) differs from "
                              "'vocab_size' ({1}); Kiln builds one shared "
                              "vocabulary",
                              decoderVocab, c.vocab));
  reader.requireDivisible("d_model", c.dModel, "encoder_attention_heads",
                          c.encoderHeads);
  reader.requireDivisible("d_model", c.dModel, "decoder_attention_heads",
                          c.decoderHeads);
  if (!reader.failed() && c.dModel % 2 != 0)
    reader.fail(llvm::formatv("key 'd_model' must be even for the sinusoidal "
                              "positions, found {0}",
                              c.dModel));
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}

class MarianBuilder {
public:
  MarianBuilder(GraphBuilder &g, const MarianConfig &c)
      : g(g), b(g.getBuilder()), loc(g.getLoc()), c(c) {}

  /// `shared(ids) · scale + positions`.
  Value embed(Value ids, Value table);
  Value encoderLayer(Value x, Value mask, const std::string &prefix);
  Value decoderLayer(Value x, Value memory, Value mask,
                     const std::string &prefix);

private:
  Value linear(Value x, const std::string &prefix, int64_t in, int64_t out) {
    return g.linear(x, prefix, in, out, /*bias=*/true, c.initStd);
  }
  /// MarianAttention: self attention when `memory` is null, else queries
  /// from `x` and keys and values from `memory`.
  Value attention(Value x, Value memory, Value mask, bool causal,
                  int64_t heads, const std::string &prefix);
  Value feedForward(Value x, int64_t ffn, const std::string &prefix);
  Value layerNorm(Value x, const std::string &prefix) {
    return g.layerNorm(x, prefix, c.dModel, 1e-5);
  }
  /// The sinusoidal table's rows for positions 0..S-1 of `ids`, `[S, d]`
  /// in f32: `[sin(p·w_i) | cos(p·w_i)]`, `w_i = 10000^(-2i/d)`.
  Value positions(Value ids);

  GraphBuilder &g;
  OpBuilder &b;
  Location loc;
  const MarianConfig &c;
};
} // namespace

Value MarianBuilder::positions(Value ids) {
  Type f32 = b.getF32Type();
  int64_t half = c.dModel / 2;
  int64_t S = GraphBuilder::shapeOf(ids)[1];
  // The frequencies in double, rounded once, as transformers tabulates
  // them (numpy float64, stored as float32).
  std::vector<float> frequencies;
  for (int64_t i = 0; i < half; ++i)
    frequencies.push_back(static_cast<float>(
        std::pow(10000.0, -2.0 * double(i) / double(c.dModel))));
  auto freqType = RankedTensorType::get({half}, f32);
  Value w = ConstantOp::create(
      b, loc, freqType,
      DenseElementsAttr::get(freqType, ArrayRef<float>(frequencies)));
  Value pos = g.positions(ids, /*dim=*/1);
  pos = CastOp::create(b, loc, RankedTensorType::get({S}, f32), pos);
  Value angle = MulOp::create(b, loc, g.reshape(pos, {S, 1}), w); // [S, d/2]
  return ConcatOp::create(
      b, loc,
      ValueRange{SinOp::create(b, loc, angle), CosOp::create(b, loc, angle)},
      /*axis=*/1);
}

Value MarianBuilder::embed(Value ids, Value table) {
  Value x = EmbeddingOp::create(b, loc, table, ids);
  if (c.scaleEmbedding)
    x = MulOp::create(
        b, loc, x, g.scalar(std::sqrt(double(c.dModel)), g.getComputeType()));
  // The positions are computed in f32 and rounded once to the compute type.
  return AddOp::create(b, loc, x, g.toCompute(positions(ids)));
}

Value MarianBuilder::attention(Value x, Value memory, Value mask, bool causal,
                               int64_t heads, const std::string &prefix) {
  int64_t d = c.dModel, headDim = d / heads;
  Value source = memory ? memory : x;
  Value q = linear(x, prefix + ".q_proj", d, d);
  Value k = linear(source, prefix + ".k_proj", d, d);
  Value v = linear(source, prefix + ".v_proj", d, d);
  // Named locals keep the ops in q, k, v order.
  Value qh = g.splitHeads(q, heads, headDim);
  Value kh = g.splitHeads(k, heads, headDim);
  Value vh = g.splitHeads(v, heads, headDim);
  Value attn = AttentionOp::create(b, loc, qh, kh, vh, mask,
                                   /*key_lengths=*/Value(), causal,
                                   /*scale=*/FloatAttr());
  return linear(g.mergeHeads(attn), prefix + ".out_proj", d, d);
}

Value MarianBuilder::feedForward(Value x, int64_t ffn,
                                 const std::string &prefix) {
  x = g.activation(linear(x, prefix + ".fc1", c.dModel, ffn), c.activation);
  return linear(x, prefix + ".fc2", ffn, c.dModel);
}

Value MarianBuilder::encoderLayer(Value x, Value mask, const std::string &p) {
  Value attn = attention(x, Value(), mask, /*causal=*/false, c.encoderHeads,
                         p + ".self_attn");
  x = layerNorm(AddOp::create(b, loc, x, attn), p + ".self_attn_layer_norm");
  Value ffn = feedForward(x, c.encoderFfn, p);
  return layerNorm(AddOp::create(b, loc, x, ffn), p + ".final_layer_norm");
}

Value MarianBuilder::decoderLayer(Value x, Value memory, Value mask,
                                  const std::string &p) {
  Value self = attention(x, Value(), Value(), /*causal=*/true, c.decoderHeads,
                         p + ".self_attn");
  x = layerNorm(AddOp::create(b, loc, x, self), p + ".self_attn_layer_norm");
  Value cross = attention(x, memory, mask, /*causal=*/false, c.decoderHeads,
                          p + ".encoder_attn");
  x = layerNorm(AddOp::create(b, loc, x, cross),
                p + ".encoder_attn_layer_norm");
  Value ffn = feedForward(x, c.decoderFfn, p);
  return layerNorm(AddOp::create(b, loc, x, ffn), p + ".final_layer_norm");
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildMarian(MLIRContext &context,
                                const llvm::json::Object &json,
                                const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "marian"))
    return std::move(error);
  auto config = readConfig(json);
  if (!config)
    return config.takeError();
  const MarianConfig &c = *config;
  auto shape = resolveInputShape(options, "marian", "max_position_embeddings",
                                 c.maxPositions);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "marian", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  // Source and target share the batch and sequence options; with a dynamic
  // sequence each has its own length.
  auto idsType =
      RankedTensorType::get({shape->batch, shape->seq}, b.getI64Type());
  auto logitsType = RankedTensorType::get({shape->batch, shape->seq, c.vocab},
                                          b.getF32Type());
  func::FuncOp forward = g.beginFunction(
      "forward", {idsType, idsType, idsType}, {logitsType});
  g.nameEntryPoint(forward,
                   {"input_ids", "attention_mask", "decoder_input_ids"},
                   {"logits"});
  g.limitSequence(forward, c.maxPositions);
  Value ids = forward.getArgument(0), keep = forward.getArgument(1),
        decoderIds = forward.getArgument(2);
  MarianBuilder m(g, c);

  // The source padding mask, for the encoder and the cross attention.
  Value mask = PaddingMaskOp::create(
      b, loc,
      RankedTensorType::get({shape->batch, 1, 1, shape->seq},
                            g.getComputeType()),
      keep);

  Value shared =
      g.normalParam("model.shared.weight", {c.vocab, c.dModel}, c.initStd);
  Value memory = m.embed(ids, shared);
  for (int64_t i = 0; i < c.encoderLayers; ++i)
    memory = m.encoderLayer(memory, mask,
                            llvm::formatv("model.encoder.layers.{0}", i).str());

  Value x = m.embed(decoderIds, shared);
  for (int64_t i = 0; i < c.decoderLayers; ++i)
    x = m.decoderLayer(x, memory, mask,
                       llvm::formatv("model.decoder.layers.{0}", i).str());

  Value logits =
      c.tied ? Value(MatmulOp::create(b, loc, x, shared,
                                      /*transpose_lhs=*/false,
                                      /*transpose_rhs=*/true))
             : g.linear(x, "lm_head", c.dModel, c.vocab, /*bias=*/false,
                        c.initStd);
  Value bias = g.zerosParam("final_logits_bias", {1, c.vocab});
  logits = AddOp::create(b, loc, logits, bias);
  g.endFunction(logits);
  return g.takeModule();
}
