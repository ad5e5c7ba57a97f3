//===- TestFiles.h - Scratch files for runtime tests ------------*- C++ -*-===//
//
// A per-test temporary directory and helpers to write raw bytes.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_UNIT_RUNTIME_TESTFILES_H
#define KILN_TEST_UNIT_RUNTIME_TESTFILES_H

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace kiln::runtime::testing {

class ScratchDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "kiln-rt-XXXXXX";
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
  /// Runs a Python snippet with numpy in the scratch directory; returns its
  /// exit status.
  int python(const std::string &code) const {
    std::string command = "cd '" + dir + "' && " KILN_PYTHON " -c \"" + code +
                          "\"";
    return std::system(command.c_str());
  }

  std::string dir;
};

} // namespace kiln::runtime::testing

#endif // KILN_TEST_UNIT_RUNTIME_TESTFILES_H
