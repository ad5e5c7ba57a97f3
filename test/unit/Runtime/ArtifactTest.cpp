//===- ArtifactTest.cpp - Opening and running artifacts -------------------===//
//
// A real module.so built from hand-written C (ArtifactFixture.h) is opened
// and run; then every way an artifact or a call can be wrong must fail with
// a message naming the problem.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Artifact.h"
#include "ArtifactFixture.h"

#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <cstring>

using namespace kiln::runtime;
using kiln::runtime::testing::ArtifactFixture;
using kiln::runtime::testing::kAbiDefine;

namespace {

class ArtifactTest : public ArtifactFixture {
protected:
  std::unique_ptr<Artifact> openOk() {
    Expected<std::unique_ptr<Artifact>> artifact = Artifact::open(artifactDir());
    EXPECT_TRUE(artifact) << artifact.message();
    return artifact ? artifact.take() : nullptr;
  }
  /// Opens and expects an error containing every needle.
  void expectOpenError(const std::vector<std::string> &needles) {
    Expected<std::unique_ptr<Artifact>> artifact = Artifact::open(artifactDir());
    ASSERT_FALSE(artifact) << "the artifact opened";
    for (const std::string &needle : needles)
      EXPECT_NE(artifact.message().find(needle), std::string::npos)
          << "'" << needle << "' not in: " << artifact.message();
  }
  void expectRunError(const Artifact &artifact, const std::string &entry,
                      const std::vector<NamedTensor> &inputs,
                      const std::vector<std::string> &needles) {
    Expected<std::vector<OwnedTensor>> outputs = artifact.run(entry, inputs);
    ASSERT_FALSE(outputs) << "the call succeeded";
    for (const std::string &needle : needles)
      EXPECT_NE(outputs.message().find(needle), std::string::npos)
          << "'" << needle << "' not in: " << outputs.message();
  }

  std::vector<float> x = {1, 2, 3, 4, -1, 0, 1, 2, 5, 5, 5, 5};
  TensorView xView{DType::F32, {3, 4}, x.data()};
};

float expectedForward(const std::vector<float> &x, size_t k) {
  return x[k] * kiln::runtime::testing::kWeights[k % 4] + 1;
}

TEST_F(ArtifactTest, OpensAndExposesTheManifest) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  EXPECT_EQ(artifact->manifest().target, TargetKind::CPU);
  EXPECT_EQ(artifact->manifest().targetOptions.at("cpu"),
            OptionValue::string("x86-64-v3"));
  EXPECT_EQ(artifact->manifest().compileOptions.at("batch"),
            OptionValue::json("null"));
  ASSERT_EQ(artifact->parameters().size(), 1u);
  EXPECT_TRUE(artifact->parameters()[0].trainable);
  const EntryPointSpec *forward = artifact->findEntryPoint("forward");
  ASSERT_NE(forward, nullptr);
  EXPECT_EQ(forward->symbol, "kiln_entry_forward");
  ASSERT_EQ(forward->inputs.size(), 1u);
  EXPECT_EQ(forward->inputs[0].shape, (std::vector<int64_t>{-1, 4}));
  EXPECT_FALSE(forward->hasStaticInputs());
  EXPECT_EQ(forward->flops, 8.0);
  EXPECT_EQ(formatSpecShape(forward->inputs[0].shape), "[?, 4]");
  std::optional<TensorView> w = artifact->parameter("w");
  ASSERT_TRUE(w);
  EXPECT_EQ(static_cast<const float *>(w->data)[3], -1.0f);
  EXPECT_FALSE(artifact->parameter("v"));
}

TEST_F(ArtifactTest, RunsForwardWithAParameterFromTheWeights) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  for (int64_t rows : {3, 1, 2}) {
    TensorView view{DType::F32, {rows, 4}, x.data()};
    Expected<std::vector<OwnedTensor>> outputs =
        artifact->run("forward", {{"x", view}});
    ASSERT_TRUE(outputs) << outputs.message();
    ASSERT_EQ(outputs->size(), 1u);
    const OwnedTensor &y = (*outputs)[0];
    EXPECT_EQ(y.dtype(), DType::F32);
    EXPECT_EQ(y.shape(), (std::vector<int64_t>{rows, 4}));
    for (size_t k = 0; k < static_cast<size_t>(rows * 4); ++k)
      EXPECT_EQ(y.as<float>()[k], expectedForward(x, k)) << k;
  }
}

