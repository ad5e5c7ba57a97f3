//===- vit.cpp - ViT (Hugging Face ViTModel) ------------------------------===//
//
// The Vision Transformer as Hugging Face's ViTModel computes it (with the
// pooler): the image cut into patches by a convolution with kernel = stride
// = patch size, a learned class token in front, learned position
// embeddings, pre-norm encoder layers of bidirectional self-attention and a
// GELU MLP, a final LayerNorm, and the pooler `tanh(dense(h[:, 0]))`.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

llvm::Expected<ViTConfig>
mlir::kiln::models::readViTConfig(const llvm::json::Object &json) {
  // Defaults are transformers' ViTConfig's: save_pretrained leaves keys at
  // their defaults out of nested configs.
  ConfigReader reader(json, "vit");
  ViTConfig c;
  c.hidden = reader.getInt("hidden_size", 768, 1);
  c.layers = reader.getLayerCount("num_hidden_layers", 12);
  c.heads = reader.getInt("num_attention_heads", 12, 1);
  c.intermediate = reader.getInt("intermediate_size", 3072, 1);
  c.channels = reader.getInt("num_channels", 3, 1);
  c.image = reader.getSizePair("image_size", 224);
  c.patch = reader.getSizePair("patch_size", 16);
  c.eps = reader.getPositiveNumber("layer_norm_eps", 1e-12);
  c.initStd = reader.getPositiveNumber("initializer_range", 0.02);
  c.activation = reader.getActivation("hidden_act", "gelu");
  c.qkvBias = reader.getBool("qkv_bias", true);
  reader.requireDivisible("hidden_size", c.hidden, "num_attention_heads",
                          c.heads);
  reader.requirePatchFits(c.patch, c.image);
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}

Value mlir::kiln::models::vitLastHiddenState(GraphBuilder &g,
                                             const ViTConfig &c, Value pixels,
                                             StringRef prefix) {
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  std::string at = prefix.str();
  Value h = g.patchEmbedding(g.toCompute(pixels),
                             at + "embeddings.patch_embeddings.projection",
                             c.hidden, c.patch, /*bias=*/true, c.initStd);
  h = g.prependToken(h, g.normalParam(at + "embeddings.cls_token",
                                      {1, 1, c.hidden}, c.initStd));
  h = AddOp::create(b, loc, h,
                    g.normalParam(at + "embeddings.position_embeddings",
                                  {1, c.patches() + 1, c.hidden}, c.initStd));

  EncoderLayerSpec spec{c.hidden,     c.heads,   c.intermediate, c.eps,
                        c.activation, c.qkvBias, c.initStd,      c.initStd,
                        c.initStd,    c.initStd};
  for (int64_t i = 0; i < c.layers; ++i) {
    std::string p = llvm::formatv("{0}encoder.layer.{1}", at, i).str();
    EncoderLayerNames names{
        p + ".layernorm_before",        p + ".attention.attention.query",
        p + ".attention.attention.key", p + ".attention.attention.value",
        p + ".attention.output.dense",  p + ".layernorm_after",
        p + ".intermediate.dense",      p + ".output.dense"};
    h = g.preNormEncoderLayer(h, names, spec, /*mask=*/Value(),
                              /*causal=*/false);
  }
  return g.layerNorm(h, at + "layernorm", c.hidden, c.eps);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildViT(MLIRContext &context,
                             const llvm::json::Object &json,
                             const BuildOptions &options) {
  if (llvm::Error error = refuseCausalLMInputs(options, "vit"))
    return std::move(error);
  auto config = readViTConfig(json);
  if (!config)
    return config.takeError();
  const ViTConfig &c = *config;

  GraphBuilder g(context, "vit", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  Type f32 = b.getF32Type();
  int64_t B = dynamicIfUnset(options.batch);
  int64_t patches = c.patches();
  auto pixelsType =
      RankedTensorType::get({B, c.channels, c.image[0], c.image[1]}, f32);
  auto hiddenType = RankedTensorType::get({B, patches + 1, c.hidden}, f32);
  auto pooledType = RankedTensorType::get({B, c.hidden}, f32);
  func::FuncOp forward =
      g.beginFunction("forward", {pixelsType}, {hiddenType, pooledType});
  g.nameEntryPoint(forward, {"pixel_values"},
                   {"last_hidden_state", "pooler_output"});

  Value h = vitLastHiddenState(g, c, forward.getArgument(0), "");

  // Pooler: tanh(dense(h[:, 0])).
  Value first = SliceOp::create(b, loc, h, /*axis=*/1, /*start=*/0, /*end=*/1);
  first = g.reshape(first, {B, c.hidden});
  Value pooled = TanhOp::create(
      b, loc,
      g.linear(first, "pooler.dense", c.hidden, c.hidden, true, c.initStd));
  g.endFunction({h, pooled});
  return g.takeModule();
}
