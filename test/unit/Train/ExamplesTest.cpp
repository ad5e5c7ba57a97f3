//===- ExamplesTest.cpp - Prompt/response examples ------------------------===//
//
// The rows kiln sft trains on (targets only where the next token is a
// response token), the example files and every way their lines can be
// wrong, and the epoch sampler: each epoch a permutation, resumable from
// its state, and refusing a state saved for other data.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Examples.h"
#include "TrainTestFiles.h"

#include <algorithm>
#include <map>

using namespace kiln::train;
using kiln::train::testing::ScratchDirTest;

namespace {

using ExamplesTest = ScratchDirTest;

Example example(int64_t prompt, std::vector<int32_t> tokens) {
  Example e;
  e.promptTokens = prompt;
  e.tokens = std::move(tokens);
  return e;
}

TEST(ExampleRowTest, TargetsAreTheResponseTokensOnly) {
  Batch batch;
  batch.batch = 2;
  batch.seq = 6;
  batch.inputs.assign(12, -1);
  batch.targets.assign(12, -1);
  // Prompt 10 11 12, response 20 21, end-of-text 2.
  fillExampleRow(example(3, {10, 11, 12, 20, 21, 2}), 1, /*padId=*/7, batch);
  std::vector<int64_t> inputs(batch.inputs.begin() + 6, batch.inputs.end());
  std::vector<int64_t> targets(batch.targets.begin() + 6, batch.targets.end());
  EXPECT_EQ(inputs, (std::vector<int64_t>{10, 11, 12, 20, 21, 2}));
  EXPECT_EQ(targets, (std::vector<int64_t>{-100, -100, 20, 21, 2, -100}));
  // Row 0 is untouched.
  EXPECT_EQ(batch.inputs[0], -1);

  // seq + 1 tokens: the last token is a target and never an input.
  fillExampleRow(example(1, {5, 20, 21, 22, 23, 24, 2}), 0, 7, batch);
  EXPECT_EQ(std::vector<int64_t>(batch.inputs.begin(), batch.inputs.begin() + 6),
            (std::vector<int64_t>{5, 20, 21, 22, 23, 24}));
  EXPECT_EQ(std::vector<int64_t>(batch.targets.begin(), batch.targets.begin() + 6),
            (std::vector<int64_t>{20, 21, 22, 23, 24, 2}));
}

TEST(ExampleRowTest, LongExamplesAreRefusedWithTheSeqTheyNeed) {
  std::vector<Example> examples = {example(1, {1, 2, 3}),
                                   example(2, {1, 2, 3, 4, 5, 6})};
  EXPECT_TRUE(checkExamplesFit(examples, 5, "example"));
  Status s = checkExamplesFit(examples, 4, "example");
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("example 2 is 6 tokens"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("--seq 5"), std::string::npos) << s.message();
}

TEST(ExampleRowTest, EvalBatchesPadWithIgnoredRows) {
  std::vector<Example> examples(5, example(1, {3, 4, 2}));
  std::vector<Batch> batches = exampleBatches(examples, 2, 4, 0);
  ASSERT_EQ(batches.size(), 3u);
  // The last batch's second row is padding: nothing to learn.
  EXPECT_TRUE(std::all_of(batches[2].targets.begin() + 4,
                          batches[2].targets.end(),
                          [](int64_t t) { return t == -100; }));
  EXPECT_EQ(batches[2].targets[0], 4);
}

TEST_F(ExamplesTest, PromptResponseLinesAndTheirErrors) {
  writeBytes("ok.jsonl", "{\"prompt\": \"a\", \"response\": \"b\", \"x\": 1}\n"
                         "\n"
                         "{\"prompt\": \"\", \"response\": \"c\"}\r\n");
  Expected<std::vector<PromptResponse>> ok = readPromptResponses(path("ok.jsonl"));
  ASSERT_TRUE(ok) << ok.message();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].response, "c");

  std::map<std::string, std::string> bad = {
      {"{\"prompt\": \"a\"", "line 1 is not JSON"},
      {"\"text\"", "line 1 is not a JSON object"},
      {"{\"prompt\": 3, \"response\": \"b\"}", "\"prompt\" is missing or not a string"},
      {"{\"prompt\": \"a\", \"response\": \"\"}", "the response is empty"},
      {"   \n", "has no examples"},
      {std::string(100000, '['), "nest"},
  };
  for (const auto &[text, expected] : bad) {
    writeBytes("bad.jsonl", text);
    Expected<std::vector<PromptResponse>> read =
        readPromptResponses(path("bad.jsonl"));
    ASSERT_FALSE(read) << text;
    EXPECT_NE(read.message().find(expected), std::string::npos)
        << read.message();
  }
}

