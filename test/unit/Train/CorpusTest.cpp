//===- CorpusTest.cpp - Reading a pretraining corpus ----------------------===//
//
// UTF-8 checking, the per-file normalization (fortune separators,
// overstrikes), directory walks (order, binary files, duplicate names,
// hidden entries), the error messages, and the real default corpus.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Corpus.h"
#include "TrainTestFiles.h"

#include <sys/stat.h>
#include <unistd.h>

using namespace kiln::train;
using kiln::train::testing::ScratchDirTest;

namespace {

using CorpusTest = ScratchDirTest;

TEST(Utf8Test, AcceptsTextAndRejectsBinary) {
  EXPECT_TRUE(isUtf8Text(""));
  EXPECT_TRUE(isUtf8Text("plain ASCII\twith\ttabs\n"));
  EXPECT_TRUE(
      isUtf8Text("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x94\xA5"));
  EXPECT_TRUE(isUtf8Text("old fortunes use _\b_ overstrikes and \a bells"));
  EXPECT_FALSE(isUtf8Text(std::string("nul\0byte", 8)));
  EXPECT_FALSE(isUtf8Text("truncated \xC3"));
  EXPECT_FALSE(isUtf8Text("lone continuation \x80"));
  EXPECT_FALSE(isUtf8Text("overlong \xC0\x80"));
  EXPECT_FALSE(isUtf8Text("overlong \xE0\x80\xAF"));
  EXPECT_FALSE(isUtf8Text("surrogate \xED\xA0\x80"));
  EXPECT_FALSE(isUtf8Text("past U+10FFFF \xF4\x90\x80\x80"));
  EXPECT_FALSE(isUtf8Text("latin-1 caf\xE9"));
}

TEST(NormalizeTest, FortuneSeparatorsBecomeBlankLines) {
  EXPECT_EQ(normalizeCorpusText("One.\n%\nTwo,\non two lines.\n%\nThree.\n%\n"),
            "One.\n\nTwo,\non two lines.\n\nThree.");
  // A blank line inside a fortune next to a separator collapses with it.
  EXPECT_EQ(normalizeCorpusText("A\n\n%\n\nB\n"), "A\n\nB");
  // Only a line that is exactly '%' separates.
  EXPECT_EQ(normalizeCorpusText("100%\n%d\n"), "100%\n%d");
}

TEST(NormalizeTest, ResolvesOverstrikesAndControls) {
  EXPECT_EQ(normalizeCorpusText("a very *__\b\bUN*lucky week"),
            "a very *UN*lucky week");
  EXPECT_EQ(normalizeCorpusText("B\bBo\bol\bld"), "Bold");
  // A multi-byte character is erased whole.
  EXPECT_EQ(normalizeCorpusText("caf\xC3\xA9\be"), "cafe");
  // A backspace at the start of a line has nothing to erase.
  EXPECT_EQ(normalizeCorpusText("x\n\by"), "x\ny");
  EXPECT_EQ(normalizeCorpusText("\a\a\a\t*** NEWSFLASH ***"),
            "\t*** NEWSFLASH ***");
  EXPECT_EQ(normalizeCorpusText("dos\r\nlines\r\n"), "dos\nlines");
}

TEST(NormalizeTest, TrimsLinesAndCollapsesBlankRuns) {
  EXPECT_EQ(normalizeCorpusText("\n\n  \nfirst  \t\n\n\n \n\nsecond\n\n\n"),
            "first\n\nsecond");
  EXPECT_EQ(normalizeCorpusText("   indented stays\n"), "   indented stays");
  EXPECT_EQ(normalizeCorpusText("\n \n%\n"), "");
}

TEST(SplitDocumentsTest, PiecesEndAfterBlankLinesAndConcatenateBack) {
  std::string corpus = "one\nline\n\ntwo\n\nthree\n";
  std::vector<std::string_view> docs = splitDocuments(corpus);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], "one\nline\n\n");
  EXPECT_EQ(docs[1], "two\n\n");
  EXPECT_EQ(docs[2], "three\n");
  std::string joined;
  for (std::string_view doc : docs)
    joined += doc;
  EXPECT_EQ(joined, corpus);
  EXPECT_TRUE(splitDocuments("").empty());
  EXPECT_EQ(splitDocuments("no separator").size(), 1u);
}

