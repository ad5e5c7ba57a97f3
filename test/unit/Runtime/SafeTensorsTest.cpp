//===- SafeTensorsTest.cpp - safetensors reading and writing --------------===//
//
// Round trips, a file laid out by hand as the format specifies, and every
// kind of corruption the reader must name.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/SafeTensors.h"
#include "TestFiles.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

using namespace kiln::runtime;
using kiln::runtime::testing::ScratchDirTest;

namespace {

using SafeTensorsTest = ScratchDirTest;

/// A file with the given JSON header and data bytes.
std::string makeFile(const std::string &header, const std::string &data) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(n >> (8 * i));
  return bytes + header + data;
}

TEST_F(SafeTensorsTest, RoundTripsTensorsAndMetadata) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<int64_t> ids = {7, 8};
  ASSERT_TRUE(writeSafeTensors(path("w.safetensors"),
                               {{"h.0.attn.weight", {DType::F32, {2, 3}, w.data()}},
                                {"ids", {DType::I64, {2}, ids.data()}}},
                               {{"format", "pt"}}));
  Expected<SafeTensorsFile> file = SafeTensorsFile::open(path("w.safetensors"));
  ASSERT_TRUE(file) << file.message();
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->tensors()[0].name, "h.0.attn.weight");
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const SafeTensorInfo *info = file->find("h.0.attn.weight");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->shape, (std::vector<int64_t>{2, 3}));
  TensorView view = file->view(*info);
  EXPECT_EQ(std::memcmp(view.data, w.data(), 24), 0);
  EXPECT_EQ(reinterpret_cast<const int64_t *>(file->view(*file->find("ids")).data)[1], 8);
  EXPECT_EQ(file->find("absent"), nullptr);
  // The data section starts 8-byte aligned.
  std::string bytes = readBytes("w.safetensors");
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = headerSize << 8 | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ((8 + headerSize) % 8, 0u);
}

TEST_F(SafeTensorsTest, ReadsAHandLaidOutFile) {
  std::string data(8, '\0');
  float values[2] = {0.5f, -4.0f};
  std::memcpy(data.data(), values, 8);
  writeBytes("hand.safetensors",
             makeFile(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                      data));
  Expected<SafeTensorsFile> file = SafeTensorsFile::open(path("hand.safetensors"));
  ASSERT_TRUE(file) << file.message();
  // The data section of this file is not aligned (the format allows that):
  // read the value bytewise.
  float second = 0;
  std::memcpy(&second,
              static_cast<const char *>(file->view(file->tensors()[0]).data) + 4,
              sizeof second);
  EXPECT_EQ(second, -4.0f);
}

TEST_F(SafeTensorsTest, NamesEveryCorruption) {
  auto expectError = [&](const std::string &name, const std::string &bytes,
                         const std::string &needle) {
    writeBytes(name, bytes);
    Expected<SafeTensorsFile> file = SafeTensorsFile::open(path(name));
    ASSERT_FALSE(file) << name << " was accepted";
    EXPECT_NE(file.message().find(needle), std::string::npos) << file.message();
    EXPECT_NE(file.message().find(name), std::string::npos) << file.message();
  };
  std::string eight(8, '\0');
  expectError("short.safetensors", "abc", "fewer than the 8-byte");
  expectError("hugeheader.safetensors", std::string("\xff\xff\xff\xff\0\0\0\0", 8) + "{}",
              "does not fit");
  expectError("json.safetensors", makeFile("{not json", ""), "not a JSON object");
  expectError("fields.safetensors", makeFile(R"({"x":{"dtype":"F32"}})", ""),
              "expected {dtype, shape, data_offsets}");
  expectError("dtype.safetensors",
              makeFile(R"({"x":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", eight),
              "unknown dtype");
  expectError("truncated.safetensors",
              makeFile(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight),
              "truncated");
  expectError("extent.safetensors",
              makeFile(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
              "needs 12 bytes");
  expectError("negative.safetensors",
              makeFile(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", eight),
              "non-integer or negative");
  expectError("overlap.safetensors",
              makeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                       eight),
              "overlap");
  // A million levels of nesting in the metadata: refused before parsing
  // (walking such a value recursively overflowed the stack).
  std::string deep = R"({"__metadata__":{"x":)" + std::string(1000000, '[') +
                     std::string(1000000, ']') + "}}";
  expectError("deep.safetensors", makeFile(deep, ""), "more than 64 levels deep");
  Expected<SafeTensorsFile> missing = SafeTensorsFile::open(path("none.safetensors"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("cannot open"), std::string::npos);
}

TEST_F(SafeTensorsTest, FailedWriteLeavesThePreviousFile) {
  float v = 1;
  ASSERT_TRUE(writeSafeTensors(path("ckpt.safetensors"), {{"a", {DType::F32, {1}, &v}}}));
  std::string before = readBytes("ckpt.safetensors");
  // A duplicate name fails before anything is renamed over the file.
  Status status = writeSafeTensors(path("ckpt.safetensors"),
                                   {{"a", {DType::F32, {1}, &v}},
                                    {"a", {DType::F32, {1}, &v}}});
  ASSERT_FALSE(status);
  EXPECT_EQ(readBytes("ckpt.safetensors"), before);
  // Writing into a missing directory reports it.
  Status nodir = writeSafeTensors(path("no/such/dir.safetensors"), {{"a", {DType::F32, {1}, &v}}});
  ASSERT_FALSE(nodir);
  EXPECT_NE(nodir.message().find("temporary file"), std::string::npos);
}

// A process killed while it writes a file (a checkpoint) must leave the
// previous complete file in place: writes go to a temporary file that is
// renamed over the old one only when complete. The writer is SIGKILLed at
// several moments; each time the file must open and hold one whole version.
TEST_F(SafeTensorsTest, AWriterKilledMidWriteLeavesAWholeFile) {
  std::string file = path("checkpoint.safetensors");
  const size_t count = size_t(1) << 23; // 32 MiB: writes take a while.
  std::vector<float> values(count, 1.0f);
  ASSERT_TRUE(writeSafeTensors(file, {{"w", {DType::F32, {int64_t(count)}, values.data()}}}));
  for (int delayMs : {5, 40, 120}) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (float version = 2;; ++version) {
        std::fill(values.begin(), values.end(), version);
        (void)writeSafeTensors(
            file, {{"w", {DType::F32, {int64_t(count)}, values.data()}}});
      }
    }
    ::usleep(static_cast<useconds_t>(delayMs) * 1000);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    Expected<SafeTensorsFile> read = SafeTensorsFile::open(file);
    ASSERT_TRUE(read) << read.message();
    const SafeTensorInfo *info = read->find("w");
    ASSERT_NE(info, nullptr);
    TensorView view = read->view(*info);
    const float *data = static_cast<const float *>(view.data);
    ASSERT_EQ(view.shape, (std::vector<int64_t>{int64_t(count)}));
    float version = data[0];
    EXPECT_GE(version, 1.0f);
    EXPECT_EQ(data[count - 1], version) << "a torn file after " << delayMs << " ms";
    EXPECT_EQ(data[count / 2], version);
  }
}

