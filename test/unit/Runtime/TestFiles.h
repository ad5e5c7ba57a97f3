//===- TestFiles.h - Scratch files for runtime tests ------------*- C++ -*-===//
//
// The shared per-test scratch directory, with a helper that runs Python
// (numpy) in it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_UNIT_RUNTIME_TESTFILES_H
#define KILN_TEST_UNIT_RUNTIME_TESTFILES_H

#include "../ScratchDirTest.h"

#include <cstdlib>
#include <string>

namespace kiln::runtime::testing {

/// The shared scratch directory, plus running Python snippets in it.
class ScratchDirTest : public kiln::testing::ScratchDirTest {
protected:
  /// Runs a Python snippet with numpy in the scratch directory; returns its
  /// exit status.
  int python(const std::string &code) const {
    std::string command = "cd '" + dir + "' && " KILN_PYTHON " -c \"" + code +
                          "\"";
    return std::system(command.c_str());
  }
};

} // namespace kiln::runtime::testing

#endif // KILN_TEST_UNIT_RUNTIME_TESTFILES_H