TEST_F(ArtifactTest, RunsAnEntryPointWithTwoResults) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("stats", {{"x", xView}});
  ASSERT_TRUE(outputs) << outputs.message();
  ASSERT_EQ(outputs->size(), 2u);
  const OwnedTensor &rowsum = (*outputs)[0];
  const OwnedTensor &rows = (*outputs)[1];
  EXPECT_EQ(rowsum.shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ(rowsum.as<float>()[0], 0.5f + 2 + 6 - 4);
  EXPECT_EQ(rowsum.as<float>()[1], -0.5f + 0 + 2 - 2);
  EXPECT_EQ(rowsum.as<float>()[2], 2.5f + 5 + 10 - 5);
  EXPECT_EQ(rows.dtype(), DType::I64);
  EXPECT_EQ(rows.rank(), 0u);
  EXPECT_EQ(*rows.as<int64_t>(), 3);
}

TEST_F(ArtifactTest, CopiesStridedResultsToRowMajor) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("transposed", {{"x", xView}});
  ASSERT_TRUE(outputs) << outputs.message();
  const OwnedTensor &y = (*outputs)[0];
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{3, 4}));
  for (size_t k = 0; k < 12; ++k)
    EXPECT_EQ(y.as<float>()[k], 10 * x[k]) << k;
}

TEST_F(ArtifactTest, CopiesAndNeverFreesAResultInTheModuleImage) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  for (int i = 0; i < 2; ++i) {
    Expected<std::vector<OwnedTensor>> outputs = artifact->run("constant", {});
    ASSERT_TRUE(outputs) << outputs.message();
    EXPECT_EQ((*outputs)[0].as<float>()[3], 4.0f);
  }
}

TEST_F(ArtifactTest, ResultsSharingABufferFreeItOnceAndOutliveTheArtifact) {
  writeArtifact();
  std::vector<OwnedTensor> kept;
  {
    std::unique_ptr<Artifact> artifact = openOk();
    ASSERT_TRUE(artifact);
    Expected<std::vector<OwnedTensor>> outputs =
        artifact->run("alias", {{"x", xView}});
    ASSERT_TRUE(outputs) << outputs.message();
    EXPECT_EQ((*outputs)[0].data(), (*outputs)[1].data());
    kept = outputs.take();
  }
  EXPECT_EQ(kept[1].as<float>()[11], 6.0f);
  kept.erase(kept.begin());
  EXPECT_EQ(kept[0].as<float>()[0], 2.0f);
}

TEST_F(ArtifactTest, RealignsAMisalignedInput) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<unsigned char> bytes(x.size() * 4 + 1);
  std::memcpy(bytes.data() + 1, x.data(), x.size() * 4);
  Expected<std::vector<OwnedTensor>> outputs = artifact->run(
      "forward", {{"x", {DType::F32, {3, 4}, bytes.data() + 1}}});
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ((*outputs)[0].as<float>()[5], expectedForward(x, 5));
}

TEST_F(ArtifactTest, CopiesAndNeverFreesAResultThatIsAnInput) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("identity", {{"x", xView}});
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_NE((*outputs)[0].data(), x.data());
  EXPECT_EQ((*outputs)[0].as<float>()[11], 5.0f);
  // The same through a realigned copy of a misaligned input.
  std::vector<unsigned char> bytes(x.size() * 4 + 1);
  std::memcpy(bytes.data() + 1, x.data(), x.size() * 4);
  outputs = artifact->run("identity",
                          {{"x", {DType::F32, {3, 4}, bytes.data() + 1}}});
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ((*outputs)[0].as<float>()[4], -1.0f);
}

//===----------------------------------------------------------------------===//
// Errors of open()
//===----------------------------------------------------------------------===//

TEST_F(ArtifactTest, RejectsAMissingDirectoryAndManifest) {
  expectOpenError({"cannot open artifact", "model.kiln", "No such file"});
  (void)std::system(("mkdir -p '" + artifactDir() + "'").c_str());
  expectOpenError({"is not a Kiln artifact", "no manifest.json"});
  std::ofstream(artifactDir() + "/manifest.json") << "{not json";
  expectOpenError({"manifest.json' is not a valid artifact manifest",
                   "not valid JSON"});
}

TEST_F(ArtifactTest, RejectsAnotherFormatOrVersion) {
  json manifest = defaultManifest();
  manifest["format_version"] = 2;
  writeArtifact(manifest);
  expectOpenError({"artifact format version 2, this runtime reads 1"});
  manifest["format_version"] = "1";
  writeArtifact(manifest);
  expectOpenError({"\"format_version\" is not an integer"});
  manifest = defaultManifest();
  manifest["format"] = "onnx";
  writeArtifact(manifest);
  expectOpenError({"\"format\" is 'onnx', expected 'kiln-artifact'"});
}

TEST_F(ArtifactTest, RejectsAnUnsupportedTarget) {
  json manifest = defaultManifest();
  manifest["target"] = "rocm";
  writeArtifact(manifest);
  expectOpenError({"artifact target 'rocm' is not supported by this runtime",
                   "(it runs: cpu, cuda)"});
}

