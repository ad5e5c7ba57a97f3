//===- vision_encoder_decoder.cpp - A captioner that cross-attends --------===//
//
// Hugging Face's VisionEncoderDecoderModel with a `vit` or
// `clip_vision_model` encoder and a `gpt2` decoder (`add_cross_attention`):
// the encoder's last hidden state (every token, class token included),
// projected to the decoder's width by `enc_to_dec_proj` when the widths
// differ, is what each decoder block cross-attends to after its causal
// self-attention. The image is never in the decoder's sequence: its
// positions are the caption's. With `cross_attention_gate` (a Kiln
// extension) each block's cross-attention output is scaled by a learned
// tanh gate that starts at 0, as Flamingo's gated cross-attention.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

namespace {
llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "vision-encoder-decoder config: " +
                                     message.str());
}

/// The encoder's model_type (vit or clip_vision_model).
llvm::Expected<std::string> encoderType(ConfigReader &reader) {
  const llvm::json::Value *value = reader.getValue("encoder");
  const llvm::json::Object *object = value ? value->getAsObject() : nullptr;
  if (!object)
    return fail("key 'encoder' must be an object (the image encoder's config)");
  std::optional<StringRef> type = object->get("model_type")
                                      ? object->get("model_type")->getAsString()
                                      : std::nullopt;
  if (!type || (*type != "vit" && *type != "clip_vision_model"))
    return fail("key 'encoder' has model_type '" +
                (type ? type->str() : std::string("(none)")) +
                "'; Kiln builds vit and clip_vision_model encoders");
  return type->str();
}
} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildVisionEncoderDecoder(MLIRContext &context,
                                              const llvm::json::Object &json,
                                              const BuildOptions &options) {
  if (llvm::Error error =
          refuseCausalLMInputs(options, "vision-encoder-decoder"))
    return std::move(error);
  ConfigReader reader(json, "vision-encoder-decoder");
  auto type = encoderType(reader);
  if (!type)
    return type.takeError();
  auto encoderJson = nestedConfig(reader, "encoder", *type, *type);
  if (!encoderJson)
    return encoderJson.takeError();
  auto decoderJson = nestedConfig(reader, "decoder", "gpt2", "");
  if (!decoderJson)
    return decoderJson.takeError();
  bool gated = reader.getBool("cross_attention_gate", false);
  if (llvm::Error error = reader.takeError())
    return std::move(error);

  // The decoder's cross-attention keys are what this family is built on;
  // gpt2 alone refuses them, so they are checked here and left out of its
  // key check.
  // gpt2's other names of its keys (hidden_size for n_embd) hold nested too.
  auto resolved = resolveConfigAliases(*decoderJson, "gpt2");
  if (!resolved)
    return resolved.takeError();
  llvm::json::Object decoderKeys = std::move(*resolved);
  const llvm::json::Value *cross = decoderKeys.get("add_cross_attention");
  if (!cross || cross->getAsBoolean() != true)
    return fail("the decoder's add_cross_attention is not true: its blocks "
                "would not see the image (transformers' "
                "from_encoder_decoder_configs sets it)");
  decoderKeys.erase("add_cross_attention");
  decoderKeys.erase("is_decoder");
  if (llvm::Error error = checkConfigKeys(*encoderJson, *type, options))
    return std::move(error);
  if (llvm::Error error = checkConfigKeys(decoderKeys, "gpt2", options))
    return std::move(error);
  auto text = readGPT2Config(decoderKeys, options);
  if (!text)
    return text.takeError();
  const GPT2Config &t = *text;
  if (hasPrunedUnits(t))
    return fail("the decoder's pruned_heads and pruned_ffn_channels are not "
                "built with cross-attention");

  // The encoder's size and how its states are built.
  std::optional<ViTConfig> vit;
  std::optional<CLIPVisionConfig> clip;
  if (*type == "vit") {
    auto read = readViTConfig(*encoderJson);
    if (!read)
      return read.takeError();
    vit = *read;
  } else {
    auto read = readCLIPVisionConfig(*encoderJson);
    if (!read)
      return read.takeError();
    clip = *read;
  }
  int64_t encoderWidth = vit ? vit->hidden : clip->hidden;
  int64_t channels = vit ? vit->channels : clip->channels;
  std::array<int64_t, 2> image = vit ? vit->image : clip->image;
  auto shape = resolveInputShape(options, "vision-encoder-decoder",
                                 "decoder.n_positions", t.positions);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "vision-encoder-decoder", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  int64_t B = shape->batch, S = shape->seq;
  auto idsType = RankedTensorType::get({B, S}, b.getI64Type());
  auto pixelsType =
      RankedTensorType::get({B, channels, image[0], image[1]}, b.getF32Type());
  auto logitsType = RankedTensorType::get({B, S, t.vocab}, b.getF32Type());
  g.setModelInfo(
      {b.getNamedAttr("model_type", b.getStringAttr("vision-encoder-decoder")),
       b.getNamedAttr("text_vocab_size", b.getI64IntegerAttr(t.vocab)),
       b.getNamedAttr("text_max_length", b.getI64IntegerAttr(t.positions)),
       b.getNamedAttr("image_size", b.getDenseI64ArrayAttr(image)),
       b.getNamedAttr("num_channels", b.getI64IntegerAttr(channels))});
  // forward(input_ids, pixel_values): input_ids are transformers'
  // decoder_input_ids.
  func::FuncOp forward =
      g.beginFunction("forward", {idsType, pixelsType}, {logitsType});
  g.nameEntryPoint(forward, {"input_ids", "pixel_values"}, {"logits"});
  g.limitSequence(forward, t.positions);

  Value pixels = forward.getArgument(1);
  Value states =
      vit ? vitLastHiddenState(g, *vit, pixels, "encoder.")
          : clipVisionHiddenStates(g, *clip, clip->initFactor, pixels,
                                   "encoder.vision_model.", clip->layers);
  if (encoderWidth != t.embd)
    states = g.linear(states, "enc_to_dec_proj", encoderWidth, t.embd,
                      /*bias=*/true, t.initStd);

  std::string prefix = "decoder.transformer.";
  Value ids = forward.getArgument(0);
  GPT2Tables tables = gpt2Tables(g, t, prefix);
  Value tokens = EmbeddingOp::create(b, loc, tables.wte, ids);
  Value positions =
      EmbeddingOp::create(b, loc, tables.wpe, g.positions(ids, 1));
  Value h = AddOp::create(b, loc, tokens, positions);
  GPT2CrossAttention seeImage{states, gated};
  h = gpt2Trunk(
      g, t, prefix, h,
      [&](int64_t, Value q, Value k, Value v, FloatAttr scale) {
        return g.causalAttention(q, k, v, scale);
      },
      &seeImage);
  g.endFunction({gpt2Head(g, t, h, tables.wte, "decoder.lm_head")});
  return g.takeModule();
}
