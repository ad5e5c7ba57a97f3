//===- llama.cpp - LLaMA (Hugging Face LlamaForCausalLM) ------------------===//
//
// LLaMA as Hugging Face's LlamaForCausalLM computes it: token embeddings,
// pre-norm blocks with RMSNorm, rotary position embeddings on queries and
// keys, grouped-query causal attention and a SwiGLU MLP, a final RMSNorm and
// an untied `lm_head` (tied to the embeddings with `tie_word_embeddings`).
// Linear weights are torch.nn.Linear `[out, in]`.
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
struct LlamaConfig {
  int64_t vocab, hidden, intermediate, layers, heads, kvHeads, headDim,
      maxPositions;
  double eps, theta, initStd;
  bool tied, attentionBias, mlpBias;
  Activation activation;
  /// RoPE frequencies of `rope_scaling`; empty for theta's own.
  std::vector<double> invFreq;
  /// Per layer, the query heads and MLP channels removed (`pruned_heads`,
  /// `pruned_ffn_channels`).
  std::vector<std::vector<int64_t>> prunedHeads, prunedChannels;
};

/// The frequencies of unscaled RoPE: 1 / theta^(2i / D).
std::vector<double> ropeFrequencies(double theta, int64_t headDim) {
  std::vector<double> inv;
  for (int64_t i = 0; i < headDim / 2; ++i)
    inv.push_back(1.0 / std::pow(theta, double(2 * i) / double(headDim)));
  return inv;
}

/// Reads `rope_scaling` as transformers 4.44's ROPE_INIT_FUNCTIONS do:
/// "default"; "linear" (frequencies / factor); "dynamic" (NTK scaling, which
/// changes nothing up to max_position_embeddings, the longest sequence Kiln
/// takes); "llama3" (Llama 3.1's per-wavelength blend). The others (yarn,
/// longrope) are refused, as are keys a type does not have.
void readRopeScaling(ConfigReader &reader, LlamaConfig &c) {
  const llvm::json::Value *value = reader.getValue("rope_scaling");
  if (!value)
    return;
  const llvm::json::Object *scaling = value->getAsObject();
  if (!scaling) {
    reader.fail("key 'rope_scaling' must be an object or null");
    return;
  }
  std::optional<llvm::StringRef> type;
  for (llvm::StringRef key : {"rope_type", "type"})
    if (const llvm::json::Value *v = scaling->get(key))
      type = v->getAsString();
  if (!type) {
    reader.fail("key 'rope_scaling' needs a string 'rope_type'");
    return;
  }
  llvm::SmallVector<llvm::StringRef> allowed{"rope_type", "type"};
  auto number = [&](llvm::StringRef key, bool required,
                    double defaultValue) -> double {
    allowed.push_back(key);
    const llvm::json::Value *v = scaling->get(key);
    if (!v || v->kind() == llvm::json::Value::Null) {
      if (required)
        reader.fail("key 'rope_scaling' of type '" + *type + "' needs '" +
                    key + "'");
      return defaultValue;
    }
    std::optional<double> x = v->getAsNumber();
    if (!x || !(*x > 0) || !std::isfinite(*x)) {
      reader.fail("key 'rope_scaling': '" + key +
                  "' must be a positive number");
      return defaultValue;
    }
    return *x;
  };

  std::vector<double> inv = ropeFrequencies(c.theta, c.headDim);
  if (*type == "default") {
  } else if (*type == "linear" || *type == "dynamic") {
    double factor = number("factor", /*required=*/true, 1.0);
    if (!reader.failed() && factor < 1)
      reader.fail("key 'rope_scaling': 'factor' must be at least 1");
    if (*type == "linear")
      for (double &f : inv)
        f /= factor;
  } else if (*type == "llama3") {
    double factor = number("factor", true, 1.0);
    double low = number("low_freq_factor", true, 1.0);
    double high = number("high_freq_factor", true, 2.0);
    double context = number("original_max_position_embeddings", true, 1.0);
    if (!reader.failed() && high <= low)
      reader.fail("key 'rope_scaling': 'high_freq_factor' must exceed "
                  "'low_freq_factor'");
    double lowWavelen = context / low, highWavelen = context / high;
    for (double &f : inv) {
      double wavelen = 2 * M_PI / f;
      if (wavelen > lowWavelen) {
        f /= factor;
      } else if (wavelen >= highWavelen) {
        double smooth = (context / wavelen - low) / (high - low);
        f = (1 - smooth) * f / factor + smooth * f;
      }
    }
  } else {
    reader.fail("key 'rope_scaling' has type '" + *type +
                "'; Kiln builds default, linear, dynamic and llama3");
    return;
  }
  for (const auto &entry : *scaling)
    if (!llvm::is_contained(allowed, llvm::StringRef(entry.first)))
      reader.fail("key 'rope_scaling' of type '" + *type + "' has '" +
                  llvm::StringRef(entry.first) +
                  "', which Kiln does not build");
  if (*type == "linear" || *type == "llama3")
    c.invFreq = std::move(inv);
}

