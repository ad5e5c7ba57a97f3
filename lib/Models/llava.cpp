//===- llava.cpp - A captioner: LLaVA's image prefix on a GPT-2 decoder ---===//
//
// Hugging Face's LlavaForConditionalGeneration with a `clip_vision_model`
// image tower and a `gpt2` language model: the tower's hidden states at
// `vision_feature_layer` (without the class token under the "default"
// strategy) go through a two-layer MLP projector (`linear_1`, the
// projector's activation, `linear_2`) into the decoder's width, and stand
// in front of the caption's token embeddings as a prefix; GPT-2 adds its
// learned positions to the whole sequence (image tokens at 0..P-1) and runs
// its causal blocks over it. The logits are those of the caption's
// positions, so the language-model loss trains captioning as it is.
//
// transformers marks where the image goes with `image_token_index` in
// input_ids; Kiln's forward takes the image as the prefix of every row and
// input_ids as the text after it, which is transformers' output for
// `[image_token_index] + input_ids` from position P on.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
struct LlavaConfig {
  Activation projectorActivation;
  /// The vision tower's layers run (transformers' vision_feature_layer as
  /// an index into hidden_states).
  int64_t featureLayers;
  /// Whether the class token is kept ("full") or dropped ("default").
  bool keepClassToken;
};

