//===- CudaArtifactTest.cpp - Running cuda artifacts without a GPU --------===//
//
// A hand-written CUDA module.so (CudaTestModule.c, linked with
// kiln_gpu_module_support) runs on a fake CUDA driver and a fake cuBLASLt
// that work on host memory (FakeCuda.cpp, FakeCublasLt.cpp), loaded by the
// runtime through KILN_CUDA_DRIVER and KILN_CUBLASLT. Checked: results,
// parameters living in (fake) device memory and read back, the row-major
// gemm mapping against a naive reference, and every error path.
//
//===----------------------------------------------------------------------===//

#include "ArtifactFixture.h"
#include "TestFiles.h"
#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/CudaTarget.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Float8.h"
#include "kiln/Runtime/GpuApi.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>

using namespace kiln::runtime;
using json = nlohmann::json;

namespace {

const std::vector<float> kW = {0.5f, 1.0f, 2.0f, -1.0f};

/// The test module's kiln_test_set_gemm: kiln_gpu_gemm's arguments but
/// the type and the pointers, for the `gemm` entry point.
using SetGemmFunction = void (*)(int32_t, int32_t, int64_t, int64_t, int64_t,
                                 int64_t, int64_t, int64_t, int64_t, int64_t,
                                 int64_t, int64_t, float, float);
SetGemmFunction gemmSetter(void *module) {
  return reinterpret_cast<SetGemmFunction>(
      ::dlsym(module, "kiln_test_set_gemm"));
}

class CudaArtifactTest : public kiln::runtime::testing::ScratchDirTest {
protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    for (const char *name : kKnobs)
      ::unsetenv(name);
    ::setenv("KILN_CUDA_DRIVER", KILN_FAKE_CUDA, 1);
    ::setenv("KILN_CUBLASLT", KILN_FAKE_CUBLASLT, 1);
    fake_ = ::dlopen(KILN_FAKE_CUDA, RTLD_NOW | RTLD_LOCAL);
    fakeLt_ = ::dlopen(KILN_FAKE_CUBLASLT, RTLD_NOW | RTLD_LOCAL);
    ASSERT_TRUE(fake_ && fakeLt_) << ::dlerror();
  }
  /// The signature module.so was last built with.
  mutable std::string builtFor;

  void TearDown() override {
    for (const char *name : kKnobs)
      ::unsetenv(name);
    ::unsetenv("KILN_CUDA_DRIVER");
    ::unsetenv("KILN_CUBLASLT");
    ScratchDirTest::TearDown();
  }

  /// A counter the fake driver or cuBLASLt exports.
  int64_t fakeCount(const char *name) const {
    void *symbol = ::dlsym(fake_, name);
    if (!symbol)
      symbol = ::dlsym(fakeLt_, name);
    EXPECT_NE(symbol, nullptr) << name;
    return symbol ? reinterpret_cast<int64_t (*)()>(symbol)() : -1;
  }
  /// A counter of the fake cuBLASLt that takes an index.
  int64_t fakeCount(const char *name, int64_t index) const {
    void *symbol = ::dlsym(fakeLt_, name);
    EXPECT_NE(symbol, nullptr) << name;
    return symbol ? reinterpret_cast<int64_t (*)(int64_t)>(symbol)(index) : -1;
  }
  bool onFakeDevice(const void *pointer) const {
    auto isDevice = reinterpret_cast<int (*)(const void *)>(
        ::dlsym(fake_, "fake_cuda_is_device_pointer"));
    return isDevice && isDevice(pointer);
  }

  std::string artifactDir() const { return path("model.kiln"); }

  /// The artifact's module.so as the open artifact loaded it (the test
  /// module exports setters of what its entry points do); dlclose it.
  void *loadedModule() const {
    return ::dlopen((artifactDir() + "/module.so").c_str(),
                    RTLD_NOW | RTLD_NOLOAD);
  }
  /// The `gemm` entry point's inputs a, b and c, each four ones.
  static std::vector<NamedTensor> fourOnes() {
    static const std::vector<float> ones(4, 1);
    return {{"a", {DType::F32, {4}, ones.data()}},
            {"b", {DType::F32, {4}, ones.data()}},
            {"c", {DType::F32, {4}, ones.data()}}};
  }

  static json spec(const std::string &name, std::vector<int64_t> shape) {
    return {{"name", name}, {"dtype", "F32"}, {"shape", shape}};
  }
  static json entry(const std::string &name, json inputs, json outputs,
                    json parameters = json::array()) {
    return {{"name", name},
            {"inputs", inputs},
            {"outputs", outputs},
            {"parameters", parameters}};
  }
  /// The manifest of CudaTestModule.c.
  static json manifest() {
    json x = spec("x", {-1});
    json train = entry("train", {spec("x", {4})}, {spec("m", {4})},
                       {"w", "m"});
    train["writes_parameters"] = {"w", "m"};
    return {
        {"format", "kiln-artifact"},
        {"format_version", 1},
        {"target", "cuda"},
        {"target_options", {{"cuda_arch", "sm_90"}, {"image", "fatbin"}}},
        {"parameters",
         json::array({{{"name", "w"},
                       {"dtype", "F32"},
                       {"shape", {4}},
                       {"offset", 0},
                       {"size", 16},
                       {"trainable", true}},
                      {{"name", "m"},
                       {"dtype", "F32"},
                       {"shape", {4}},
                       {"state", true}}})},
        {"entry_points",
         json::array(
             {entry("forward", {x}, {spec("y", {-1}), spec("v", {4})},
                    {"w"}),
              entry("alias", {x},
                    {spec("a", {-1}), spec("b", {-1}), spec("c", {-1}),
                     spec("d", {4})},
                    {"w"}),
              entry("transposed", {spec("x", {-1, 4})},
                    {spec("y", {-1, 4})}),
              train,
              entry("gemm", {spec("a", {-1}), spec("b", {-1}),
                             spec("c", {-1})},
                    {spec("out", {-1})}),
              entry("missing_kernel", json::array(), {spec("y", {4})}),
              entry("jit_error", json::array(), {spec("y", {4})})})}};
  }

  /// Compiles CudaTestModule.c into `output`, linked with
  /// kiln_gpu_module_support; true on success.
  /// With kiln_module_signature for `m`, as kiln-compile embeds it.
  static bool compileModule(const std::string &output, const json &m) {
    std::string signature = output + ".signature.c";
    {
      std::ofstream out(signature);
      out << kiln::runtime::testing::ArtifactFixtureSignature::definition(m);
    }
    std::string command = "cc -shared -fPIC -O1 -I'" KILN_INCLUDE_DIR "' -o '" +
                          output + "' '" +
                          KILN_TEST_CUDA_MODULE_SOURCE + "' '" + signature +
                          "' '" + KILN_GPU_MODULE_SUPPORT + "'";
    bool ok = std::system(command.c_str()) == 0;
    std::remove(signature.c_str());
    return ok;
  }

