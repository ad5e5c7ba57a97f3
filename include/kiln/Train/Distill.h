//===- Distill.h - Knowledge distillation's pieces --------------*- C++ -*-===//
//
// What `kiln distill` adds to the training loop (Pretrain.h): the teacher
// (an artifact with `forward`, frozen, run on each batch of the student),
// fixed token windows drawn in shuffled epochs (so a teacher's outputs can
// be cached once per window), the on-disk cache of those outputs, and a
// student initialized from the teacher's layers.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAIN_DISTILL_H
#define KILN_TRAIN_DISTILL_H

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/File.h"
#include "kiln/Train/Examples.h"
#include "kiln/Train/TokenData.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::train {

/// The names of the teacher's outputs among a batch's extra inputs (those
/// of the student's train_step).
inline constexpr const char *kTeacherLogits = "teacher_logits";
inline constexpr const char *kTeacherHidden = "teacher_hidden";

/// A frozen teacher: `forward(input_ids) -> logits [B, S, V]`, and
/// `hidden_states(input_ids) -> [B, S, H]` when the student's loss has a
/// hidden-state term.
class Teacher {
public:
  /// Opens `artifact` (a training artifact as a frozen reference, without
  /// optimizer state; an inference artifact as it is), loads the model
  /// parameters of the `checkpoint` file when given (training artifacts
  /// only), and checks it takes input_ids [batch, seq] and
  /// returns logits with the student's `vocab`; with `hiddenWidth` > 0, that
  /// it has hidden_states of that width. Errors name the mismatch.
  static runtime::Expected<Teacher> open(const std::string &artifact,
                                         const std::string &checkpoint,
                                         int64_t batch, int64_t seq,
                                         int64_t vocab, int64_t hiddenWidth);

  /// Runs the teacher on `batch.inputs` and appends its logits (and hidden
  /// states) to `batch.extra`.
  runtime::Status annotate(Batch &batch) const;

  const runtime::Artifact &artifact() const { return *artifact_; }
  int64_t vocab() const { return vocab_; }
  int64_t hiddenWidth() const { return hiddenWidth_; }
  /// Floats the teacher adds per token (logits and hidden state).
  int64_t floatsPerToken() const { return vocab_ + hiddenWidth_; }

private:
  std::shared_ptr<runtime::Artifact> artifact_;
  int64_t vocab_ = 0, hiddenWidth_ = 0;
};

/// Mean next-token cross-entropy of logits [rows * seq, vocab] against
/// `targets` (the teacher's own held-out loss), in double precision.
double crossEntropy(const float *logits, const std::vector<int64_t> &targets,
                    int64_t vocab);

/// Fixed windows of seq + 1 tokens of a token file, window i starting at
/// token i * seq (consecutive windows share one token), `batch` of them at
/// a time in shuffled epochs (EpochOrder).
class TokenWindowEpochs {
public:
  /// Errors when the file has fewer than `batch` windows.
  static runtime::Expected<TokenWindowEpochs>
  create(std::shared_ptr<const TokenFile> tokens, int64_t batch, int64_t seq,
         uint64_t seed);
  int64_t windows() const { return order_.count(); }
  int64_t batch() const { return batch_; }
  /// The window indices of the next batch, and the batch itself.
  Batch next(std::vector<int64_t> &indices);
  /// Windows [first, first + count) in order (count <= batch; the rest of
  /// the rows repeat the last window), for filling a cache.
  Batch range(int64_t first, int64_t count) const;
  double epochs() const { return order_.epochs(); }
  std::string saveState() const;
  runtime::Status restoreState(const std::string &state);

private:
  Batch batchOf(const std::vector<int64_t> &indices) const;

  std::shared_ptr<const TokenFile> tokens_;
  int64_t batch_ = 0, seq_ = 0;
  EpochOrder order_;
};

/// The teacher's outputs for every window of a TokenWindowEpochs, on disk
/// (RUN_DIR/teacher.cache): a JSON header line naming the window count,
/// sequence length, vocabulary and hidden width, padded to 64 bytes, then
/// per window seq x vocab logits and seq x hidden hidden states, float32.
class TeacherCache {
public:
  /// The bytes a cache of these sizes takes.
  static uint64_t bytesFor(int64_t windows, int64_t seq, int64_t vocab,
                           int64_t hidden);
  /// Runs the teacher over every window (in batches, printing progress on
  /// `log`) and writes the cache atomically.
  static runtime::Status write(const std::string &path, const Teacher &teacher,
                               const TokenWindowEpochs &windows, int64_t seq,
                               std::FILE *log);
  /// Maps a cache and checks its header and size against the run's.
  static runtime::Expected<TeacherCache> open(const std::string &path,
                                              int64_t windows, int64_t seq,
                                              int64_t vocab, int64_t hidden);
  /// Appends the cached outputs of `indices` (one per row) to `batch.extra`.
  void annotate(const std::vector<int64_t> &indices, Batch &batch) const;

private:
  runtime::MappedFile file_;
  uint64_t offset_ = 0;
  int64_t seq_ = 0, vocab_ = 0, hidden_ = 0;
};

/// Copies the teacher's parameters into the student's, DistilBERT-style:
/// student layer i takes teacher layer i * Lt / Ls (every other layer when
/// the teacher is twice as deep), every other parameter the teacher's of the
/// same name. Every student parameter (heads alignment and distillation add
/// excepted: score.*, value_head.*, distill_projection.*) must find one of
/// the same shape; the error names the first that does not. The mapped
/// tensors are written to `scratch` (a safetensors file) and loaded from it.
runtime::Status initializeFromTeacher(runtime::Artifact &student,
                                      const runtime::Artifact &teacher,
                                      const std::string &scratch,
                                      std::string *summary);

} // namespace kiln::train

#endif // KILN_TRAIN_DISTILL_H