TEST_F(ArtifactTest, RejectsMalformedManifestEntries) {
  json manifest = defaultManifest();
  manifest["entry_points"][0]["inputs"][0]["dtype"] = "F33";
  writeArtifact(manifest);
  expectOpenError({"entry point 'forward' input 'x': unknown dtype 'F33'"});
  manifest = defaultManifest();
  manifest["entry_points"][0]["outputs"][0]["shape"] = {-2, 4};
  writeArtifact(manifest);
  expectOpenError({"entry point 'forward' output 'y'", "dim below -1"});
  manifest = defaultManifest();
  manifest["parameters"][0]["shape"] = {-1};
  writeArtifact(manifest);
  expectOpenError({"parameter 'w'", "is not static"});
  manifest = defaultManifest();
  manifest["entry_points"][0]["parameters"] = {"v"};
  writeArtifact(manifest);
  expectOpenError({"entry point 'forward'", "parameter 'v'",
                   "not in the parameter table"});
  manifest = defaultManifest();
  manifest["entry_points"][1]["name"] = "forward";
  writeArtifact(manifest);
  expectOpenError({"entry point 'forward'", "appears twice"});
  manifest = defaultManifest();
  manifest["module"] = "../module.so";
  writeArtifact(manifest);
  expectOpenError({"\"module\" must name a file in the artifact directory"});
  manifest = defaultManifest();
  manifest.erase("entry_points");
  writeArtifact(manifest);
  expectOpenError({"missing \"entry_points\""});
}

#if defined(__x86_64__) && defined(__linux__)
/// The flags Linux reports in /proc/cpuinfo for this CPU (it leaves out
/// those whose state the kernel does not enable).
static std::set<std::string> procCpuFlags() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0)
      continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string flag; words >> flag;)
      flags.insert(flag);
    return flags;
  }
  return {};
}

TEST(CpuFeatures, EveryCheckedFeatureIsKnownAndAgreesWithLinux) {
  // LLVM's names against Linux's.
  const std::map<std::string, std::string> linuxNames = {
      {"sse4.2", "sse4_2"},
      {"bmi", "bmi1"},
      {"lzcnt", "abm"},
      {"avx512vbmi2", "avx512_vbmi2"},
      {"avx512vnni", "avx512_vnni"},
      {"avx512bitalg", "avx512_bitalg"},
      {"avx512vpopcntdq", "avx512_vpopcntdq"},
      {"avx512bf16", "avx512_bf16"},
      {"avx512fp16", "avx512_fp16"},
      {"avxvnni", "avx_vnni"},
      {"amx-tile", "amx_tile"},
      {"amx-bf16", "amx_bf16"},
      {"amx-int8", "amx_int8"}};
  std::set<std::string> flags = procCpuFlags();
  ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
  std::istringstream list(KILN_CHECKED_X86_FEATURES);
  int checked = 0;
  for (std::string feature; std::getline(list, feature, ',');) {
    std::optional<bool> has = hostHasCpuFeature(feature);
    ASSERT_TRUE(has.has_value()) << "the runtime cannot check " << feature;
    auto renamed = linuxNames.find(feature);
    std::string flag = renamed == linuxNames.end() ? feature : renamed->second;
    EXPECT_EQ(*has, flags.count(flag) == 1)
        << feature << " (" << flag << " in /proc/cpuinfo)";
    ++checked;
  }
  EXPECT_EQ(checked, 34);
  EXPECT_FALSE(hostHasCpuFeature("avx1024").has_value());
}

TEST_F(ArtifactTest, RefusesAnArtifactForCpuFeaturesThisMachineLacks) {
  // What this machine has loads (the fixture's module is plain C).
  json manifest = defaultManifest();
  std::string present;
  std::istringstream list(KILN_CHECKED_X86_FEATURES);
  std::vector<std::string> absent;
  for (std::string feature; std::getline(list, feature, ',');) {
    if (*hostHasCpuFeature(feature))
      present += (present.empty() ? "" : ",") + feature;
    else
      absent.push_back(feature);
  }
  manifest["target_options"]["cpu_features"] = present;
  writeArtifact(manifest);
  EXPECT_TRUE(openOk());
  // A feature no runtime knows.
  manifest["target_options"]["cpu_features"] = present + ",avx1024";
  writeArtifact(manifest);
  expectOpenError({"was compiled for a CPU with avx1024",
                   "which this runtime cannot check"});
  manifest["target_options"]["cpu_features"] = 5;
  writeArtifact(manifest);
  expectOpenError({"target_options.cpu_features must be a string"});
  // One this machine lacks, where there is one (every machine so far has
  // lacked AMX or AVX-512 FP16 or AVX-VNNI).
  if (absent.empty())
    GTEST_SKIP() << "this CPU has every checked feature";
  manifest["target_options"]["cpu_features"] = absent.front();
  writeArtifact(manifest);
  expectOpenError(
      {"was compiled for --cpu x86-64-v3",
       "uses CPU features this machine lacks (" + absent.front() + ")",
       "--cpu native"});
}
#endif

