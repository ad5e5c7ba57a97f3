//===- Tokenizer.cpp - SentencePiece tokenizer ----------------------------===//
//
// Training feeds SentencePiece the text's lines through a SentenceIterator
// and asks for the model proto back in memory, so Kiln writes the files
// itself (atomically) instead of letting the trainer write under the final
// names. SentencePiece's own sampling has no seed in the Debian version, so
// large texts are sampled here, with a generator whose output does not
// depend on the standard library.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Tokenizer.h"
#include "Random.h"
#include "kiln/Runtime/File.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace kiln::train {

namespace {

/// Hands SentencePiece's trainer a list of sentences.
class LineIterator : public sentencepiece::SentenceIterator {
public:
  explicit LineIterator(const std::vector<std::string> &lines)
      : lines_(lines) {}
  bool done() const override { return next_ >= lines_.size(); }
  void Next() override { ++next_; }
  const std::string &value() const override { return lines_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

private:
  const std::vector<std::string> &lines_;
  size_t next_ = 0;
};

/// The length of the longest prefix of `line` of at most `limit` bytes that
/// ends on a UTF-8 character boundary.
size_t utf8PrefixLength(std::string_view line, size_t limit) {
  if (line.size() <= limit)
    return line.size();
  size_t length = limit;
  while (length > 0 &&
         (static_cast<unsigned char>(line[length]) & 0xC0) == 0x80)
    --length;
  return length;
}

/// The training sentences of `text`: its non-empty lines, cut to
/// kMaxTokenizerLineBytes, and sampled down to kMaxTokenizerTrainingLines
/// (keeping their order) when there are more.
std::vector<std::string> trainingLines(std::string_view text, uint64_t seed) {
  std::vector<std::string_view> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t newline = text.find('\n', begin);
    size_t end = newline == std::string_view::npos ? text.size() : newline;
    std::string_view line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (!line.empty())
      lines.push_back(
          line.substr(0, utf8PrefixLength(line, kMaxTokenizerLineBytes)));
    begin = end + 1;
  }
  std::vector<size_t> chosen(lines.size());
  for (size_t i = 0; i < chosen.size(); ++i)
    chosen[i] = i;
  if (static_cast<int64_t>(lines.size()) > kMaxTokenizerTrainingLines) {
    // A partial Fisher-Yates shuffle picks the sample; sorting it back keeps
    // the text's order.
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < static_cast<size_t>(kMaxTokenizerTrainingLines); ++i)
      std::swap(chosen[i],
                chosen[i + detail::uniformBelow(rng, chosen.size() - i)]);
    chosen.resize(kMaxTokenizerTrainingLines);
    std::sort(chosen.begin(), chosen.end());
  }
  std::vector<std::string> result;
  result.reserve(chosen.size());
  for (size_t index : chosen)
    result.emplace_back(lines[index]);
  return result;
}

std::string spmMessage(const sentencepiece::util::Status &status) {
  return status.ToString();
}

/// The `.vocab` file SentencePiece itself would write: "piece\tscore".
std::string vocabText(const sentencepiece::SentencePieceProcessor &processor) {
  std::string text;
  char score[32];
  for (int id = 0; id < processor.GetPieceSize(); ++id) {
    std::snprintf(score, sizeof(score), "%g", processor.GetScore(id));
    text += processor.IdToPiece(id);
    text += '\t';
    text += score;
    text += '\n';
  }
  return text;
}

Status writeBytesAtomically(const std::string &path, const std::string &bytes) {
  return runtime::writeFileAtomically(path, [&](int fd) {
    return runtime::writeAll(fd, bytes.data(), bytes.size(), path);
  });
}

} // namespace

