//===- TokenizerTest.cpp - SentencePiece tokenizer ------------------------===//
//
// Training a small BPE vocabulary on generated text, exact round trips
// (whitespace, newlines, characters never seen in training), determinism,
// the files written, and loading files that are not models.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Tokenizer.h"
#include "TrainTestFiles.h"

using namespace kiln::train;
using kiln::train::testing::englishLikeText;
using kiln::train::testing::ScratchDirTest;

namespace {

class TokenizerTest : public ScratchDirTest {
protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    text = englishLikeText(60000);
  }
  std::string text;
};

TEST_F(TokenizerTest, TrainsASmallBpeVocabularyThatRoundTrips) {
  Expected<Tokenizer> trained = Tokenizer::train(text, path("tok"), 400, 7);
  ASSERT_TRUE(trained) << trained.message();
  const Tokenizer &tokenizer = *trained;
  EXPECT_EQ(tokenizer.vocabSize(), 400);
  EXPECT_EQ(tokenizer.unkId(), 0);
  EXPECT_EQ(tokenizer.bosId(), 1);
  EXPECT_EQ(tokenizer.eosId(), 2);
  EXPECT_EQ(tokenizer.piece(3), "<0x00>");
  EXPECT_EQ(tokenizer.piece(3 + 0x0A), "<0x0A>");
  EXPECT_EQ(tokenizer.piece(400), "");

  std::vector<int32_t> ids = tokenizer.encode(text);
  for (int32_t id : ids)
    ASSERT_TRUE(id >= 0 && id < 400) << id;
  // Learned merges: far fewer tokens than bytes.
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(tokenizer.decode(ids), text);

  const std::string unusual =
      "  two leading spaces,\ttabs,\n\nblank lines, trailing space \n"
      "UPPER lower 12345 caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x94\xA5 "
      "control \x01 and a lone ~ tilde\n";
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(unusual)), unusual);
  EXPECT_TRUE(tokenizer.encode("").empty());
  EXPECT_EQ(tokenizer.decode({}), "");
  // Digits are split one by one.
  EXPECT_EQ(tokenizer.encode("2024").size(), 4u);
}

TEST_F(TokenizerTest, WritesModelAndVocabAndLoadsBack) {
  Expected<Tokenizer> trained = Tokenizer::train(text, path("tok"), 400, 7);
  ASSERT_TRUE(trained) << trained.message();
  // Exactly the two files: no temporaries left behind.
  EXPECT_EQ(listDir(), (std::vector<std::string>{"tok.model", "tok.vocab"}));

  std::string vocab = readBytes("tok.vocab");
  EXPECT_EQ(std::count(vocab.begin(), vocab.end(), '\n'), 400);
  EXPECT_EQ(vocab.substr(0, 8), "<unk>\t0\n");

  Expected<Tokenizer> loaded = Tokenizer::load(path("tok.model"));
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(loaded->vocabSize(), 400);
  std::string sample = text.substr(0, 2000);
  EXPECT_EQ(loaded->encode(sample), trained->encode(sample));
}

TEST_F(TokenizerTest, IsDeterministic) {
  ASSERT_TRUE(Tokenizer::train(text, path("one"), 400, 7));
  ASSERT_TRUE(Tokenizer::train(text, path("two"), 400, 7));
  std::string one = readBytes("one.model");
  EXPECT_GT(one.size(), 1000u);
  EXPECT_TRUE(one == readBytes("two.model"));
  EXPECT_EQ(readBytes("one.vocab"), readBytes("two.vocab"));
}

TEST_F(TokenizerTest, RefusesAVocabularyTooSmallForTheCharacters) {
  int minimum = Tokenizer::minimumVocabSize(text);
  EXPECT_GT(minimum, kReservedTokenIds);
  EXPECT_LT(minimum, 400);
  EXPECT_EQ(Tokenizer::minimumVocabSize("aab b\nc"),
            kReservedTokenIds + 4); // a, b, c and the space.

  Expected<Tokenizer> small =
      Tokenizer::train(text, path("tok"), minimum - 1, 7);
  ASSERT_FALSE(small);
  EXPECT_NE(small.message().find("too small"), std::string::npos)
      << small.message();
  EXPECT_NE(small.message().find("at least " + std::to_string(minimum)),
            std::string::npos)
      << small.message();

  Expected<Tokenizer> empty = Tokenizer::train("\n\n", path("tok"), 400, 7);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.message().find("no non-empty lines"), std::string::npos)
      << empty.message();
  EXPECT_TRUE(listDir().empty());
}

TEST_F(TokenizerTest, ReportsAMissingOrUnwritableModelPath) {
  Expected<Tokenizer> missing = Tokenizer::load(path("nope.model"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("cannot open tokenizer model"),
            std::string::npos)
      << missing.message();

  Expected<Tokenizer> unwritable =
      Tokenizer::train(text, path("no-such-dir/tok"), 400, 7);
  ASSERT_FALSE(unwritable);
  EXPECT_NE(unwritable.message().find("no-such-dir/tok.model"),
            std::string::npos)
      << unwritable.message();
}

TEST_F(TokenizerTest, LoadingACorruptModelIsAnErrorNotACrash) {
  ASSERT_TRUE(Tokenizer::train(text, path("tok"), 400, 7));
  std::string model = readBytes("tok.model");

  auto expectRejected = [&](const std::string &name, const std::string &bytes) {
    writeBytes(name, bytes);
    Expected<Tokenizer> loaded = Tokenizer::load(path(name));
    ASSERT_FALSE(loaded) << name << " was accepted";
    EXPECT_NE(loaded.message().find("is not a valid SentencePiece model"),
              std::string::npos)
        << loaded.message();
  };
  expectRejected("empty.model", "");
  expectRejected("text.model", "this is not a protobuf at all\n");
  expectRejected("truncated.model", model.substr(0, model.size() / 2));
  std::string garbage(4096, '\0');
  std::mt19937 rng(3);
  for (char &c : garbage)
    c = static_cast<char>(rng());
  expectRejected("random.model", garbage);
}

TEST_F(TokenizerTest, DecodesOutOfRangeIdsAsUnknown) {
  Expected<Tokenizer> trained = Tokenizer::train(text, path("tok"), 400, 7);
  ASSERT_TRUE(trained) << trained.message();
  std::vector<int32_t> ids = trained->encode("The model");
  EXPECT_EQ(trained->decode(ids), "The model");
  std::vector<int32_t> framed = ids;
  framed.insert(framed.begin(), trained->bosId());
  framed.push_back(trained->eosId());
  EXPECT_EQ(trained->decode(framed), "The model");
  ids.insert(ids.begin() + 1, -5);
  ids.push_back(1 << 30);
  std::string decoded = trained->decode(ids);
  // Each bad id reads as SentencePiece's unknown mark, U+2047.
  size_t marks = 0;
  for (size_t at = decoded.find("\xE2\x81\x87"); at != std::string::npos;
       at = decoded.find("\xE2\x81\x87", at + 1))
    ++marks;
  EXPECT_EQ(marks, 2u) << decoded;
  EXPECT_NE(decoded.find("model"), std::string::npos) << decoded;
}

} // namespace
