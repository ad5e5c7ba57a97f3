//===- ManifestTest.cpp - Parsing manifest.json: the cost model -----------===//
//
// The "cost_model" of an entry point (docs/artifacts.md): parsed into
// EntryPointSpec::costModel, evaluated by costFor at input shapes, and
// rejected with a message naming the field when malformed.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Runtime/Manifest.h"

#include <gtest/gtest.h>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

using namespace kiln::runtime;
using json = nlohmann::json;

namespace {

/// A manifest whose entry point takes input_ids and targets [?, ?] and
/// lr [], with a cost model in batch B and sequence S tied across both.
json manifestWithModel() {
  auto spec = [](const std::string &name, std::vector<int64_t> shape) {
    return json{{"name", name}, {"dtype", "I64"}, {"shape", shape}};
  };
  json model = {
      {"symbols",
       {{{"name", "input_ids.0"},
         {"dims",
          {{{"input", "input_ids"}, {"axis", 0}},
           {{"input", "targets"}, {"axis", 0}}}}},
        {{"name", "input_ids.1"},
         {"dims",
          {{{"input", "input_ids"}, {"axis", 1}},
           {{"input", "targets"}, {"axis", 1}}}}}}},
      // 100*B*S + 2*B*S^2 + 7
      {"flops", {{7, {0, 0}}, {100, {1, 1}}, {2, {1, 2}}}},
      // 1000 + 16*B*S
      {"bytes", {{1000, {0, 0}}, {16, {1, 1}}}}};
  json entry = {{"name", "train_step"},
                {"inputs",
                 {spec("input_ids", {-1, -1}), spec("targets", {-1, -1}),
                  {{"name", "lr"}, {"dtype", "F32"}, {"shape", json::array()}}}},
                {"outputs", json::array()},
                {"cost", {{"flops", 109}, {"bytes", 1016}, {"static", false}}},
                {"cost_model", model}};
  return {{"format", "kiln-artifact"},
          {"format_version", 1},
          {"target", "cpu"},
          {"entry_points", {entry}}};
}

Expected<Manifest> parse(const json &manifest) {
  return Manifest::parse(manifest.dump(), "m.json");
}

TEST(ManifestTest, RefusesDeepNestingBeforeParsing) {
  std::string deep = R"({"format": "kiln-artifact", "x": )" +
                     std::string(1000000, '{') + std::string(1000000, '}') + "}";
  Expected<Manifest> m = Manifest::parse(deep, "m.json");
  ASSERT_FALSE(m);
  EXPECT_NE(m.message().find("manifest 'm.json' nests JSON arrays and objects "
                             "more than 64 levels deep"),
            std::string::npos)
      << m.message();
  // Brackets inside strings are text, not nesting.
  EXPECT_TRUE(checkJsonNesting(R"({"a": "[[[[[[[[\"{{{{"})", "t", 2));
  EXPECT_FALSE(checkJsonNesting("[[[", "t", 2));
  EXPECT_TRUE(checkJsonNesting("[[]]", "t", 2));
}

TEST(ManifestTest, RefusesShapesWhoseSizeOverflows) {
  // An edited manifest used to turn such a shape into a wrapped-around size
  // (and heap corruption when buffers were allocated from it).
  json m = manifestWithModel();
  m["entry_points"][0]["inputs"][0]["shape"] = {-1, int64_t(1) << 40, int64_t(1) << 40};
  Expected<Manifest> input = parse(m);
  ASSERT_FALSE(input);
  EXPECT_NE(input.message().find("overflows"), std::string::npos) << input.message();

  EXPECT_EQ(checkedByteSize({2, 3}, DType::F32), 24u);
  EXPECT_EQ(checkedByteSize({}, DType::BF16), 2u);
  EXPECT_EQ(checkedByteSize({0, int64_t(1) << 62}, DType::F64), 0u);
  EXPECT_FALSE(checkedByteSize({int64_t(1) << 31, int64_t(1) << 31}, DType::F64));
  EXPECT_FALSE(checkedByteSize({-1, 4}, DType::F32));
  EXPECT_EQ(checkedByteSize({-1, 4}, DType::F32, /*dynamicAsOne=*/true), 16u);
}

TEST(ManifestTest, ParsesAndEvaluatesTheCostModel) {
  Expected<Manifest> m = parse(manifestWithModel());
  ASSERT_TRUE(m) << m.message();
  const EntryPointSpec &entry = m->entryPoints[0];
  ASSERT_TRUE(entry.costModel);
  ASSERT_EQ(entry.costModel->symbols.size(), 2u);
  EXPECT_EQ(entry.costModel->symbols[1].name, "input_ids.1");
  EXPECT_EQ(entry.costModel->symbols[1].dims.size(), 2u);
  EXPECT_EQ(entry.costModel->symbols[1].dims[1], (InputDim{1, 1}));
  EXPECT_EQ(entry.bytes, 1016);

  std::optional<Cost> cost = entry.costFor({{2, 7}, {2, 7}, {}});
  ASSERT_TRUE(cost);
  EXPECT_EQ(cost->flops, 100.0 * 2 * 7 + 2.0 * 2 * 7 * 7 + 7);
  EXPECT_EQ(cost->bytes, 1000.0 + 16 * 2 * 7);
  cost = entry.costFor({{1, 1024}, {1, 1024}, {}});
  ASSERT_TRUE(cost);
  EXPECT_EQ(cost->flops, 100.0 * 1024 + 2.0 * 1024 * 1024 + 7);
}

TEST(ManifestTest, CostForNeedsShapesTheModelAccepts) {
  Expected<Manifest> m = parse(manifestWithModel());
  ASSERT_TRUE(m) << m.message();
  const EntryPointSpec &entry = m->entryPoints[0];
  // Tied dims with different sizes, a missing input, a wrong rank.
  EXPECT_FALSE(entry.costFor({{2, 7}, {2, 8}, {}}));
  EXPECT_FALSE(entry.costFor({{2, 7}, {2, 7}}));
  EXPECT_FALSE(entry.costFor({{2, 7}, {2, 7, 1}, {}}));
}

TEST(ManifestTest, StaticInputsUseTheStaticCost) {
  json manifest = manifestWithModel();
  json &entry = manifest["entry_points"][0];
  entry["inputs"][0]["shape"] = {2, 7};
  entry["inputs"][1]["shape"] = {2, 7};
  entry.erase("cost_model");
  Expected<Manifest> m = parse(manifest);
  ASSERT_TRUE(m) << m.message();
  std::optional<Cost> cost = m->entryPoints[0].costFor({{2, 7}, {2, 7}, {}});
  ASSERT_TRUE(cost);
  EXPECT_EQ(cost->flops, 109);
  EXPECT_EQ(cost->bytes, 1016);
}

TEST(ManifestTest, WithoutAModelDynamicShapesHaveNoCost) {
  json manifest = manifestWithModel();
  json &entry = manifest["entry_points"][0];
  entry.erase("cost_model");
  entry["cost_model_note"] = "cannot refine the result shape of 'func.call'";
  Expected<Manifest> m = parse(manifest);
  ASSERT_TRUE(m) << m.message();
  EXPECT_FALSE(m->entryPoints[0].costModel);
  EXPECT_EQ(m->entryPoints[0].costModelNote,
            "cannot refine the result shape of 'func.call'");
  EXPECT_FALSE(m->entryPoints[0].costFor({{2, 7}, {2, 7}, {}}));
}

/// Each malformation of "cost_model" is an error naming the field.
TEST(ManifestTest, RejectsMalformedCostModels) {
  struct Case {
    const char *what;
    std::function<void(json &)> edit;
    const char *message;
  };
  const std::vector<Case> cases = {
      {"not an object", [](json &m) { m = 3; }, "\"cost_model\": not an object"},
      {"no symbols", [](json &m) { m.erase("symbols"); },
       "\"symbols\" is missing or not a non-empty array"},
      {"symbol without name", [](json &m) { m["symbols"][0].erase("name"); },
       "symbols[0]: missing \"name\""},
      {"empty dims", [](json &m) { m["symbols"][1]["dims"] = json::array(); },
       "symbols[1]: \"dims\" is missing or not a non-empty array"},
      {"unknown input",
       [](json &m) { m["symbols"][0]["dims"][1]["input"] = "labels"; },
       "input 'labels' is not an input of the entry point"},
      {"negative axis",
       [](json &m) { m["symbols"][0]["dims"][0]["axis"] = -1; },
       "\"axis\" is missing or not a non-negative integer"},
      {"axis out of range",
       [](json &m) { m["symbols"][0]["dims"][0]["axis"] = 2; },
       "dim 2 of input 'input_ids' is not a dynamic dim"},
      {"static dim", [](json &m) { m["symbols"][0]["dims"][0]["input"] = "lr"; },
       "dim 0 of input 'lr' is not a dynamic dim"},
      {"no bytes", [](json &m) { m.erase("bytes"); },
       "\"bytes\": missing or not an array"},
      {"term not a pair", [](json &m) { m["flops"][0] = {7}; },
       "\"flops\": a term is not [coefficient, [one exponent per symbol]]"},
      {"too few exponents", [](json &m) { m["bytes"][1] = {16, {1}}; },
       "\"bytes\": a term is not [coefficient, [one exponent per symbol]]"},
      {"string coefficient", [](json &m) { m["flops"][1][0] = "100"; },
       "a term is not [coefficient, [one exponent per symbol]]"},
      {"fractional exponent", [](json &m) { m["flops"][1][1] = {1, 0.5}; },
       "an exponent is not an integer in [0, 16]"},
      {"huge exponent", [](json &m) { m["flops"][1][1] = {1, 99}; },
       "an exponent is not an integer in [0, 16]"},
  };
  for (const Case &c : cases) {
    json manifest = manifestWithModel();
    c.edit(manifest["entry_points"][0]["cost_model"]);
    Expected<Manifest> m = parse(manifest);
    ASSERT_FALSE(m) << c.what;
    EXPECT_NE(m.message().find("'m.json' is not a valid artifact manifest: "
                               "entry point 'train_step': \"cost_model\""),
              std::string::npos)
        << c.what << ": " << m.message();
    EXPECT_NE(m.message().find(c.message), std::string::npos)
        << c.what << ": " << m.message();
  }
  json manifest = manifestWithModel();
  manifest["entry_points"][0]["cost_model_note"] = 5;
  Expected<Manifest> m = parse(manifest);
  ASSERT_FALSE(m);
  EXPECT_NE(m.message().find("\"cost_model_note\" is not a string"),
            std::string::npos)
      << m.message();
}

} // namespace

//===----------------------------------------------------------------------===//
// serialize(): the writer kiln-compile uses
//===----------------------------------------------------------------------===//

namespace {

/// A manifest with every field the format has set to a value other than
/// its default.
Manifest fullManifest() {
  Expected<Manifest> parsed = parse(manifestWithModel());
  EXPECT_TRUE(parsed) << parsed.message();
  Manifest m = *parsed;
  m.target = TargetKind::CUDA;
  m.targetOptions = {{"cuda_arch", OptionValue::string("sm_90a")},
                     {"image", OptionValue::string("cubin")},
                     {"count", OptionValue::string("3")}};
  m.compileOptions = {{"batch", OptionValue::json("null")},
                      {"seq", OptionValue::json("128")},
                      {"training", OptionValue::json(R"({"beta1":0.9})")},
                      {"dtype", OptionValue::string("bf16")}};
  m.source = {{"path", OptionValue::string("models/x.json")}};
  m.module = "m.so";
  m.weights = "w.safetensors";
  ParameterSpec w;
  w.name = "w";
  w.dtype = DType::BF16;
  w.shape = {4, 8};
  w.offset = 64;
  w.size = 64;
  w.trainable = true;
  w.init = InitSpec{"uniform", std::nullopt, -0.5, 0.25};
  ParameterSpec state;
  state.name = "w.adam_m";
  state.shape = {4, 8};
  state.state = true;
  state.init = InitSpec{"zeros", std::nullopt, std::nullopt, std::nullopt};
  m.parameters = {w, state};
  EntryPointSpec &entry = m.entryPoints[0];
  entry.symbol = "custom_symbol";
  entry.inputs[0].maxShape = {-1, 1024};
  entry.parameters = {"w", "w.adam_m"};
  entry.writesParameters = {"w.adam_m"};
  entry.flops = 0.1; // not an integer: must survive the text form exactly
  EntryPointSpec other;
  other.name = "forward";
  other.symbol = "kiln_entry_forward";
  other.outputs = {TensorSpec{"y", DType::F32, {2}, {}}};
  other.costModelNote = "no fit: \"quoted\" reason";
  m.entryPoints.push_back(other);
  return m;
}

void expectSameSpecs(const std::vector<TensorSpec> &a,
                     const std::vector<TensorSpec> &b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_EQ(a[i].maxShape, b[i].maxShape);
  }
}

} // namespace

TEST(ManifestTest, SerializeRoundTripsEveryField) {
  Manifest m = fullManifest();
  Expected<std::string> text = m.serialize();
  ASSERT_TRUE(text) << text.message();
  EXPECT_EQ(text->back(), '\n');
  Expected<Manifest> back = Manifest::parse(*text, "written.json");
  ASSERT_TRUE(back) << back.message() << "\n" << *text;

  EXPECT_EQ(back->target, TargetKind::CUDA);
  EXPECT_EQ(back->targetOptions, m.targetOptions);
  EXPECT_EQ(back->compileOptions, m.compileOptions);
  EXPECT_EQ(back->source, m.source);
  // A string that looks like a number stays a string, a number a number.
  EXPECT_TRUE(back->targetOptions.at("count").isString);
  EXPECT_FALSE(back->compileOptions.at("seq").isString);
  EXPECT_EQ(back->module, "m.so");
  EXPECT_EQ(back->weights, "w.safetensors");

  ASSERT_EQ(back->parameters.size(), 2u);
  const ParameterSpec &w = back->parameters[0];
  EXPECT_EQ(w.dtype, DType::BF16);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(w.offset, 64u);
  EXPECT_EQ(w.size, 64u);
  EXPECT_TRUE(w.trainable);
  EXPECT_FALSE(w.state);
  ASSERT_TRUE(w.init);
  EXPECT_EQ(w.init->kind, "uniform");
  EXPECT_FALSE(w.init->std);
  EXPECT_EQ(w.init->low, -0.5);
  EXPECT_EQ(w.init->high, 0.25);
  const ParameterSpec &state = back->parameters[1];
  EXPECT_TRUE(state.state);
  EXPECT_FALSE(state.offset);
  EXPECT_FALSE(state.trainable);
  EXPECT_EQ(state.init->kind, "zeros");

  ASSERT_EQ(back->entryPoints.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const EntryPointSpec &a = m.entryPoints[i], &b = back->entryPoints[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.symbol, b.symbol);
    expectSameSpecs(a.inputs, b.inputs);
    expectSameSpecs(a.outputs, b.outputs);
    EXPECT_EQ(a.parameters, b.parameters);
    EXPECT_EQ(a.writesParameters, b.writesParameters);
    EXPECT_EQ(a.flops, b.flops);
    EXPECT_EQ(a.bytes, b.bytes);
    EXPECT_EQ(a.costModelNote, b.costModelNote);
    ASSERT_EQ(a.costModel.has_value(), b.costModel.has_value());
    if (!a.costModel)
      continue;
    ASSERT_EQ(a.costModel->symbols.size(), b.costModel->symbols.size());
    for (size_t s = 0; s < a.costModel->symbols.size(); ++s) {
      EXPECT_EQ(a.costModel->symbols[s].name, b.costModel->symbols[s].name);
      EXPECT_EQ(a.costModel->symbols[s].dims, b.costModel->symbols[s].dims);
    }
    EXPECT_EQ(b.costFor({{2, 7}, {2, 7}, {}})->flops,
              a.costFor({{2, 7}, {2, 7}, {}})->flops);
  }
  // The signature module.so embeds is the same from either form.
  EXPECT_EQ(moduleSignature(*back), moduleSignature(m));
  // And writing what was read gives the same text.
  Expected<std::string> again = back->serialize();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *text);
}

TEST(ManifestTest, SerializeRefusesWhatTheFormatCannotCarry) {
  auto refusal = [](const Manifest &m) {
    Expected<std::string> text = m.serialize();
    return text ? std::string("(written)") : text.message();
  };
  Manifest m = fullManifest();
  m.compileOptions["bad"] = OptionValue::json("{not json");
  EXPECT_NE(refusal(m).find("compile_options.bad is not JSON"),
            std::string::npos)
      << refusal(m);

  m = fullManifest();
  m.entryPoints[0].flops = std::numeric_limits<double>::infinity();
  EXPECT_NE(refusal(m).find("entry point 'train_step' flops is not finite"),
            std::string::npos)
      << refusal(m);

  m = fullManifest();
  m.parameters[0].init->std = std::nan("");
  EXPECT_NE(refusal(m).find("init std is not finite"), std::string::npos)
      << refusal(m);

  m = fullManifest();
  m.entryPoints[0].costModel->symbols[0].dims[0].input = 9;
  EXPECT_NE(refusal(m).find("names a dim the inputs do not have"),
            std::string::npos)
      << refusal(m);

  m = fullManifest();
  m.entryPoints[0].costModel->flops[0].exponents.push_back(1);
  EXPECT_NE(refusal(m).find("exponents for 2 symbols"), std::string::npos)
      << refusal(m);
}

TEST(ManifestTest, ParseChecksInitAndOptionObjects) {
  json m = manifestWithModel();
  m["parameters"] = {{{"name", "w"}, {"dtype", "F32"}, {"shape", {2}},
                      {"init", {{"kind", "normal"}, {"std", "big"}}}}};
  Expected<Manifest> bad = parse(m);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("parameter 'w': \"init\": \"std\" is not a "
                               "finite number"),
            std::string::npos)
      << bad.message();
  m = manifestWithModel();
  m["target_options"] = "sm_90";
  bad = parse(m);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("\"target_options\" is not an object"),
            std::string::npos)
      << bad.message();
}

TEST(ManifestTest, PackedLayoutsParseAndRoundTrip) {
  // A [5, 3] [out, in] f32 weight in panels of 2 columns: [3, 3, 2],
  // packed when loaded (the file holds [5, 3]).
  json m = manifestWithModel();
  json layout = {{"shape", {5, 3}},
                 {"in_out", false},
                 {"width", 2},
                 {"pairs", 1},
                 {"at_load", true}};
  m["parameters"] = {{{"name", "w"},
                      {"dtype", "F32"},
                      {"shape", {3, 3, 2}},
                      {"packed", layout}}};
  Expected<Manifest> parsed = parse(m);
  ASSERT_TRUE(parsed) << parsed.message();
  const PackedLayout &packed = *parsed->parameters[0].packed;
  EXPECT_TRUE(packed.atLoad);
  EXPECT_EQ(packed.fileShape(), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(packed.panelShape(), (std::vector<int64_t>{3, 3, 2}));
  Expected<std::string> text = parsed->serialize();
  ASSERT_TRUE(text) << text.message();
  Expected<Manifest> back = Manifest::parse(*text, "written.json");
  ASSERT_TRUE(back) << back.message();
  EXPECT_TRUE(back->parameters[0].packed->atLoad);

  // Without at_load the file holds the panels; a non-boolean is refused.
  layout.erase("at_load");
  m["parameters"][0]["packed"] = layout;
  parsed = parse(m);
  ASSERT_TRUE(parsed) << parsed.message();
  EXPECT_FALSE(parsed->parameters[0].packed->atLoad);
  EXPECT_EQ(parsed->parameters[0].packed->fileShape(),
            (std::vector<int64_t>{3, 3, 2}));
  layout["at_load"] = "yes";
  m["parameters"][0]["packed"] = layout;
  parsed = parse(m);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.message().find("\"at_load\", if present, is a boolean"),
            std::string::npos)
      << parsed.message();
}

TEST(ManifestTest, PackWritesColumnPanels) {
  // f32 [in, out] = [3, 5] in panels of 2: element (n, k) at
  // [n / 2, k, n % 2], the last panel's second column zero.
  PackedLayout f32{{3, 5}, /*inOut=*/true, /*width=*/2, /*pairs=*/1};
  std::vector<float> weight(15);
  for (int k = 0; k < 3; ++k)
    for (int n = 0; n < 5; ++n)
      weight[k * 5 + n] = 10.0f * n + k + 1;
  std::vector<float> panels(18, -1.0f);
  f32.pack(weight.data(), panels.data());
  for (int n = 0; n < 6; ++n)
    for (int k = 0; k < 3; ++k)
      EXPECT_EQ(panels[((n / 2) * 3 + k) * 2 + n % 2],
                n < 5 ? 10.0f * n + k + 1 : 0.0f)
          << "n " << n << " k " << k;

  // bf16 (16-bit codes) [out, in] = [3, 4] in panels of 2 columns, two
  // input rows interleaved: element (n, k) at [n / 2, k / 2, n % 2, k % 2].
  PackedLayout pairs{{3, 4}, /*inOut=*/false, /*width=*/2, /*pairs=*/2};
  std::vector<uint16_t> codes(12);
  for (int n = 0; n < 3; ++n)
    for (int k = 0; k < 4; ++k)
      codes[n * 4 + k] = static_cast<uint16_t>(100 * n + k + 1);
  std::vector<uint16_t> paired(16, 0xffff);
  pairs.pack(codes.data(), paired.data());
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < 4; ++k)
      EXPECT_EQ(paired[(((n / 2) * 2 + k / 2) * 2 + n % 2) * 2 + k % 2],
                n < 3 ? 100 * n + k + 1 : 0)
          << "n " << n << " k " << k;
}