  /// The module is rebuilt when the manifest's signature changes.
  void writeArtifact(const json &m = manifest()) const {
    std::string dir = artifactDir();
    ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
    std::string signature =
        kiln::runtime::testing::ArtifactFixtureSignature::definition(m);
    if (!pathExists(dir + "/module.so") || signature != builtFor) {
      ASSERT_TRUE(compileModule(dir + "/module.so", m));
      builtFor = signature;
    }
    ASSERT_TRUE(writeSafeTensors(dir + "/weights.safetensors",
                                 {{"w", {DType::F32, {4}, kW.data()}}}));
    std::ofstream(dir + "/manifest.json") << m.dump(2);
  }

  std::unique_ptr<Artifact> openOk() const {
    Expected<std::unique_ptr<Artifact>> artifact =
        Artifact::open(artifactDir());
    EXPECT_TRUE(artifact) << artifact.message();
    return artifact ? artifact.take() : nullptr;
  }
  void expectOpenError(const std::vector<std::string> &needles) const {
    Expected<std::unique_ptr<Artifact>> artifact =
        Artifact::open(artifactDir());
    ASSERT_FALSE(artifact) << "the artifact opened";
    for (const std::string &needle : needles)
      EXPECT_NE(artifact.message().find(needle), std::string::npos)
          << "'" << needle << "' not in: " << artifact.message();
  }
  static void expectRunError(const Artifact &artifact,
                             const std::string &entryName,
                             const std::vector<NamedTensor> &inputs,
                             const std::vector<std::string> &needles) {
    Expected<std::vector<OwnedTensor>> outputs =
        artifact.run(entryName, inputs);
    ASSERT_FALSE(outputs) << "the call succeeded";
    for (const std::string &needle : needles)
      EXPECT_NE(outputs.message().find(needle), std::string::npos)
          << "'" << needle << "' not in: " << outputs.message();
  }
  static std::vector<float> values(const OwnedTensor &t) {
    return std::vector<float>(t.as<float>(), t.as<float>() + t.numElements());
  }
  static std::vector<float> values(const TensorView &t) {
    auto *p = static_cast<const float *>(t.data);
    return std::vector<float>(p, p + numElements(t.shape));
  }

  static constexpr const char *kKnobs[] = {
      "FAKE_CUDA_FAIL", "FAKE_CUDA_CC",   "FAKE_CUDA_DEVICES",
      "KILN_CUDA_DEVICE", "KILN_CUDA_TF32", "FAKE_CUBLASLT_FAIL"};
  void *fake_ = nullptr;
  void *fakeLt_ = nullptr;
};

TEST_F(CudaArtifactTest, RunsKernelsOnDeviceCopiesOfInputsAndParameters) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  EXPECT_EQ(artifact->manifest().target, TargetKind::CUDA);
  EXPECT_STREQ(targetName(artifact->manifest().target), "cuda");
  // w and m, nothing else.
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
  int64_t launches = fakeCount("fake_cuda_launches");

  std::vector<float> x = {1, 2, 3, 4, 5};
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("forward", {{"x", {DType::F32, {5}, x.data()}}});
  ASSERT_TRUE(outputs) << outputs.message();
  ASSERT_EQ(outputs->size(), 2u);
  EXPECT_EQ((*outputs)[0].shape(), std::vector<int64_t>{5});
  EXPECT_EQ(values((*outputs)[0]), (std::vector<float>{2, 3, 4, 5, 6}));
  EXPECT_EQ(values((*outputs)[1]), (std::vector<float>{1.5f, 2, 3, 0}));
  // Results are host memory; the device buffers are freed.
  EXPECT_FALSE(onFakeDevice((*outputs)[0].data()));
  EXPECT_EQ(fakeCount("fake_cuda_launches"), launches + 2);
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
  EXPECT_EQ(fakeCount("fake_cuda_bad_frees"), 0);
  // The caller's input is untouched.
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3, 4, 5}));

  // No gemm, so no cuBLASLt was needed.
  artifact.reset();
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 0);
  EXPECT_EQ(fakeCount("fake_cuda_primary_retains"), 0);
  EXPECT_EQ(fakeCount("fake_cuda_modules_unloaded"),
            fakeCount("fake_cuda_modules_loaded"));
}

TEST_F(CudaArtifactTest, ResultsAliasingInputsAndParametersAreCopiedNotFreed) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<float> x = {7, 8, 9};
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("alias", {{"x", {DType::F32, {3}, x.data()}}});
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ(values((*outputs)[0]), (std::vector<float>{8, 9, 10}));
  EXPECT_EQ(values((*outputs)[1]), (std::vector<float>{8, 9, 10}));
  EXPECT_EQ(values((*outputs)[2]), x);
  EXPECT_EQ(values((*outputs)[3]), kW);
  // The shared buffer freed once, x's device copy freed, w kept.
  EXPECT_EQ(fakeCount("fake_cuda_bad_frees"), 0);
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
  Expected<std::vector<OwnedTensor>> again =
      artifact->run("forward", {{"x", {DType::F32, {3}, x.data()}}});
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ(values((*again)[1]), (std::vector<float>{1.5f, 2, 3, 0}));
}

TEST_F(CudaArtifactTest, CopiesStridedDeviceResultsOut) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("transposed", {{"x", {DType::F32, {3, 4}, x.data()}}});
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ((*outputs)[0].shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(values((*outputs)[0]), x);
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
}