TEST_F(ArtifactTest, RejectsAMissingOrUnloadableModule) {
  writeArtifact();
  std::remove((artifactDir() + "/module.so").c_str());
  expectOpenError({"cannot open module", "module.so", "No such file"});
  writeBytes("model.kiln/module.so", "not an ELF file");
  expectOpenError({"module.so' is not a loadable shared object",
                   "it is not an ELF file"});
  // A truncated module would raise SIGBUS inside dlopen: its headers and
  // segments are checked against the file's size first.
  writeArtifact();
  std::string module = readBytes("model.kiln/module.so");
  writeBytes("model.kiln/module.so", module.substr(0, module.size() / 2));
  expectOpenError({"module.so' is not a loadable shared object", "truncated?"});
  writeBytes("model.kiln/module.so", module.substr(0, 200));
  expectOpenError({"module.so' is not a loadable shared object", "truncated?"});
  // An object file is ELF, but not a shared object.
  std::string object = module;
  object[16] = 1; // e_type = ET_REL
  object[17] = 0;
  writeBytes("model.kiln/module.so", object);
  expectOpenError({"not a shared object"});
}

TEST_F(ArtifactTest, RejectsAModuleOfAnotherAbiOrWithoutTheAbiSymbol) {
  writeArtifact(defaultManifest(), {{"w", {DType::F32, {4}, kiln::runtime::testing::kWeights.data()}}},
                "-DABI_VERSION=" + std::to_string(KILN_MODULE_ABI_VERSION - 1));
  expectOpenError({"module.so' has module ABI version 1, this runtime calls 2"});
  ASSERT_TRUE(compileModule(artifactDir(), "int kiln_entry_forward;", ""));
  expectOpenError({"module.so' is not a Kiln module",
                   "does not export kiln_abi_version"});
}

TEST_F(ArtifactTest, RefusesAManifestTheModuleWasNotBuiltFor) {
  // Each edit a careless or hostile user might make, against a module
  // built for the original manifest: one line naming the first difference.
  struct Edit {
    const char *what;
    std::function<void(json &)> apply;
    const char *needle;
  };
  std::vector<Edit> edits = {
      {"input rank",
       [](json &m) { m["entry_points"][0]["inputs"][0]["shape"] = {-1}; },
       "manifest: '  input x F32 [-1]', module.so: '  input x F32 [-1,4]'"},
      {"input dtype",
       [](json &m) { m["entry_points"][0]["inputs"][0]["dtype"] = "F64"; },
       "manifest: '  input x F64 [-1,4]'"},
      {"output static dim",
       [](json &m) { m["entry_points"][0]["outputs"][0]["shape"] = {-1, 8}; },
       "'  output y F32 [-1,8]'"},
      {"parameter shape",
       [](json &m) {
         m["parameters"][0]["shape"] = {2};
         m["parameters"][0]["size"] = 8;
       },
       "manifest: 'parameter w F32 [2]', module.so: 'parameter w F32 [4]'"},
      {"an entry's parameters",
       [](json &m) { m["entry_points"][2]["parameters"] = {"w"}; },
       "module.so: 'entry constant symbol kiln_entry_constant'"},
      {"symbol",
       [](json &m) { m["entry_points"][1]["symbol"] = "kiln_entry_forward"; },
       "'entry stats symbol kiln_entry_forward'"},
      {"a dropped entry point",
       [](json &m) { m["entry_points"].erase(6); },
       "manifest: (nothing), module.so: 'entry identity symbol "
       "kiln_entry_identity'"},
  };
  json original = defaultManifest();
  for (const Edit &edit : edits) {
    SCOPED_TRACE(edit.what);
    json edited = original;
    edit.apply(edited);
    writeArtifact(edited, {{"w", {DType::F32, {4}, kiln::runtime::testing::kWeights.data()}}},
                  kAbiDefine, &original);
    if (edited["parameters"][0]["shape"] == json({2}))
      writeArtifact(edited, {{"w", {DType::F32, {2}, kiln::runtime::testing::kWeights.data()}}},
                    kAbiDefine, &original);
    expectOpenError({"module.so' was not built for this manifest", edit.needle,
                     "recompile the model"});
  }
  // The module of another artifact: no signature at all, or another one.
  ASSERT_TRUE(compileModule(artifactDir(),
                            std::string(kiln::runtime::testing::kModuleSource),
                            kAbiDefine));
  expectOpenError({"has no kiln_module_signature"});
  writeArtifact();
  EXPECT_TRUE(openOk());
}

