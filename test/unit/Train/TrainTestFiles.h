//===- TrainTestFiles.h - Scratch files for training tests ------*- C++ -*-===//
//
// The shared per-test scratch directory, and a deterministic generator of
// English-like text for training tokenizers.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_UNIT_TRAIN_TRAINTESTFILES_H
#define KILN_TEST_UNIT_TRAIN_TRAINTESTFILES_H

#include "../ScratchDirTest.h"

#include <cstdint>
#include <random>
#include <string>

namespace kiln::train::testing {

using ScratchDirTest = kiln::testing::ScratchDirTest;

/// About `bytes` bytes of English-like prose: sentences of common words in
/// paragraphs separated by blank lines, the same for the same seed.
inline std::string englishLikeText(size_t bytes, uint64_t seed = 1) {
  static const char *const words[] = {
      "the",    "of",      "and",      "to",     "in",       "a",
      "is",     "that",    "for",      "it",     "as",       "was",
      "with",   "be",      "by",       "on",     "not",      "he",
      "this",   "are",     "or",       "his",    "from",     "at",
      "which",  "but",     "have",     "an",     "had",      "they",
      "you",    "were",    "their",    "one",    "all",      "we",
      "can",    "her",     "has",      "there",  "been",     "if",
      "more",   "when",    "will",     "would",  "who",      "so",
      "no",     "model",   "training", "loss",   "compiler", "kernel",
      "memory", "fortune", "future",   "people", "computer", "learning",
      "time",   "world",   "little",   "great",  "between",  "through"};
  constexpr size_t wordCount = sizeof(words) / sizeof(words[0]);
  std::mt19937_64 rng(seed);
  std::string text;
  while (text.size() < bytes) {
    int sentences = 1 + static_cast<int>(rng() % 5);
    for (int s = 0; s < sentences; ++s) {
      int length = 4 + static_cast<int>(rng() % 10);
      for (int w = 0; w < length; ++w) {
        std::string word = words[rng() % wordCount];
        if (w == 0)
          word[0] = static_cast<char>(word[0] - 'a' + 'A');
        text += word;
        text += w + 1 == length ? (rng() % 4 == 0 ? "?" : ".") : " ";
      }
      text += s + 1 == sentences ? "\n" : " ";
    }
    text += "\n";
  }
  return text;
}

} // namespace kiln::train::testing

#endif // KILN_TEST_UNIT_TRAIN_TRAINTESTFILES_H
