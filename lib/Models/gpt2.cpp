//===- gpt2.cpp - GPT-2 (Hugging Face GPT2LMHeadModel) --------------------===//
//
// GPT-2 as Hugging Face's GPT2LMHeadModel computes it: token plus learned
// position embeddings, pre-norm blocks of causal self-attention and a
// 4x MLP with the tanh GELU ("gelu_new"), a final LayerNorm, and logits
// from the token embedding (the LM head is tied to `transformer.wte`) or,
// with `tie_word_embeddings: false`, from `lm_head.weight`.
// Linear layers are Conv1D, whose weights are stored `[in, out]`.
//
//===----------------------------------------------------------------------===//

#include "ModelBuilderSupport.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::models;

llvm::Expected<GPT2Config>
mlir::kiln::models::readGPT2Config(const llvm::json::Object &json,
                                   const BuildOptions &options) {
  ConfigReader reader(json, "gpt2");
  GPT2Config c;
  c.vocab = reader.getInt("vocab_size");
  c.positions = reader.getInt("n_positions");
  c.embd = reader.getInt("n_embd");
  c.layers = reader.getLayerCount("n_layer");
  c.heads = reader.getInt("n_head");
  c.inner = reader.getInt("n_inner", 4 * c.embd, /*min=*/1);
  c.eps = reader.getPositiveNumber("layer_norm_epsilon", 1e-5);
  c.initStd = reader.getPositiveNumber("initializer_range", 0.02);
  c.activation = reader.getActivation("activation_function", "gelu_new");
  c.tied = reader.getBool("tie_word_embeddings", true);
  c.scaleAttention = reader.getBool("scale_attn_weights", true);
  c.scaleByInverseLayer =
      reader.getBool("scale_attn_by_inverse_layer_idx", false);
  // HF computes the scores and softmax in f32 with this key; Kiln's f32
  // attention already does, its bf16/f16 attention does not.
  if (reader.getBool("reorder_and_upcast_attn", false) &&
      options.compute != ComputeType::f32)
    reader.fail("key 'reorder_and_upcast_attn' is true, which needs f32 "
                "attention scores; build it with --dtype f32");
  reader.requireDivisible("n_embd", c.embd, "n_head", c.heads);
  c.prunedHeads =
      reader.getPrunedUnits("pruned_heads", c.layers, c.heads, "heads");
  c.prunedChannels = reader.getPrunedUnits("pruned_ffn_channels", c.layers,
                                           c.inner, "MLP channels");
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}

bool mlir::kiln::models::hasPrunedUnits(const GPT2Config &c) {
  auto any = [](const std::vector<std::vector<int64_t>> &layers) {
    return llvm::any_of(layers, [](const auto &p) { return !p.empty(); });
  };
  return any(c.prunedHeads) || any(c.prunedChannels);
}

GPT2Tables mlir::kiln::models::gpt2Tables(GraphBuilder &g, const GPT2Config &c,
                                          StringRef prefix) {
  Value wte = g.normalParam((prefix + "wte.weight").str(), {c.vocab, c.embd},
                            c.initStd);
  Value wpe = g.normalParam((prefix + "wpe.weight").str(),
                            {c.positions, c.embd}, c.initStd);
  return {wte, wpe};
}

Value mlir::kiln::models::gpt2Head(GraphBuilder &g, const GPT2Config &c,
                                   Value h, Value wte, StringRef lmHead) {
  // A tied lm_head: logits = h · wteᵀ.
  if (c.tied)
    return MatmulOp::create(g.getBuilder(), g.getLoc(), h, wte,
                            /*transpose_lhs=*/false, /*transpose_rhs=*/true);
  return g.linear(h, lmHead, c.embd, c.vocab, /*bias=*/false, c.initStd);
}

