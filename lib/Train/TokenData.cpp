//===- TokenData.cpp - Token files and batch sampling ---------------------===//
//
// Token files are read in place through a read-only mapping; ids are stored
// little-endian, which is also the byte order of every host Kiln supports,
// so reading one is a plain load.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/TokenData.h"
#include "Random.h"
#include "kiln/Runtime/File.h"
#include "kiln/Train/Corpus.h"
#include "kiln/Train/Tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <utility>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "token files are read in place and assume a little-endian host"
#endif

namespace kiln::train {

namespace {

constexpr char kSamplerStateTag[] = "kiln-batch-sampler";
constexpr int kSamplerStateVersion = 1;

Status corruptTokenFile(const std::string &path, const std::string &what) {
  return Status::error("'" + path + "' is not a valid token file: " + what);
}

uint64_t readLE(const unsigned char *bytes, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i)
    value = (value << 8) | bytes[i];
  return value;
}

void appendLE(std::string &out, uint64_t value, int size) {
  for (int i = 0; i < size; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

std::string shape(int64_t batch, int64_t seq) {
  return "batch " + std::to_string(batch) + " x seq " + std::to_string(seq);
}

} // namespace

//===----------------------------------------------------------------------===//
// Token files
//===----------------------------------------------------------------------===//

std::string trainTokensPath(const std::string &runDir) {
  return runDir + "/train.tokens";
}
std::string valTokensPath(const std::string &runDir) {
  return runDir + "/val.tokens";
}

uint32_t tokenWidthForVocab(int64_t vocabSize) {
  return vocabSize <= 65536 ? 2 : 4;
}

Status writeTokenFile(const std::string &path, const std::vector<int32_t> &ids,
                      int64_t vocabSize) {
  if (vocabSize <= 0 || vocabSize > (int64_t(1) << 32))
    return Status::error("cannot write token file '" + path +
                         "': vocabulary size " + std::to_string(vocabSize) +
                         " is out of range");
  uint32_t width = tokenWidthForVocab(vocabSize);
  std::string bytes;
  bytes.reserve(kTokenFileHeaderSize + ids.size() * width);
  bytes.append(kTokenFileMagic, 8);
  appendLE(bytes, kTokenFileVersion, 4);
  appendLE(bytes, width, 4);
  appendLE(bytes, ids.size(), 8);
  appendLE(bytes, static_cast<uint64_t>(vocabSize), 8);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocabSize)
      return Status::error(
          "cannot write token file '" + path + "': token " + std::to_string(i) +
          " has id " + std::to_string(ids[i]) + ", outside the vocabulary of " +
          std::to_string(vocabSize));
    appendLE(bytes, static_cast<uint32_t>(ids[i]), static_cast<int>(width));
  }
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, bytes.data(), bytes.size(), path);
  });
}

TokenFile::TokenFile(TokenFile &&other) noexcept { *this = std::move(other); }

TokenFile &TokenFile::operator=(TokenFile &&other) noexcept {
  if (this == &other)
    return *this;
  path_ = std::move(other.path_);
  mapping_ = std::move(other.mapping_);
  ids_ = std::exchange(other.ids_, nullptr);
  count_ = std::exchange(other.count_, 0);
  vocabSize_ = other.vocabSize_;
  width_ = other.width_;
  return *this;
}

TokenFile::~TokenFile() = default;

Expected<TokenFile> TokenFile::open(const std::string &path) {
  Expected<runtime::MappedFile> mapped =
      runtime::MappedFile::open(path, "token file");
  if (!mapped)
    return mapped.status();
  size_t size = mapped->size();
  if (size < kTokenFileHeaderSize)
    return corruptTokenFile(
        path, "it has " + std::to_string(size) + " bytes, fewer than the " +
                  std::to_string(kTokenFileHeaderSize) + "-byte header");

  TokenFile file;
  file.path_ = path;
  file.mapping_ = mapped.take();
  const unsigned char *bytes = file.mapping_.data();

  if (std::memcmp(bytes, kTokenFileMagic, 8) != 0)
    return corruptTokenFile(path, "the magic is not \"KILNTOK1\"");
  uint64_t version = readLE(bytes + 8, 4);
  if (version != kTokenFileVersion)
    return corruptTokenFile(path, "format version " + std::to_string(version) +
                                      " is not the supported version " +
                                      std::to_string(kTokenFileVersion));
  uint64_t width = readLE(bytes + 12, 4);
  if (width != 2 && width != 4)
    return corruptTokenFile(path, "bytes per token is " +
                                      std::to_string(width) +
                                      ", expected 2 or 4");
  uint64_t count = readLE(bytes + 16, 8);
  uint64_t vocabSize = readLE(bytes + 24, 8);
  if (vocabSize == 0 || vocabSize > (uint64_t(1) << 32) ||
      (width == 2 && vocabSize > 65536))
    return corruptTokenFile(
        path, "vocabulary size " + std::to_string(vocabSize) +
                  " does not fit " + std::to_string(width) + "-byte ids");
  uint64_t dataSize = size - kTokenFileHeaderSize;
  if (count > dataSize / width || count * width != dataSize) {
    std::string expected =
        count > dataSize / width
            ? "more than the file holds"
            : std::to_string(kTokenFileHeaderSize + count * width) + " bytes";
    return corruptTokenFile(
        path, "the header says " + std::to_string(count) + " tokens of " +
                  std::to_string(width) + " bytes (" + expected +
                  ") but the file has " + std::to_string(size) +
                  " bytes (truncated or padded)");
  }
  file.ids_ = bytes + kTokenFileHeaderSize;
  file.count_ = static_cast<int64_t>(count);
  file.vocabSize_ = static_cast<int64_t>(vocabSize);
  file.width_ = static_cast<uint32_t>(width);
  for (int64_t i = 0; i < file.count_; ++i) {
    int64_t id = file[i];
    if (id >= file.vocabSize_)
      return corruptTokenFile(
          path, "token " + std::to_string(i) + " has id " + std::to_string(id) +
                    ", outside the vocabulary of " + std::to_string(vocabSize));
  }
  return file;
}