llvm::Expected<LlavaConfig> readConfig(ConfigReader &reader,
                                       const CLIPVisionConfig &vision) {
  LlavaConfig c;
  c.projectorActivation = reader.getActivation("projector_hidden_act", "gelu");
  std::string strategy =
      reader.getString("vision_feature_select_strategy", "default");
  if (strategy != "default" && strategy != "full")
    reader.fail("key 'vision_feature_select_strategy' must be \"default\" "
                "(drop the class token) or \"full\", not \"" +
                strategy + "\"");
  c.keepClassToken = strategy == "full";
  int64_t layer =
      reader.getInt("vision_feature_layer", -2, -kMaxConfigLayers - 1);
  // hidden_states holds the embeddings and each layer's output: L + 1.
  int64_t states = vision.layers + 1;
  c.featureLayers = layer < 0 ? states + layer : layer;
  if (!reader.failed() && (c.featureLayers < 0 || c.featureLayers >= states))
    reader.fail(llvm::formatv("key 'vision_feature_layer' is {0}, outside the "
                              "vision tower's {1} hidden states ({2}..{3})",
                              layer, states, -states, states - 1)
                    .str());
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}
} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildLlava(MLIRContext &context,
                               const llvm::json::Object &json,
                               const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "llava"))
    return std::move(error);
  ConfigReader reader(json, "llava");
  // transformers' LlavaConfig reads a text_config without model_type as
  // llama's.
  auto nestedText = nestedConfig(reader, "text_config", "gpt2", "llama");
  if (!nestedText)
    return nestedText.takeError();
  // gpt2's other names of its keys (hidden_size for n_embd) hold nested too.
  auto textJson = resolveConfigAliases(*nestedText, "gpt2");
  if (!textJson)
    return textJson.takeError();
  auto visionJson = nestedConfig(reader, "vision_config", "clip_vision_model",
                                 "clip_vision_model");
  if (!visionJson)
    return visionJson.takeError();
  // transformers' default tower is LLaVA-1.5's (1024 wide, 24 layers, 336
  // pixels), not CLIPVisionConfig's defaults: it must be written out.
  if (visionJson->empty())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "llava config: key 'vision_config' is missing; give the image "
        "tower's config (transformers' default is LLaVA-1.5's tower, which "
        "Kiln does not assume)");
  for (auto [nested, type] : {std::pair{&*textJson, "gpt2"},
                              std::pair{&*visionJson, "clip_vision_model"}})
    if (llvm::Error error = checkConfigKeys(*nested, type, options))
      return std::move(error);
  auto text = readGPT2Config(*textJson, options);
  if (!text)
    return text.takeError();
  auto vision = readCLIPVisionConfig(*visionJson);
  if (!vision)
    return vision.takeError();
  auto config = readConfig(reader, *vision);
  if (!config)
    return config.takeError();
  const LlavaConfig &c = *config;
  const GPT2Config &t = *text;
  if (hasPrunedUnits(t))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "llava: the text model's pruned_heads and pruned_ffn_channels are "
        "not built here; prune the captioner as a whole model");

  int64_t imageTokens = vision->patches() + (c.keepClassToken ? 1 : 0);
  int64_t maxText = t.positions - imageTokens;
  if (maxText < 1)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("llava: the image is {0} tokens, which leaves no room "
                      "for text in the text model's n_positions of {1}",
                      imageTokens, t.positions)
            .str());
  // One caption length per artifact (the logits are a static slice of the
  // sequence): --seq, or the longest.
  int64_t seq = options.seq > 0 ? options.seq : maxText;
  if (seq > maxText)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("llava: --seq {0} is more than the {1} text tokens the "
                      "text model's n_positions of {2} leaves after the "
                      "image's {3}",
                      seq, maxText, t.positions, imageTokens)
            .str());

  GraphBuilder g(context, "llava", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  int64_t B = dynamicIfUnset(options.batch);
  auto idsType = RankedTensorType::get({B, seq}, b.getI64Type());
  auto pixelsType = RankedTensorType::get(
      {B, vision->channels, vision->image[0], vision->image[1]},
      b.getF32Type());
  auto logitsType = RankedTensorType::get({B, seq, t.vocab}, b.getF32Type());

  // What a driver needs to feed the model.
  g.setModelInfo(
      {b.getNamedAttr("model_type", b.getStringAttr("llava")),
       b.getNamedAttr("text_vocab_size", b.getI64IntegerAttr(t.vocab)),
       b.getNamedAttr("text_max_length", b.getI64IntegerAttr(maxText)),
       b.getNamedAttr("image_tokens", b.getI64IntegerAttr(imageTokens)),
       b.getNamedAttr("image_size", b.getDenseI64ArrayAttr(vision->image)),
       b.getNamedAttr("num_channels", b.getI64IntegerAttr(vision->channels))});
  func::FuncOp forward =
      g.beginFunction("forward", {idsType, pixelsType}, {logitsType});
  g.nameEntryPoint(forward, {"input_ids", "pixel_values"}, {"logits"});

  // The image tokens in the decoder's width.
  Value features = clipVisionHiddenStates(
      g, *vision, vision->initFactor, forward.getArgument(1),
      "vision_tower.vision_model.", c.featureLayers);
  if (!c.keepClassToken)
    features = SliceOp::create(b, loc, features, /*axis=*/1, /*start=*/1,
                               /*end=*/imageTokens + 1);
  Value projected = g.linear(features, "multi_modal_projector.linear_1",
                             vision->hidden, t.embd, /*bias=*/true, t.initStd);
  projected = g.activation(projected, c.projectorActivation);
  projected = g.linear(projected, "multi_modal_projector.linear_2", t.embd,
                       t.embd, /*bias=*/true, t.initStd);

  // The image prefix, then the caption; positions over both.
  std::string prefix = "language_model.transformer.";
  GPT2Tables tables = gpt2Tables(g, t, prefix);
  Value tokens =
      EmbeddingOp::create(b, loc, tables.wte, forward.getArgument(0));
  Value h = ConcatOp::create(b, loc, ValueRange{projected, tokens},
                             /*axis=*/1);
  Value positions = EmbeddingOp::create(b, loc, tables.wpe, g.positions(h, 1));
  h = AddOp::create(b, loc, h, positions);
  h = gpt2Trunk(g, t, prefix, h,
                [&](int64_t, Value q, Value k, Value v, FloatAttr scale) {
                  return g.causalAttention(q, k, v, scale);
                });
  h = SliceOp::create(b, loc, h, /*axis=*/1, /*start=*/imageTokens,
                      /*end=*/imageTokens + seq);
  g.endFunction({gpt2Head(g, t, h, tables.wte, "language_model.lm_head")});
  return g.takeModule();
}
