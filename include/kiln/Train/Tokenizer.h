//===- Tokenizer.h - SentencePiece tokenizer --------------------*- C++ -*-===//
//
// Kiln's tokenizer is a SentencePiece BPE model with byte fallback, trained
// on the run's corpus and saved next to it as `<prefix>.model` (the
// SentencePiece model proto, loadable by any SentencePiece) and
// `<prefix>.vocab` (one "piece<TAB>score" line per id). Normalization is the
// identity and whitespace is kept as is, so decode(encode(text)) == text for
// every UTF-8 text, newlines and runs of spaces included: characters the
// model has no piece for are spelt as their UTF-8 bytes. SentencePiece stays
// an implementation detail: this header does not include it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_TOKENIZER_H
#define KILN_TRAIN_TOKENIZER_H

#include "kiln/Runtime/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
} // namespace sentencepiece

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

/// Ids every vocabulary reserves before the learned pieces: <unk>, <s>,
/// </s>, and the 256 byte-fallback pieces <0x00>..<0xFF>.
constexpr int kReservedTokenIds = 3 + 256;

/// At most this many lines of the text are used to train a tokenizer; a
/// longer text is sampled (deterministically from the seed). A million lines
/// is far more than a BPE vocabulary of a few tens of thousands of pieces
/// needs, and keeps training to seconds and well under a gigabyte; the
/// default corpus has about 52,000 lines and is used whole.
constexpr int64_t kMaxTokenizerTrainingLines = 1000000;

/// Lines longer than this many bytes are cut (at a character boundary) for
/// training, rather than dropped as SentencePiece would drop them.
constexpr int64_t kMaxTokenizerLineBytes = 16384;

/// A loaded SentencePiece model. Encoding and decoding are const and safe to
/// call from several threads at once. A moved-from Tokenizer may only be
/// assigned to or destroyed.
class Tokenizer {
public:
  /// Loads `<prefix>.model` as written by train (or any SentencePiece model
  /// file). A missing, unreadable or corrupt file is an error, never a
  /// crash.
  static Expected<Tokenizer> load(const std::string &modelPath);

  /// Trains a BPE model with `vocabSize` pieces on `text` (one training
  /// sentence per non-empty line; see kMaxTokenizerTrainingLines and
  /// kMaxTokenizerLineBytes) and writes `<modelPathPrefix>.model` and
  /// `<modelPathPrefix>.vocab`, each atomically. The same text, size and
  /// seed give the same model bytes. `vocabSize` must be at least
  /// minimumVocabSize(text); a text too small to learn that many pieces gives
  /// a smaller vocabulary (see vocabSize()).
  static Expected<Tokenizer> train(const std::string &text,
                                   const std::string &modelPathPrefix,
                                   int vocabSize, uint64_t seed);

  /// The smallest vocabulary train accepts for `text`: the reserved ids plus
  /// one piece per distinct character (space counted as SentencePiece's
  /// U+2581).
  static int minimumVocabSize(std::string_view text);

  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

  /// The ids of `text`; never fails (unknown characters become bytes).
  std::vector<int32_t> encode(std::string_view text) const;
  /// The text of `ids`. Ids outside [0, vocabSize()) decode as <unk> does
  /// (" \u2047 "), as do <unk> ids; <s> and </s> decode to nothing.
  std::string decode(const std::vector<int32_t> &ids) const;
  /// The piece of `id` ("▁the", "<0x0A>", "<s>"), or "" when out of range.
  std::string piece(int32_t id) const;

  int vocabSize() const;
  int unkId() const;
  int bosId() const;
  int eosId() const;

private:
  Tokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

} // namespace kiln::train

#endif // KILN_TRAIN_TOKENIZER_H
