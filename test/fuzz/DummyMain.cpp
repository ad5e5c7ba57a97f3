//===- DummyMain.cpp - Runs a fuzz harness over files, without libFuzzer --===//
//
// In a build without LLVM_USE_SANITIZE_COVERAGE each harness links this
// main instead of libFuzzer's: it feeds every file named on the command line
// (or every file in a named directory) to LLVMFuzzerTestOneInput once. ctest
// runs the seed corpora through the harnesses this way, so their checks hold
// in the ordinary build too (scripts/fuzz does the fuzzing).
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv)
    __attribute__((weak));

static bool runFile(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(bytes.data()),
                         bytes.size());
  return true;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    std::error_code error;
    if (!std::filesystem::is_directory(arg, error)) {
      files.push_back(arg);
      continue;
    }
    std::vector<std::filesystem::path> inDirectory;
    for (const auto &entry : std::filesystem::directory_iterator(arg, error))
      if (entry.is_regular_file())
        inDirectory.push_back(entry.path());
    std::sort(inDirectory.begin(), inDirectory.end());
    files.insert(files.end(), inDirectory.begin(), inDirectory.end());
  }
  if (files.empty()) {
    std::fprintf(stderr, "%s: no input files\n", argv[0]);
    return 1;
  }
  for (const auto &file : files)
    if (!runFile(file))
      return 1;
  std::printf("%s: %zu inputs passed\n", argv[0], files.size());
  return 0;
}
