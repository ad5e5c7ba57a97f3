//===- ModelBuilderTest.cpp - Tests of the model builders -----------------===//
//
// Builds the shipped configs and checks what a checkpoint loader depends
// on: parameter counts equal to the reference implementations', state-dict
// names and shapes, entry-point signatures, and clear errors for bad
// configs.
//
//===----------------------------------------------------------------------===//

#include "kiln/Models/ModelBuilder.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Verifier.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

using namespace mlir;
using namespace mlir::kiln;

namespace {

class ModelBuilderTest : public ::testing::Test {
protected:
  /// Builds `models/<name>.json`; fails the test on any error.
  OwningOpRef<ModuleOp> buildShipped(llvm::StringRef name,
                                     BuildOptions options = {}) {
    std::string path =
        std::string(KILN_MODELS_DIR) + "/" + name.str() + ".json";
    auto config = loadModelConfig(path);
    if (!config) {
      ADD_FAILURE() << llvm::toString(config.takeError());
      return {};
    }
    return build(*config, options);
  }

  OwningOpRef<ModuleOp> build(const llvm::json::Object &config,
                              BuildOptions options = {}) {
    auto module = buildModel(context, config, options);
    if (!module) {
      ADD_FAILURE() << llvm::toString(module.takeError());
      return {};
    }
    EXPECT_TRUE(succeeded(verify(**module)));
    return std::move(*module);
  }

  /// The error message `buildModel` gives for `config`, or "" on success.
  std::string buildError(const llvm::json::Object &config,
                         BuildOptions options = {}) {
    auto module = buildModel(context, config, options);
    if (module)
      return "";
    return llvm::toString(module.takeError());
  }

  /// Number of parameter elements whose name starts with one of `prefixes`
  /// (all parameters when empty).
  static int64_t
  countParams(ModuleOp module,
              std::initializer_list<llvm::StringRef> prefixes = {}) {
    int64_t total = 0;
    for (auto param : module.getOps<ParameterOp>()) {
      bool selected = prefixes.size() == 0;
      for (llvm::StringRef prefix : prefixes)
        selected |= param.getSymName().starts_with(prefix);
      if (selected)
        total += param.getTensorType().getNumElements();
    }
    return total;
  }

  static std::optional<std::vector<int64_t>> shapeOf(ModuleOp module,
                                                     llvm::StringRef name) {
    auto param = SymbolTable::lookupNearestSymbolFrom<ParameterOp>(
        module, StringAttr::get(module.getContext(), name));
    if (!param)
      return std::nullopt;
    auto shape = param.getTensorType().getShape();
    return std::vector<int64_t>(shape.begin(), shape.end());
  }

  static std::string forwardType(ModuleOp module) {
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward)
      return "<no @forward>";
    std::string text;
    llvm::raw_string_ostream os(text);
    forward.getFunctionType().print(os);
    return text;
  }

  static llvm::json::Object gpt2Tiny() {
    return llvm::json::Object{{"model_type", "gpt2"}, {"vocab_size", 100},
                              {"n_positions", 32},    {"n_embd", 16},
                              {"n_layer", 1},         {"n_head", 2}};
  }

  MLIRContext context;
};

using Shape = std::vector<int64_t>;

//===----------------------------------------------------------------------===//
// GPT-2
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, GPT2SmallMatchesHuggingFace) {
  auto module = buildShipped("gpt2-small");
  ASSERT_TRUE(module);
  EXPECT_EQ(countParams(*module), 124439808);
  EXPECT_EQ(shapeOf(*module, "transformer.wte.weight"), Shape({50257, 768}));
  EXPECT_EQ(shapeOf(*module, "transformer.wpe.weight"), Shape({1024, 768}));
  EXPECT_EQ(shapeOf(*module, "transformer.h.0.attn.c_attn.weight"),
            Shape({768, 2304}));
  EXPECT_EQ(shapeOf(*module, "transformer.h.0.attn.c_attn.bias"),
            Shape({2304}));
  EXPECT_EQ(shapeOf(*module, "transformer.h.11.mlp.c_fc.weight"),
            Shape({768, 3072}));
  EXPECT_EQ(shapeOf(*module, "transformer.h.11.mlp.c_proj.weight"),
            Shape({3072, 768}));
  EXPECT_EQ(shapeOf(*module, "transformer.ln_f.bias"), Shape({768}));
  // The LM head is tied to wte.
  EXPECT_FALSE(shapeOf(*module, "lm_head.weight"));
  EXPECT_FALSE(shapeOf(*module, "transformer.h.12.ln_1.weight"));
  EXPECT_EQ(forwardType(*module), "(tensor<?x?xi64>) -> tensor<?x?x50257xf32>");
}

