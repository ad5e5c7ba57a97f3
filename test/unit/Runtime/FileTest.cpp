//===- FileTest.cpp - Opening untrusted paths, atomic-write leftovers -----===//
//
// Every reader of weights, inputs, token files and checkpoints opens through
// openRegularFile: a FIFO, a directory or a device is refused at once with
// its kind named (a FIFO given as weights used to block `kiln` forever).
// removeStaleTemporaries deletes what interrupted atomic writes left.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Npy.h"
#include "kiln/Runtime/SafeTensors.h"
#include "TestFiles.h"

#include <sys/stat.h>
#include <unistd.h>

using namespace kiln::runtime;
using kiln::runtime::testing::ScratchDirTest;

namespace {

using FileTest = ScratchDirTest;

TEST_F(FileTest, RefusesFifosAndDirectoriesWithoutBlocking) {
  // Nobody ever writes to the FIFO: a reader that opened it blocking would
  // hang here, so reaching the assertions is half of the test.
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  ::mkdir(path("directory").c_str(), 0700);
  for (const char *name : {"fifo", "directory"}) {
    std::string kind = std::string(name) == "fifo" ? "is a FIFO" : "is a directory";
    Expected<std::string> read = readFile(path(name), "weights");
    ASSERT_FALSE(read);
    EXPECT_NE(read.message().find(kind + ", not a regular file"), std::string::npos)
        << read.message();
    EXPECT_NE(read.message().find("weights '" + path(name) + "'"), std::string::npos)
        << read.message();
    EXPECT_FALSE(MappedFile::open(path(name)));
    Expected<SafeTensorsFile> weights = SafeTensorsFile::open(path(name));
    ASSERT_FALSE(weights);
    EXPECT_NE(weights.message().find(kind), std::string::npos) << weights.message();
    Expected<NpyArray> input = readNpy(path(name));
    ASSERT_FALSE(input);
    EXPECT_NE(input.message().find(kind), std::string::npos) << input.message();
    EXPECT_FALSE(checkRegularFile(path(name)));
  }
  EXPECT_FALSE(readFile(path("missing")));
  EXPECT_NE(readFile(path("missing")).message().find("No such file"), std::string::npos);
}

TEST_F(FileTest, ReadsRegularFilesWhole) {
  std::string bytes(200000, 'x');
  bytes[123456] = 'y';
  writeBytes("big", bytes);
  Expected<std::string> read = readFile(path("big"));
  ASSERT_TRUE(read) << read.message();
  EXPECT_EQ(*read, bytes);
  writeBytes("empty", "");
  Expected<std::string> empty = readFile(path("empty"));
  ASSERT_TRUE(empty) << empty.message();
  EXPECT_TRUE(empty->empty());
  EXPECT_TRUE(checkRegularFile(path("big")));
}

TEST_F(FileTest, RemovesOnlyTheLeftoversOfItsOwnFile) {
  writeBytes("checkpoint.safetensors", "kept");
  writeBytes("checkpoint.safetensors.tmp.Ab12Cd", "left by a kill");
  writeBytes("checkpoint.safetensors.tmp.zzzzzz", "left by a full disk");
  writeBytes("checkpoint.safetensors.tmp.toolong1", "not mkstemp's");
  writeBytes("metrics.jsonl.tmp.Ab12Cd", "another file's");
  removeStaleTemporaries(path("checkpoint.safetensors"));
  EXPECT_EQ(listDir(), (std::vector<std::string>{
                           "checkpoint.safetensors",
                           "checkpoint.safetensors.tmp.toolong1",
                           "metrics.jsonl.tmp.Ab12Cd"}));
  // A directory that does not exist is not an error.
  removeStaleTemporaries(path("missing/checkpoint.safetensors"));
}

} // namespace