//===----------------------------------------------------------------------===//
// WeightFiles: one file, a sharded index, a save_pretrained directory
//===----------------------------------------------------------------------===//

class WeightFilesTest : public ScratchDirTest {
protected:
  void writeShards() {
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    ASSERT_TRUE(writeSafeTensors(path("model-00001-of-00002.safetensors"),
                                 {{"a", {DType::F32, {2}, a}}}));
    ASSERT_TRUE(writeSafeTensors(path("model-00002-of-00002.safetensors"),
                                 {{"b", {DType::F32, {3}, b}}}));
  }
  void writeIndex(const std::string &map) {
    writeBytes("model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 20}, \"weight_map\": " + map +
                   "}");
  }
  std::string openError(const std::string &which) {
    Expected<WeightFiles> files = WeightFiles::open(which);
    return files ? "" : files.message();
  }
};

TEST_F(WeightFilesTest, ReadsOneFileAShardedIndexOrADirectory) {
  float a[2] = {1, 2};
  ASSERT_TRUE(writeSafeTensors(path("model.safetensors"),
                               {{"a", {DType::F32, {2}, a}}}));
  for (const std::string &given : {path("model.safetensors"), dir, dir + "/"}) {
    Expected<WeightFiles> files = WeightFiles::open(given);
    ASSERT_TRUE(files) << files.message();
    ASSERT_EQ(files->tensors().size(), 1u);
    const SafeTensorInfo *info = files->find("a");
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(static_cast<const float *>(files->view(*info).data)[1], 2.0f);
    EXPECT_EQ(files->description(), "'" + path("model.safetensors") + "'");
  }
}

TEST_F(WeightFilesTest, ReadsShardsThroughTheIndex) {
  writeShards();
  writeIndex("{\"a\": \"model-00001-of-00002.safetensors\", "
             "\"b\": \"model-00002-of-00002.safetensors\"}");
  // The directory prefers model.safetensors; there is none, so the index.
  Expected<WeightFiles> files = WeightFiles::open(dir);
  ASSERT_TRUE(files) << files.message();
  EXPECT_EQ(files->description(),
            "'" + path("model.safetensors.index.json") + "' (2 shards)");
  ASSERT_EQ(files->tensors().size(), 2u);
  const SafeTensorInfo *b = files->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(static_cast<const float *>(files->view(*b).data)[2], 5.0f);
  EXPECT_EQ(files->find("c"), nullptr);
}

TEST_F(WeightFilesTest, NamesEveryBadIndex) {
  writeShards();
  EXPECT_NE(openError(dir).find("has neither model.safetensors nor "
                                "model.safetensors.index.json"),
            std::string::npos);
  std::string index = path("model.safetensors.index.json");
  writeIndex("{\"a\": \"../model-00001-of-00002.safetensors\"}");
  EXPECT_NE(openError(index).find("is not a file name in the index's "
                                  "directory"),
            std::string::npos);
  writeIndex("{\"a\": 3}");
  EXPECT_NE(openError(index).find("the shard of 'a' is not a string"),
            std::string::npos);
  writeIndex("{}");
  EXPECT_NE(openError(index).find("no 'weight_map'"), std::string::npos);
  writeIndex("{\"b\": \"model-00001-of-00002.safetensors\"}");
  EXPECT_NE(openError(index).find("places 'b' in"), std::string::npos);
  writeIndex("{\"a\": \"missing.safetensors\"}");
  EXPECT_NE(openError(index).find("missing.safetensors"), std::string::npos);
  writeBytes("model.safetensors.index.json", "[1, 2");
  EXPECT_NE(openError(index).find("is not a JSON object"), std::string::npos);
  // One tensor name in two shards.
  float a[2] = {1, 2};
  ASSERT_TRUE(writeSafeTensors(
      path("other.safetensors"),
      {{"a", {DType::F32, {2}, a}}, {"c", {DType::F32, {2}, a}}}));
  writeIndex("{\"a\": \"model-00001-of-00002.safetensors\", "
             "\"c\": \"other.safetensors\"}");
  EXPECT_NE(openError(index).find("tensor 'a' is in both"), std::string::npos);
}

} // namespace