TEST_F(ModelBuilderTest, GPT2StaticShapes) {
  auto module = buildShipped("gpt2-tiny", BuildOptions{2, 16});
  ASSERT_TRUE(module);
  EXPECT_EQ(forwardType(*module),
            "(tensor<2x16xi64>) -> tensor<2x16x1000xf32>");
  // Only the sequence fixed: the batch stays dynamic.
  BuildOptions seqOnly;
  seqOnly.seq = 8;
  module = buildShipped("gpt2-tiny", seqOnly);
  ASSERT_TRUE(module);
  EXPECT_EQ(forwardType(*module), "(tensor<?x8xi64>) -> tensor<?x8x1000xf32>");
}

TEST_F(ModelBuilderTest, GPT2Initializers) {
  auto module = buildShipped("gpt2-tiny");
  ASSERT_TRUE(module);
  auto lookup = [&](llvm::StringRef name) {
    return SymbolTable::lookupNearestSymbolFrom<ParameterOp>(
        *module, StringAttr::get(&context, name));
  };
  EXPECT_EQ(lookup("transformer.wte.weight").getInit(), InitKind::normal);
  EXPECT_DOUBLE_EQ(lookup("transformer.wte.weight").getStd()->convertToDouble(),
                   0.02);
  EXPECT_EQ(lookup("transformer.h.0.ln_1.weight").getInit(), InitKind::ones);
  EXPECT_EQ(lookup("transformer.h.0.ln_1.bias").getInit(), InitKind::zeros);
  EXPECT_EQ(lookup("transformer.h.0.attn.c_attn.bias").getInit(),
            InitKind::zeros);
  for (auto param : module->getOps<ParameterOp>())
    EXPECT_TRUE(param.getTrainable()) << param.getSymName().str();
}

//===----------------------------------------------------------------------===//
// BERT
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, BertBaseMatchesHuggingFace) {
  auto module = buildShipped("bert-base");
  ASSERT_TRUE(module);
  EXPECT_EQ(countParams(*module), 109482240);
  EXPECT_EQ(shapeOf(*module, "embeddings.word_embeddings.weight"),
            Shape({30522, 768}));
  EXPECT_EQ(shapeOf(*module, "embeddings.token_type_embeddings.weight"),
            Shape({2, 768}));
  EXPECT_EQ(shapeOf(*module, "encoder.layer.0.attention.self.query.weight"),
            Shape({768, 768}));
  EXPECT_EQ(shapeOf(*module, "encoder.layer.11.intermediate.dense.weight"),
            Shape({3072, 768}));
  EXPECT_EQ(shapeOf(*module, "encoder.layer.11.output.LayerNorm.bias"),
            Shape({768}));
  EXPECT_EQ(shapeOf(*module, "pooler.dense.weight"), Shape({768, 768}));
  EXPECT_EQ(forwardType(*module),
            "(tensor<?x?xi64>, tensor<?x?xi64>, tensor<?x?xi64>) -> "
            "(tensor<?x?x768xf32>, tensor<?x768xf32>)");
}

TEST_F(ModelBuilderTest, BertTinyStatic) {
  auto module = buildShipped("bert-tiny", BuildOptions{4, 32});
  ASSERT_TRUE(module);
  EXPECT_EQ(forwardType(*module),
            "(tensor<4x32xi64>, tensor<4x32xi64>, tensor<4x32xi64>) -> "
            "(tensor<4x32x64xf32>, tensor<4x64xf32>)");
}