TEST_F(ArtifactTest, RejectsAMissingEntrySymbol) {
  writeArtifact(defaultManifest(),
                {{"w", {DType::F32, {4}, kiln::runtime::testing::kWeights.data()}}},
                kAbiDefine + " -DNO_EXTRA_ENTRIES");
  expectOpenError({"module.so' has no symbol 'kiln_entry_stats' for entry "
                   "point 'stats'"});
  json manifest = defaultManifest();
  manifest["entry_points"] = {manifest["entry_points"][0]};
  manifest["entry_points"][0]["symbol"] = "forward_v2";
  writeArtifact(manifest);
  expectOpenError({"has no symbol 'forward_v2' for entry point 'forward'"});
}

TEST_F(ArtifactTest, RejectsWeightsThatDisagreeWithTheParameterTable) {
  std::vector<float> w5 = {1, 2, 3, 4, 5};
  std::vector<double> w64 = {1, 2, 3, 4};
  std::vector<float> extra = {7};
  writeArtifact(defaultManifest(), {});
  expectOpenError({"weights.safetensors' has no tensor 'w', a parameter in "
                   "manifest.json"});
  writeArtifact(defaultManifest(), {{"w", {DType::F32, {5}, w5.data()}}});
  expectOpenError({"parameter 'w' is F32 [4] in manifest.json but F32 [5] in",
                   "weights.safetensors"});
  writeArtifact(defaultManifest(), {{"w", {DType::F32, {2, 2}, w5.data()}}});
  expectOpenError({"parameter 'w' is F32 [4] in manifest.json but F32 [2, 2]"});
  writeArtifact(defaultManifest(), {{"w", {DType::F64, {4}, w64.data()}}});
  expectOpenError({"parameter 'w' is F32 [4] in manifest.json but F64 [4]"});
  writeArtifact(defaultManifest(),
                {{"w", {DType::F32, {4}, w5.data()}},
                 {"extra", {DType::F32, {1}, extra.data()}}});
  expectOpenError({"has tensor 'extra', which is not a parameter in "
                   "manifest.json"});
  json manifest = defaultManifest();
  manifest["parameters"][0]["size"] = 12;
  writeArtifact(manifest);
  expectOpenError({"parameter 'w' lies at bytes [0, 16)",
                   "manifest.json says offset 0, size 12"});
}

TEST_F(ArtifactTest, RejectsCorruptOrMissingWeights) {
  writeArtifact();
  writeBytes("model.kiln/weights.safetensors", "junk");
  expectOpenError({"weights.safetensors' is not a valid safetensors file",
                   "fewer than the 8-byte"});
  std::remove((artifactDir() + "/weights.safetensors").c_str());
  expectOpenError({"cannot open", "weights.safetensors", "No such file"});
}

//===----------------------------------------------------------------------===//
// Errors of run()
//===----------------------------------------------------------------------===//

TEST_F(ArtifactTest, RejectsAnUnknownEntryPoint) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  expectRunError(*artifact, "backward", {{"x", xView}},
                 {"unknown entry point 'backward'; the artifact has: forward, "
                  "stats, transposed, constant, alias, badshape, identity"});
}

TEST_F(ArtifactTest, RejectsUnknownMissingAndRepeatedInputs) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  expectRunError(*artifact, "forward", {{"x", xView}, {"z", xView}, {"q", xView}},
                 {"entry point 'forward' has no inputs 'z', 'q' (its inputs: x)"});
  expectRunError(*artifact, "forward", {},
                 {"entry point 'forward': missing input 'x' (its inputs: x)"});
  expectRunError(*artifact, "forward", {{"x", xView}, {"x", xView}},
                 {"input 'x' is given more than once"});
  expectRunError(*artifact, "constant", {{"x", xView}},
                 {"entry point 'constant' has no input 'x' (its inputs: none)"});
}

TEST_F(ArtifactTest, RejectsInputsOfTheWrongDTypeRankOrShape) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<int64_t> ids(12);
  expectRunError(*artifact, "forward", {{"x", {DType::I64, {3, 4}, ids.data()}}},
                 {"entry point 'forward': input 'x' is I64, expected F32"});
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {12}, x.data()}}},
                 {"input 'x' has rank 1 (shape [12]), expected rank 2 (shape "
                  "[?, 4])"});
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {4, 3}, x.data()}}},
                 {"input 'x' has shape [4, 3], expected [?, 4] (dim 1 must be "
                  "4)"});
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {0, 4}, x.data()}}},
                 {"input 'x' has shape [0, 4], expected [?, 4] (dim 0 is "
                  "dynamic and must be at least 1)"});
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {3, 4}, nullptr}}},
                 {"input 'x' has no data"});
}

