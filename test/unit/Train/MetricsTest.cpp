//===- MetricsTest.cpp - Training metrics and the progress line -----------===//
//
// metrics.jsonl writing, reading, crash leftovers (torn last lines),
// truncation on resume, and the progress line's formatting.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Metrics.h"
#include "TrainTestFiles.h"

#include <cmath>
#include <cstdio>

using namespace kiln::train;
using kiln::train::testing::ScratchDirTest;

namespace {

using MetricsTest = ScratchDirTest;

MetricsRow stepRow(int64_t step, double loss) {
  MetricsRow row;
  row.set("step", step).set("loss", loss);
  return row;
}

TEST(MetricsRowTest, StoresIntegersDoublesAndStrings) {
  MetricsRow row;
  row.set("step", 3)
      .set("tokens", size_t(4096))
      .set("big", int64_t(1) << 40)
      .set("loss", 2.5f)
      .set("lr", 3e-4)
      .set("phase", "warmup")
      .set("name", std::string("run-1"))
      .set("resumed", true);
  EXPECT_EQ(row.fields.size(), 8u);
  EXPECT_EQ(std::get<int64_t>(*row.find("step")), 3);
  EXPECT_EQ(std::get<int64_t>(*row.find("tokens")), 4096);
  EXPECT_EQ(std::get<int64_t>(*row.find("big")), int64_t(1) << 40);
  EXPECT_EQ(std::get<double>(*row.find("loss")), 2.5);
  EXPECT_EQ(std::get<std::string>(*row.find("phase")), "warmup");
  EXPECT_EQ(std::get<int64_t>(*row.find("resumed")), 1);
  EXPECT_EQ(row.number("step"), 3.0);
  EXPECT_EQ(row.number("phase"), std::nullopt);
  EXPECT_EQ(row.number("missing"), std::nullopt);
  row.set("step", 4.0);
  EXPECT_EQ(row.fields.size(), 8u);
  EXPECT_EQ(row.fields[0].first, "step");
  EXPECT_EQ(row.integer("step"), 4);
  row.set("step", 4.5);
  EXPECT_EQ(row.integer("step"), std::nullopt);
}

TEST(MetricsRowTest, FormatsOneJsonObjectInKeyOrder) {
  MetricsRow row;
  row.set("step", 120)
      .set("loss", 3.412)
      .set("eval_loss", std::nan(""))
      .set("note", "say \"hi\"\n");
  EXPECT_EQ(formatMetricsLine(row),
            "{\"step\":120,\"loss\":3.412,\"eval_loss\":null,"
            "\"note\":\"say \\\"hi\\\"\\n\"}");
}

TEST_F(MetricsTest, WritesAndReadsRows) {
  EXPECT_EQ(metricsPath(dir), dir + "/metrics.jsonl");
  {
    Expected<MetricsWriter> writer = MetricsWriter::open(metricsPath(dir));
    ASSERT_TRUE(writer) << writer.message();
    MetricsRow first;
    first.set("step", 0)
        .set("loss", 10.5)
        .set("lr", 3e-5)
        .set("grad_norm", std::numeric_limits<double>::infinity());
    ASSERT_TRUE(writer->write(first));
    // Flushed at once: visible before the writer closes.
    EXPECT_EQ(readBytes("metrics.jsonl"),
              "{\"step\":0,\"loss\":10.5,\"lr\":3e-05,\"grad_norm\":null}\n");
    MetricsRow second;
    second.set("step", 10).set("eval_loss", 4.0).set("device", "cpu \xC3\xA9");
    ASSERT_TRUE(writer->write(second));
  }
  // Reopening appends.
  {
    Expected<MetricsWriter> writer = MetricsWriter::open(metricsPath(dir));
    ASSERT_TRUE(writer) << writer.message();
    ASSERT_TRUE(writer->write(stepRow(20, 3.25)));
  }
  Expected<std::vector<MetricsRow>> rows = readMetrics(metricsPath(dir));
  ASSERT_TRUE(rows) << rows.message();
  ASSERT_EQ(rows->size(), 3u);
  const MetricsRow &first = (*rows)[0];
  ASSERT_EQ(first.fields.size(), 4u);
  EXPECT_EQ(first.fields[2].first, "lr");
  EXPECT_EQ(std::get<int64_t>(*first.find("step")), 0);
  EXPECT_EQ(std::get<double>(*first.find("loss")), 10.5);
  EXPECT_EQ(std::get<double>(*first.find("lr")), 3e-5);
  EXPECT_TRUE(std::isnan(std::get<double>(*first.find("grad_norm"))));
  EXPECT_EQ(std::get<double>((*rows)[1].fields[1].second), 4.0);
  EXPECT_EQ(std::get<std::string>(*(*rows)[1].find("device")), "cpu \xC3\xA9");
  EXPECT_EQ((*rows)[2].integer("step"), 20);
}

TEST_F(MetricsTest, SurvivesATornLastLine) {
  writeBytes("metrics.jsonl", "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"lo");
  Expected<std::vector<MetricsRow>> rows = readMetrics(path("metrics.jsonl"));
  ASSERT_TRUE(rows) << rows.message();
  EXPECT_EQ(rows->size(), 1u);

  Expected<MetricsWriter> writer = MetricsWriter::open(path("metrics.jsonl"));
  ASSERT_TRUE(writer) << writer.message();
  ASSERT_TRUE(writer->write(stepRow(2, 1.5)));
  EXPECT_EQ(readBytes("metrics.jsonl"),
            "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"loss\":1.5}\n");

  // A file that is all torn line.
  writeBytes("torn.jsonl", "{\"st");
  Expected<MetricsWriter> again = MetricsWriter::open(path("torn.jsonl"));
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ(readBytes("torn.jsonl"), "");
}

TEST_F(MetricsTest, ReportsCorruptLinesAndMissingFiles) {
  writeBytes("bad.jsonl", "{\"step\":1}\n\nnot json\n{\"step\":3}\n");
  Expected<std::vector<MetricsRow>> bad = readMetrics(path("bad.jsonl"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("line 3 is not a JSON object"),
            std::string::npos)
      << bad.message();
  writeBytes("nested.jsonl", "{\"step\":[1,2]}\n");
  Expected<std::vector<MetricsRow>> nested = readMetrics(path("nested.jsonl"));
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.message().find("the value of 'step' is not a number"),
            std::string::npos)
      << nested.message();
  Expected<std::vector<MetricsRow>> missing = readMetrics(path("none.jsonl"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("cannot open metrics file"),
            std::string::npos);
}

TEST_F(MetricsTest, TruncatesRowsPastAStep) {
  std::string kept;
  std::string file;
  for (int step = 0; step <= 10; ++step) {
    std::string line = formatMetricsLine(stepRow(step, 10.0 - step)) + "\n";
    file += line;
    if (step <= 5)
      kept += line;
    if (step == 3) {
      file += "{\"event\":\"resumed\"}\n";
      kept += "{\"event\":\"resumed\"}\n";
    }
  }
  writeBytes("metrics.jsonl", file + "{\"step\":11,");
  ASSERT_TRUE(truncateMetrics(path("metrics.jsonl"), 5));
  EXPECT_EQ(readBytes("metrics.jsonl"), kept);
  EXPECT_EQ(listDir(), std::vector<std::string>{"metrics.jsonl"});

  ASSERT_TRUE(truncateMetrics(path("metrics.jsonl"), -1));
  EXPECT_EQ(readBytes("metrics.jsonl"), "{\"event\":\"resumed\"}\n");

  EXPECT_TRUE(truncateMetrics(path("absent.jsonl"), 5));
  EXPECT_EQ(listDir(), std::vector<std::string>{"metrics.jsonl"});

  writeBytes("bad.jsonl", "oops\n");
  EXPECT_FALSE(truncateMetrics(path("bad.jsonl"), 5));
  EXPECT_EQ(readBytes("bad.jsonl"), "oops\n");
}

TEST(ProgressLineTest, FormatsTheLiveLine) {
  ProgressLine line;
  line.step = 120;
  line.totalSteps = 1000;
  line.loss = 3.41234;
  line.evalLoss = 3.5;
  line.evalStep = 120;
  line.tokensPerSecond = 12345;
  line.mfu = 0.3114;
  line.etaSeconds = 252;
  EXPECT_EQ(line.format(), "step 120/1000 | loss 3.412 | eval 3.50 | 12.3k "
                           "tok/s | MFU 31% | ETA 4m12s");
  line.lr = 3e-4;
  line.mfu = 0.034;
  EXPECT_EQ(line.format(), "step 120/1000 | loss 3.412 | eval 3.50 | lr "
                           "3.00e-04 | 12.3k tok/s | MFU 3.4% | ETA 4m12s");
  // An evaluation from an earlier step says which step it is from.
  line.evalStep = 100;
  EXPECT_EQ(line.format(), "step 120/1000 | loss 3.412 | eval 3.50 @100 | lr "
                           "3.00e-04 | 12.3k tok/s | MFU 3.4% | ETA 4m12s");
  // Image-caption training counts images.
  line.imagesPerSecond = 368.4;
  EXPECT_EQ(line.format(), "step 120/1000 | loss 3.412 | eval 3.50 @100 | lr "
                           "3.00e-04 | 368 img/s | MFU 3.4% | ETA 4m12s");

  ProgressLine bare;
  bare.step = 5;
  EXPECT_EQ(bare.format(), "step 5");
}

TEST(ProgressLineTest, FormatsDurationsAndCounts) {
  EXPECT_EQ(formatDuration(0), "0s");
  EXPECT_EQ(formatDuration(42.4), "42s");
  EXPECT_EQ(formatDuration(59.6), "1m00s");
  EXPECT_EQ(formatDuration(252), "4m12s");
  EXPECT_EQ(formatDuration(3720), "1h02m");
  EXPECT_EQ(formatDuration(2 * 86400 + 3 * 3600 + 50), "2d03h");
  EXPECT_EQ(formatDuration(-1), "?");
  EXPECT_EQ(formatDuration(INFINITY), "?");

  EXPECT_EQ(formatCount(0), "0");
  EXPECT_EQ(formatCount(950), "950");
  EXPECT_EQ(formatCount(12345), "12.3k");
  EXPECT_EQ(formatCount(123456), "123k");
  EXPECT_EQ(formatCount(999999), "1.0M");
  EXPECT_EQ(formatCount(1.5e6), "1.5M");
  EXPECT_EQ(formatCount(2.5e9), "2.5G");
  EXPECT_EQ(formatCount(NAN), "?");
}

TEST(ProgressLineTest, PrintsInPlaceOrLineByLine) {
  std::FILE *file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  EXPECT_FALSE(isTerminal(file));
  printProgressInPlace(file, "step 1");
  printProgressInPlace(file, "step 2");
  printProgressLine(file, "done");
  std::rewind(file);
  char buffer[128] = {};
  size_t got = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  std::fclose(file);
  EXPECT_EQ(std::string(buffer, got), "\rstep 1\033[K\rstep 2\033[Kdone\n");
}

} // namespace