Tokenizer::Tokenizer()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Expected<Tokenizer> Tokenizer::load(const std::string &modelPath) {
  Expected<std::string> bytes = runtime::readFile(modelPath, "tokenizer model");
  if (!bytes)
    return bytes.status();
  Tokenizer tokenizer;
  sentencepiece::util::Status status =
      tokenizer.processor_->LoadFromSerializedProto(*bytes);
  if (!status.ok())
    return Status::error(
        "'" + modelPath +
        "' is not a valid SentencePiece model: " + spmMessage(status));
  if (tokenizer.processor_->GetPieceSize() <= 0)
    return Status::error("'" + modelPath +
                         "' is not a valid SentencePiece model: it has no "
                         "pieces");
  return tokenizer;
}

int Tokenizer::minimumVocabSize(std::string_view text) {
  std::unordered_set<uint32_t> characters;
  const auto *p = reinterpret_cast<const unsigned char *>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = p[i];
    size_t length = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    length = std::min(length, text.size() - i);
    uint32_t codePoint = 0;
    for (size_t k = 0; k < length; ++k)
      codePoint = (codePoint << 8) | p[i + k];
    i += length;
    if (c == '\n' || c == '\r')
      continue;
    // SentencePiece spells a space as U+2581 (E2 96 81).
    characters.insert(c == ' ' ? 0xE29681u : codePoint);
  }
  return kReservedTokenIds + static_cast<int>(characters.size());
}

Expected<Tokenizer> Tokenizer::train(const std::string &text,
                                     const std::string &modelPathPrefix,
                                     int vocabSize, uint64_t seed) {
  std::vector<std::string> lines = trainingLines(text, seed);
  if (lines.empty())
    return Status::error("cannot train a tokenizer: the text has no "
                         "non-empty lines");
  int minimum = minimumVocabSize(text);
  if (vocabSize < minimum)
    return Status::error(
        "a vocabulary of " + std::to_string(vocabSize) +
        " pieces is too small for this text: it needs at least " +
        std::to_string(minimum) + " (" + std::to_string(kReservedTokenIds) +
        " reserved ids for <unk>, <s>, </s> and the 256 byte pieces, plus " +
        std::to_string(minimum - kReservedTokenIds) + " distinct characters)");

  unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
  // Identity normalization and kept whitespace make decoding exact; byte
  // fallback makes every text encodable; the corpus is already one sentence
  // per line, sampled above, so SentencePiece keeps all of it.
  std::unordered_map<std::string, std::string> options = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocabSize)},
      {"hard_vocab_limit", "false"},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"input_sentence_size", "0"},
      {"max_sentence_length", std::to_string(kMaxTokenizerLineBytes)},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", "2"},
  };
  LineIterator iterator(lines);
  std::string modelBytes;
  sentencepiece::util::Status status =
      sentencepiece::SentencePieceTrainer::Train(options, &iterator,
                                                 &modelBytes);
  if (!status.ok())
    return Status::error("cannot train the tokenizer: " + spmMessage(status));

  Tokenizer tokenizer;
  status = tokenizer.processor_->LoadFromSerializedProto(modelBytes);
  if (!status.ok())
    return Status::error("the trained tokenizer does not load: " +
                         spmMessage(status));
  if (Status written =
          writeBytesAtomically(modelPathPrefix + ".model", modelBytes);
      !written)
    return written;
  if (Status written = writeBytesAtomically(modelPathPrefix + ".vocab",
                                            vocabText(*tokenizer.processor_));
      !written)
    return written;
  return tokenizer;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  // Fails only when no model is loaded, which a Tokenizer never is.
  (void)processor_->Encode(text, &ids);
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(const std::vector<int32_t> &ids) const {
  std::vector<int> checked(ids.begin(), ids.end());
  int size = vocabSize();
  for (int &id : checked)
    if (id < 0 || id >= size)
      id = unkId();
  std::string text;
  (void)processor_->Decode(checked, &text);
  return text;
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocabSize())
    return "";
  return processor_->IdToPiece(id);
}

int Tokenizer::vocabSize() const { return processor_->GetPieceSize(); }
int Tokenizer::unkId() const { return processor_->unk_id(); }
int Tokenizer::bosId() const { return processor_->bos_id(); }
int Tokenizer::eosId() const { return processor_->eos_id(); }

} // namespace kiln::train