TEST_F(CudaArtifactTest, ParametersLiveOnTheDeviceAndAreReadBack) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  ASSERT_TRUE(artifact->writesParameters());
  std::optional<TensorView> w = artifact->parameter("w");
  ASSERT_TRUE(w);
  EXPECT_FALSE(onFakeDevice(w->data)); // a host snapshot
  EXPECT_EQ(values(*w), kW);
  EXPECT_EQ(values(*artifact->parameter("m")),
            (std::vector<float>{0, 0, 0, 0})); // zeroed on the device
  EXPECT_FALSE(artifact->parameter("nope"));
  EXPECT_FALSE(artifact->readParameter("nope"));

  // train adds 1 to w and m in place, on the device.
  std::vector<float> x(4, 0);
  for (int step = 1; step <= 2; ++step) {
    Expected<std::vector<OwnedTensor>> m =
        artifact->run("train", {{"x", {DType::F32, {4}, x.data()}}});
    ASSERT_TRUE(m) << m.message();
    EXPECT_EQ(values((*m)[0]), std::vector<float>(4, float(step)));
  }
  Expected<OwnedTensor> trained = artifact->readParameter("w");
  ASSERT_TRUE(trained) << trained.message();
  EXPECT_EQ(values(*trained), (std::vector<float>{2.5f, 3, 4, 1}));
  EXPECT_EQ(values(*artifact->parameter("w")),
            (std::vector<float>{2.5f, 3, 4, 1}));

  // A checkpoint holds the device values.
  std::string checkpoint = path("checkpoint.safetensors");
  ASSERT_TRUE(artifact->saveParameters(checkpoint, {{"step", "2"}}));
  {
    Expected<SafeTensorsFile> file = SafeTensorsFile::open(checkpoint);
    ASSERT_TRUE(file) << file.message();
    EXPECT_EQ(values(file->view(*file->find("w"))),
              (std::vector<float>{2.5f, 3, 4, 1}));
    EXPECT_EQ(values(file->view(*file->find("m"))), std::vector<float>(4, 2));
  }

  // Loading copies to the device: the next forward sees it.
  std::vector<float> loaded = {10, 20, 30, 40};
  std::string weights = path("loaded.safetensors");
  ASSERT_TRUE(writeSafeTensors(weights, {{"w", {DType::F32, {4},
                                                loaded.data()}}}));
  Status status = artifact->loadParameters(weights, false);
  ASSERT_TRUE(status) << status.message();
  Expected<std::vector<OwnedTensor>> forward =
      artifact->run("forward", {{"x", {DType::F32, {1}, x.data()}}});
  ASSERT_TRUE(forward) << forward.message();
  EXPECT_EQ(values((*forward)[1]), (std::vector<float>{11, 21, 31, 41}));
  EXPECT_EQ(values(*artifact->parameter("m")), std::vector<float>(4, 2));
}

TEST_F(CudaArtifactTest, NoDriverIsAClearOpenError) {
  writeArtifact();
  ::setenv("KILN_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
  expectOpenError({"model.kiln' is a cuda artifact (sm_90) but no CUDA "
                   "driver was found: /nonexistent/libcuda.so.1",
                   "a CUDA artifact needs an NVIDIA GPU and its driver; "
                   "compile with --target cpu for this machine"});
}

TEST_F(CudaArtifactTest, NoDeviceOrAFailingInitIsAClearOpenError) {
  writeArtifact();
  ::setenv("FAKE_CUDA_DEVICES", "0", 1);
  expectOpenError({"is a cuda artifact (sm_90) but", "reports no CUDA device"});
  ::unsetenv("FAKE_CUDA_DEVICES");
  ::setenv("FAKE_CUDA_FAIL", "cuInit=3", 1);
  expectOpenError({"failed to initialize: cuInit: CUDA_ERROR_NOT_INITIALIZED: "
                   "initialization error"});
  ::unsetenv("FAKE_CUDA_FAIL");
  ::setenv("KILN_CUDA_DEVICE", "1", 1);
  expectOpenError({"KILN_CUDA_DEVICE is '1', but the CUDA devices are 0 to 0"});
  ::setenv("KILN_CUDA_DEVICE", "0", 1);
  EXPECT_TRUE(openOk());
}

TEST_F(CudaArtifactTest, ChecksTheComputeCapability) {
  json m = manifest();
  writeArtifact(m);
  ::setenv("FAKE_CUDA_CC", "80", 1);
  expectOpenError({"is a cuda artifact for sm_90 (fatbin", "but CUDA device 0 "
                   "(Fake GPU 0) has compute capability 8.0"});
  // A binary runs only within its major version; PTX on anything newer.
  m["target_options"] = {{"cuda_arch", "sm_80"}, {"image", "fatbin"}};
  writeArtifact(m);
  ::setenv("FAKE_CUDA_CC", "90", 1);
  expectOpenError({"for sm_80 (fatbin, needs compute capability 8.x",
                   "has compute capability 9.0"});
  m["target_options"] = {{"cuda_arch", "sm_80"}, {"image", "ptx"}};
  writeArtifact(m);
  EXPECT_TRUE(openOk());
  m["target_options"] = {{"cuda_arch", "sm_100"}, {"image", "ptx"}};
  writeArtifact(m);
  expectOpenError({"for sm_100 (ptx, needs compute capability 10.0 or newer"});

  m["target_options"] = {{"cuda_arch", "volta"}};
  writeArtifact(m);
  expectOpenError({"target_options.cuda_arch is 'volta'"});
  // kiln-compile --cuda-image cubin artifacts load (cubin: the major
  // version's rule); an arch-specific sm_90a one only on 9.0 itself.
  m["target_options"] = {{"cuda_arch", "sm_90"}, {"image", "cubin"}};
  writeArtifact(m);
  EXPECT_TRUE(openOk());
  m["target_options"] = {{"cuda_arch", "sm_90a"}, {"image", "ptx"}};
  writeArtifact(m);
  EXPECT_TRUE(openOk());
  ::setenv("FAKE_CUDA_CC", "100", 1);
  expectOpenError({"for sm_90a (ptx, needs compute capability 9.0 exactly)"});
  ::setenv("FAKE_CUDA_CC", "90", 1);
  m["target_options"] = {{"cuda_arch", "sm_90"}, {"image", "elf"}};
  writeArtifact(m);
  expectOpenError({"target_options.image is 'elf', expected ptx, cubin or "
                   "fatbin"});
  m["target_options"] = {{"cuda_arch", "sm_90x"}};
  writeArtifact(m);
  expectOpenError({"target_options.cuda_arch is 'sm_90x'"});
  m["target_options"] = json::object();
  writeArtifact(m);
  expectOpenError({"a cuda artifact needs target_options.cuda_arch"});
}

TEST(CudaTargetTest, ArchitecturesAndImagesAsCompilerAndRuntimeAgree) {
  for (const char *good : {"sm_70", "sm_80", "sm_90", "sm_90a", "sm_100",
                           "sm_100a", "sm_120"}) {
    std::optional<CudaArch> arch = parseCudaArch(good);
    ASSERT_TRUE(arch) << good;
    EXPECT_EQ(arch->name(), good);
  }
  for (const char *bad : {"sm_60", "sm_9", "sm_090", "sm_90b", "sm_90aa",
                          "sm_1000", "compute_90", "sm_", ""})
    EXPECT_FALSE(parseCudaArch(bad)) << bad;
  for (CudaImage image : {CudaImage::Ptx, CudaImage::Cubin, CudaImage::Fatbin})
    EXPECT_EQ(parseCudaImage(cudaImageName(image)), image);
  EXPECT_FALSE(parseCudaImage("isa"));

  CudaArch sm80 = *parseCudaArch("sm_80"), sm90a = *parseCudaArch("sm_90a");
  EXPECT_TRUE(cudaImageRuns(sm80, CudaImage::Ptx, 9, 0));
  EXPECT_FALSE(cudaImageRuns(sm80, CudaImage::Cubin, 9, 0));
  EXPECT_TRUE(cudaImageRuns(sm80, CudaImage::Cubin, 8, 6));
  EXPECT_FALSE(cudaImageRuns(sm80, CudaImage::Fatbin, 7, 5));
  EXPECT_TRUE(cudaImageRuns(sm90a, CudaImage::Cubin, 9, 0));
  EXPECT_FALSE(cudaImageRuns(sm90a, CudaImage::Ptx, 10, 0));
}

TEST_F(CudaArtifactTest, AFailingLaunchIsReportedByRunAndStopsTheCall) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  int64_t launches = fakeCount("fake_cuda_launches");
  ::setenv("FAKE_CUDA_FAIL", "cuLaunchKernel", 1);
  std::vector<float> x = {1, 2};
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {2}, x.data()}}},
                 {"entry point 'forward': "
                  "cuLaunchKernel(kiln_fake_add_one_f32): "
                  "CUDA_ERROR_INVALID_VALUE: invalid argument"});
  // The second launch of the call was not attempted; nothing leaked.
  EXPECT_EQ(fakeCount("fake_cuda_launches"), launches + 1);
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
  EXPECT_EQ(fakeCount("fake_cuda_bad_frees"), 0);

  // The failure belongs to that call only.
  ::unsetenv("FAKE_CUDA_FAIL");
  Expected<std::vector<OwnedTensor>> outputs =
      artifact->run("forward", {{"x", {DType::F32, {2}, x.data()}}});
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ(values((*outputs)[0]), (std::vector<float>{2, 3}));

  ::setenv("FAKE_CUDA_FAIL", "cuStreamSynchronize=719", 1);
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {2}, x.data()}}},
                 {"cuStreamSynchronize: CUDA_ERROR_LAUNCH_FAILED: "
                  "unspecified launch failure"});
  ::setenv("FAKE_CUDA_FAIL", "cuMemAlloc=2", 1);
  expectRunError(*artifact, "forward", {{"x", {DType::F32, {2}, x.data()}}},
                 {"input 'x': cuMemAlloc(8 bytes): CUDA_ERROR_OUT_OF_MEMORY"});
}

