//===- TokenDataTest.cpp - Token files and batch sampling -----------------===//
//
// The token file format and every way a file can be damaged, tokenizing a
// corpus and splitting off the held-out part, and the batch sampler: window
// contents, determinism, resuming from a saved state, evaluation batches.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/TokenData.h"
#include "TrainTestFiles.h"
#include "kiln/Train/Corpus.h"
#include "kiln/Train/Tokenizer.h"

#include <cstring>
#include <set>

using namespace kiln::train;
using kiln::train::testing::englishLikeText;
using kiln::train::testing::ScratchDirTest;

namespace {

using TokenFileTest = ScratchDirTest;
using TokenDataTest = ScratchDirTest;
using BatchSamplerTest = ScratchDirTest;

uint64_t readLE(const std::string &bytes, size_t at, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i)
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

/// ids 0, 1, 2, ... (mod vocab), so a window's first id is its start.
std::vector<int32_t> counting(int64_t count, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    ids[i] = static_cast<int32_t>(i % vocab);
  return ids;
}

std::shared_ptr<const TokenFile> openShared(const std::string &path) {
  Expected<TokenFile> file = TokenFile::open(path);
  EXPECT_TRUE(file) << file.message();
  if (!file)
    return nullptr;
  return std::make_shared<const TokenFile>(file.take());
}

//===----------------------------------------------------------------------===//
// Token files
//===----------------------------------------------------------------------===//

TEST_F(TokenFileTest, WritesTheDocumentedLayout) {
  ASSERT_TRUE(writeTokenFile(path("a.tokens"), {5, 0, 999, 42}, 1000));
  std::string bytes = readBytes("a.tokens");
  ASSERT_EQ(bytes.size(), 32u + 4 * 2);
  EXPECT_EQ(bytes.substr(0, 8), "KILNTOK1");
  EXPECT_EQ(readLE(bytes, 8, 4), 1u);     // version
  EXPECT_EQ(readLE(bytes, 12, 4), 2u);    // uint16 ids
  EXPECT_EQ(readLE(bytes, 16, 8), 4u);    // count
  EXPECT_EQ(readLE(bytes, 24, 8), 1000u); // vocabulary
  EXPECT_EQ(readLE(bytes, 32, 2), 5u);
  EXPECT_EQ(readLE(bytes, 36, 2), 999u);
  EXPECT_EQ(listDir(), std::vector<std::string>{"a.tokens"});
}

TEST_F(TokenFileTest, RoundTripsSixteenAndThirtyTwoBitIds) {
  EXPECT_EQ(tokenWidthForVocab(65536), 2u);
  EXPECT_EQ(tokenWidthForVocab(65537), 4u);

  std::vector<int32_t> small = counting(3000, 65536);
  small[7] = 65535;
  ASSERT_TRUE(writeTokenFile(path("small.tokens"), small, 65536));
  Expected<TokenFile> a = TokenFile::open(path("small.tokens"));
  ASSERT_TRUE(a) << a.message();
  EXPECT_EQ(a->size(), 3000);
  EXPECT_EQ(a->vocabSize(), 65536);
  EXPECT_EQ(a->bytesPerToken(), 2u);
  EXPECT_EQ((*a)[7], 65535);
  EXPECT_EQ((*a)[2999], 2999);

  std::vector<int32_t> large = {0, 70000, 65536, 123456};
  ASSERT_TRUE(writeTokenFile(path("large.tokens"), large, 200000));
  Expected<TokenFile> b = TokenFile::open(path("large.tokens"));
  ASSERT_TRUE(b) << b.message();
  EXPECT_EQ(b->bytesPerToken(), 4u);
  std::vector<int64_t> copied(4);
  b->copy(0, 4, copied.data());
  EXPECT_EQ(copied, (std::vector<int64_t>{0, 70000, 65536, 123456}));

  ASSERT_TRUE(writeTokenFile(path("empty.tokens"), {}, 10));
  Expected<TokenFile> empty = TokenFile::open(path("empty.tokens"));
  ASSERT_TRUE(empty) << empty.message();
  EXPECT_EQ(empty->size(), 0);
}

TEST_F(TokenFileTest, RefusesIdsOutsideTheVocabulary) {
  Status status = writeTokenFile(path("bad.tokens"), {1, 2, 10}, 10);
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("token 2 has id 10"), std::string::npos)
      << status.message();
  EXPECT_FALSE(writeTokenFile(path("bad.tokens"), {-1}, 10));
  EXPECT_TRUE(listDir().empty());
}