TEST_F(ArtifactTest, EnforcesMaxShape) {
  json manifest = defaultManifest();
  manifest["entry_points"][0]["inputs"][0]["max_shape"] = {2, -1};
  writeArtifact(manifest);
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<float> values(12, 1.0f);
  expectRunError(*artifact, "forward",
                 {{"x", {DType::F32, {3, 4}, values.data()}}},
                 {"input 'x' has shape [3, 4]: dim 0 is at most 2 for this "
                  "model"});
  auto ok = artifact->run("forward", {{"x", {DType::F32, {2, 4}, values.data()}}});
  EXPECT_TRUE(ok) << (ok ? "" : ok.message());

  manifest = defaultManifest();
  manifest["entry_points"][0]["inputs"][0]["max_shape"] = {0, -1};
  writeArtifact(manifest);
  expectOpenError({"input 'x'", "\"max_shape\"", "not -1 or >= 1"});
  manifest = defaultManifest();
  manifest["entry_points"][0]["inputs"][0]["max_shape"] = {-1};
  writeArtifact(manifest);
  expectOpenError({"input 'x'", "\"max_shape\" is not an array of rank 2"});
}

TEST_F(ArtifactTest, RejectsAResultOfTheWrongShape) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  expectRunError(*artifact, "badshape", {{"x", xView}},
                 {"entry point 'badshape' returned output 'y' of shape [3, 3], "
                  "the manifest declares [?, 4]"});
}

//===----------------------------------------------------------------------===//
// Training artifacts: parameters updated in place, state, checkpoints
//===----------------------------------------------------------------------===//

std::vector<float> valuesOf(const Artifact &artifact, const std::string &name) {
  std::optional<TensorView> view = artifact.parameter(name);
  if (!view)
    return {};
  const float *data = static_cast<const float *>(view->data);
  return std::vector<float>(data, data + 4);
}

TEST_F(ArtifactTest, TrainingEntryUpdatesParametersAndZeroInitializedState) {
  writeArtifact(trainingManifest());
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  EXPECT_TRUE(artifact->writesParameters());
  EXPECT_TRUE(artifact->parameters()[1].state);
  EXPECT_EQ(valuesOf(*artifact, "m"), (std::vector<float>{0, 0, 0, 0}));
  for (int step = 1; step <= 2; ++step) {
    Expected<std::vector<OwnedTensor>> outputs =
        artifact->run("train", {{"x", xView}});
    ASSERT_TRUE(outputs) << outputs.message();
    std::vector<float> w = valuesOf(*artifact, "w");
    float sum = 0;
    for (size_t j = 0; j < 4; ++j) {
      EXPECT_EQ(w[j], kiln::runtime::testing::kWeights[j] - 0.25f * step * x[j]);
      sum += w[j];
    }
    EXPECT_EQ(*(*outputs)[0].as<float>(), sum);
    EXPECT_EQ(valuesOf(*artifact, "m"),
              std::vector<float>(4, static_cast<float>(step)));
  }
  // forward sees the updated weights.
  Expected<std::vector<OwnedTensor>> y = artifact->run("forward", {{"x", xView}});
  ASSERT_TRUE(y) << y.message();
  EXPECT_EQ((*y)[0].as<float>()[0], x[0] * valuesOf(*artifact, "w")[0] + 1);
}

TEST_F(ArtifactTest, SavesAndLoadsParametersWithState) {
  writeArtifact(trainingManifest());
  std::string checkpoint = path("step2.safetensors");
  std::vector<float> trainedW;
  {
    std::unique_ptr<Artifact> artifact = openOk();
    ASSERT_TRUE(artifact);
    for (int step = 0; step < 2; ++step)
      ASSERT_TRUE(artifact->run("train", {{"x", xView}}));
    trainedW = valuesOf(*artifact, "w");
    Status saved = artifact->saveParameters(checkpoint, {{"step", "2"}});
    ASSERT_TRUE(saved) << saved.message();
  }
  Expected<SafeTensorsFile> file = SafeTensorsFile::open(checkpoint);
  ASSERT_TRUE(file) << file.message();
  EXPECT_TRUE(file->find("w") && file->find("m"));
  EXPECT_EQ(file->metadata().at("step"), "2");

  std::unique_ptr<Artifact> fresh = openOk();
  ASSERT_TRUE(fresh);
  EXPECT_NE(valuesOf(*fresh, "w"), trainedW);
  Status loaded = fresh->loadParameters(checkpoint, /*requireAll=*/true);
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(valuesOf(*fresh, "w"), trainedW);
  EXPECT_EQ(valuesOf(*fresh, "m"), std::vector<float>(4, 2.0f));
}

