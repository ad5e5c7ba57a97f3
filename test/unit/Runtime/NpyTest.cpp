//===- NpyTest.cpp - .npy reading and writing -----------------------------===//
//
// Round trips, files written by numpy itself, and every way a file can be
// malformed.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Npy.h"
#include "TestFiles.h"

#include <cstring>

using namespace kiln::runtime;
using kiln::runtime::testing::ScratchDirTest;

namespace {

using NpyTest = ScratchDirTest;

TEST_F(NpyTest, RoundTripsFloatAndIntArrays) {
  std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e30f};
  ASSERT_TRUE(writeNpy(path("a.npy"), {DType::F32, {2, 3}, values.data()}));
  Expected<NpyArray> array = readNpy(path("a.npy"));
  ASSERT_TRUE(array) << array.message();
  EXPECT_EQ(array->dtype, DType::F32);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(array->bytes.size(), values.size() * 4);
  EXPECT_EQ(std::memcmp(array->bytes.data(), values.data(), 24), 0);

  int64_t scalar = -42;
  ASSERT_TRUE(writeNpy(path("s.npy"), {DType::I64, {}, &scalar}));
  Expected<NpyArray> s = readNpy(path("s.npy"));
  ASSERT_TRUE(s) << s.message();
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(*reinterpret_cast<const int64_t *>(s->bytes.data()), -42);
}

TEST_F(NpyTest, ReadsWhatNumpyWritesAndNumpyReadsWhatWeWrite) {
  ASSERT_EQ(python("import numpy as np; "
                   "np.save('np.npy', np.arange(12, dtype=np.int64).reshape(3, 4)); "
                   "np.save('one.npy', np.array([5], dtype=np.float32))"),
            0);
  Expected<NpyArray> array = readNpy(path("np.npy"));
  ASSERT_TRUE(array) << array.message();
  EXPECT_EQ(array->dtype, DType::I64);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(reinterpret_cast<const int64_t *>(array->bytes.data())[11], 11);
  Expected<NpyArray> one = readNpy(path("one.npy"));
  ASSERT_TRUE(one) << one.message();
  EXPECT_EQ(one->shape, (std::vector<int64_t>{1}));

  std::vector<int32_t> values = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(writeNpy(path("ours.npy"), {DType::I32, {3, 2}, values.data()}));
  ASSERT_TRUE(writeNpy(path("vec.npy"), {DType::I32, {6}, values.data()}));
  EXPECT_EQ(python("import numpy as np; a = np.load('ours.npy'); "
                   "assert a.dtype == np.int32 and a.shape == (3, 2), a; "
                   "assert a[2, 1] == 6; "
                   "v = np.load('vec.npy'); assert v.shape == (6,), v.shape"),
            0);
}

TEST_F(NpyTest, RejectsMalformedFiles) {
  auto expectError = [&](const std::string &name, const std::string &bytes,
                         const std::string &needle) {
    writeBytes(name, bytes);
    Expected<NpyArray> array = readNpy(path(name));
    ASSERT_FALSE(array) << name << " was accepted";
    EXPECT_NE(array.message().find(needle), std::string::npos)
        << array.message();
  };
  expectError("empty.npy", "", "magic");
  expectError("magic.npy", "NOTNUMPYFILE", "magic");
  std::string good;
  {
    float v[2] = {1, 2};
    ASSERT_TRUE(writeNpy(path("good.npy"), {DType::F32, {2}, v}));
    good = readBytes("good.npy");
  }
  expectError("truncated.npy", good.substr(0, good.size() - 3), "truncated");
  expectError("long.npy", good + "xx", "needs 8 data bytes");
  std::string version = good;
  version[6] = 9;
  expectError("version.npy", version, "version 9");
  std::string header = good.substr(0, 10) + "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }";
  header.resize(good.size() - 8, ' ');
  expectError("bigendian.npy", header + good.substr(good.size() - 8), "not supported");
  EXPECT_FALSE(readNpy(path("missing.npy")));
}

TEST_F(NpyTest, RefusesToWriteBF16) {
  uint16_t v = 0;
  Status status = writeNpy(path("b.npy"), {DType::BF16, {1}, &v});
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("BF16"), std::string::npos);
}

} // namespace
