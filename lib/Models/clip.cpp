//===- clip.cpp - CLIP (Hugging Face CLIPModel and its towers) ------------===//
//
// CLIP as Hugging Face computes it. The image tower (CLIPVisionModel): patch
// embedding without bias, a learned class embedding in front, learned
// positions, a LayerNorm before the encoder (`pre_layrnorm`, sic), pre-norm
// layers, and the class token's state after `post_layernorm` as the pooled
// output. The text tower (CLIPTextModel): token and position embeddings,
// pre-norm layers of causal self-attention (padding hidden by the attention
// mask), a final LayerNorm, and the state at the end-of-text token as the
// pooled output. CLIPModel projects both pooled outputs (no bias),
// normalizes them to unit length and scores every text against every image
// with `exp(logit_scale)` times their cosine similarity.
//
// The configs nest: CLIPModel's `text_config` and `vision_config` are the
// towers' configs (model types `clip_text_model` and `clip_vision_model`,
// which build the towers alone). Defaults are transformers', since
// save_pretrained writes only the keys that differ from them.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
using TowerConfig = CLIPTowerConfig;
using VisionConfig = CLIPVisionConfig;

struct TextConfig : TowerConfig {
  int64_t vocab, maxPositions, eosTokenId;
};

void readTower(ConfigReader &reader, TowerConfig &c, int64_t hidden,
               int64_t layers, int64_t heads, int64_t intermediate) {
  c.hidden = reader.getInt("hidden_size", hidden, 1);
  c.layers = reader.getLayerCount("num_hidden_layers", layers);
  c.heads = reader.getInt("num_attention_heads", heads, 1);
  c.intermediate = reader.getInt("intermediate_size", intermediate, 1);
  c.eps = reader.getPositiveNumber("layer_norm_eps", 1e-5);
  c.initStd = reader.getPositiveNumber("initializer_range", 0.02);
  c.initFactor = reader.getPositiveNumber("initializer_factor", 1.0);
  c.activation = reader.getActivation("hidden_act", "quick_gelu");
  reader.requireDivisible("hidden_size", c.hidden, "num_attention_heads",
                          c.heads);
}

llvm::Expected<TextConfig> readTextConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "clip_text_model");
  TextConfig c;
  readTower(reader, c, 512, 12, 8, 2048);
  c.vocab = reader.getInt("vocab_size", 49408, 1);
  c.maxPositions = reader.getInt("max_position_embeddings", 77, 1);
  c.eosTokenId = reader.getInt("eos_token_id", 49407, 0);
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}

/// transformers' CLIPPreTrainedModel initialization of a tower's layers
/// (`factor` is the model's initializer_factor).
EncoderLayerSpec layerSpec(const TowerConfig &c, double factor) {
  double e = static_cast<double>(c.hidden);
  double inStd = std::pow(e, -0.5) *
                 std::pow(2.0 * static_cast<double>(c.layers), -0.5) * factor;
  double outStd = std::pow(e, -0.5) * factor;
  double fcStd = std::pow(2.0 * e, -0.5) * factor;
  return EncoderLayerSpec{c.hidden, c.heads, c.intermediate, c.eps,
                          c.activation, /*qkvBias=*/true, inStd, outStd,
                          fcStd, inStd};
}

Value encoder(GraphBuilder &g, Value h, const TowerConfig &c, double factor,
              StringRef prefix, Value mask, bool causal) {
  EncoderLayerSpec spec = layerSpec(c, factor);
  for (int64_t i = 0; i < c.layers; ++i) {
    std::string p = llvm::formatv("{0}encoder.layers.{1}", prefix, i).str();
    EncoderLayerNames names{p + ".layer_norm1",     p + ".self_attn.q_proj",
                            p + ".self_attn.k_proj", p + ".self_attn.v_proj",
                            p + ".self_attn.out_proj", p + ".layer_norm2",
                            p + ".mlp.fc1",          p + ".mlp.fc2"};
    h = g.preNormEncoderLayer(h, names, spec, mask, causal);
  }
  return h;
}

struct TowerOutputs {
  Value lastHidden, pooled;
};