TEST_F(ArtifactTest, ModelOnlyLoadsSkipOptimizerState) {
  writeArtifact(trainingManifest());
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<float> w = {5, 6, 7, 8}, m = {1, 1, 1, 1};
  // A checkpoint of another optimizer ('w/momentum' is no parameter here)
  // with this one's state 'm' and a value head the artifact lacks: only
  // 'w' is taken, 'm' stays zero.
  std::string file = path("other.safetensors");
  ASSERT_TRUE(writeSafeTensors(file, {{"w", {DType::F32, {4}, w.data()}},
                                      {"m", {DType::F32, {4}, m.data()}},
                                      {"w/momentum", {DType::F32, {4}, m.data()}},
                                      {"value_head.bias", {DType::F32, {1}, m.data()}}}));
  EXPECT_FALSE(artifact->loadParameters(file, /*requireAll=*/true));
  Status loaded = artifact->loadParameters(
      file, /*requireAll=*/true, Artifact::LoadSelection::ModelOnly);
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(valuesOf(*artifact, "w"), w);
  EXPECT_EQ(valuesOf(*artifact, "m"), std::vector<float>(4, 0.0f));
  // requireAll still asks for every model parameter.
  ASSERT_TRUE(writeSafeTensors(file, {{"m", {DType::F32, {4}, m.data()}}}));
  Status missing = artifact->loadParameters(
      file, /*requireAll=*/true, Artifact::LoadSelection::ModelOnly);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("has no tensor 'w' (a model parameter"),
            std::string::npos)
      << missing.message();
}

TEST_F(ArtifactTest, ReferenceCopiesHoldNoOptimizerState) {
  writeArtifact(trainingManifest());
  std::string checkpoint = path("trained.safetensors");
  std::vector<float> trainedW;
  {
    std::unique_ptr<Artifact> artifact = openOk();
    ASSERT_TRUE(artifact);
    ASSERT_TRUE(artifact->run("train", {{"x", xView}}));
    trainedW = valuesOf(*artifact, "w");
    ASSERT_TRUE(artifact->saveParameters(checkpoint));
  }
  Expected<std::unique_ptr<Artifact>> opened =
      Artifact::open(artifactDir(), Artifact::OpenMode::Reference);
  ASSERT_TRUE(opened) << opened.message();
  Artifact &reference = **opened;
  EXPECT_FALSE(reference.parameter("m"));
  EXPECT_FALSE(reference.readParameter("m"));
  // The checkpoint's state is skipped; the model's parameters load.
  Status loaded = reference.loadParameters(checkpoint, /*requireAll=*/true);
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(valuesOf(reference, "w"), trainedW);
  Expected<std::vector<OwnedTensor>> y = reference.run("forward", {{"x", xView}});
  ASSERT_TRUE(y) << y.message();
  Expected<std::vector<OwnedTensor>> step = reference.run("train", {{"x", xView}});
  ASSERT_FALSE(step);
  EXPECT_NE(step.message().find("opened as a frozen reference"),
            std::string::npos)
      << step.message();
  EXPECT_EQ(valuesOf(reference, "w"), trainedW);

  writeArtifact();
  Expected<std::unique_ptr<Artifact>> inference =
      Artifact::open(artifactDir(), Artifact::OpenMode::Reference);
  ASSERT_FALSE(inference);
  EXPECT_NE(inference.message().find("is an inference artifact"),
            std::string::npos);
}

TEST_F(ArtifactTest, RejectsBadCheckpointsWithoutChangingAnything) {
  writeArtifact(trainingManifest());
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<float> before = valuesOf(*artifact, "w");
  auto expectLoadError = [&](const std::vector<NamedTensor> &tensors,
                             bool requireAll, const std::string &needle) {
    std::string file = path("bad.safetensors");
    ASSERT_TRUE(writeSafeTensors(file, tensors));
    Status status = artifact->loadParameters(file, requireAll);
    ASSERT_FALSE(status) << "loaded";
    EXPECT_NE(status.message().find(needle), std::string::npos)
        << status.message();
    EXPECT_EQ(valuesOf(*artifact, "w"), before);
  };
  std::vector<float> four = {9, 9, 9, 9}, two = {9, 9};
  expectLoadError({{"w", {DType::F32, {4}, four.data()}}}, true,
                  "has no tensor 'm' (optimizer state of");
  expectLoadError({{"w", {DType::F32, {2}, two.data()}}}, false,
                  "tensor 'w' is F32 [2], the artifact's parameter is F32 [4]");
  expectLoadError({{"w", {DType::F32, {4}, four.data()}},
                   {"v", {DType::F32, {4}, four.data()}}},
                  false, "has tensor 'v', which is not a parameter");
  std::ofstream(path("junk.safetensors")) << "not a safetensors file";
  EXPECT_FALSE(artifact->loadParameters(path("junk.safetensors"), false));
  EXPECT_EQ(valuesOf(*artifact, "w"), before);
}

