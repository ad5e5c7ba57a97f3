//===- TasksTest.cpp - Generated tasks and the judge ----------------------===//
//
// kiln task's files: counts, the share of wrong demonstrations, answers that
// are right (and rejected ones that are wrong), held-out prompts that never
// appear in training, the same files from the same seed; the judge's rule.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Tasks.h"
#include "TrainTestFiles.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

using namespace kiln::train;
using kiln::runtime::Expected;
using kiln::runtime::Status;
using kiln::train::testing::ScratchDirTest;

namespace {

using TasksTest = ScratchDirTest;

std::vector<nlohmann::json> lines(const std::string &path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line));
  return out;
}

/// The sum an arithmetic prompt "a+b=" asks for.
std::string sumOf(const std::string &prompt) {
  size_t plus = prompt.find('+');
  return std::to_string(std::stoll(prompt.substr(0, plus)) +
                        std::stoll(prompt.substr(plus + 1)));
}

TEST_F(TasksTest, ArithmeticFilesAreRightWrongAndHeldOut) {
  TaskOptions options;
  options.demonstrations = 2000;
  options.pairs = 300;
  options.prompts = 200;
  options.test = 100;
  options.noise = 0.25;
  TaskSummary summary;
  ASSERT_TRUE(writeTask(path("a"), options, &summary));
  std::vector<nlohmann::json> sft = lines(path("a/sft.jsonl"));
  ASSERT_EQ(sft.size(), 2000u);
  int64_t wrong = 0;
  std::set<std::string> seen;
  for (const auto &line : sft) {
    std::string prompt = line["prompt"];
    wrong += line["response"].get<std::string>() != sumOf(prompt);
    seen.insert(prompt);
  }
  EXPECT_EQ(wrong, summary.wrongDemonstrations);
  EXPECT_NEAR(static_cast<double>(wrong) / 2000, 0.25, 0.03);
  for (const auto &line : lines(path("a/pairs.jsonl"))) {
    EXPECT_EQ(line["chosen"].get<std::string>(), sumOf(line["prompt"]));
    EXPECT_NE(line["rejected"], line["chosen"]);
    seen.insert(line["prompt"].get<std::string>());
  }
  for (const auto &line : lines(path("a/prompts.jsonl"))) {
    EXPECT_EQ(line["answer"].get<std::string>(), sumOf(line["prompt"]));
    seen.insert(line["prompt"].get<std::string>());
  }
  std::vector<nlohmann::json> test = lines(path("a/test.jsonl"));
  ASSERT_EQ(test.size(), 100u);
  std::set<std::string> held;
  for (const auto &line : test) {
    EXPECT_EQ(line["answer"].get<std::string>(), sumOf(line["prompt"]));
    EXPECT_FALSE(seen.count(line["prompt"])) << line["prompt"];
    EXPECT_TRUE(held.insert(line["prompt"]).second) << "repeated";
  }
  // The same seed writes the same files.
  ASSERT_TRUE(writeTask(path("b"), options, nullptr));
  EXPECT_EQ(lines(path("b/sft.jsonl")), sft);
  EXPECT_EQ(lines(path("b/test.jsonl")), test);
}

TEST_F(TasksTest, SortingAnswersAreSorted) {
  TaskOptions options;
  options.kind = "sorting";
  options.demonstrations = options.pairs = options.prompts = 100;
  options.test = 50;
  options.noise = 0;
  ASSERT_TRUE(writeTask(path("s"), options, nullptr));
  for (const auto &line : lines(path("s/sft.jsonl"))) {
    std::string prompt = line["prompt"], response = line["response"];
    // "sort 5 2 9:" -> "2 5 9".
    std::string digits = prompt.substr(5, prompt.size() - 6);
    std::string sorted;
    std::vector<char> d;
    for (char c : digits)
      if (c != ' ')
        d.push_back(c);
    std::sort(d.begin(), d.end());
    for (char c : d)
      sorted += (sorted.empty() ? "" : " ") + std::string(1, c);
    EXPECT_EQ(response, sorted) << prompt;
  }
  for (const auto &line : lines(path("s/pairs.jsonl")))
    EXPECT_NE(line["rejected"], line["chosen"]);
}

TEST_F(TasksTest, BadOptionsAreRefused) {
  TaskOptions options;
  options.kind = "chess";
  EXPECT_FALSE(writeTask(path("x"), options, nullptr));
  options.kind = "arithmetic";
  options.noise = 1.5;
  EXPECT_FALSE(writeTask(path("x"), options, nullptr));
  options.noise = 0.1;
  options.maxOperand = 9;
  options.test = 400; // Only about ten held-out sums of 0..9.
  Status s = writeTask(path("x"), options, nullptr);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("raise --max-operand"), std::string::npos);
}

TEST(JudgeTest, ExactAnswerUpToSpacesAndTheFirstLine) {
  EXPECT_TRUE(judgeAnswer("42", "42"));
  EXPECT_TRUE(judgeAnswer(" 42 ", "42"));
  EXPECT_TRUE(judgeAnswer(" 42\n17", "42"));
  EXPECT_TRUE(judgeAnswer("1 2 3", "1 2 3"));
  EXPECT_FALSE(judgeAnswer("421", "42"));
  EXPECT_FALSE(judgeAnswer("4 2", "42"));
  EXPECT_FALSE(judgeAnswer("", "42"));
  EXPECT_FALSE(judgeAnswer("\n42", "42"));
}

TEST_F(TasksTest, PromptAnswerLines) {
  writeBytes("p.jsonl", "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n\n");
  Expected<std::vector<PromptAnswer>> read = readPromptAnswers(path("p.jsonl"));
  ASSERT_TRUE(read) << read.message();
  EXPECT_EQ((*read)[0].answer, "2");
  writeBytes("p.jsonl", "{\"prompt\": \"1+1=\"}\n");
  read = readPromptAnswers(path("p.jsonl"));
  ASSERT_FALSE(read);
  EXPECT_NE(read.message().find("line 1"), std::string::npos);
}

} // namespace