Value mlir::kiln::models::gpt2Trunk(GraphBuilder &g, const GPT2Config &c,
                                    StringRef prefix, Value h, AttendFn attend,
                                    const GPT2CrossAttention *cross) {
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();
  // HF scales the residual projections' init by 1/sqrt(2·n_layer).
  double projStd = c.initStd / std::sqrt(2.0 * std::max<int64_t>(c.layers, 1));
  int64_t headDim = c.embd / c.heads;
  for (int64_t i = 0; i < c.layers; ++i) {
    std::string p = llvm::formatv("{0}h.{1}", prefix, i).str();

    // Causal self-attention.
    Value x = g.layerNorm(h, p + ".ln_1", c.embd, c.eps);
    // A layer with pruned heads projects to the heads it keeps.
    int64_t heads = c.heads - static_cast<int64_t>(c.prunedHeads[i].size());
    int64_t width = heads * headDim;
    Value qkv = g.conv1d(x, p + ".attn.c_attn", c.embd, 3 * width, c.initStd);
    Value q = SliceOp::create(b, loc, qkv, 2, 0, width);
    Value k = SliceOp::create(b, loc, qkv, 2, width, 2 * width);
    Value v = SliceOp::create(b, loc, qkv, 2, 2 * width, 3 * width);
    // Named locals keep the ops in q, k, v order.
    Value qh = g.splitHeads(q, heads, headDim);
    Value kh = g.splitHeads(k, heads, headDim);
    Value vh = g.splitHeads(v, heads, headDim);
    // HF: scores / √head_dim (scale_attn_weights), then / (i + 1)
    // (scale_attn_by_inverse_layer_idx).
    FloatAttr scale;
    if (!c.scaleAttention || c.scaleByInverseLayer) {
      double s = c.scaleAttention ? 1.0 / std::sqrt(double(headDim)) : 1.0;
      if (c.scaleByInverseLayer)
        s /= double(i + 1);
      scale = b.getF64FloatAttr(s);
    }
    Value attn = attend(i, qh, kh, vh, scale);
    Value proj = g.conv1d(g.mergeHeads(attn), p + ".attn.c_proj", width, c.embd,
                          projStd);
    h = AddOp::create(b, loc, h, proj);

    if (cross) {
      // Cross-attention to the encoder's states (every head; no mask).
      x = g.layerNorm(h, p + ".ln_cross_attn", c.embd, c.eps);
      Value cq =
          g.conv1d(x, p + ".crossattention.q_attn", c.embd, c.embd, c.initStd);
      Value ckv = g.conv1d(cross->states, p + ".crossattention.c_attn", c.embd,
                           2 * c.embd, c.initStd);
      Value ck = SliceOp::create(b, loc, ckv, 2, 0, c.embd);
      Value cv = SliceOp::create(b, loc, ckv, 2, c.embd, 2 * c.embd);
      Value cqh = g.splitHeads(cq, c.heads, headDim);
      Value ckh = g.splitHeads(ck, c.heads, headDim);
      Value cvh = g.splitHeads(cv, c.heads, headDim);
      Value seen = AttentionOp::create(b, loc, cqh, ckh, cvh, /*mask=*/Value(),
                                       /*key_lengths=*/Value(),
                                       /*causal=*/false, scale);
      Value out = g.conv1d(g.mergeHeads(seen), p + ".crossattention.c_proj",
                           c.embd, c.embd, projStd);
      if (cross->gated) {
        Value gate = TanhOp::create(
            b, loc, g.zerosParam(p + ".crossattention.gate", {}));
        out = MulOp::create(b, loc, out, gate);
      }
      h = AddOp::create(b, loc, h, out);
    }

    // MLP.
    x = g.layerNorm(h, p + ".ln_2", c.embd, c.eps);
    int64_t inner = c.inner - static_cast<int64_t>(c.prunedChannels[i].size());
    x = g.conv1d(x, p + ".mlp.c_fc", c.embd, inner, c.initStd);
    x = g.activation(x, c.activation);
    x = g.conv1d(x, p + ".mlp.c_proj", inner, c.embd, projStd);
    h = AddOp::create(b, loc, h, x);
  }
  return g.layerNorm(h, (prefix + "ln_f").str(), c.embd, c.eps);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildGPT2(MLIRContext &context,
                              const llvm::json::Object &json,
                              const BuildOptions &options) {
  auto config = readGPT2Config(json, options);
  if (!config)
    return config.takeError();
  const GPT2Config &c = *config;
  auto shape = resolveInputShape(options, "gpt2", "n_positions", c.positions);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "gpt2", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();

  int64_t headDim = c.embd / c.heads;
  // The token table the body of the function being built read, for a tied
  // head.
  Value wte;

  auto body = [&](CausalLMStep &step) -> Value {
    Value ids = step.getIds();
    GPT2Tables tables = gpt2Tables(g, c, "transformer.");
    wte = tables.wte;
    Value wpe = tables.wpe;
    Value tokens = EmbeddingOp::create(b, loc, wte, ids);
    Value positions = EmbeddingOp::create(
        b, loc, wpe,
        step.getPositions() ? step.getPositions() : g.positions(ids, /*dim=*/1));
    Value h = AddOp::create(b, loc, tokens, positions);

    return gpt2Trunk(
        g, c, "transformer.", h,
        [&](int64_t layer, Value q, Value k, Value v, FloatAttr scale) {
          return step.attend(layer, q, k, v, scale);
        });
  };
  auto head = [&](Value h) { return gpt2Head(g, c, h, wte, "lm_head"); };
  CausalLMSpec spec{shape->batch, shape->seq, c.vocab, c.positions,
                    c.layers,     c.heads,    headDim};
  for (const std::vector<int64_t> &pruned : c.prunedHeads)
    spec.layerKVHeads.push_back(c.heads - static_cast<int64_t>(pruned.size()));
  if (llvm::Error error = g.buildCausalLM(options, spec, body, head))
    return std::move(error);
  return g.takeModule();
}