TEST_F(ExamplesTest, ExampleFilesRoundTripAndAreChecked) {
  std::vector<Example> examples = {example(2, {1, 2, 3}),
                                   example(1, {4, 5})};
  ASSERT_TRUE(writeExamples(path("e.jsonl"), examples));
  Expected<std::vector<Example>> read = readExamples(path("e.jsonl"), 6);
  ASSERT_TRUE(read) << read.message();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].tokens, examples[0].tokens);
  EXPECT_EQ((*read)[1].promptTokens, 1);
  // An id outside the vocabulary, and prompt lengths leaving no response.
  Expected<std::vector<Example>> small = readExamples(path("e.jsonl"), 5);
  ASSERT_FALSE(small);
  EXPECT_NE(small.message().find("line 2: token 5"), std::string::npos);
  for (const char *line : {"{\"prompt_tokens\": 2, \"tokens\": [1, 2]}",
                           "{\"prompt_tokens\": 0, \"tokens\": [1, 2]}",
                           "{\"tokens\": [1, 2]}"}) {
    writeBytes("bad.jsonl", line);
    EXPECT_FALSE(readExamples(path("bad.jsonl"), 6)) << line;
  }
}

std::vector<Example> numbered(int count) {
  // Example i is the prompt token 1 and the response token i + 10.
  std::vector<Example> examples;
  for (int i = 0; i < count; ++i)
    examples.push_back(example(1, {1, i + 10}));
  return examples;
}

TEST(ExampleSamplerTest, EachEpochIsAPermutation) {
  Expected<ExampleSampler> sampler = ExampleSampler::create(numbered(7), 3, 2, 0, 5);
  ASSERT_TRUE(sampler) << sampler.message();
  std::vector<int64_t> drawn;
  for (int b = 0; b < 7; ++b) {
    Batch batch = sampler->next();
    for (int row = 0; row < 3; ++row)
      drawn.push_back(batch.targets[row * 2] - 10);
  }
  EXPECT_DOUBLE_EQ(sampler->epochs(), 3.0);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> epoch(drawn.begin() + e * 7, drawn.begin() + e * 7 + 7);
    epochs.push_back(epoch);
    std::sort(epoch.begin(), epoch.end());
    EXPECT_EQ(epoch, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  }
  // Shuffled, and differently each epoch.
  EXPECT_NE(epochs[0], epochs[1]);
}

TEST(ExampleSamplerTest, ResumesFromItsStateAndRefusesOthers) {
  Expected<ExampleSampler> a = ExampleSampler::create(numbered(5), 2, 2, 0, 9);
  ASSERT_TRUE(a);
  for (int i = 0; i < 3; ++i)
    a->next();
  std::string state = a->saveState();
  Expected<ExampleSampler> b = ExampleSampler::create(numbered(5), 2, 2, 0, 9);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->restoreState(state));
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(a->next().targets, b->next().targets);

  Expected<ExampleSampler> other = ExampleSampler::create(numbered(6), 2, 2, 0, 9);
  ASSERT_TRUE(other);
  Status s = other->restoreState(state);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("over 5 examples"), std::string::npos) << s.message();
  EXPECT_FALSE(other->restoreState("kiln-batch-sampler 1 2 2 5 0"));
  EXPECT_FALSE(other->restoreState("kiln-example-sampler 1 2 2 6 9"));
  EXPECT_FALSE(other->restoreState("kiln-example-sampler 1 2 2 6 9 1 extra"));
  EXPECT_FALSE(ExampleSampler::create({}, 2, 2, 0, 0));
  EXPECT_FALSE(ExampleSampler::create(numbered(2), 2, 0, 0, 0));
}

} // namespace
