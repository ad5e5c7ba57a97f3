//===- KilnToolTest.cpp - The kiln driver on a hand-built artifact --------===//
//
// Runs the `kiln` binary (KILN_TOOL) as a user would and checks its output,
// its .npy files and its one-line errors.
//
//===----------------------------------------------------------------------===//

#include "ArtifactFixture.h"
#include "kiln/Runtime/Npy.h"

#include <sys/wait.h>

using namespace kiln::runtime;
using kiln::runtime::testing::ArtifactFixture;

namespace {

class KilnToolTest : public ArtifactFixture {
protected:
  /// Runs `kiln ARGS`; returns the exit code, stores stdout+stderr in output.
  int kiln(const std::string &args) {
    std::string command = std::string("'") + KILN_TOOL + "' " + args + " >'" +
                          path("out.txt") + "' 2>&1";
    int status = std::system(command.c_str());
    output = readBytes("out.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void writeX(const std::string &name, DType dtype,
              std::vector<int64_t> shape) {
    std::vector<float> data(static_cast<size_t>(numElements(shape)));
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<float>(i);
    ASSERT_TRUE(writeNpy(path(name), {dtype, shape, data.data()}));
  }
  void expectError(const std::string &args, const std::string &needle) {
    EXPECT_EQ(kiln(args), 1) << args << "\n" << output;
    EXPECT_EQ(output.rfind("kiln: error: ", 0), 0u) << output;
    EXPECT_EQ(output.find('\n'), output.size() - 1) << "not one line: " << output;
    EXPECT_NE(output.find(needle), std::string::npos)
        << "'" << needle << "' not in: " << output;
  }
  std::string output;
};

TEST_F(KilnToolTest, RunWritesOneNpyPerOutput) {
  writeArtifact();
  writeX("x.npy", DType::F32, {2, 4});
  ASSERT_EQ(kiln("run '" + artifactDir() + "' --entry stats --input x=" +
                 path("x.npy") + " --output-dir " + path("out/nested")),
            0)
      << output;
  EXPECT_NE(output.find("rowsum: F32 [2] -> "), std::string::npos) << output;
  EXPECT_NE(output.find("rows: I64 [] = 2 -> "), std::string::npos) << output;
  Expected<NpyArray> rowsum = readNpy(path("out/nested/rowsum.npy"));
  ASSERT_TRUE(rowsum) << rowsum.message();
  EXPECT_EQ(rowsum->shape, (std::vector<int64_t>{2}));
  // Row 1 is 4..7 against w = 0.5, 1, 2, -1.
  EXPECT_EQ(reinterpret_cast<const float *>(rowsum->bytes.data())[1],
            2 + 5 + 12 - 7);
  Expected<NpyArray> rows = readNpy(path("out/nested/rows.npy"));
  ASSERT_TRUE(rows) << rows.message();
  EXPECT_EQ(rows->dtype, DType::I64);

  // forward is the default entry point, and NAME= may be left out.
  ASSERT_EQ(kiln("run '" + artifactDir() + "' --input " + path("x.npy") +
                 " --output-dir=" + path("out")),
            0)
      << output;
  EXPECT_EQ(output, "y: F32 [2, 4] -> " + path("out") + "/y.npy\n");
}

TEST_F(KilnToolTest, BenchAndInfo) {
  writeArtifact();
  writeX("x.npy", DType::F32, {2, 4});
  ASSERT_EQ(kiln("bench '" + artifactDir() + "' --input x=" + path("x.npy") +
                 " --warmup 1 --iters 5"),
            0)
      << output;
  EXPECT_NE(output.find("5 iterations after 1 warm-up"), std::string::npos)
      << output;
  EXPECT_NE(output.find("latency (ms): p50 "), std::string::npos) << output;
  EXPECT_NE(output.find(" p90 "), std::string::npos) << output;
  EXPECT_NE(output.find(" p99 "), std::string::npos) << output;
  EXPECT_NE(output.find("tokens/s: n/a"), std::string::npos) << output;
  EXPECT_NE(output.find("GFLOP/s: n/a (dynamic shapes and no cost model)"),
            std::string::npos)
      << output;

  ASSERT_EQ(kiln("info '" + artifactDir() + "'"), 0) << output;
  EXPECT_NE(output.find("target: cpu (cpu=x86-64-v3)"), std::string::npos)
      << output;
  EXPECT_NE(output.find("  w F32 [4] trainable"), std::string::npos) << output;
  EXPECT_NE(output.find("inputs: x F32 [?, 4]"), std::string::npos) << output;
  EXPECT_NE(output.find("outputs: rowsum F32 [?], rows I64 []"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("loads: ok"), std::string::npos) << output;
}

TEST_F(KilnToolTest, BenchReportsTokensAndGflopsForStaticIntInputs) {
  json manifest = defaultManifest();
  // An entry point over token ids of static shape [2, 3] with a cost.
  manifest["entry_points"] = {manifest["entry_points"][3]};
  manifest["entry_points"][0]["inputs"] = {tensorSpec("ids", "I64", {2, 3})};
  manifest["entry_points"][0]["cost"] = {{"flops", 1e6}};
  writeArtifact(manifest);
  std::vector<int64_t> ids(6);
  ASSERT_TRUE(writeNpy(path("ids.npy"), {DType::I64, {2, 3}, ids.data()}));
  ASSERT_EQ(kiln("bench '" + artifactDir() + "' --input ids=" +
                 path("ids.npy") + " --iters 3"),
            0)
      << output;
  EXPECT_NE(output.find("(6 tokens per call, input 'ids' [2, 3])"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("GFLOP/s: "), std::string::npos) << output;
  EXPECT_EQ(output.find("n/a"), std::string::npos) << output;
}

TEST_F(KilnToolTest, BenchEvaluatesTheCostModelAtDynamicShapes) {
  json manifest = defaultManifest();
  // forward's x is [?, 4]: 8 flops per row plus 3, 32 bytes per row.
  manifest["entry_points"][0]["cost_model"] = {
      {"symbols",
       {{{"name", "x.0"}, {"dims", {{{"input", "x"}, {"axis", 0}}}}}}},
      {"flops", {{8, {1}}, {3, {0}}}},
      {"bytes", {{32, {1}}}}};
  writeArtifact(manifest);
  writeX("x.npy", DType::F32, {5, 4});
  ASSERT_EQ(kiln("bench '" + artifactDir() + "' --input x=" + path("x.npy") +
                 " --iters 3"),
            0)
      << output;
  EXPECT_NE(output.find("(43 flops per call, cost model at x.0=5)"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("GB/s: "), std::string::npos) << output;
  EXPECT_NE(output.find("(160 bytes per call, unfused estimate)"),
            std::string::npos)
      << output;

  ASSERT_EQ(kiln("info '" + artifactDir() + "'"), 0) << output;
  EXPECT_NE(output.find("cost model: flops = 8*x.0 + 3"), std::string::npos)
      << output;
  EXPECT_NE(output.find("bytes = 32*x.0"), std::string::npos) << output;
}

TEST_F(KilnToolTest, HelpTexts) {
  EXPECT_EQ(kiln("--help"), 0);
  EXPECT_NE(output.find("USAGE: kiln <command>"), std::string::npos) << output;
  for (const char *command : {"run", "bench", "info"}) {
    EXPECT_EQ(kiln(std::string(command) + " --help"), 0);
    EXPECT_NE(output.find(std::string("USAGE: kiln ") + command),
              std::string::npos)
        << output;
  }
}

TEST_F(KilnToolTest, ErrorsAreOneLine) {
  writeArtifact();
  std::string a = "'" + artifactDir() + "'";
  writeX("x.npy", DType::F32, {2, 4});
  writeX("x3.npy", DType::F32, {2, 3});
  writeX("x1.npy", DType::F32, {8});
  std::vector<int64_t> ids(8);
  ASSERT_TRUE(writeNpy(path("ids.npy"), {DType::I64, {2, 4}, ids.data()}));
  writeBytes("bad.npy", "\x93NUMPY garbage");
  std::string x = " --input x=" + path("x.npy");

  expectError("", "no command given");
  expectError("frobnicate", "unknown command 'frobnicate'");
  expectError("run", "'kiln run' needs an artifact");
  expectError("run " + a + " --bogus", "unknown option '--bogus'");
  expectError("run " + a + " --entry", "option --entry needs a value");
  expectError("bench " + a + x + " --iters 0",
              "option --iters needs an integer of at least 1, not '0'");
  expectError("run " + path("none.kiln") + x, "cannot open artifact");
  expectError("info " + path("none.kiln"), "cannot open artifact");
  expectError("info " + path(""), "is not a Kiln artifact: it has no "
                                  "manifest.json");
  expectError("run " + a + x + " --entry back", "unknown entry point 'back'");
  expectError("run " + a, "missing input 'x'");
  expectError("run " + a + x + " --input z=" + path("x.npy"),
              "has no input 'z'");
  expectError("run " + a + " --input x=" + path("ids.npy"),
              "input 'x' is I64, expected F32");
  expectError("run " + a + " --input x=" + path("x3.npy"),
              "expected [?, 4] (dim 1 must be 4)");
  expectError("run " + a + " --input x=" + path("x1.npy"),
              "has rank 1 (shape [8]), expected rank 2");
  expectError("run " + a + " --input x=" + path("bad.npy"),
              "input 'x': '" + path("bad.npy") + "' is not a valid .npy file");
  expectError("run " + a + " --input x=" + path("absent.npy"),
              "absent.npy");
  writeBytes("model.kiln/weights.safetensors", "junk");
  expectError("run " + a + x, "is not a valid safetensors file");
  // info prints what the manifest says, then the error as its last line.
  EXPECT_EQ(kiln("info " + a), 1);
  EXPECT_NE(output.find("entry points: 7\n"), std::string::npos) << output;
  EXPECT_NE(output.find("\nkiln: error: '" + artifactDir() +
                        "/weights.safetensors' is not a valid safetensors"),
            std::string::npos)
      << output;
  EXPECT_EQ(output.find('\n', output.find("kiln: error:")), output.size() - 1);
}

TEST_F(KilnToolTest, RunRepeatsTrainingStepsAndSavesAndLoadsParameters) {
  writeArtifact(trainingManifest());
  writeX("x.npy", DType::F32, {2, 4});
  std::string run = "run '" + artifactDir() + "' --entry train --input x=" +
                    path("x.npy");
  ASSERT_EQ(kiln(run + " --repeat 3 --save-parameters " + path("ck.safetensors")),
            0)
      << output;
  // Each call prints its loss; the parameters change between calls.
  EXPECT_NE(output.find("[1] loss: F32 [] = "), std::string::npos) << output;
  EXPECT_NE(output.find("[3] loss: F32 [] = "), std::string::npos) << output;
  EXPECT_NE(output.find("parameters -> "), std::string::npos) << output;
  std::string threeSteps = output;
  // Resuming from the checkpoint continues where the run stopped.
  ASSERT_EQ(kiln(run + " --load-parameters " + path("ck.safetensors")), 0)
      << output;
  std::string resumedLoss = output.substr(output.find("loss: F32 [] = "));
  ASSERT_EQ(kiln(run + " --repeat 4"), 0) << output;
  EXPECT_NE(output.find("[4] " + resumedLoss), std::string::npos)
      << output << " vs " << resumedLoss;
  EXPECT_EQ(threeSteps.find("[4]"), std::string::npos);
}

TEST_F(KilnToolTest, RunRefusesToSaveParametersOfAnInferenceArtifact) {
  writeArtifact();
  writeX("x.npy", DType::F32, {2, 4});
  expectError("run '" + artifactDir() + "' --input x=" + path("x.npy") +
                  " --save-parameters " + path("p.safetensors"),
              "--save-parameters needs a training artifact");
}

} // namespace