TEST_F(CudaArtifactTest, KernelLookupAndJitFailuresNameTheKernelAndTheLog) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  expectRunError(*artifact, "missing_kernel", {},
                 {"cuModuleGetFunction(kiln_missing_kernel): "
                  "CUDA_ERROR_NOT_FOUND: named symbol not found"});
  expectRunError(*artifact, "jit_error", {},
                 {"cuModuleLoadDataEx(", "-byte PTX): CUDA_ERROR_INVALID_PTX",
                  "JIT log: ptxas fatal   : fake syntax error at line 1"});
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
}

//===----------------------------------------------------------------------===//
// kiln_gpu_gemm through cuBLASLt
//===----------------------------------------------------------------------===//

struct GemmCase {
  int transA, transB;
  int64_t batch, m, n, k;
  bool broadcastA, broadcastB;
  float alpha, beta;
};

/// Runs entry point gemm on random data and compares with a naive row-major
/// product.
void checkGemm(const Artifact &artifact, void *module, const GemmCase &g) {
  SCOPED_TRACE(::testing::Message()
               << "transA " << g.transA << " transB " << g.transB << " batch "
               << g.batch << " m " << g.m << " n " << g.n << " k " << g.k
               << " broadcast " << g.broadcastA << g.broadcastB);
  // Row strides with padding, so that ld != the logical width.
  int64_t aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
  int64_t bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
  int64_t lda = aCols + 1, ldb = bCols + 2, ldc = g.n + 3;
  int64_t strideA = g.broadcastA ? 0 : aRows * lda;
  int64_t strideB = g.broadcastB ? 0 : bRows * ldb;
  int64_t strideC = g.m * ldc;
  std::vector<float> a((g.broadcastA ? 1 : g.batch) * aRows * lda);
  std::vector<float> b((g.broadcastB ? 1 : g.batch) * bRows * ldb);
  std::vector<float> c(g.batch * strideC);
  uint32_t seed = 1;
  auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>((seed >> 9) % 17) - 8;
  };
  for (float &v : a)
    v = next();
  for (float &v : b)
    v = next();
  for (float &v : c)
    v = next();

  auto setGemm = gemmSetter(module);
  ASSERT_NE(setGemm, nullptr);
  setGemm(g.transA, g.transB, g.batch, g.m, g.n, g.k, lda, strideA, ldb,
          strideB, ldc, strideC, g.alpha, g.beta);
  Expected<std::vector<OwnedTensor>> outputs = artifact.run(
      "gemm",
      {{"a", {DType::F32, {static_cast<int64_t>(a.size())}, a.data()}},
       {"b", {DType::F32, {static_cast<int64_t>(b.size())}, b.data()}},
       {"c", {DType::F32, {static_cast<int64_t>(c.size())}, c.data()}}});
  ASSERT_TRUE(outputs) << outputs.message();
  const float *result = (*outputs)[0].as<float>();
  for (int64_t i = 0; i < g.batch; ++i)
    for (int64_t r = 0; r < g.m; ++r)
      for (int64_t col = 0; col < ldc; ++col) {
        float expected = c[i * strideC + r * ldc + col];
        if (col < g.n) {
          float sum = 0;
          for (int64_t p = 0; p < g.k; ++p) {
            float x = g.transA ? a[i * strideA + p * lda + r]
                               : a[i * strideA + r * lda + p];
            float y = g.transB ? b[i * strideB + col * ldb + p]
                               : b[i * strideB + p * ldb + col];
            sum += x * y;
          }
          expected = g.alpha * sum + g.beta * expected;
        }
        // Small integers: exact in f32 whatever the summation order.
        ASSERT_EQ(result[i * strideC + r * ldc + col], expected)
            << "batch " << i << " row " << r << " col " << col;
      }
}

TEST_F(CudaArtifactTest, GemmMapsRowMajorOntoColumnMajorCublasLt) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  int64_t matmuls = fakeCount("fake_cublaslt_matmuls");
  int cases = 0;
  for (int transA : {0, 1})
    for (int transB : {0, 1}) {
      checkGemm(*artifact, module, {transA, transB, 1, 3, 5, 7, false, false,
                                    1, 0});
      checkGemm(*artifact, module, {transA, transB, 3, 5, 2, 3, false, false,
                                    2, 1});
      checkGemm(*artifact, module, {transA, transB, 2, 1, 4, 5, true, false,
                                    1, 0.5f});
      checkGemm(*artifact, module, {transA, transB, 3, 4, 1, 2, false, true,
                                    -1, 0});
      cases += 4;
    }
  EXPECT_EQ(fakeCount("fake_cublaslt_matmuls"), matmuls + cases);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_compute_type"), 68); // exact f32
  ::dlclose(module);
  // cuBLASLt's workspace goes with the driver, and the driver with the
  // last artifact.
  artifact.reset();
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 0);
  EXPECT_EQ(fakeCount("fake_cuda_primary_retains"), 0);
}