/// The path of the file mapped at `address` in this process, "" for
/// anonymous memory (from /proc/self/maps).
std::string fileMappedAt(const void *address) {
  std::ifstream maps("/proc/self/maps");
  auto at = reinterpret_cast<uintptr_t>(address);
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream fields(line);
    fields >> std::hex >> begin >> dash >> end;
    if (at < begin || at >= end)
      continue;
    std::string perms, offset, device, inode, path;
    fields >> perms >> offset >> device >> inode;
    std::getline(fields >> std::ws, path);
    return path;
  }
  return "";
}

TEST_F(ArtifactTest, ReadsWeightsInTheFileOrCopiesThemWhenResident) {
  writeArtifact();
  for (Artifact::OpenMode mode :
       {Artifact::OpenMode::Full, Artifact::OpenMode::Resident}) {
    bool resident = mode == Artifact::OpenMode::Resident;
    SCOPED_TRACE(resident ? "resident" : "full");
    Expected<std::unique_ptr<Artifact>> artifact =
        Artifact::open(artifactDir(), mode);
    ASSERT_TRUE(artifact) << artifact.message();
    std::optional<TensorView> w = (*artifact)->parameter("w");
    ASSERT_TRUE(w);
    std::string file = fileMappedAt(w->data);
    EXPECT_EQ(file.find(".safetensors") == std::string::npos, resident)
        << "w lies in '" << file << "'";
    EXPECT_EQ(static_cast<const float *>(w->data)[3], -1.0f);
    // A resident artifact gave the mapping's pages back: the run reads the
    // copy.
    Expected<std::vector<OwnedTensor>> outputs =
        (*artifact)->run("forward", {{"x", xView}});
    ASSERT_TRUE(outputs) << outputs.message();
    for (size_t k = 0; k < x.size(); ++k)
      EXPECT_EQ((*outputs)[0].as<float>()[k], expectedForward(x, k)) << k;
  }
}

TEST_F(ArtifactTest, PacksWeightsMarkedAtLoadIntoColumnPanels) {
  // w as the module reads it: the panels [2, 2, 1] of a [2, 2] [in, out]
  // weight, stored in the file as the checkpoint holds it (transposed
  // panels: element (k, n) of the file is panels[n][k]).
  json manifest = defaultManifest();
  json &w = manifest["parameters"][0];
  w["shape"] = {2, 2, 1};
  w["packed"] = {{"shape", {2, 2}},
                 {"in_out", true},
                 {"width", 1},
                 {"pairs", 1},
                 {"at_load", true}};
  const std::vector<float> &kWeights = kiln::runtime::testing::kWeights;
  std::vector<float> file = {kWeights[0], kWeights[2], kWeights[1],
                             kWeights[3]};
  writeArtifact(manifest, {{"w", {DType::F32, {2, 2}, file.data()}}});
  for (Artifact::OpenMode mode :
       {Artifact::OpenMode::Full, Artifact::OpenMode::Resident}) {
    Expected<std::unique_ptr<Artifact>> artifact =
        Artifact::open(artifactDir(), mode);
    ASSERT_TRUE(artifact) << artifact.message();
    std::optional<TensorView> packed = (*artifact)->parameter("w");
    ASSERT_TRUE(packed);
    // Packed into memory of its own, whatever the mode.
    EXPECT_EQ(fileMappedAt(packed->data).find(".safetensors"),
              std::string::npos);
    // (The fixture's module reads w as a 1-D descriptor: the compiled
    // models' runs are the e2e tests' PackedWeights.)
    EXPECT_EQ(packed->shape, (std::vector<int64_t>{2, 2, 1}));
    for (size_t k = 0; k < kWeights.size(); ++k)
      EXPECT_EQ(static_cast<const float *>(packed->data)[k], kWeights[k]);
  }
  // The file must hold the checkpoint's shape, not the panels'.
  writeArtifact(manifest, {{"w", {DType::F32, {2, 2, 1}, kWeights.data()}}});
  Expected<std::unique_ptr<Artifact>> bad = Artifact::open(artifactDir());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("is F32 [2, 2] in manifest.json (to be packed "
                               "when loaded) but F32 [2, 2, 1]"),
            std::string::npos)
      << bad.message();
}

TEST_F(ArtifactTest, InferenceArtifactsRefuseToLoadParameters) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  EXPECT_FALSE(artifact->writesParameters());
  Status status = artifact->loadParameters(path("any.safetensors"), false);
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("kiln-compile --mode train"),
            std::string::npos)
      << status.message();
}

TEST_F(ArtifactTest, RejectsWritesOfParametersAnEntryDoesNotReceive) {
  json manifest = trainingManifest();
  manifest["entry_points"].back()["writes_parameters"] = {"w", "zzz"};
  writeArtifact(manifest);
  expectOpenError({"writes_parameters", "does not receive"});
}

} // namespace