/// CLIPTextTransformer under `prefix` (`text_model.`).
TowerOutputs textTower(GraphBuilder &g, const TextConfig &c, double factor,
                       Value ids, Value attentionMask, int64_t batch) {
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  StringRef prefix = "text_model.";
  Value tokens = g.normalParam(prefix.str() + "embeddings.token_embedding.weight",
                               {c.vocab, c.hidden}, 0.02 * factor);
  Value positionTable =
      g.normalParam(prefix.str() + "embeddings.position_embedding.weight",
                    {c.maxPositions, c.hidden}, 0.02 * factor);
  Value h = EmbeddingOp::create(b, loc, tokens, ids);
  h = AddOp::create(
      b, loc, h,
      EmbeddingOp::create(b, loc, positionTable, g.positions(ids, 1)));
  int64_t S = GraphBuilder::shapeOf(ids)[1];
  Value mask = PaddingMaskOp::create(
      b, loc, RankedTensorType::get({batch, 1, 1, S}, g.getComputeType()),
      attentionMask);
  h = encoder(g, h, c, factor, prefix, mask, /*causal=*/true);
  h = g.layerNorm(h, prefix.str() + "final_layer_norm", c.hidden, c.eps);

  // The end-of-text token: its first occurrence, or (eos_token_id 2, the
  // value older configs carry) the largest id, as transformers picks it.
  Value positions = g.positions(ids, 1);
  Value hit;
  if (c.eosTokenId == 2) {
    Value largest = ReduceOp::create(b, loc, ReduceKind::max, ids,
                                     ArrayRef<int64_t>{1}, /*keepdim=*/true);
    hit = CompareOp::create(b, loc, ComparePredicate::eq, ids, largest);
  } else {
    hit = CompareOp::create(b, loc, ComparePredicate::eq, ids,
                            g.intScalar(c.eosTokenId));
  }
  // First hit: the least position holding one (none: position 0, as
  // argmax of all zeros).
  constexpr int64_t kNone = int64_t(1) << 62;
  Value none = g.intScalar(kNone);
  Value candidates = SelectOp::create(b, loc, hit, positions, none);
  Value first = ReduceOp::create(b, loc, ReduceKind::min, candidates,
                                 ArrayRef<int64_t>{1}, /*keepdim=*/false);
  Value missing =
      CompareOp::create(b, loc, ComparePredicate::eq, first, none);
  first = SelectOp::create(b, loc, missing, g.intScalar(0), first);
  return {h, g.tokenAt(h, first, batch)};
}

/// CLIPVisionTransformer under `vision_model.`: every layer, and the class
/// token's state after `post_layernorm` as the pooled output.
TowerOutputs visionTower(GraphBuilder &g, const VisionConfig &c,
                         double factor, Value pixels, int64_t batch) {
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  std::string prefix = "vision_model.";
  Value h = clipVisionHiddenStates(g, c, factor, pixels, prefix, c.layers);
  Value first = SliceOp::create(b, loc, h, /*axis=*/1, /*start=*/0, /*end=*/1);
  first = g.reshape(first, {batch, c.hidden});
  return {h, g.layerNorm(first, prefix + "post_layernorm", c.hidden, c.eps)};
}

RankedTensorType pixelsType(MLIRContext &context, const VisionConfig &c,
                            int64_t batch) {
  return RankedTensorType::get({batch, c.channels, c.image[0], c.image[1]},
                               Float32Type::get(&context));
}

int64_t sequenceLength(const VisionConfig &c) { return c.patches() + 1; }

} // namespace

llvm::Expected<CLIPVisionConfig>
mlir::kiln::models::readCLIPVisionConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "clip_vision_model");
  VisionConfig c;
  readTower(reader, c, 768, 12, 12, 3072);
  c.channels = reader.getInt("num_channels", 3, 1);
  c.image = reader.getSizePair("image_size", 224);
  c.patch = reader.getSizePair("patch_size", 32);
  reader.requirePatchFits(c.patch, c.image);
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}