TEST_F(CudaArtifactTest, Tf32IsOptIn) {
  ::setenv("KILN_CUDA_TF32", "1", 1);
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  checkGemm(*artifact, module, {0, 0, 1, 2, 2, 2, false, false, 1, 0});
  EXPECT_EQ(fakeCount("fake_cublaslt_last_compute_type"), 77);
  ::dlclose(module);
}

TEST_F(CudaArtifactTest, CublasLtFailuresAreClearRunErrors) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  auto setGemm = gemmSetter(module);
  ASSERT_NE(setGemm, nullptr);
  setGemm(0, 0, 1, 2, 2, 2, 2, 4, 2, 4, 2, 4, 1, 0);
  std::vector<NamedTensor> inputs = fourOnes();
  ::setenv("KILN_CUBLASLT", "/nonexistent/libcublasLt.so.13", 1);
  expectRunError(*artifact, "gemm", inputs,
                 {"entry point 'gemm': cuBLASLt not found (tried "
                  "/nonexistent/libcublasLt.so.13",
                  "set KILN_CUBLASLT=/path/libcublasLt.so.N"});
  EXPECT_EQ(fakeCount("fake_cuda_live_allocations"), 2);
  ::setenv("KILN_CUBLASLT", KILN_FAKE_CUBLASLT, 1);
  ::setenv("FAKE_CUBLASLT_FAIL", "cublasLtMatmul", 1);
  expectRunError(*artifact, "gemm", inputs,
                 {"kiln_gpu_gemm(f32, batch 1, m 2, n 2, k 2): "
                  "cublasLtMatmul: CUBLAS_STATUS_NOT_SUPPORTED"});
  ::unsetenv("FAKE_CUBLASLT_FAIL");
  Expected<std::vector<OwnedTensor>> outputs = artifact->run("gemm", inputs);
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ(values((*outputs)[0]), std::vector<float>(4, 2));
  // A row stride below the row length is refused by cuBLASLt's layout.
  setGemm(0, 0, 1, 2, 2, 2, 1, 4, 2, 4, 2, 4, 1, 0);
  expectRunError(*artifact, "gemm", inputs,
                 {"cublasLtMatrixLayoutCreate(A): "
                  "CUBLAS_STATUS_INVALID_VALUE"});
  ::dlclose(module);
}

TEST_F(CudaArtifactTest, NarrowGemmsWriteAnF32Result) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  auto setGemm = gemmSetter(module);
  auto setType =
      reinterpret_cast<void (*)(int32_t)>(::dlsym(module, "kiln_test_set_gemm_dtype"));
  ASSERT_NE(setGemm, nullptr);
  ASSERT_NE(setType, nullptr);
  setGemm(0, 0, 1, 2, 2, 2, 2, 4, 2, 4, 2, 4, 1, 0);
  std::vector<NamedTensor> inputs = fourOnes();
  // The fake computes f32 only: it records the layouts' types and refuses.
  constexpr int64_t kR32F = 0, kR16F = 2, kR16BF = 14; // library_types.h
  struct Case {
    int32_t dtype;
    const char *name;
    int64_t operands, result;
  };
  for (Case c : {Case{KILN_GPU_BF16_F32, "bf16 -> f32", kR16BF, kR32F},
                 Case{KILN_GPU_F16_F32, "f16 -> f32", kR16F, kR32F},
                 Case{KILN_GPU_BF16, "bf16", kR16BF, kR16BF}}) {
    setType(c.dtype);
    expectRunError(*artifact, "gemm", inputs,
                   {std::string("kiln_gpu_gemm(") + c.name + ", batch 1",
                    "cublasLtMatmul: CUBLAS_STATUS_NOT_SUPPORTED"});
    for (int64_t which = 0; which < 2; ++which)
      EXPECT_EQ(fakeCount("fake_cublaslt_last_type", which), c.operands)
          << c.name << " operand " << which;
    for (int64_t which = 2; which < 4; ++which)
      EXPECT_EQ(fakeCount("fake_cublaslt_last_type", which), c.result)
          << c.name << " result layout " << which;
  }
  setType(9);
  expectRunError(*artifact, "gemm", inputs, {"kiln_gpu_gemm: unknown dtype 9"});
  setType(KILN_GPU_F32);
  ::dlclose(module);
}

/// int8 operands and int32 results travel through the `gemm` entry point's
/// F32 buffers as raw bytes.
template <typename T> std::vector<float> asFloats(const std::vector<T> &v) {
  std::vector<float> words((v.size() * sizeof(T) + 3) / 4, 0.0f);
  std::memcpy(words.data(), v.data(), v.size() * sizeof(T));
  return words;
}

struct Int8GemmCase {
  int64_t batch, m, n, k, lda, ldb, ldc;
  bool broadcastB;
  float beta;
};

