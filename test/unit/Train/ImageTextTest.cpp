//===- ImageTextTest.cpp - Captioning rows and scores ---------------------===//
//
// packCaptions' inputs and targets (the next-token shift, padding, a
// caption that fills the row) and captionScores' exact and word measures.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/ImageText.h"

#include <gtest/gtest.h>

using namespace kiln::train;

namespace {

TEST(PackCaptions, ShiftsTheCaptionBehindTheStartToken) {
  // Captions end in the end id (2), as loadImageTextSplit makes them.
  std::vector<std::vector<int64_t>> tokens = {{10, 11, 2}, {20, 21, 22, 23, 2}};
  std::vector<int64_t> ids, targets;
  packCaptions(tokens, {1, 0}, /*seq=*/5, /*bos=*/1, /*eos=*/2, ids, targets);
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 20, 21, 22, 23, //
                                       1, 10, 11, 2, 2}));
  EXPECT_EQ(targets, (std::vector<int64_t>{20, 21, 22, 23, 2, //
                                           10, 11, 2, -100, -100}));
}

TEST(CaptionScores, CountsExactCaptionsAndWordsInPlace) {
  CaptionScores s = captionScores(
      {"two red circles on the left", "one blue square", "a b c"},
      {"two red circles on the left", "one blue square at the top", "x b c d"});
  EXPECT_EQ(s.images, 3);
  EXPECT_DOUBLE_EQ(s.exact, 1.0 / 3);
  // 6/6; 3 of 6 (three words missing); 2 of 4 (one extra word missing).
  EXPECT_DOUBLE_EQ(s.words, (1.0 + 0.5 + 0.5) / 3);
  CaptionScores none = captionScores({}, {});
  EXPECT_EQ(none.images, 0);
  EXPECT_EQ(none.exact, 0);
}

} // namespace