//===----------------------------------------------------------------------===//
// Transformer
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, TransformerBaseMatchesTorch) {
  auto module = buildShipped("transformer-base");
  ASSERT_TRUE(module);
  // torch.nn.Transformer() has 44,140,544 parameters.
  EXPECT_EQ(countParams(*module, {"encoder.", "decoder."}), 44140544);
  int64_t d = 512, vocab = 32000;
  EXPECT_EQ(countParams(*module),
            44140544 + 2 * vocab * d + (vocab * d + vocab));
  EXPECT_EQ(shapeOf(*module, "encoder.layers.0.self_attn.in_proj_weight"),
            Shape({1536, 512}));
  EXPECT_EQ(shapeOf(*module, "encoder.layers.5.linear1.weight"),
            Shape({2048, 512}));
  EXPECT_EQ(shapeOf(*module, "decoder.layers.5.multihead_attn.in_proj_bias"),
            Shape({1536}));
  EXPECT_EQ(shapeOf(*module, "decoder.layers.0.norm3.weight"), Shape({512}));
  EXPECT_EQ(shapeOf(*module, "encoder.norm.weight"), Shape({512}));
  EXPECT_EQ(shapeOf(*module, "decoder.norm.bias"), Shape({512}));
  EXPECT_EQ(shapeOf(*module, "src_embed.weight"), Shape({32000, 512}));
  EXPECT_EQ(shapeOf(*module, "generator.weight"), Shape({32000, 512}));
  EXPECT_EQ(shapeOf(*module, "generator.bias"), Shape({32000}));
  EXPECT_EQ(forwardType(*module),
            "(tensor<?x?xi64>, tensor<?x?xi64>) -> tensor<?x?x32000xf32>");
}

TEST_F(ModelBuilderTest, TransformerDefaultsAreTorchs) {
  // Only the vocabularies are required; the rest defaults to
  // torch.nn.Transformer() (d_model 512, 8 heads, 6+6 layers, ff 2048).
  llvm::json::Object config{{"model_type", "transformer"},
                            {"src_vocab_size", 100},
                            {"tgt_vocab_size", 120}};
  auto module = buildModel(context, config);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  EXPECT_EQ(countParams(**module, {"encoder.", "decoder."}), 44140544);
  EXPECT_EQ(shapeOf(**module, "decoder.layers.5.linear2.weight"),
            Shape({512, 2048}));
}