/// Runs an int8 x int8 -> int32 gemm (transA 0, transB 1: activations
/// [m, k], a weight [n, k]) on the fake cuBLASLt and compares every output
/// word, padding included, with an integer reference.
void checkInt8Gemm(const Artifact &artifact, void *module,
                   const Int8GemmCase &g) {
  SCOPED_TRACE(::testing::Message()
               << "int8 batch " << g.batch << " m " << g.m << " n " << g.n
               << " k " << g.k << " ld " << g.lda << "/" << g.ldb << "/"
               << g.ldc << " beta " << g.beta);
  int64_t strideA = g.m * g.lda, strideB = g.broadcastB ? 0 : g.n * g.ldb,
          strideC = g.m * g.ldc;
  std::vector<int8_t> a(g.batch * strideA),
      b((g.broadcastB ? 1 : g.batch) * g.n * g.ldb);
  std::vector<int32_t> c(g.batch * strideC);
  uint32_t seed = 7;
  auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<int32_t>((seed >> 8) % 256) - 128; // all of int8
  };
  for (int8_t &v : a)
    v = static_cast<int8_t>(next());
  for (int8_t &v : b)
    v = static_cast<int8_t>(next());
  for (int32_t &v : c)
    v = next() * 1000;
  auto setGemm = gemmSetter(module);
  auto setType = reinterpret_cast<void (*)(int32_t)>(
      ::dlsym(module, "kiln_test_set_gemm_dtype"));
  ASSERT_TRUE(setGemm && setType);
  setType(KILN_GPU_I8_I32);
  setGemm(0, 1, g.batch, g.m, g.n, g.k, g.lda, strideA, g.ldb, strideB, g.ldc,
          strideC, 1, g.beta);
  std::vector<float> fa = asFloats(a), fb = asFloats(b), fc = asFloats(c);
  Expected<std::vector<OwnedTensor>> outputs = artifact.run(
      "gemm",
      {{"a", {DType::F32, {static_cast<int64_t>(fa.size())}, fa.data()}},
       {"b", {DType::F32, {static_cast<int64_t>(fb.size())}, fb.data()}},
       {"c", {DType::F32, {static_cast<int64_t>(fc.size())}, fc.data()}}});
  setType(KILN_GPU_F32);
  ASSERT_TRUE(outputs) << outputs.message();
  std::vector<int32_t> result(c.size());
  ASSERT_EQ((*outputs)[0].numElements(), static_cast<int64_t>(c.size()));
  std::memcpy(result.data(), (*outputs)[0].data(), c.size() * 4);
  for (int64_t i = 0; i < g.batch; ++i)
    for (int64_t r = 0; r < g.m; ++r)
      for (int64_t col = 0; col < g.ldc; ++col) {
        int64_t at = i * strideC + r * g.ldc + col;
        int32_t expected = c[at];
        if (col < g.n) {
          int64_t sum = 0;
          for (int64_t p = 0; p < g.k; ++p)
            sum += int64_t(a[i * strideA + r * g.lda + p]) *
                   int64_t(b[i * strideB + col * g.ldb + p]);
          expected = static_cast<int32_t>(sum) +
                     static_cast<int32_t>(g.beta) * expected;
        }
        ASSERT_EQ(result[at], expected)
            << "batch " << i << " row " << r << " col " << col;
      }
}

TEST_F(CudaArtifactTest, Int8GemmsRunOnCublasLtsInt8KernelsExactly) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  int64_t int8Matmuls = fakeCount("fake_cublaslt_int8_matmuls");
  // Padded rows (ld > k, ldc > n), a strided batch, a weight broadcast over
  // the batch with accumulation, k of 2^10 (sums far beyond int16).
  checkInt8Gemm(*artifact, module, {1, 3, 8, 12, 16, 20, 12, false, 0});
  // cuBLASLt's A is our weight (ld = ldb), its B our activations (lda),
  // its C and D our output (ldc); int8 operands, int32 results, int32
  // accumulation and int32 alpha and beta (library_types.h, cublas_api.h).
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 0), 20);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 1), 16);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 2), 12);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 3), 12);
  for (int64_t which = 0; which < 2; ++which)
    EXPECT_EQ(fakeCount("fake_cublaslt_last_type", which), 3); // CUDA_R_8I
  for (int64_t which = 2; which < 4; ++which)
    EXPECT_EQ(fakeCount("fake_cublaslt_last_type", which), 10); // CUDA_R_32I
  EXPECT_EQ(fakeCount("fake_cublaslt_last_compute_type"), 72);  // COMPUTE_32I
  EXPECT_EQ(fakeCount("fake_cublaslt_last_scale_type"), 10);
  checkInt8Gemm(*artifact, module, {3, 5, 4, 8, 8, 8, 4, false, 0});
  checkInt8Gemm(*artifact, module, {2, 1, 12, 1024, 1024, 1028, 16, true, 1});
  EXPECT_EQ(fakeCount("fake_cublaslt_int8_matmuls"), int8Matmuls + 3);

  // What cuBLASLt's int8 kernels cannot take is a run error that says
  // which rule, before cuBLASLt is asked.
  auto setGemm = gemmSetter(module);
  auto setType = reinterpret_cast<void (*)(int32_t)>(
      ::dlsym(module, "kiln_test_set_gemm_dtype"));
  ASSERT_TRUE(setGemm && setType);
  std::vector<NamedTensor> inputs = fourOnes();
  struct Bad {
    int transA, transB;
    int64_t n, k, lda, ldb, ldc;
    float alpha;
    const char *message;
  };
  for (Bad bad :
       {Bad{0, 0, 4, 4, 4, 4, 4, 1, "needs transA 0 and transB 1 (got 0, 0)"},
        Bad{1, 1, 4, 4, 4, 4, 4, 1, "needs transA 0 and transB 1 (got 1, 1)"},
        Bad{0, 1, 4, 2, 4, 4, 4, 1, "needs n and k multiples of 4"},
        Bad{0, 1, 2, 4, 4, 4, 4, 1, "needs n and k multiples of 4"},
        Bad{0, 1, 4, 4, 6, 4, 4, 1,
            "needs lda, ldb and ldc multiples of 4 (got 6, 4, 4)"},
        Bad{0, 1, 4, 4, 4, 4, 4, 0.5f, "needs integer alpha and beta"}}) {
    setType(KILN_GPU_I8_I32);
    setGemm(bad.transA, bad.transB, 1, 1, bad.n, bad.k, bad.lda, 0, bad.ldb, 0,
            bad.ldc, 0, bad.alpha, 0);
    expectRunError(*artifact, "gemm", inputs,
                   {"kiln_gpu_gemm(i8 -> i32, batch 1, m 1",
                    std::string("cuBLASLt's int8 gemm ") + bad.message});
  }
  EXPECT_EQ(fakeCount("fake_cublaslt_int8_matmuls"), int8Matmuls + 3);
  setType(KILN_GPU_F32);
  ::dlclose(module);
}

struct Fp8GemmCase {
  int64_t batch, m, n, k, lda, ldb, ldc;
  bool broadcastB;
  float scaleA, scaleB;
  bool nullScales;
};

