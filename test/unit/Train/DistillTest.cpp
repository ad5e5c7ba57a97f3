//===- DistillTest.cpp - Distillation's data pieces -----------------------===//
//
// The fixed windows kiln distill trains on (each epoch every window once,
// targets the inputs shifted, resumable from its state) and the teacher
// cache's file checks (header, sizes) and slicing.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Distill.h"
#include "TrainTestFiles.h"

#include <cstring>
#include <map>

using namespace kiln::train;
using kiln::train::testing::ScratchDirTest;

namespace {

using DistillTest = ScratchDirTest;

std::shared_ptr<const TokenFile> tokens(const std::string &path, int count) {
  std::vector<int32_t> ids;
  for (int i = 0; i < count; ++i)
    ids.push_back(i % 1000);
  EXPECT_TRUE(writeTokenFile(path, ids, 1000));
  Expected<TokenFile> file = TokenFile::open(path);
  EXPECT_TRUE(file) << file.message();
  return std::make_shared<const TokenFile>(file.take());
}

TEST_F(DistillTest, EveryWindowOncePerEpochWithShiftedTargets) {
  // 8 windows of 4 + 1 tokens (33 tokens; token 32 is only a target).
  auto file = tokens(path("t.tokens"), 34);
  Expected<TokenWindowEpochs> windows = TokenWindowEpochs::create(file, 2, 4, 7);
  ASSERT_TRUE(windows) << windows.message();
  EXPECT_EQ(windows->windows(), 8);
  std::map<int64_t, int> seen;
  for (int step = 0; step < 8; ++step) {
    std::vector<int64_t> indices;
    Batch batch = windows->next(indices);
    ASSERT_EQ(indices.size(), 2u);
    for (int64_t row = 0; row < 2; ++row) {
      int64_t window = indices[static_cast<size_t>(row)];
      ++seen[window];
      for (int64_t t = 0; t < 4; ++t) {
        EXPECT_EQ(batch.inputs[row * 4 + t], window * 4 + t);
        EXPECT_EQ(batch.targets[row * 4 + t], window * 4 + t + 1);
      }
    }
  }
  // Two epochs: every window twice.
  ASSERT_EQ(seen.size(), 8u);
  for (auto [window, count] : seen)
    EXPECT_EQ(count, 2) << window;
  EXPECT_DOUBLE_EQ(windows->epochs(), 2.0);
}

TEST_F(DistillTest, ResumesFromItsStateAndRefusesAnother) {
  auto file = tokens(path("t.tokens"), 100);
  Expected<TokenWindowEpochs> a = TokenWindowEpochs::create(file, 3, 5, 1);
  ASSERT_TRUE(a);
  std::vector<int64_t> indices;
  a->next(indices);
  a->next(indices);
  std::string state = a->saveState();
  Expected<TokenWindowEpochs> b = TokenWindowEpochs::create(file, 3, 5, 1);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->restoreState(state));
  for (int i = 0; i < 10; ++i) {
    std::vector<int64_t> x, y;
    Batch first = a->next(x), second = b->next(y);
    EXPECT_EQ(x, y);
    EXPECT_EQ(first.inputs, second.inputs);
  }
  Expected<TokenWindowEpochs> other = TokenWindowEpochs::create(file, 3, 6, 1);
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->restoreState(state));
  EXPECT_FALSE(other->restoreState("kiln-batch-sampler 1 3 5"));
}

TEST_F(DistillTest, TooFewWindowsForABatch) {
  auto file = tokens(path("t.tokens"), 20);
  Expected<TokenWindowEpochs> windows = TokenWindowEpochs::create(file, 4, 8, 0);
  ASSERT_FALSE(windows);
  EXPECT_NE(windows.message().find("2 windows of 9 tokens, fewer than a batch "
                                   "of 4"),
            std::string::npos)
      << windows.message();
}

/// A cache file of `windows` windows whose every float is
/// window * 1000 + position in the window.
std::string cacheBytes(int64_t windows, int64_t seq, int64_t vocab,
                       int64_t hidden, const std::string &format =
                                           "kiln-teacher-cache") {
  std::string header = "{\"format\":\"" + format +
                       "\",\"hidden\":" + std::to_string(hidden) +
                       ",\"seq\":" + std::to_string(seq) +
                       ",\"version\":1,\"vocab\":" + std::to_string(vocab) +
                       ",\"windows\":" + std::to_string(windows) + "}\n";
  header.resize(256, ' ');
  std::string bytes = header;
  int64_t per = seq * (vocab + hidden);
  for (int64_t w = 0; w < windows; ++w)
    for (int64_t i = 0; i < per; ++i) {
      float value = static_cast<float>(w * 1000 + i);
      bytes.append(reinterpret_cast<const char *>(&value), sizeof value);
    }
  return bytes;
}

TEST_F(DistillTest, CacheSlicesLogitsAndHiddenStatesPerWindow) {
  writeBytes("c", cacheBytes(3, 2, 3, 2));
  EXPECT_EQ(TeacherCache::bytesFor(3, 2, 3, 2), readBytes("c").size());
  Expected<TeacherCache> cache = TeacherCache::open(path("c"), 3, 2, 3, 2);
  ASSERT_TRUE(cache) << cache.message();
  Batch batch;
  cache->annotate({2, 0}, batch);
  ASSERT_EQ(batch.extra.size(), 2u);
  EXPECT_EQ(batch.extra[0].name, kTeacherLogits);
  EXPECT_EQ(batch.extra[0].shape, (std::vector<int64_t>{2, 2, 3}));
  // Window 2's logits are its first 6 floats, window 0's too.
  EXPECT_EQ(batch.extra[0].values,
            (std::vector<float>{2000, 2001, 2002, 2003, 2004, 2005, 0, 1, 2, 3,
                                4, 5}));
  EXPECT_EQ(batch.extra[1].name, kTeacherHidden);
  EXPECT_EQ(batch.extra[1].values,
            (std::vector<float>{2006, 2007, 2008, 2009, 6, 7, 8, 9}));
}

TEST_F(DistillTest, CacheOfAnotherRunOrCutShortIsRefused) {
  writeBytes("c", cacheBytes(3, 2, 3, 0));
  Expected<TeacherCache> other = TeacherCache::open(path("c"), 4, 2, 3, 0);
  ASSERT_FALSE(other);
  EXPECT_NE(other.message().find("holds 3 windows"), std::string::npos)
      << other.message();
  EXPECT_NE(other.message().find("delete it"), std::string::npos);
  std::string bytes = cacheBytes(3, 2, 3, 0);
  writeBytes("short", bytes.substr(0, bytes.size() - 4));
  Expected<TeacherCache> cut = TeacherCache::open(path("short"), 3, 2, 3, 0);
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.message().find("bytes, not"), std::string::npos)
      << cut.message();
  writeBytes("alien", cacheBytes(3, 2, 3, 0, "something-else"));
  EXPECT_FALSE(TeacherCache::open(path("alien"), 3, 2, 3, 0));
  writeBytes("tiny", "{}");
  EXPECT_FALSE(TeacherCache::open(path("tiny"), 3, 2, 3, 0));
}

TEST(DistillCrossEntropyTest, MatchesTheDefinitionAndSkipsIgnored) {
  // Two positions over 3 classes; the second is ignored.
  std::vector<float> logits = {1, 2, 3, 9, 9, 9};
  double expected = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 2;
  EXPECT_NEAR(crossEntropy(logits.data(), {1, -100}, 3), expected, 1e-12);
}

} // namespace