TEST_F(TokenFileTest, RejectsDamagedFiles) {
  ASSERT_TRUE(writeTokenFile(path("good.tokens"), {1, 2, 3, 4, 5}, 100));
  const std::string good = readBytes("good.tokens");
  auto expectError = [&](const std::string &name, const std::string &bytes,
                         const std::string &needle) {
    writeBytes(name, bytes);
    Expected<TokenFile> file = TokenFile::open(path(name));
    ASSERT_FALSE(file) << name << " was accepted";
    EXPECT_NE(file.message().find("is not a valid token file"),
              std::string::npos)
        << file.message();
    EXPECT_NE(file.message().find(needle), std::string::npos) << file.message();
  };
  auto patched = [&](size_t at, const std::string &bytes) {
    std::string copy = good;
    copy.replace(at, bytes.size(), bytes);
    return copy;
  };
  expectError("empty.tokens", "", "fewer than the 32-byte header");
  expectError("short.tokens", good.substr(0, 20), "fewer than the 32-byte");
  expectError("truncated.tokens", good.substr(0, good.size() - 1),
              "truncated or padded");
  expectError("padded.tokens", good + "xx", "truncated or padded");
  expectError("magic.tokens", patched(0, "KILNTOK2"), "magic");
  expectError("version.tokens", patched(8, std::string("\x02\0\0\0", 4)),
              "format version 2");
  expectError("width.tokens", patched(12, std::string("\x03\0\0\0", 4)),
              "bytes per token is 3");
  expectError("vocab.tokens", patched(24, std::string(8, '\0')),
              "vocabulary size 0");
  expectError("wide.tokens",
              patched(24, std::string("\x01\x00\x01\0\0\0\0\0", 8)),
              "does not fit 2-byte ids");
  expectError("huge.tokens", patched(16, std::string(8, '\xff')),
              "more than the file holds");
  expectError("id.tokens", patched(34, std::string("\x64\0", 2)),
              "token 1 has id 100");

  Expected<TokenFile> missing = TokenFile::open(path("missing.tokens"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("cannot open token file"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Tokenizing and splitting
//===----------------------------------------------------------------------===//

TEST(SplitTest, PrefersADocumentBoundaryNearTheTarget) {
  TokenizedCorpus corpus;
  corpus.ids.resize(1000);
  for (int64_t start = 0; start < 1000; start += 100)
    corpus.documentStarts.push_back(start);

  // Target 50 held out: the boundary at 900 holds out 100 <= 2 * 50.
  Expected<int64_t> split = chooseValidationSplit(corpus, {0.05, 0});
  ASSERT_TRUE(split) << split.message();
  EXPECT_EQ(*split, 900);
  // Target 30: the nearest boundary would hold out 100 > 60, so cut exactly.
  split = chooseValidationSplit(corpus, {0.03, 0});
  ASSERT_TRUE(split);
  EXPECT_EQ(*split, 970);
  // The minimum wins over the fraction.
  split = chooseValidationSplit(corpus, {0.05, 300});
  ASSERT_TRUE(split);
  EXPECT_EQ(*split, 700);
  // One document: no boundary to use.
  corpus.documentStarts = {0};
  split = chooseValidationSplit(corpus, {0.05, 0});
  ASSERT_TRUE(split);
  EXPECT_EQ(*split, 950);
}

TEST(SplitTest, ExplainsImpossibleSplits) {
  TokenizedCorpus corpus;
  corpus.ids.resize(1000);
  corpus.documentStarts = {0};
  Expected<int64_t> tooMuch = chooseValidationSplit(corpus, {0.05, 501});
  ASSERT_FALSE(tooMuch);
  EXPECT_NE(tooMuch.message().find("the corpus has 1000 tokens, too few to "
                                   "hold out 501"),
            std::string::npos)
      << tooMuch.message();
  EXPECT_FALSE(chooseValidationSplit(corpus, {0.0, 0}));
  EXPECT_FALSE(chooseValidationSplit(corpus, {0.6, 0}));
  EXPECT_FALSE(chooseValidationSplit(corpus, {0.05, -1}));
  corpus.ids.resize(1);
  EXPECT_FALSE(chooseValidationSplit(corpus, {0.05, 0}));
}

TEST_F(TokenDataTest, TokenizesByDocumentAndSplitsOnABoundary) {
  std::string corpus = englishLikeText(80000, 5);
  Expected<Tokenizer> tokenizer = Tokenizer::train(corpus, path("tok"), 500, 1);
  ASSERT_TRUE(tokenizer) << tokenizer.message();

  TokenizedCorpus tokens = tokenizeCorpus(corpus, *tokenizer);
  std::vector<std::string_view> documents = splitDocuments(corpus);
  ASSERT_EQ(tokens.documentStarts.size(), documents.size());
  EXPECT_EQ(tokenizer->decode(tokens.ids), corpus);
  for (size_t i : {size_t(0), documents.size() / 2, documents.size() - 1}) {
    int64_t begin = tokens.documentStarts[i];
    int64_t end = i + 1 < documents.size()
                      ? tokens.documentStarts[i + 1]
                      : static_cast<int64_t>(tokens.ids.size());
    EXPECT_EQ(tokenizer->decode(
                  {tokens.ids.begin() + begin, tokens.ids.begin() + end}),
              documents[i]);
  }

  Expected<TokenDataSummary> summary =
      writeTokenData(dir, corpus, *tokenizer, {0.1, 0});
  ASSERT_TRUE(summary) << summary.message();
  EXPECT_EQ(summary->trainTokens + summary->valTokens,
            static_cast<int64_t>(tokens.ids.size()));
  EXPECT_EQ(summary->vocabSize, 500);
  EXPECT_EQ(summary->documents, static_cast<int64_t>(documents.size()));
  EXPECT_TRUE(summary->splitOnDocumentBoundary);
  EXPECT_GE(summary->valTokens, static_cast<int64_t>(0.1 * tokens.ids.size()));

  Expected<TokenFile> train = TokenFile::open(trainTokensPath(dir));
  Expected<TokenFile> val = TokenFile::open(valTokensPath(dir));
  ASSERT_TRUE(train) << train.message();
  ASSERT_TRUE(val) << val.message();
  EXPECT_EQ(train->size(), summary->trainTokens);
  EXPECT_EQ(val->size(), summary->valTokens);
  EXPECT_EQ(val->bytesPerToken(), 2u);
  std::vector<int32_t> all;
  for (const TokenFile *file : {&*train, &*val})
    for (int64_t i = 0; i < file->size(); ++i)
      all.push_back(static_cast<int32_t>((*file)[i]));
  EXPECT_EQ(all, tokens.ids);
  // The held-out part starts a document.
  std::vector<int32_t> valIds(all.begin() + summary->trainTokens, all.end());
  std::string heldOut = tokenizer->decode(valIds);
  EXPECT_EQ(corpus.substr(corpus.size() - heldOut.size()), heldOut);
  EXPECT_EQ(corpus.substr(corpus.size() - heldOut.size() - 2, 2), "\n\n");
}

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

TEST_F(BatchSamplerTest, BatchesAreWindowsWithNextTokenTargets) {
  ASSERT_TRUE(writeTokenFile(path("d.tokens"), counting(5000, 65536), 65536));
  auto data = openShared(path("d.tokens"));
  ASSERT_TRUE(data);
  Expected<BatchSampler> sampler = BatchSampler::create(data, 4, 16, 11);
  ASSERT_TRUE(sampler) << sampler.message();
  for (int draw = 0; draw < 50; ++draw) {
    Batch batch = sampler->next();
    ASSERT_EQ(batch.batch, 4);
    ASSERT_EQ(batch.seq, 16);
    ASSERT_EQ(batch.inputs.size(), 64u);
    ASSERT_EQ(batch.targets.size(), 64u);
    for (int64_t row = 0; row < 4; ++row) {
      int64_t start = batch.inputs[row * 16];
      ASSERT_LE(start + 16, 4999) << "window runs past the data";
      for (int64_t t = 0; t < 16; ++t) {
        ASSERT_EQ(batch.inputs[row * 16 + t], start + t);
        ASSERT_EQ(batch.targets[row * 16 + t], start + t + 1);
      }
    }
  }
  EXPECT_EQ(sampler->batchesDrawn(), 50);
}

TEST_F(BatchSamplerTest, EveryStartIsReachable) {
  // 19 tokens and seq 16: exactly three possible windows.
  ASSERT_TRUE(writeTokenFile(path("d.tokens"), counting(19, 100), 100));
  auto data = openShared(path("d.tokens"));
  Expected<BatchSampler> sampler = BatchSampler::create(data, 8, 16, 3);
  ASSERT_TRUE(sampler) << sampler.message();
  std::set<int64_t> starts;
  for (int draw = 0; draw < 20; ++draw) {
    Batch batch = sampler->next();
    for (int64_t row = 0; row < 8; ++row)
      starts.insert(batch.inputs[row * 16]);
  }
  EXPECT_EQ(starts, (std::set<int64_t>{0, 1, 2}));
}

TEST_F(BatchSamplerTest, SameSeedSameBatchesOtherSeedOtherBatches) {
  ASSERT_TRUE(writeTokenFile(path("d.tokens"), counting(5000, 65536), 65536));
  auto data = openShared(path("d.tokens"));
  Expected<BatchSampler> a = BatchSampler::create(data, 2, 8, 42);
  Expected<BatchSampler> b = BatchSampler::create(data, 2, 8, 42);
  Expected<BatchSampler> c = BatchSampler::create(data, 2, 8, 43);
  ASSERT_TRUE(a && b && c);
  bool differs = false;
  for (int draw = 0; draw < 10; ++draw) {
    Batch x = a->next(), y = b->next(), z = c->next();
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.targets, y.targets);
    differs |= x.inputs != z.inputs;
  }
  EXPECT_TRUE(differs);
}

TEST_F(BatchSamplerTest, ARestoredSamplerContinuesWithIdenticalBatches) {
  ASSERT_TRUE(writeTokenFile(path("d.tokens"), counting(20000, 65536), 65536));
  auto data = openShared(path("d.tokens"));
  Expected<BatchSampler> original = BatchSampler::create(data, 3, 32, 1234);
  ASSERT_TRUE(original) << original.message();
  for (int draw = 0; draw < 5; ++draw)
    (void)original->next();
  std::string state = original->saveState();
  EXPECT_EQ(state.rfind("kiln-batch-sampler 1 3 32 20000 5 ", 0), 0u)
      << state.substr(0, 60);
  std::vector<Batch> expected;
  for (int draw = 0; draw < 7; ++draw)
    expected.push_back(original->next());

  // A fresh sampler, even with another seed, continues where the state left.
  auto reopened = openShared(path("d.tokens"));
  Expected<BatchSampler> resumed = BatchSampler::create(reopened, 3, 32, 999);
  ASSERT_TRUE(resumed) << resumed.message();
  Status restored = resumed->restoreState(state);
  ASSERT_TRUE(restored) << restored.message();
  EXPECT_EQ(resumed->batchesDrawn(), 5);
  for (const Batch &want : expected) {
    Batch got = resumed->next();
    ASSERT_EQ(got.inputs.size(), want.inputs.size());
    EXPECT_EQ(std::memcmp(got.inputs.data(), want.inputs.data(),
                          want.inputs.size() * sizeof(int64_t)),
              0);
    EXPECT_EQ(std::memcmp(got.targets.data(), want.targets.data(),
                          want.targets.size() * sizeof(int64_t)),
              0);
  }
  EXPECT_EQ(resumed->batchesDrawn(), 12);
  EXPECT_EQ(resumed->saveState(), original->saveState());
}

TEST_F(BatchSamplerTest, RefusesStatesThatDoNotFit) {
  ASSERT_TRUE(writeTokenFile(path("d.tokens"), counting(5000, 65536), 65536));
  auto data = openShared(path("d.tokens"));
  Expected<BatchSampler> sampler = BatchSampler::create(data, 2, 8, 5);
  Expected<BatchSampler> twin = BatchSampler::create(data, 2, 8, 5);
  Expected<BatchSampler> other = BatchSampler::create(data, 4, 8, 5);
  ASSERT_TRUE(sampler && twin && other);
  std::string state = sampler->saveState();

  auto expectRefused = [&](const std::string &bad, const std::string &needle) {
    Status status = sampler->restoreState(bad);
    ASSERT_FALSE(status) << bad.substr(0, 60);
    EXPECT_NE(status.message().find(needle), std::string::npos)
        << status.message();
  };
  expectRefused("", "not a batch sampler state");
  expectRefused("something else", "not a batch sampler state");
  expectRefused("kiln-batch-sampler 2 2 8 5000 0 1 2 3", "version 2");
  expectRefused(state.substr(0, state.size() / 2), "truncated or malformed");
  expectRefused(state + " extra", "trailing text");
  expectRefused(other->saveState(),
                "saved for batch 4 x seq 8 over 5000 tokens; this sampler "
                "draws batch 2 x seq 8");

  // Failed restores left the sampler as it was.
  EXPECT_EQ(sampler->batchesDrawn(), 0);
  EXPECT_EQ(sampler->next().inputs, twin->next().inputs);
}

TEST_F(BatchSamplerTest, ExplainsABatchLargerThanTheData) {
  ASSERT_TRUE(writeTokenFile(path("d.tokens"), counting(100, 1000), 1000));
  auto data = openShared(path("d.tokens"));
  Expected<BatchSampler> tooLong = BatchSampler::create(data, 1, 100, 1);
  ASSERT_FALSE(tooLong);
  EXPECT_NE(tooLong.message().find("batch larger than the data: a sequence "
                                   "of 100 tokens needs 101"),
            std::string::npos)
      << tooLong.message();
  EXPECT_NE(tooLong.message().find("has only 100"), std::string::npos)
      << tooLong.message();
  EXPECT_TRUE(BatchSampler::create(data, 1, 99, 1));
  EXPECT_FALSE(BatchSampler::create(data, 0, 10, 1));
  EXPECT_FALSE(BatchSampler::create(data, 2, 0, 1));
  EXPECT_FALSE(BatchSampler::create(nullptr, 2, 8, 1));
}

TEST_F(BatchSamplerTest, EvalBatchesAreFixedAndSpanTheFile) {
  ASSERT_TRUE(writeTokenFile(path("v.tokens"), counting(1000, 65536), 65536));
  auto data = openShared(path("v.tokens"));
  Expected<BatchSampler> sampler = BatchSampler::create(data, 4, 10, 8);
  ASSERT_TRUE(sampler);
  std::vector<Batch> first = sampler->evalBatches(3);
  (void)sampler->next();
  std::vector<Batch> second = sampler->evalBatches(3);
  ASSERT_EQ(first.size(), 3u);
  std::vector<int64_t> starts;
  for (size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(first[b].inputs, second[b].inputs);
    EXPECT_EQ(first[b].targets, second[b].targets);
    for (int64_t row = 0; row < 4; ++row) {
      starts.push_back(first[b].inputs[row * 10]);
      EXPECT_EQ(first[b].targets[row * 10 + 9], first[b].inputs[row * 10] + 10);
    }
  }
  // Twelve windows from the first position to the last one.
  EXPECT_EQ(starts.front(), 0);
  EXPECT_EQ(starts.back(), 1000 - 10 - 1);
  EXPECT_TRUE(std::is_sorted(starts.begin(), starts.end()));
  EXPECT_TRUE(sampler->evalBatches(0).empty());
}

TEST_F(BatchSamplerTest, DefaultCorpusEndToEnd) {
  Expected<std::string> corpus = readCorpus(defaultCorpusPath());
  ASSERT_TRUE(corpus) << corpus.message();
  Expected<Tokenizer> tokenizer =
      Tokenizer::train(*corpus, path("tokenizer"), 2048, 0);
  ASSERT_TRUE(tokenizer) << tokenizer.message();
  EXPECT_EQ(tokenizer->vocabSize(), 2048);
  Expected<TokenDataSummary> summary =
      writeTokenData(dir, *corpus, *tokenizer, {0.05, 4 * 64 + 1});
  ASSERT_TRUE(summary) << summary.message();
  EXPECT_TRUE(summary->splitOnDocumentBoundary);
  // BPE with 2k pieces takes English to well under half a token per byte.
  int64_t tokens = summary->trainTokens + summary->valTokens;
  EXPECT_LT(tokens, static_cast<int64_t>(corpus->size()) / 2);

  auto train = openShared(trainTokensPath(dir));
  auto val = openShared(valTokensPath(dir));
  ASSERT_TRUE(train && val);
  Expected<BatchSampler> sampler = BatchSampler::create(train, 4, 64, 0);
  ASSERT_TRUE(sampler) << sampler.message();
  Batch batch = sampler->next();
  std::vector<int32_t> row(batch.inputs.begin(), batch.inputs.begin() + 64);
  EXPECT_NE(corpus->find(tokenizer->decode(row)), std::string::npos);

  Expected<BatchSampler> eval = BatchSampler::create(val, 4, 64, 0);
  ASSERT_TRUE(eval) << eval.message();
  EXPECT_EQ(eval->evalBatches(1).size(), 1u);
}

} // namespace