/// Runs an e4m3 x e4m3 -> f32 gemm with scale pointers (transA 0, transB
/// 1: activations [m, k], a weight [n, k]) through kiln_gpu_gemm_scaled on
/// the fake cuBLASLt, the scales stored after the weight's codes in `b`,
/// and compares every output word, padding included, with a reference
/// computed here from the codes' values (kiln/Runtime/Float8.h).
void checkFp8Gemm(const Artifact &artifact, void *module,
                  const Fp8GemmCase &g) {
  SCOPED_TRACE(::testing::Message()
               << "fp8 batch " << g.batch << " m " << g.m << " n " << g.n
               << " k " << g.k << " ld " << g.lda << "/" << g.ldb << "/"
               << g.ldc << " scales " << g.scaleA << ", " << g.scaleB);
  int64_t strideA = g.m * g.lda, strideB = g.broadcastB ? 0 : g.n * g.ldb,
          strideC = g.m * g.ldc;
  std::vector<uint8_t> a(g.batch * strideA);
  int64_t codeBytes = (g.broadcastB ? 1 : g.batch) * g.n * g.ldb;
  int64_t scaleWord = (codeBytes + 15) / 16 * 4; // 16-byte aligned
  std::vector<uint8_t> b(scaleWord * 4 + 8, 0);
  uint32_t seed = 11;
  auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<uint8_t>(seed >> 24);
  };
  // Every code but the two NaNs (S.1111.111).
  auto code = [&] {
    uint8_t c;
    do
      c = next();
    while ((c & 0x7F) == 0x7F);
    return c;
  };
  for (uint8_t &v : a)
    v = code();
  for (int64_t i = 0; i < codeBytes; ++i)
    b[i] = code();
  std::memcpy(b.data() + scaleWord * 4, &g.scaleA, 4);
  std::memcpy(b.data() + scaleWord * 4 + 4, &g.scaleB, 4);
  std::vector<float> c(g.batch * strideC, 12345.0f);
  auto setGemm = gemmSetter(module);
  auto setType = reinterpret_cast<void (*)(int32_t)>(
      ::dlsym(module, "kiln_test_set_gemm_dtype"));
  auto setScales = reinterpret_cast<void (*)(int64_t, int64_t)>(
      ::dlsym(module, "kiln_test_set_gemm_scales"));
  ASSERT_TRUE(setGemm && setType && setScales);
  setType(KILN_GPU_E4M3_F32);
  if (g.nullScales)
    setScales(-1, -1);
  else
    setScales(scaleWord, scaleWord + 1);
  setGemm(0, 1, g.batch, g.m, g.n, g.k, g.lda, strideA, g.ldb, strideB, g.ldc,
          strideC, 1, 0);
  std::vector<float> fa = asFloats(a), fb = asFloats(b);
  Expected<std::vector<OwnedTensor>> outputs = artifact.run(
      "gemm",
      {{"a", {DType::F32, {static_cast<int64_t>(fa.size())}, fa.data()}},
       {"b", {DType::F32, {static_cast<int64_t>(fb.size())}, fb.data()}},
       {"c", {DType::F32, {static_cast<int64_t>(c.size())}, c.data()}}});
  setType(KILN_GPU_F32);
  setScales(-2, -2);
  ASSERT_TRUE(outputs) << outputs.message();
  ASSERT_EQ((*outputs)[0].numElements(), static_cast<int64_t>(c.size()));
  const float *result = static_cast<const float *>((*outputs)[0].data());
  float scale = g.nullScales ? 1.0f : g.scaleA * g.scaleB;
  for (int64_t i = 0; i < g.batch; ++i)
    for (int64_t r = 0; r < g.m; ++r)
      for (int64_t col = 0; col < g.ldc; ++col) {
        int64_t at = i * strideC + r * g.ldc + col;
        float expected = c[at]; // padding is left alone
        if (col < g.n) {
          double sum = 0;
          for (int64_t p = 0; p < g.k; ++p)
            sum += double(kiln::decodeE4M3(a[i * strideA + r * g.lda + p])) *
                   double(kiln::decodeE4M3(b[i * strideB + col * g.ldb + p]));
          expected = scale * static_cast<float>(sum);
        }
        ASSERT_EQ(result[at], expected)
            << "batch " << i << " row " << r << " col " << col;
      }
}

TEST_F(CudaArtifactTest, Fp8GemmsRunOnCublasLtsFp8KernelsWithScalePointers) {
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  int64_t fp8Matmuls = fakeCount("fake_cublaslt_fp8_matmuls");
  // Padded rows (lda, ldb > k; ldc > n), per-tensor scales.
  checkFp8Gemm(*artifact, module,
               {1, 3, 16, 32, 48, 64, 20, false, 0.5f, 3.0f, false});
  // cuBLASLt's A is our weight (ldb), its B our activations (lda), its C
  // and D our output (ldc); e4m3 operands (CUDA_R_8F_E4M3 = 28), f32 C
  // and D, CUBLAS_COMPUTE_32F (68) with f32 alpha and beta
  // (library_types.h, cublas_api.h).
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 0), 64);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 1), 48);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_ld", 2), 20);
  for (int64_t which = 0; which < 2; ++which)
    EXPECT_EQ(fakeCount("fake_cublaslt_last_type", which), 28);
  for (int64_t which = 2; which < 4; ++which)
    EXPECT_EQ(fakeCount("fake_cublaslt_last_type", which), 0);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_compute_type"), 68);
  EXPECT_EQ(fakeCount("fake_cublaslt_last_scale_type"), 0);
  // Its A scale is our weight's (the word after our activations' scale),
  // its B scale our activations'.
  EXPECT_EQ(fakeCount("fake_cublaslt_last_scale_pointer", 0) -
                fakeCount("fake_cublaslt_last_scale_pointer", 1),
            4);
  // A strided batch, a weight broadcast over the batch, no scales (1).
  checkFp8Gemm(*artifact, module,
               {3, 5, 32, 16, 16, 16, 32, false, 2.0f, 0.25f, false});
  checkFp8Gemm(*artifact, module,
               {2, 1, 16, 512, 512, 512, 16, true, 1.0f, 1.0f, true});
  EXPECT_EQ(fakeCount("fake_cublaslt_last_scale_pointer", 0), 0);
  EXPECT_EQ(fakeCount("fake_cublaslt_fp8_matmuls"), fp8Matmuls + 3);

  // What cuBLASLt's fp8 kernels cannot take is a run error that says
  // which rule, before cuBLASLt is asked.
  auto setGemm = gemmSetter(module);
  auto setType = reinterpret_cast<void (*)(int32_t)>(
      ::dlsym(module, "kiln_test_set_gemm_dtype"));
  auto setScales = reinterpret_cast<void (*)(int64_t, int64_t)>(
      ::dlsym(module, "kiln_test_set_gemm_scales"));
  ASSERT_TRUE(setGemm && setType && setScales);
  std::vector<NamedTensor> inputs = fourOnes();
  struct Bad {
    int transA, transB;
    int64_t n, k, lda, ldb, ldc;
    float beta;
    const char *message;
  };
  for (Bad bad :
       {Bad{0, 0, 16, 16, 16, 16, 16, 0,
            "needs transA 0 and transB 1 (got 0, 0)"},
        Bad{0, 1, 16, 8, 16, 16, 16, 0, "needs n and k multiples of 16"},
        Bad{0, 1, 8, 16, 16, 16, 8, 0, "needs n and k multiples of 16"},
        Bad{0, 1, 16, 16, 24, 16, 16, 0,
            "needs lda and ldb multiples of 16 and ldc of 4 (got 24, 16, 16)"},
        Bad{0, 1, 16, 16, 16, 16, 18, 0,
            "needs lda and ldb multiples of 16 and ldc of 4 (got 16, 16, 18)"},
        Bad{0, 1, 16, 16, 16, 16, 16, 1, "needs beta 0"}}) {
    setType(KILN_GPU_E4M3_F32);
    setScales(-1, -1);
    setGemm(bad.transA, bad.transB, 1, 1, bad.n, bad.k, bad.lda, 0, bad.ldb, 0,
            bad.ldc, 0, 1, bad.beta);
    expectRunError(*artifact, "gemm", inputs,
                   {"kiln_gpu_gemm(e4m3 -> f32, batch 1, m 1",
                    std::string("cuBLASLt's fp8 gemm ") + bad.message});
  }
  EXPECT_EQ(fakeCount("fake_cublaslt_fp8_matmuls"), fp8Matmuls + 3);
  setType(KILN_GPU_F32);
  setScales(-2, -2);
  ::dlclose(module);
}