Value mlir::kiln::models::clipVisionHiddenStates(GraphBuilder &g,
                                                 const CLIPVisionConfig &c,
                                                 double factor, Value pixels,
                                                 StringRef prefix,
                                                 int64_t layers) {
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  std::string p = prefix.str();
  Value h =
      g.patchEmbedding(g.toCompute(pixels), p + "embeddings.patch_embedding",
                       c.hidden, c.patch, /*bias=*/false, c.initStd * factor);
  h = g.prependToken(
      h, g.normalParam(p + "embeddings.class_embedding", {c.hidden},
                       std::pow(static_cast<double>(c.hidden), -0.5) * factor));
  h = AddOp::create(b, loc, h,
                    g.normalParam(p + "embeddings.position_embedding.weight",
                                  {c.patches() + 1, c.hidden},
                                  c.initStd * factor));
  h = g.layerNorm(h, p + "pre_layrnorm", c.hidden, c.eps);
  TowerConfig run = c;
  run.layers = layers;
  return encoder(g, h, run, factor, prefix, /*mask=*/Value(),
                 /*causal=*/false);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildCLIP(MLIRContext &context,
                              const llvm::json::Object &json,
                              const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "clip"))
    return std::move(error);
  ConfigReader reader(json, "clip");
  auto textJson =
      nestedConfig(reader, "text_config", "clip_text_model", "clip_text_model");
  if (!textJson)
    return textJson.takeError();
  auto visionJson = nestedConfig(reader, "vision_config", "clip_vision_model",
                                 "clip_vision_model");
  if (!visionJson)
    return visionJson.takeError();
  int64_t projection = reader.getInt("projection_dim", 512, 1);
  double logitScale = 2.6592;
  if (const llvm::json::Value *value = reader.getValue("logit_scale_init_value")) {
    std::optional<double> number = value->getAsNumber();
    if (!number || !std::isfinite(*number))
      reader.fail("key 'logit_scale_init_value' must be a finite number");
    else
      logitScale = *number;
  }
  double factor = reader.getPositiveNumber("initializer_factor", 1.0);
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  for (auto [json, type] : {std::pair{&*textJson, "clip_text_model"},
                            std::pair{&*visionJson, "clip_vision_model"}})
    if (llvm::Error error = checkConfigKeys(*json, type, options))
      return std::move(error);
  auto text = readTextConfig(*textJson);
  if (!text)
    return text.takeError();
  auto vision = readCLIPVisionConfig(*visionJson);
  if (!vision)
    return vision.takeError();
  auto shape = resolveInputShape(options, "clip", "max_position_embeddings",
                                 text->maxPositions);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "clip", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  Type f32 = b.getF32Type();
  int64_t B = shape->batch, S = shape->seq;
  auto idsType = RankedTensorType::get({B, S}, b.getI64Type());
  auto pixels = pixelsType(context, *vision, B);
  auto embedsType = RankedTensorType::get({B, projection}, f32);
  auto logitsType = RankedTensorType::get({B, B}, f32);

  // The projections to the shared embedding space, unit length.
  auto imageEmbeds = [&](Value pixelValues) {
    TowerOutputs out = visionTower(g, *vision, factor, pixelValues, B);
    return g.l2Normalize(g.linear(
        out.pooled, "visual_projection", vision->hidden, projection,
        /*bias=*/false, std::pow(double(vision->hidden), -0.5) * factor));
  };
  auto textEmbeds = [&](Value ids, Value mask) {
    TowerOutputs out = textTower(g, *text, factor, ids, mask, B);
    return g.l2Normalize(g.linear(
        out.pooled, "text_projection", text->hidden, projection,
        /*bias=*/false, std::pow(double(text->hidden), -0.5) * factor));
  };

  // What a driver needs to feed the model: the id it pools at, the
  // vocabulary, the longest text, and the image's shape.
  g.setModelInfo({b.getNamedAttr("model_type", b.getStringAttr("clip")),
                  b.getNamedAttr("text_eos_token_id",
                                 b.getI64IntegerAttr(text->eosTokenId)),
                  b.getNamedAttr("text_vocab_size",
                                 b.getI64IntegerAttr(text->vocab)),
                  b.getNamedAttr("text_max_length",
                                 b.getI64IntegerAttr(text->maxPositions)),
                  b.getNamedAttr("image_size",
                                 b.getDenseI64ArrayAttr(vision->image)),
                  b.getNamedAttr("num_channels",
                                 b.getI64IntegerAttr(vision->channels))});
  func::FuncOp forward = g.beginFunction(
      "forward", {idsType, pixels, idsType},
      {logitsType, logitsType, embedsType, embedsType});
  g.nameEntryPoint(forward, {"input_ids", "pixel_values", "attention_mask"},
                   {"logits_per_image", "logits_per_text", "text_embeds",
                    "image_embeds"});
  g.limitSequence(forward, text->maxPositions);
  {
    Value textOut =
        textEmbeds(forward.getArgument(0), forward.getArgument(2));
    Value imageOut = imageEmbeds(forward.getArgument(1));
    Value scale = ExpOp::create(
        b, loc, g.constantParam("logit_scale", {}, logitScale));
    Value similarity = MatmulOp::create(b, loc, textOut, imageOut,
                                        /*transpose_lhs=*/false,
                                        /*transpose_rhs=*/true);
    Value perText = MulOp::create(b, loc, similarity, scale);
    Value perImage = g.transpose(perText, {1, 0});
    g.endFunction({perImage, perText, textOut, imageOut});
  }

  func::FuncOp encodeImage =
      g.beginFunction("encode_image", {pixels}, {embedsType});
  g.nameEntryPoint(encodeImage, {"pixel_values"}, {"image_embeds"});
  g.endFunction({imageEmbeds(encodeImage.getArgument(0))});

  func::FuncOp encodeText =
      g.beginFunction("encode_text", {idsType, idsType}, {embedsType});
  g.nameEntryPoint(encodeText, {"input_ids", "attention_mask"},
                   {"text_embeds"});
  g.limitSequence(encodeText, text->maxPositions);
  g.endFunction({textEmbeds(encodeText.getArgument(0),
                            encodeText.getArgument(1))});
  return g.takeModule();
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildCLIPTextModel(MLIRContext &context,
                                       const llvm::json::Object &json,
                                       const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "clip_text_model"))
    return std::move(error);
  auto text = readTextConfig(json);
  if (!text)
    return text.takeError();
  auto shape = resolveInputShape(options, "clip_text_model",
                                 "max_position_embeddings", text->maxPositions);
  if (!shape)
    return shape.takeError();
  GraphBuilder g(context, "clip_text_model", options.compute);
  OpBuilder &b = g.getBuilder();
  Type f32 = b.getF32Type();
  int64_t B = shape->batch, S = shape->seq;
  auto idsType = RankedTensorType::get({B, S}, b.getI64Type());
  func::FuncOp forward = g.beginFunction(
      "forward", {idsType, idsType},
      {RankedTensorType::get({B, S, text->hidden}, f32),
       RankedTensorType::get({B, text->hidden}, f32)});
  g.nameEntryPoint(forward, {"input_ids", "attention_mask"},
                   {"last_hidden_state", "pooler_output"});
  g.limitSequence(forward, text->maxPositions);
  TowerOutputs out = textTower(g, *text, text->initFactor,
                               forward.getArgument(0), forward.getArgument(1), B);
  g.endFunction({out.lastHidden, out.pooled});
  return g.takeModule();
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildCLIPVisionModel(MLIRContext &context,
                                         const llvm::json::Object &json,
                                         const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "clip_vision_model"))
    return std::move(error);
  auto vision = readCLIPVisionConfig(json);
  if (!vision)
    return vision.takeError();
  GraphBuilder g(context, "clip_vision_model", options.compute);
  Type f32 = g.getBuilder().getF32Type();
  int64_t B = dynamicIfUnset(options.batch);
  func::FuncOp forward = g.beginFunction(
      "forward", {pixelsType(context, *vision, B)},
      {RankedTensorType::get({B, sequenceLength(*vision), vision->hidden}, f32),
       RankedTensorType::get({B, vision->hidden}, f32)});
  g.nameEntryPoint(forward, {"pixel_values"},
                   {"last_hidden_state", "pooler_output"});
  TowerOutputs out = visionTower(g, *vision, vision->initFactor,
                                 forward.getArgument(0), B);
  g.endFunction({out.lastHidden, out.pooled});
  return g.takeModule();
}
