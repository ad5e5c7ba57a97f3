//===- TokenData.h - Token files and batch sampling -------------*- C++ -*-===//
//
// A pretraining run tokenizes its corpus once into two files in the run
// directory, `train.tokens` and `val.tokens` (the held-out tail), and then
// reads them memory-mapped. A token file is a 32-byte little-endian header
//
//   offset  0  char[8]  magic "KILNTOK1"
//   offset  8  u32      format version (1)
//   offset 12  u32      bytes per token: 2 (uint16 ids) or 4 (uint32 ids)
//   offset 16  u64      token count
//   offset 24  u64      vocabulary size (every id is below it)
//
// followed by exactly `count` ids of that width. BatchSampler draws training
// batches from a file at seeded random positions; its whole state fits in a
// string that a checkpoint stores, so a resumed run sees the same batches as
// an uninterrupted one.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_TOKENDATA_H
#define KILN_TRAIN_TOKENDATA_H

#include "kiln/Runtime/File.h"
#include "kiln/Runtime/Status.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::train {

using runtime::Expected;
using runtime::Status;

class Tokenizer;

//===----------------------------------------------------------------------===//
// Token files
//===----------------------------------------------------------------------===//

constexpr char kTokenFileMagic[] = "KILNTOK1";
constexpr uint32_t kTokenFileVersion = 1;
constexpr size_t kTokenFileHeaderSize = 32;

/// `<runDir>/train.tokens` and `<runDir>/val.tokens`.
std::string trainTokensPath(const std::string &runDir);
std::string valTokensPath(const std::string &runDir);

/// Bytes per id for a vocabulary: 2 up to 65,536 ids, else 4.
uint32_t tokenWidthForVocab(int64_t vocabSize);

/// Writes `ids` to `path` atomically in the token file format. Every id must
/// be in [0, vocabSize).
Status writeTokenFile(const std::string &path, const std::vector<int32_t> &ids,
                      int64_t vocabSize);

/// A validated, memory-mapped token file. Move-only.
class TokenFile {
public:
  /// Maps `path` and checks the magic, version, width, that the size is
  /// exactly header + count * width (so a truncated or padded file is
  /// refused), and that every id is below the vocabulary size.
  static Expected<TokenFile> open(const std::string &path);

  TokenFile(TokenFile &&) noexcept;
  TokenFile &operator=(TokenFile &&) noexcept;
  ~TokenFile();

  const std::string &path() const { return path_; }
  /// The number of tokens.
  int64_t size() const { return count_; }
  int64_t vocabSize() const { return vocabSize_; }
  uint32_t bytesPerToken() const { return width_; }
  /// The id at `index` (0 <= index < size()).
  int64_t operator[](int64_t index) const;
  /// Copies ids [start, start + count) to `out` as int64.
  void copy(int64_t start, int64_t count, int64_t *out) const;

private:
  TokenFile() = default;
  std::string path_;
  runtime::MappedFile mapping_;
  const unsigned char *ids_ = nullptr;
  int64_t count_ = 0;
  int64_t vocabSize_ = 0;
  uint32_t width_ = 0;
};

//===----------------------------------------------------------------------===//
// Tokenizing a corpus
//===----------------------------------------------------------------------===//

/// A corpus as ids, with where each document starts.
struct TokenizedCorpus {
  std::vector<int32_t> ids;
  /// The index in `ids` of each document's first token, ascending.
  std::vector<int64_t> documentStarts;
};

/// Encodes `corpus` document by document (splitDocuments; each document
/// keeps its blank-line separator, so decoding all ids gives back the corpus
/// exactly), on all cores.
TokenizedCorpus tokenizeCorpus(std::string_view corpus,
                               const Tokenizer &tokenizer);

struct TokenDataOptions {
  /// The share of the tokens held out for evaluation, in (0, 0.5].
  double valFraction = 0.05;
  /// The fewest held-out tokens; a run passes batch * seq + 1 so that one
  /// evaluation batch always fits.
  int64_t minValTokens = 0;
};

