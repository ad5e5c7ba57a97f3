//===- ScratchDirTest.h - A temporary directory per test --------*- C++ -*-===//
//
// The GoogleTest fixture the runtime and training tests share: a fresh
// directory for each test, removed afterwards, and helpers to write, read
// and list raw files in it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_UNIT_SCRATCHDIRTEST_H
#define KILN_TEST_UNIT_SCRATCHDIRTEST_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace kiln::testing {

class ScratchDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "kiln-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
  }
  void TearDown() override {
    std::string command = "rm -rf '" + dir + "'";
    (void)std::system(command.c_str());
  }
  std::string path(const std::string &name) const { return dir + "/" + name; }
  void writeBytes(const std::string &name, const std::string &bytes) const {
    std::ofstream out(path(name), std::ios::binary);
    out << bytes;
  }
  std::string readBytes(const std::string &name) const {
    std::ifstream in(path(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  /// The names in the scratch directory, sorted, without "." and "..".
  std::vector<std::string> listDir() const {
    std::vector<std::string> names;
    if (DIR *d = ::opendir(dir.c_str())) {
      while (dirent *entry = ::readdir(d)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..")
          names.push_back(name);
      }
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir;
};

} // namespace kiln::testing

#endif // KILN_TEST_UNIT_SCRATCHDIRTEST_H
