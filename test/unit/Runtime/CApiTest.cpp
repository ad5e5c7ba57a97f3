//===- CApiTest.cpp - The C API over a hand-built artifact ----------------===//

#include "kiln/Runtime/kiln_runtime.h"
#include "ArtifactFixture.h"

#include <cstring>

using kiln::runtime::testing::ArtifactFixture;
using kiln::runtime::testing::kWeights;

namespace {

using CApiTest = ArtifactFixture;

TEST_F(CApiTest, OpensInspectsAndRuns) {
  writeArtifact();
  kiln_artifact *artifact = kiln_artifact_open(artifactDir().c_str());
  ASSERT_NE(artifact, nullptr) << kiln_last_error();
  EXPECT_EQ(kiln_artifact_num_entry_points(artifact), 7u);
  EXPECT_STREQ(kiln_artifact_entry_point_name(artifact, 1), "stats");
  EXPECT_EQ(kiln_artifact_entry_point_name(artifact, 7), nullptr);
  EXPECT_EQ(kiln_entry_num_inputs(artifact, "stats"), 1);
  EXPECT_EQ(kiln_entry_num_outputs(artifact, "stats"), 2);
  EXPECT_EQ(kiln_entry_num_outputs(artifact, "nope"), -1);
  EXPECT_STREQ(kiln_entry_input_name(artifact, "stats", 0), "x");
  EXPECT_STREQ(kiln_entry_output_name(artifact, "stats", 1), "rows");
  EXPECT_EQ(kiln_entry_output_name(artifact, "stats", 2), nullptr);

  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int64_t shape[2] = {2, 4};
  kiln_tensor_view input = {"x", KILN_F32, 2, shape, x};
  kiln_tensor *outputs[2] = {nullptr, nullptr};
  ASSERT_EQ(kiln_run(artifact, "stats", &input, 1, outputs, 2), 0)
      << kiln_last_error();
  kiln_artifact_close(artifact); // Results outlive the artifact.

  EXPECT_EQ(kiln_tensor_dtype(outputs[0]), KILN_F32);
  ASSERT_EQ(kiln_tensor_rank(outputs[0]), 1u);
  EXPECT_EQ(kiln_tensor_shape(outputs[0])[0], 2);
  EXPECT_EQ(kiln_tensor_byte_size(outputs[0]), 8u);
  const float *sums = static_cast<const float *>(kiln_tensor_data(outputs[0]));
  EXPECT_EQ(sums[1], 5 * kWeights[0] + 6 * kWeights[1] + 7 * kWeights[2] +
                         8 * kWeights[3]);
  EXPECT_EQ(kiln_tensor_dtype(outputs[1]), KILN_I64);
  EXPECT_EQ(kiln_tensor_rank(outputs[1]), 0u);
  EXPECT_EQ(*static_cast<const int64_t *>(kiln_tensor_data(outputs[1])), 2);
  kiln_tensor_free(outputs[0]);
  kiln_tensor_free(outputs[1]);
  kiln_tensor_free(nullptr);
  kiln_artifact_close(nullptr);
}

TEST_F(CApiTest, ReportsErrors) {
  EXPECT_EQ(kiln_artifact_open(artifactDir().c_str()), nullptr);
  EXPECT_NE(std::strstr(kiln_last_error(), "cannot open artifact"), nullptr)
      << kiln_last_error();

  writeArtifact();
  kiln_artifact *artifact = kiln_artifact_open(artifactDir().c_str());
  ASSERT_NE(artifact, nullptr) << kiln_last_error();
  int32_t ids[8] = {};
  int64_t shape[2] = {2, 4};
  kiln_tensor_view input = {"x", KILN_I32, 2, shape, ids};
  kiln_tensor *output = nullptr;
  EXPECT_NE(kiln_run(artifact, "forward", &input, 1, &output, 1), 0);
  EXPECT_STREQ(kiln_last_error(),
               "entry point 'forward': input 'x' is I32, expected F32");
  EXPECT_EQ(output, nullptr);
  input.dtype = 42;
  EXPECT_NE(kiln_run(artifact, "forward", &input, 1, &output, 1), 0);
  EXPECT_NE(std::strstr(kiln_last_error(), "unknown dtype 42"), nullptr);
  input.dtype = KILN_F32;
  EXPECT_NE(kiln_run(artifact, "stats", &input, 1, &output, 1), 0);
  EXPECT_NE(std::strstr(kiln_last_error(), "has 2 outputs, the caller has "
                                           "room for 1"),
            nullptr)
      << kiln_last_error();
  EXPECT_NE(kiln_run(artifact, "sideways", &input, 1, &output, 1), 0);
  EXPECT_NE(std::strstr(kiln_last_error(), "unknown entry point 'sideways'"),
            nullptr);
  EXPECT_STREQ(kiln_dtype_name(KILN_BF16), "BF16");
  EXPECT_EQ(kiln_dtype_size(KILN_I64), 8u);
  EXPECT_EQ(kiln_dtype_name(-1), nullptr);
  kiln_artifact_close(artifact);
}

} // namespace