int64_t TokenFile::operator[](int64_t index) const {
  if (width_ == 2) {
    uint16_t id;
    std::memcpy(&id, ids_ + index * 2, 2);
    return id;
  }
  uint32_t id;
  std::memcpy(&id, ids_ + index * 4, 4);
  return id;
}

void TokenFile::copy(int64_t start, int64_t count, int64_t *out) const {
  for (int64_t i = 0; i < count; ++i)
    out[i] = (*this)[start + i];
}

//===----------------------------------------------------------------------===//
// Tokenizing a corpus
//===----------------------------------------------------------------------===//

TokenizedCorpus tokenizeCorpus(std::string_view corpus,
                               const Tokenizer &tokenizer) {
  std::vector<std::string_view> documents = splitDocuments(corpus);
  size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1,
                                      std::max<size_t>(documents.size(), 1));
  // Contiguous runs of documents of about equal bytes, one per thread.
  std::vector<size_t> bounds = {0};
  size_t bytesPerThread = corpus.size() / threads + 1, bytes = 0;
  for (size_t i = 0; i < documents.size(); ++i) {
    bytes += documents[i].size();
    if (bytes >= bytesPerThread * bounds.size() && i + 1 < documents.size())
      bounds.push_back(i + 1);
  }
  bounds.push_back(documents.size());

  size_t parts = bounds.size() - 1;
  std::vector<std::vector<std::vector<int32_t>>> encoded(parts);
  auto encodePart = [&](size_t part) {
    for (size_t i = bounds[part]; i < bounds[part + 1]; ++i)
      encoded[part].push_back(tokenizer.encode(documents[i]));
  };
  std::vector<std::thread> workers;
  for (size_t part = 1; part < parts; ++part)
    workers.emplace_back(encodePart, part);
  if (parts > 0)
    encodePart(0);
  for (std::thread &worker : workers)
    worker.join();

  TokenizedCorpus result;
  result.documentStarts.reserve(documents.size());
  for (const auto &part : encoded)
    for (const std::vector<int32_t> &ids : part) {
      result.documentStarts.push_back(static_cast<int64_t>(result.ids.size()));
      result.ids.insert(result.ids.end(), ids.begin(), ids.end());
    }
  return result;
}

Expected<int64_t> chooseValidationSplit(const TokenizedCorpus &corpus,
                                        const TokenDataOptions &options) {
  if (!(options.valFraction > 0 && options.valFraction <= 0.5))
    return Status::error("the held-out fraction must be in (0, 0.5], not " +
                         std::to_string(options.valFraction));
  if (options.minValTokens < 0)
    return Status::error("the minimum number of held-out tokens must not be "
                         "negative");
  int64_t total = static_cast<int64_t>(corpus.ids.size());
  int64_t target = std::max<int64_t>(
      static_cast<int64_t>(std::ceil(options.valFraction * total)),
      options.minValTokens);
  target = std::max<int64_t>(target, 1);
  if (2 * target > total)
    return Status::error(
        "the corpus has " + std::to_string(total) +
        " tokens, too few to hold out " + std::to_string(target) +
        " for evaluation (at least " + std::to_string(options.minValTokens) +
        " and a fraction of " + std::to_string(options.valFraction) +
        ") and train on the rest: the held-out part may be at most half");
  int64_t split = total - target;
  auto after = std::upper_bound(corpus.documentStarts.begin(),
                                corpus.documentStarts.end(), split);
  if (after != corpus.documentStarts.begin()) {
    int64_t boundary = *(after - 1);
    if (boundary > 0 && total - boundary <= 2 * target)
      return boundary;
  }
  return split;
}