llvm::Expected<LlamaConfig> readConfig(const llvm::json::Object &json) {
  ConfigReader reader(json, "llama");
  LlamaConfig c;
  c.vocab = reader.getInt("vocab_size");
  c.hidden = reader.getInt("hidden_size");
  c.intermediate = reader.getInt("intermediate_size");
  c.layers = reader.getLayerCount("num_hidden_layers");
  c.heads = reader.getInt("num_attention_heads");
  c.kvHeads = reader.getInt("num_key_value_heads", c.heads, /*min=*/1);
  c.maxPositions = reader.getInt("max_position_embeddings", 2048, 1);
  c.eps = reader.getPositiveNumber("rms_norm_eps", 1e-6);
  c.theta = reader.getPositiveNumber("rope_theta", 10000.0);
  c.initStd = reader.getPositiveNumber("initializer_range", 0.02);
  c.tied = reader.getBool("tie_word_embeddings", false);
  c.attentionBias = reader.getBool("attention_bias", false);
  c.mlpBias = reader.getBool("mlp_bias", false);
  c.activation = reader.getActivation("hidden_act", "silu");
  if (reader.isSet("head_dim")) {
    c.headDim = reader.getInt("head_dim");
  } else {
    reader.requireDivisible("hidden_size", c.hidden, "num_attention_heads",
                            c.heads);
    c.headDim = c.heads > 0 ? c.hidden / c.heads : 1;
  }
  if (!reader.failed() && c.headDim % 2 != 0)
    reader.fail(llvm::formatv("the head dimension ({0}) must be even for "
                              "rotary embeddings",
                              c.headDim));
  reader.requireDivisible("num_attention_heads", c.heads, "num_key_value_heads",
                          c.kvHeads);
  if (!reader.failed())
    readRopeScaling(reader, c);
  // HF's pretraining_tp > 1 computes each projection in slices of
  // size/tp, the same function when every size divides (it drops the
  // remainder otherwise, e.g. the last logits of an odd vocabulary).
  int64_t tp = reader.getInt("pretraining_tp", 1, /*min=*/1);
  if (tp > 1) {
    reader.requireDivisible("vocab_size", c.vocab, "pretraining_tp", tp);
    reader.requireDivisible("hidden_size", c.hidden, "pretraining_tp", tp);
    reader.requireDivisible("intermediate_size", c.intermediate,
                            "pretraining_tp", tp);
    reader.requireDivisible("num_attention_heads·head_dim",
                            c.heads * c.headDim, "pretraining_tp", tp);
    reader.requireDivisible("num_key_value_heads·head_dim",
                            c.kvHeads * c.headDim, "pretraining_tp", tp);
    // Its sliced projections are bias-free.
    if (c.attentionBias || c.mlpBias)
      reader.fail("key 'pretraining_tp' > 1 with 'attention_bias' or "
                  "'mlp_bias': transformers then computes without the "
                  "biases; build it with pretraining_tp 1");
  }
  // Structured pruning (kiln-compile --prune heads|ffn): per layer, the
  // query heads removed (whole groups of a key/value head) and the MLP
  // channels.
  c.prunedHeads =
      reader.getPrunedUnits("pruned_heads", c.layers, c.heads, "heads");
  c.prunedChannels = reader.getPrunedUnits(
      "pruned_ffn_channels", c.layers, c.intermediate, "MLP channels");
  int64_t group = c.kvHeads > 0 ? c.heads / c.kvHeads : 1;
  for (auto [layer, removed] : llvm::enumerate(c.prunedHeads)) {
    for (int64_t head : removed)
      for (int64_t other = head / group * group;
           other < (head / group + 1) * group && !reader.failed(); ++other)
        if (!llvm::is_contained(removed, other))
          reader.fail(llvm::formatv(
              "key 'pruned_heads', layer {0}: head {1} shares a key/value "
              "head with head {2}, which is kept; remove all {3} heads of a "
              "group or none",
              layer, head, other, group));
  }
  if (tp > 1 && (llvm::any_of(c.prunedHeads, [](auto &r) { return !r.empty(); }) ||
                 llvm::any_of(c.prunedChannels, [](auto &r) { return !r.empty(); })))
    reader.fail("pruned heads or MLP channels with 'pretraining_tp' > 1: "
                "build it with pretraining_tp 1");
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return c;
}
} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::kiln::models::buildLlama(MLIRContext &context,
                               const llvm::json::Object &json,
                               const BuildOptions &options) {
  auto config = readConfig(json);
  if (!config)
    return config.takeError();
  const LlamaConfig &c = *config;
  auto shape = resolveInputShape(options, "llama", "max_position_embeddings",
                                 c.maxPositions);
  if (!shape)
    return shape.takeError();

  GraphBuilder g(context, "llama", options.compute);
  OpBuilder &b = g.getBuilder();
  Location loc = g.getLoc();

  auto rmsNorm = [&](Value x, const std::string &name) -> Value {
    Value weight = g.onesParam(name, {c.hidden});
    return RMSNormOp::create(b, loc, x, weight, b.getF64FloatAttr(c.eps));
  };
  FloatAttr theta = b.getF64FloatAttr(c.theta);
  DenseF64ArrayAttr invFreq =
      c.invFreq.empty() ? DenseF64ArrayAttr()
                        : b.getDenseF64ArrayAttr(c.invFreq);
  // The embedding table the body of the function being built read, for a
  // tied head.
  Value embed;

  auto body = [&](CausalLMStep &step) -> Value {
    Value positions = step.getPositions();
    embed = g.normalParam("model.embed_tokens.weight", {c.vocab, c.hidden},
                          c.initStd);
    Value h = EmbeddingOp::create(b, loc, embed, step.getIds());
    for (int64_t i = 0; i < c.layers; ++i) {
      std::string p = llvm::formatv("model.layers.{0}", i).str();

      // Grouped-query causal self-attention with RoPE.
      Value x = rmsNorm(h, p + ".input_layernorm.weight");
      // A layer with pruned heads projects to the heads it keeps.
      int64_t heads = c.heads - static_cast<int64_t>(c.prunedHeads[i].size());
      int64_t kvHeads = heads / (c.heads / c.kvHeads);
      int64_t qDim = heads * c.headDim, kvDim = kvHeads * c.headDim;
      Value q = g.linear(x, p + ".self_attn.q_proj", c.hidden, qDim,
                         c.attentionBias, c.initStd);
      Value k = g.linear(x, p + ".self_attn.k_proj", c.hidden, kvDim,
                         c.attentionBias, c.initStd);
      Value v = g.linear(x, p + ".self_attn.v_proj", c.hidden, kvDim,
                         c.attentionBias, c.initStd);
      q = RopeOp::create(b, loc, g.splitHeads(q, heads, c.headDim),
                         positions, theta, invFreq);
      k = RopeOp::create(b, loc, g.splitHeads(k, kvHeads, c.headDim),
                         positions, theta, invFreq);
      v = g.splitHeads(v, kvHeads, c.headDim);
      Value attn = step.attend(i, q, k, v, /*scale=*/FloatAttr());
      Value o = g.linear(g.mergeHeads(attn), p + ".self_attn.o_proj", qDim,
                         c.hidden, c.attentionBias, c.initStd);
      h = AddOp::create(b, loc, h, o);

      // Gated MLP: down(act(gate(x)) * up(x)), SwiGLU with the default silu.
      x = rmsNorm(h, p + ".post_attention_layernorm.weight");
      int64_t inner =
          c.intermediate - static_cast<int64_t>(c.prunedChannels[i].size());
      Value gate = g.linear(x, p + ".mlp.gate_proj", c.hidden, inner,
                            c.mlpBias, c.initStd);
      Value up = g.linear(x, p + ".mlp.up_proj", c.hidden, inner, c.mlpBias,
                          c.initStd);
      x = MulOp::create(b, loc, g.activation(gate, c.activation), up);
      x = g.linear(x, p + ".mlp.down_proj", inner, c.hidden, c.mlpBias,
                   c.initStd);
      h = AddOp::create(b, loc, h, x);
    }
    return rmsNorm(h, "model.norm.weight");
  };
  auto head = [&](Value h) -> Value {
    if (c.tied)
      return MatmulOp::create(b, loc, h, embed,
                              /*transpose_lhs=*/false, /*transpose_rhs=*/true);
    return g.linear(h, "lm_head", c.hidden, c.vocab, /*bias=*/false,
                    c.initStd);
  };
  CausalLMSpec spec{shape->batch, shape->seq, c.vocab, c.maxPositions,
                    c.layers,     c.kvHeads,  c.headDim};
  for (const std::vector<int64_t> &removed : c.prunedHeads)
    spec.layerKVHeads.push_back(
        (c.heads - static_cast<int64_t>(removed.size())) /
        (c.heads / c.kvHeads));
  if (llvm::Error error = g.buildCausalLM(options, spec, body, head))
    return std::move(error);
  return g.takeModule();
}