TEST_F(CudaArtifactTest, ScalePointersOfANonFp8GemmAreARunError) {
  // kiln_gpu_gemm_scaled's scales are fp8's: an f32, f16, bf16 or int8
  // product would drop them and return an unscaled result, so the runtime
  // refuses them before cuBLASLt is asked.
  writeArtifact();
  std::unique_ptr<Artifact> artifact = openOk();
  ASSERT_TRUE(artifact);
  void *module = loadedModule();
  ASSERT_NE(module, nullptr);
  auto setGemm = gemmSetter(module);
  auto setType = reinterpret_cast<void (*)(int32_t)>(
      ::dlsym(module, "kiln_test_set_gemm_dtype"));
  auto setScales = reinterpret_cast<void (*)(int64_t, int64_t)>(
      ::dlsym(module, "kiln_test_set_gemm_scales"));
  ASSERT_TRUE(setGemm && setType && setScales);
  int64_t matmuls = fakeCount("fake_cublaslt_matmuls");
  std::vector<NamedTensor> inputs = fourOnes();
  setGemm(0, 0, 1, 2, 2, 2, 2, 4, 2, 4, 2, 4, 1, 0);
  for (auto [dtype, name] :
       {std::pair<int32_t, const char *>{KILN_GPU_F32, "f32"},
        {KILN_GPU_BF16_F32, "bf16 -> f32"},
        {KILN_GPU_I8_I32, "i8 -> i32"}}) {
    setType(dtype);
    for (auto [scaleA, scaleB] :
         {std::pair<int64_t, int64_t>{0, 1}, {0, -1}, {-1, 1}}) {
      setScales(scaleA, scaleB);
      expectRunError(*artifact, "gemm", inputs,
                     {std::string("kiln_gpu_gemm(") + name +
                      "): scale pointers are for e4m3 products "
                      "(KILN_GPU_E4M3_F32) only"});
    }
  }
  EXPECT_EQ(fakeCount("fake_cublaslt_matmuls"), matmuls);
  // Without scales (NULL, NULL) the same f32 call runs.
  setType(KILN_GPU_F32);
  setScales(-1, -1);
  Expected<std::vector<OwnedTensor>> outputs = artifact->run("gemm", inputs);
  ASSERT_TRUE(outputs) << outputs.message();
  EXPECT_EQ(values((*outputs)[0]), std::vector<float>(4, 2));
  setScales(-2, -2);
  ::dlclose(module);
}

TEST_F(CudaArtifactTest, ModulesRefuseAGpuApiOfAnotherVersion) {
  // Version 2 added the fp8 scale pointers to KilnGpuGemm: a module built
  // against it refuses a version-1 runtime's table (whose gemm would read
  // a shorter struct), and the runtime turns that into one line
  // (CudaModule::bind: "rejected the runtime's GPU API ...; recompile").
  writeArtifact();
  std::string copy = path("versioned.so");
  ASSERT_TRUE(compileModule(copy, manifest()));
  void *module = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(module, nullptr) << ::dlerror();
  auto bind =
      reinterpret_cast<KilnGpuBindFunction>(::dlsym(module, "kiln_gpu_bind"));
  ASSERT_NE(bind, nullptr);
  KilnGpuApi table{};
  table.size = sizeof(KilnGpuApi);
  table.version = 1;
  EXPECT_EQ(bind(&table), -1);
  table.version = KILN_GPU_API_VERSION + 1;
  EXPECT_EQ(bind(&table), -1);
  table.version = KILN_GPU_API_VERSION;
  table.size = sizeof(KilnGpuApi) - sizeof(void *);
  EXPECT_EQ(bind(&table), -1);
  EXPECT_EQ(KILN_GPU_API_VERSION, 2);
  ::dlclose(module);
}

TEST(Float8Test, EncodesAndDecodesE4M3) {
  // Every finite code decodes to a value that encodes back to it.
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F)
      continue;
    EXPECT_EQ(kiln::encodeE4M3(kiln::decodeE4M3(code)), code) << code;
  }
  EXPECT_EQ(kiln::decodeE4M3(0x7E), 448.0f);
  EXPECT_EQ(kiln::decodeE4M3(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(kiln::decodeE4M3(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(kiln::decodeE4M3(0x7F)));
  EXPECT_TRUE(std::isnan(kiln::decodeE4M3(0xFF)));
  // Ties to even, saturation, NaN.
  EXPECT_EQ(kiln::encodeE4M3(1.0625f), 0x38);
  EXPECT_EQ(kiln::encodeE4M3(1.1875f), 0x3A);
  EXPECT_EQ(kiln::encodeE4M3(464.0f), 0x7E);
  EXPECT_EQ(kiln::encodeE4M3(1e30f), 0x7E);
  EXPECT_EQ(kiln::encodeE4M3(-INFINITY), 0xFE);
  EXPECT_EQ(kiln::encodeE4M3(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(kiln::encodeE4M3(3 * std::ldexp(1.0f, -10)), 0x02);
  EXPECT_EQ(kiln::encodeE4M3(-0.0f), 0x80);
  EXPECT_EQ(kiln::encodeE4M3(NAN) & 0x7F, 0x7F);
}

TEST_F(CudaArtifactTest, AModuleCalledWithoutTheRuntimeSaysSo) {
  writeArtifact();
  std::string copy = path("unbound.so");
  ASSERT_TRUE(compileModule(copy, manifest()));
  EXPECT_DEATH(
      {
        void *module = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
        auto entry = reinterpret_cast<void (*)(void **)>(
            ::dlsym(module, "kiln_entry_missing_kernel"));
        char results[64];
        void *args[] = {results};
        entry(args);
      },
      "mgpuMemAlloc was called before kiln_gpu_bind");
}

} // namespace