TEST_F(ModelBuilderTest, TransformerStaticAndMaxLen) {
  auto module = buildShipped("transformer-tiny", BuildOptions{2, 64});
  ASSERT_TRUE(module);
  EXPECT_EQ(forwardType(*module),
            "(tensor<2x64xi64>, tensor<2x64xi64>) -> tensor<2x64x120xf32>");
  std::string path = std::string(KILN_MODELS_DIR) + "/transformer-tiny.json";
  auto config = loadModelConfig(path);
  ASSERT_TRUE(bool(config)) << llvm::toString(config.takeError());
  EXPECT_NE(buildError(*config, BuildOptions{2, 65}).find("'max_len'"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// LLaMA
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, LlamaTinyGroupedQuery) {
  auto module = buildShipped("llama-tiny");
  ASSERT_TRUE(module);
  // hidden 64, 4 heads of 16, 2 key/value heads.
  EXPECT_EQ(shapeOf(*module, "model.layers.0.self_attn.q_proj.weight"),
            Shape({64, 64}));
  EXPECT_EQ(shapeOf(*module, "model.layers.0.self_attn.k_proj.weight"),
            Shape({32, 64}));
  EXPECT_EQ(shapeOf(*module, "model.layers.1.mlp.down_proj.weight"),
            Shape({64, 172}));
  EXPECT_EQ(shapeOf(*module, "lm_head.weight"), Shape({1000, 64}));
  EXPECT_EQ(countParams(*module), 218944);
  EXPECT_EQ(forwardType(*module), "(tensor<?x?xi64>) -> tensor<?x?x1000xf32>");
}

TEST_F(ModelBuilderTest, TinyLlamaParameterCount) {
  // TinyLlama-1.1B's config: 1,100,048,384 parameters.
  llvm::json::Object config{
      {"model_type", "llama"},    {"vocab_size", 32000},
      {"hidden_size", 2048},      {"intermediate_size", 5632},
      {"num_hidden_layers", 22},  {"num_attention_heads", 32},
      {"num_key_value_heads", 4}, {"max_position_embeddings", 2048},
      {"rms_norm_eps", 1e-5},     {"tie_word_embeddings", false}};
  auto module = build(config);
  ASSERT_TRUE(module);
  EXPECT_EQ(countParams(*module), 1100048384);

  config["tie_word_embeddings"] = true;
  module = build(config);
  ASSERT_TRUE(module);
  EXPECT_FALSE(shapeOf(*module, "lm_head.weight"));
  EXPECT_EQ(countParams(*module), 1100048384 - 32000 * 2048);
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, UnknownOrMissingModelType) {
  llvm::json::Object config = gpt2Tiny();
  config["model_type"] = "gpt5";
  EXPECT_NE(buildError(config).find("unknown model_type 'gpt5'"),
            std::string::npos);
  config.erase("model_type");
  EXPECT_NE(buildError(config).find("'model_type'"), std::string::npos);
  config["model_type"] = 3;
  EXPECT_NE(buildError(config).find("'model_type' must be a string"),
            std::string::npos);
}

TEST_F(ModelBuilderTest, MissingKeyIsNamed) {
  llvm::json::Object config = gpt2Tiny();
  config.erase("n_head");
  EXPECT_EQ(buildError(config), "gpt2 config: missing required key 'n_head'");
}

TEST_F(ModelBuilderTest, IllTypedKeyIsNamed) {
  llvm::json::Object config = gpt2Tiny();
  config["n_embd"] = "sixteen";
  EXPECT_EQ(buildError(config),
            "gpt2 config: key 'n_embd' must be an integer, found a string");
  config = gpt2Tiny();
  config["layer_norm_epsilon"] = llvm::json::Array{1};
  EXPECT_NE(buildError(config).find("'layer_norm_epsilon' must be a number"),
            std::string::npos);
  config = gpt2Tiny();
  config["n_layer"] = -1;
  EXPECT_NE(buildError(config).find("'n_layer' must be at least 0"),
            std::string::npos);
}

TEST_F(ModelBuilderTest, InconsistentSizes) {
  llvm::json::Object config = gpt2Tiny();
  config["n_embd"] = 18;
  config["n_head"] = 4;
  EXPECT_EQ(
      buildError(config),
      "gpt2 config: key 'n_embd' (18) must be a multiple of 'n_head' (4)");

  llvm::json::Object llama{
      {"model_type", "llama"},   {"vocab_size", 10},
      {"hidden_size", 64},       {"intermediate_size", 128},
      {"num_hidden_layers", 1},  {"num_attention_heads", 4},
      {"num_key_value_heads", 3}};
  EXPECT_NE(buildError(llama).find("'num_key_value_heads'"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Structured pruning: pruned_heads, pruned_ffn_channels
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, PrunedHeadsAndChannelsShrinkTheirLayers) {
  llvm::json::Object config = gpt2Tiny();
  config["n_layer"] = 2;
  config["pruned_heads"] = llvm::json::Object{{"1", llvm::json::Array{0}}};
  config["pruned_ffn_channels"] =
      llvm::json::Object{{"0", llvm::json::Array{3, 1, 60}}};
  auto module = buildModel(context, config, BuildOptions{});
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  // Layer 0 keeps both heads (8 wide each), layer 1 one; the MLP of layer
  // 0 is 64 - 3 channels wide.
  EXPECT_EQ(shapeOf(**module, "transformer.h.0.attn.c_attn.weight"),
            (Shape{16, 48}));
  EXPECT_EQ(shapeOf(**module, "transformer.h.1.attn.c_attn.weight"),
            (Shape{16, 24}));
  EXPECT_EQ(shapeOf(**module, "transformer.h.1.attn.c_proj.weight"),
            (Shape{8, 16}));
  EXPECT_EQ(shapeOf(**module, "transformer.h.0.mlp.c_fc.weight"),
            (Shape{16, 61}));
  EXPECT_EQ(shapeOf(**module, "transformer.h.0.mlp.c_proj.weight"),
            (Shape{61, 16}));
  EXPECT_EQ(shapeOf(**module, "transformer.h.1.mlp.c_fc.weight"),
            (Shape{16, 64}));
  EXPECT_TRUE(succeeded(verify(**module)));
}

TEST_F(ModelBuilderTest, BadPrunedHeadsAreRefused) {
  llvm::json::Object config = gpt2Tiny();
  config["pruned_heads"] = llvm::json::Object{{"0", llvm::json::Array{0, 1}}};
  EXPECT_EQ(buildError(config),
            "gpt2 config: key 'pruned_heads' removes all 2 heads of layer 0: "
            "a layer keeps at least one");
  config["pruned_heads"] = llvm::json::Object{{"0", llvm::json::Array{1, 1}}};
  EXPECT_NE(buildError(config).find("each entry must be a distinct index of "
                                    "its heads in [0, 2)"),
            std::string::npos);
  config["pruned_heads"] = llvm::json::Object{{"x", llvm::json::Array{1}}};
  EXPECT_NE(buildError(config).find("'x' is not a layer index in [0, 1)"),
            std::string::npos);
  config["pruned_heads"] = llvm::json::Array{1};
  EXPECT_NE(buildError(config).find("key 'pruned_heads' must be an object"),
            std::string::npos);
  // LLaMA removes key/value groups whole.
  llvm::json::Object llama{{"model_type", "llama"},
                           {"vocab_size", 10},
                           {"hidden_size", 16},
                           {"intermediate_size", 32},
                           {"num_hidden_layers", 1},
                           {"num_attention_heads", 4},
                           {"num_key_value_heads", 2},
                           {"max_position_embeddings", 8},
                           {"pruned_heads",
                            llvm::json::Object{{"0", llvm::json::Array{2}}}}};
  EXPECT_NE(buildError(llama).find("head 2 shares a key/value head with head "
                                   "3, which is kept"),
            std::string::npos);
  llama["pruned_heads"] = llvm::json::Object{{"0", llvm::json::Array{2, 3}}};
  EXPECT_EQ(buildError(llama), "");
}

//===----------------------------------------------------------------------===//
// Config key tables
//===----------------------------------------------------------------------===//

TEST_F(ModelBuilderTest, DefaultOnlyKeyWithOtherValueIsRefused) {
  llvm::json::Object config = gpt2Tiny();
  config["add_cross_attention"] = true;
  EXPECT_EQ(buildError(config),
            "gpt2 config: key 'add_cross_attention' is true, but Kiln supports "
            "only false (cross-attention layers are not built)");
  // The default itself, and null, build.
  config["add_cross_attention"] = false;
  config["pruned_heads"] = llvm::json::Object{};
  config["cross_attention_hidden_size"] = nullptr;
  EXPECT_EQ(buildError(config), "");
  config["tie_encoder_decoder"] = true;
  EXPECT_NE(buildError(config).find("key 'tie_encoder_decoder'"),
            std::string::npos);

  llvm::json::Object bert{{"model_type", "bert"},
                          {"vocab_size", 10},
                          {"hidden_size", 8},
                          {"num_hidden_layers", 1},
                          {"num_attention_heads", 2},
                          {"intermediate_size", 16},
                          {"max_position_embeddings", 8},
                          {"position_embedding_type", "relative_key"}};
  EXPECT_NE(buildError(bert).find("key 'position_embedding_type' is "
                                  "\"relative_key\", but Kiln supports only "
                                  "\"absolute\""),
            std::string::npos);
  bert["position_embedding_type"] = "absolute";
  bert["is_decoder"] = true;
  EXPECT_NE(buildError(bert).find("key 'is_decoder' is true"),
            std::string::npos);
}

TEST_F(ModelBuilderTest, DropoutIsRefusedOnlyForTraining) {
  llvm::json::Object config = gpt2Tiny();
  config["resid_pdrop"] = 0.1;
  EXPECT_EQ(buildError(config), "");
  BuildOptions training;
  training.training = true;
  EXPECT_EQ(buildError(config, training),
            "gpt2 config: key 'resid_pdrop' is 0.1, but Kiln trains without "
            "dropout; set it to 0 to train this model without dropout");
  config["resid_pdrop"] = 0;
  EXPECT_EQ(buildError(config, training), "");
  config["attn_pdrop"] = 1.5;
  EXPECT_NE(buildError(config).find("'attn_pdrop' must be a dropout rate"),
            std::string::npos);
}

TEST_F(ModelBuilderTest, UnknownKeyIsWarnedAbout) {
  llvm::json::Object config = gpt2Tiny();
  config["n_experts"] = 8;
  config["use_cache"] = true; // Known, no effect: no warning.
  std::vector<std::string> warnings;
  BuildOptions options;
  options.warn = [&](const std::string &message) {
    warnings.push_back(message);
  };
  EXPECT_EQ(buildError(config, options), "");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "gpt2 config: key 'n_experts' is not one Kiln knows "
                         "for gpt2; it is ignored");
}

TEST_F(ModelBuilderTest, EveryFamilyHasAKeyTable) {
  for (llvm::StringRef type : getSupportedModelTypes()) {
    std::vector<ConfigKeyInfo> keys = getConfigKeys(type);
    EXPECT_FALSE(keys.empty()) << type.str();
    for (const ConfigKeyInfo &key : keys)
      if (key.use == ConfigKeyUse::DefaultOnly) {
        auto value = llvm::json::parse(key.defaultValue);
        EXPECT_TRUE(bool(value)) << type.str() << " " << key.name.str();
        if (!value)
          llvm::consumeError(value.takeError());
      }
  }
  EXPECT_TRUE(getConfigKeys("gpt5").empty());
}

TEST_F(ModelBuilderTest, GPT2UntiedHeadAndAttentionScaling) {
  llvm::json::Object config = gpt2Tiny();
  config["tie_word_embeddings"] = false;
  config["scale_attn_by_inverse_layer_idx"] = true;
  config["n_layer"] = 2;
  auto module = build(config);
  ASSERT_TRUE(module);
  EXPECT_EQ(shapeOf(*module, "lm_head.weight"), Shape({100, 16}));
  std::vector<double> scales;
  module->walk([&](AttentionOp op) {
    scales.push_back(op.getScale() ? op.getScale()->convertToDouble() : 0.0);
  });
  ASSERT_EQ(scales.size(), 2u);
  EXPECT_DOUBLE_EQ(scales[0], 1.0 / std::sqrt(8.0));
  EXPECT_DOUBLE_EQ(scales[1], 1.0 / std::sqrt(8.0) / 2.0);

  config["reorder_and_upcast_attn"] = true;
  EXPECT_EQ(buildError(config), "");
  BuildOptions bf16;
  bf16.compute = ComputeType::bf16;
  EXPECT_NE(buildError(config, bf16).find("'reorder_and_upcast_attn'"),
            std::string::npos);
}

TEST_F(ModelBuilderTest, CausalLMOptionalInputs) {
  BuildOptions options;
  options.attentionMask = true;
  auto module = build(gpt2Tiny(), options);
  ASSERT_TRUE(module);
  EXPECT_EQ(forwardType(*module),
            "(tensor<?x?xi64>, tensor<?x?xi64>) -> tensor<?x?x100xf32>");
  int masked = 0;
  module->walk([&](AttentionOp op) { masked += op.getMask() != nullptr; });
  EXPECT_EQ(masked, 1);

  options.positionIds = true;
  llvm::json::Object llama{{"model_type", "llama"},  {"vocab_size", 10},
                           {"hidden_size", 16},      {"intermediate_size", 32},
                           {"num_hidden_layers", 1}, {"num_attention_heads", 2}};
  module = build(llama, options);
  ASSERT_TRUE(module);
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  ASSERT_EQ(forward.getNumArguments(), 3u);
  EXPECT_EQ(forward.getArgAttrOfType<StringAttr>(2, "kiln.name").getValue(),
            "position_ids");
  module->walk([&](RopeOp op) {
    EXPECT_EQ(op.getPositions(), forward.getArgument(2));
  });

  llvm::json::Object bert{{"model_type", "bert"},
                          {"vocab_size", 10},
                          {"hidden_size", 8},
                          {"num_hidden_layers", 1},
                          {"num_attention_heads", 2},
                          {"intermediate_size", 16},
                          {"max_position_embeddings", 8}};
  EXPECT_NE(buildError(bert, options).find("for the causal LMs"),
            std::string::npos);
}

TEST_F(ModelBuilderTest, LlamaRopeScaling) {
  llvm::json::Object llama{{"model_type", "llama"},  {"vocab_size", 10},
                           {"hidden_size", 16},      {"intermediate_size", 32},
                           {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                           {"rope_theta", 100.0}};
  auto frequencies = [&](const llvm::json::Object &config) {
    std::vector<double> result;
    auto module = build(config);
    if (module)
      module->walk([&](RopeOp op) {
        if (auto f = op.getInvFreq())
          result.assign(f->begin(), f->end());
      });
    return result;
  };
  // Head dim 8: unscaled frequencies 100^(-i/4).
  EXPECT_TRUE(frequencies(llama).empty());
  llama["rope_scaling"] = llvm::json::Object{{"rope_type", "linear"},
                                             {"factor", 2.0}};
  std::vector<double> linear = frequencies(llama);
  ASSERT_EQ(linear.size(), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_DOUBLE_EQ(linear[i], std::pow(100.0, -i / 4.0) / 2.0);
  // llama3, original context 20: wavelengths 2π·100^(i/4) = 6.3, 19.9,
  // 62.8, 198.7; high band < 20/4 = 5 (none), low band > 20 (the last
  // two, divided by 8), the rest blended.
  llama["rope_scaling"] = llvm::json::Object{
      {"rope_type", "llama3"},     {"factor", 8.0},
      {"low_freq_factor", 1.0},    {"high_freq_factor", 4.0},
      {"original_max_position_embeddings", 20}};
  std::vector<double> llama3 = frequencies(llama);
  ASSERT_EQ(llama3.size(), 4u);
  for (int i = 0; i < 2; ++i) {
    double f = std::pow(100.0, -i / 4.0);
    double smooth = (20 / (2 * M_PI / f) - 1) / 3;
    EXPECT_DOUBLE_EQ(llama3[i], (1 - smooth) * f / 8 + smooth * f);
  }
  EXPECT_DOUBLE_EQ(llama3[2], std::pow(100.0, -0.5) / 8);
  EXPECT_DOUBLE_EQ(llama3[3], std::pow(100.0, -0.75) / 8);

  llama["rope_scaling"] = llvm::json::Object{{"rope_type", "dynamic"},
                                             {"factor", 2.0}};
  EXPECT_TRUE(frequencies(llama).empty());
  llama["rope_scaling"] = llvm::json::Object{{"rope_type", "yarn"},
                                             {"factor", 2.0}};
  EXPECT_NE(buildError(llama).find("has type 'yarn'"), std::string::npos);
  llama["rope_scaling"] = llvm::json::Object{
      {"rope_type", "linear"}, {"factor", 2.0}, {"attention_factor", 1.5}};
  EXPECT_NE(buildError(llama).find("has 'attention_factor'"),
            std::string::npos);
  llama["rope_scaling"] = llvm::json::Object{{"type", "linear"}};
  EXPECT_NE(buildError(llama).find("needs 'factor'"), std::string::npos);
}

TEST_F(ModelBuilderTest, SequenceLongerThanPositions) {
  EXPECT_NE(buildError(gpt2Tiny(), BuildOptions{1, 33}).find("'n_positions'"),
            std::string::npos);
  EXPECT_EQ(buildError(gpt2Tiny(), BuildOptions{1, 32}), "");
}

TEST_F(ModelBuilderTest, LoadConfigErrors) {
  auto missing = loadModelConfig("/nonexistent/kiln/config.json");
  ASSERT_FALSE(bool(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("cannot open config"),
            std::string::npos);
  // A directory is refused by kind, and deep nesting before llvm::json's
  // recursive parser sees it.
  auto directory = loadModelConfig("/tmp");
  ASSERT_FALSE(bool(directory));
  EXPECT_NE(llvm::toString(directory.takeError()).find("is a directory"),
            std::string::npos);
  std::string path = ::testing::TempDir() + "kiln-deep-config.json";
  {
    std::ofstream out(path);
    out << "{\"model_type\": \"gpt2\", \"x\": " << std::string(200000, '[')
        << std::string(200000, ']') << "}";
  }
  auto deep = loadModelConfig(path);
  std::remove(path.c_str());
  ASSERT_FALSE(bool(deep));
  EXPECT_NE(llvm::toString(deep.takeError()).find("more than 64 levels deep"),
            std::string::npos);
}

} // namespace