TEST_F(CorpusTest, ReadsADirectoryInPathOrderSkippingBinaryAndDuplicates) {
  ASSERT_EQ(::mkdir(path("sub").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(path(".hidden").c_str(), 0755), 0);
  writeBytes("b", "Bee one.\n%\nBee two.\n%\n");
  writeBytes("a", "Ay.\n");
  writeBytes("b.dat", std::string("\0\0\0\2\0\0\0\x05\x13", 9));
  ASSERT_EQ(::symlink("b", path("b.u8").c_str()), 0);
  ASSERT_EQ(::symlink("missing", path("dangling").c_str()), 0);
  writeBytes("sub/c.txt", "\n\nSee.\n\n");
  writeBytes("sub/empty", "\n\n");
  writeBytes(".hidden/secret", "Not me.\n");
  writeBytes(".dotfile", "Nor me.\n");

  Expected<std::vector<std::string>> files = listCorpusFiles(dir);
  ASSERT_TRUE(files) << files.message();
  EXPECT_EQ(*files,
            (std::vector<std::string>{path("a"), path("b"), path("sub/c.txt"),
                                      path("sub/empty")}));

  Expected<std::string> corpus = readCorpus(dir);
  ASSERT_TRUE(corpus) << corpus.message();
  EXPECT_EQ(*corpus, "Ay.\n\nBee one.\n\nBee two.\n\nSee.\n");
}

TEST_F(CorpusTest, ReadsASingleFile) {
  writeBytes("one.txt", "Hello\r\nworld.  \n");
  Expected<std::string> corpus = readCorpus(path("one.txt"));
  ASSERT_TRUE(corpus) << corpus.message();
  EXPECT_EQ(*corpus, "Hello\nworld.\n");
}

TEST_F(CorpusTest, ExplainsWhatIsWrong) {
  Expected<std::string> missing = readCorpus(path("nope"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("'" + path("nope") + "' does not exist"),
            std::string::npos)
      << missing.message();

  Expected<std::string> empty = readCorpus(dir);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.message().find("contains no text"), std::string::npos)
      << empty.message();

  writeBytes("index.dat", std::string("\0\1\2\3", 4));
  writeBytes("blank", "\n \n%\n");
  Expected<std::string> onlyBinary = readCorpus(dir);
  ASSERT_FALSE(onlyBinary);
  EXPECT_NE(onlyBinary.message().find("contains no text"), std::string::npos)
      << onlyBinary.message();

  Expected<std::string> binaryFile = readCorpus(path("index.dat"));
  ASSERT_FALSE(binaryFile);
  EXPECT_NE(binaryFile.message().find("is not UTF-8 text"), std::string::npos)
      << binaryFile.message();
}

TEST(DefaultCorpusTest, IsTheFortunesPackageReadAsText) {
  std::string root = defaultCorpusPath();
  EXPECT_EQ(root, "/usr/share/games/fortunes");
  ASSERT_EQ(::access(root.c_str(), R_OK), 0)
      << root << " is missing: install the Debian package 'fortunes' "
      << "(scripts/test does)";
  Expected<std::vector<std::string>> files = listCorpusFiles(root);
  ASSERT_TRUE(files) << files.message();
  EXPECT_GE(files->size(), 30u);
  for (const std::string &file : *files) {
    EXPECT_EQ(file.find(".dat"), std::string::npos) << file;
    EXPECT_EQ(file.find(".u8"), std::string::npos) << file;
  }
  EXPECT_NE(std::find(files->begin(), files->end(), root + "/fortunes"),
            files->end());

  Expected<std::string> corpus = readCorpus(root);
  ASSERT_TRUE(corpus) << corpus.message();
  EXPECT_GT(corpus->size(), 2000000u);
  EXPECT_TRUE(isUtf8Text(*corpus));
  EXPECT_EQ(corpus->find('\b'), std::string::npos);
  EXPECT_EQ(corpus->find('\a'), std::string::npos);
  EXPECT_EQ(corpus->find("\n%\n"), std::string::npos);
  EXPECT_EQ(corpus->find("\n\n\n"), std::string::npos);
  EXPECT_EQ(corpus->back(), '\n');
  EXPECT_GT(splitDocuments(*corpus).size(), 10000u);
  // The same path always gives the same bytes.
  Expected<std::string> again = readCorpus(root);
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again == *corpus);
}

} // namespace