Expected<TokenDataSummary> writeTokenData(const std::string &runDir,
                                          std::string_view corpus,
                                          const Tokenizer &tokenizer,
                                          const TokenDataOptions &options) {
  TokenizedCorpus tokens = tokenizeCorpus(corpus, tokenizer);
  Expected<int64_t> split = chooseValidationSplit(tokens, options);
  if (!split)
    return split.status();
  TokenDataSummary summary;
  summary.trainTokens = *split;
  summary.valTokens = static_cast<int64_t>(tokens.ids.size()) - *split;
  summary.vocabSize = tokenizer.vocabSize();
  summary.documents = static_cast<int64_t>(tokens.documentStarts.size());
  summary.splitOnDocumentBoundary = std::binary_search(
      tokens.documentStarts.begin(), tokens.documentStarts.end(), *split);
  std::vector<int32_t> val(tokens.ids.begin() + *split, tokens.ids.end());
  tokens.ids.resize(static_cast<size_t>(*split));
  if (Status status = writeTokenFile(trainTokensPath(runDir), tokens.ids,
                                     summary.vocabSize);
      !status)
    return status;
  if (Status status =
          writeTokenFile(valTokensPath(runDir), val, summary.vocabSize);
      !status)
    return status;
  return summary;
}

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

Expected<BatchSampler>
BatchSampler::create(std::shared_ptr<const TokenFile> data, int64_t batch,
                     int64_t seq, uint64_t seed) {
  if (!data)
    return Status::error("batch sampler: no token file");
  if (batch <= 0 || seq <= 0)
    return Status::error("batch sampler: batch and seq must be positive, not " +
                         shape(batch, seq));
  if (data->size() < seq + 1)
    return Status::error(
        "batch larger than the data: a sequence of " + std::to_string(seq) +
        " tokens needs " + std::to_string(seq + 1) +
        " consecutive tokens (inputs plus the next-token target), but '" +
        data->path() + "' has only " + std::to_string(data->size()));
  BatchSampler sampler;
  sampler.data_ = std::move(data);
  sampler.batch_ = batch;
  sampler.seq_ = seq;
  sampler.rng_.seed(seed);
  return sampler;
}

Batch windowBatch(const TokenFile &data,
                  const std::vector<int64_t> &starts,
                  int64_t seq) {
  Batch batch;
  batch.batch = static_cast<int64_t>(starts.size());
  batch.seq = seq;
  batch.inputs.resize(starts.size() * static_cast<size_t>(seq));
  batch.targets.resize(starts.size() * static_cast<size_t>(seq));
  for (size_t row = 0; row < starts.size(); ++row) {
    data.copy(starts[row], seq, batch.inputs.data() + row * seq);
    data.copy(starts[row] + 1, seq, batch.targets.data() + row * seq);
  }
  return batch;
}

Batch BatchSampler::next() {
  uint64_t positions = static_cast<uint64_t>(data_->size() - seq_);
  std::vector<int64_t> starts;
  for (int64_t row = 0; row < batch_; ++row)
    starts.push_back(
        static_cast<int64_t>(detail::uniformBelow(rng_, positions)));
  ++drawn_;
  return windowBatch(*data_, starts, seq_);
}

std::string BatchSampler::saveState() const {
  std::ostringstream out;
  out << kSamplerStateTag << ' ' << kSamplerStateVersion << ' ' << batch_ << ' '
      << seq_ << ' ' << data_->size() << ' ' << drawn_ << ' ' << rng_;
  return out.str();
}

Status BatchSampler::restoreState(const std::string &state) {
  std::istringstream in(state);
  std::string tag;
  int version = 0;
  int64_t batch = 0, seq = 0, tokens = 0, drawn = 0;
  in >> tag >> version;
  if (!in || tag != kSamplerStateTag)
    return Status::error("not a batch sampler state (it does not start with "
                         "\"kiln-batch-sampler\")");
  if (version != kSamplerStateVersion)
    return Status::error("batch sampler state version " +
                         std::to_string(version) + " is not supported (" +
                         std::to_string(kSamplerStateVersion) + " is)");
  in >> batch >> seq >> tokens >> drawn;
  std::mt19937_64 rng;
  in >> rng;
  if (in.fail() || drawn < 0)
    return Status::error("the batch sampler state is truncated or malformed");
  in >> std::ws;
  if (!in.eof())
    return Status::error("the batch sampler state has trailing text");
  if (batch != batch_ || seq != seq_ || tokens != data_->size())
    return Status::error("the batch sampler state was saved for " +
                         shape(batch, seq) + " over " + std::to_string(tokens) +
                         " tokens; this sampler draws " + shape(batch_, seq_) +
                         " over " + std::to_string(data_->size()) +
                         " tokens of '" + data_->path() + "'");
  rng_ = rng;
  drawn_ = drawn;
  return Status::ok();
}

std::vector<Batch> BatchSampler::evalBatches(int64_t count) const {
  std::vector<Batch> batches;
  if (count <= 0)
    return batches;
  int64_t windows = count * batch_;
  // Window starts run evenly from 0 to the last possible start.
  unsigned __int128 lastStart = static_cast<uint64_t>(data_->size() - seq_ - 1);
  for (int64_t b = 0; b < count; ++b) {
    std::vector<int64_t> starts;
    for (int64_t row = 0; row < batch_; ++row) {
      int64_t window = b * batch_ + row;
      starts.push_back(windows == 1
                           ? 0
                           : static_cast<int64_t>(
                                 lastStart * window /
                                 static_cast<uint64_t>(windows - 1)));
    }
    batches.push_back(windowBatch(*data_, starts, seq_));
  }
  return batches;
}

} // namespace kiln::train