/// Where the corpus was split and what was written.
struct TokenDataSummary {
  int64_t trainTokens = 0;
  int64_t valTokens = 0;
  int64_t vocabSize = 0;
  int64_t documents = 0;
  /// Whether the split fell on a document boundary.
  bool splitOnDocumentBoundary = false;
};

/// Where a tokenized corpus splits: the number of training tokens. The
/// held-out target is max(ceil(valFraction * n), minValTokens) tokens; the
/// split is the last document start that leaves at least that many, when one
/// leaves at most twice as many, else exactly the target. Errors when the
/// options are out of range or the target is more than half the tokens.
Expected<int64_t> chooseValidationSplit(const TokenizedCorpus &corpus,
                                        const TokenDataOptions &options);

/// Tokenizes `corpus` and writes trainTokensPath(runDir) and
/// valTokensPath(runDir), each atomically. `runDir` must exist.
Expected<TokenDataSummary> writeTokenData(const std::string &runDir,
                                          std::string_view corpus,
                                          const Tokenizer &tokenizer,
                                          const TokenDataOptions &options = {});

//===----------------------------------------------------------------------===//
// Batches
//===----------------------------------------------------------------------===//

/// One batch: row-major [batch, seq] inputs, and the targets, which are the
/// inputs shifted by one token (targets[b][t] is the token after
/// inputs[b][t]).
struct Batch {
  int64_t batch = 0;
  int64_t seq = 0;
  std::vector<int64_t> inputs;
  std::vector<int64_t> targets;
  /// The objective's other f32 inputs of train_step, by name (DPO's
  /// reference_logprobs [batch]; GRPO's sample_logprobs and
  /// reference_logprobs [batch, seq] and advantages [batch]).
  struct Input {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
  };
  std::vector<Input> extra;
  /// The tokens of each row (reward models score each row's last one).
  std::vector<int64_t> lengths;
  /// CLIP: `attention_mask` [batch, seq], 1 on caption tokens.
  std::vector<int64_t> mask;
};

/// The windows of `data` starting at `starts`, one per row: inputs tokens
/// [start, start + seq), targets the token after each. Every start must
/// leave seq + 1 tokens.
Batch windowBatch(const TokenFile &data, const std::vector<int64_t> &starts,
                  int64_t seq);

/// Draws batches of seq + 1 consecutive tokens starting at uniformly random
/// positions of a token file (with replacement: there are no epochs). The
/// positions come from a std::mt19937_64 seeded with the seed, reduced to a
/// range by rejection sampling (not std::uniform_int_distribution, whose
/// results differ between standard libraries).
class BatchSampler {
public:
  /// Errors when batch or seq is not positive, or when the file has fewer
  /// than seq + 1 tokens.
  static Expected<BatchSampler> create(std::shared_ptr<const TokenFile> data,
                                       int64_t batch, int64_t seq,
                                       uint64_t seed);

  /// The next training batch.
  Batch next();
  /// How many batches next() has returned since creation (or since the
  /// state that was restored).
  int64_t batchesDrawn() const { return drawn_; }

  /// The sampler's whole state as one line of text:
  /// "kiln-batch-sampler 1 <batch> <seq> <tokens> <drawn> <mt19937_64 state>"
  /// (the generator state as its operator<< writes it).
  std::string saveState() const;
  /// Continues from a saved state. Errors, leaving this sampler unchanged,
  /// when the text is not a sampler state or was saved with another batch,
  /// seq or token count.
  Status restoreState(const std::string &state);

  /// `count` evaluation batches from this sampler's file, the same at every
  /// call and independent of next(): the count * batch windows start at
  /// evenly spaced positions spanning the whole file.
  std::vector<Batch> evalBatches(int64_t count) const;

  const TokenFile &data() const { return *data_; }
  int64_t batchSize() const { return batch_; }
  int64_t seqLength() const { return seq_; }

private:
  BatchSampler() = default;

  std::shared_ptr<const TokenFile> data_;
  int64_t batch_ = 0;
  int64_t seq_ = 0;
  int64_t drawn_ = 0;
  std::mt19937_64 rng_;
};

} // namespace kiln::train

#endif // KILN_TRAIN_TOKENDATA_H
