//===- Pretrain.cpp - The kiln pretrain loop ------------------------------===//
//
// Everything a run needs lives in its directory: run.json (the options, so
// --resume needs nothing else), the tokenizer, the token files,
// metrics.jsonl, checkpoint.safetensors (parameters, optimizer state, and
// the step and sampler state as metadata, written atomically) and loss.png.
// A step's batch and learning rate depend only on the step number and the
// sampler state, and the compiled step is deterministic, so a resumed run
// repeats an uninterrupted one bit for bit.
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Pretrain.h"

#include "Random.h"

#include "kiln/Runtime/Artifact.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/File.h"
#include "kiln/Runtime/JsonLimits.h"
#include "kiln/Runtime/SafeTensors.h"
#include "kiln/Train/Corpus.h"
#include "kiln/Train/Distill.h"
#include "kiln/Train/Examples.h"
#include "kiln/Train/ImageText.h"
#include "kiln/Train/Metrics.h"
#include "kiln/Train/Policy.h"
#include "kiln/Train/Tasks.h"
#include "kiln/Train/TokenData.h"
#include "kiln/Train/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>

using namespace kiln::train;
using kiln::runtime::Artifact;
using kiln::runtime::DType;
using kiln::runtime::EntryPointSpec;
using kiln::runtime::NamedTensor;
using kiln::runtime::OwnedTensor;
using kiln::runtime::TensorSpec;
using kiln::runtime::TensorView;
using json = nlohmann::json;
namespace runtime = kiln::runtime;

namespace {

constexpr char kCheckpointFormat[] = "kiln-checkpoint";

Status writeText(const std::string &path, const std::string &text) {
  return kiln::runtime::writeFileAtomically(path, [&](int fd) {
    return kiln::runtime::writeAll(fd, text.data(), text.size(), path);
  });
}

//===----------------------------------------------------------------------===//
// run.json
//===----------------------------------------------------------------------===//

json optionsJson(const PretrainOptions &o) {
  return {{"task", o.task},
          {"artifact", o.artifact},
          {"data", o.data},
          {"val_data", o.valData},
          {"init", o.init},
          {"steps", o.steps},
          {"batch", o.batch},
          {"seq", o.seq},
          {"lr", o.schedule.lr},
          {"min_lr", effectiveMinLr(o.schedule)},
          {"warmup", o.schedule.warmupSteps},
          {"schedule", scheduleKindName(o.schedule.kind)},
          {"seed", o.seed},
          {"eval_every", o.evalEvery},
          {"eval_batches", o.evalBatches},
          {"checkpoint_every", o.checkpointEvery},
          {"tokenizer", o.tokenizer},
          {"vocab_size", o.vocabSize},
          {"val_fraction", o.valFraction},
          {"beta", o.beta},
          {"nll_coef", o.nllCoef},
          {"group", o.group},
          {"kl_coef", o.klCoef},
          {"clip", o.clip},
          {"temperature", o.temperature},
          {"max_tokens", o.maxTokens},
          {"ppo_epochs", o.ppoEpochs},
          {"ppo_minibatches", o.ppoMinibatches},
          {"value_clip", o.valueClip},
          {"vf_coef", o.vfCoef},
          {"gamma", o.gamma},
          {"lambda", o.lambda},
          {"reward_model", o.rewardModel},
          {"reward_checkpoint", o.rewardCheckpoint},
          {"teacher", o.teacher},
          {"teacher_checkpoint", o.teacherCheckpoint},
          {"alpha", o.alpha},
          {"reverse", o.reverse},
          {"hidden_coef", o.hiddenCoef},
          {"cache_teacher", o.cacheTeacher},
          {"init_from_teacher", o.initFromTeacher}};
}

/// Whether two spellings of a path name the same file ("run/../a.kiln" and
/// "a.kiln"); paths that do not resolve compare as text.
bool samePath(const std::string &a, const std::string &b) {
  if (a == b)
    return true;
  char *ra = ::realpath(a.c_str(), nullptr);
  char *rb = ::realpath(b.c_str(), nullptr);
  bool same = ra && rb && std::strcmp(ra, rb) == 0;
  std::free(ra);
  std::free(rb);
  return same;
}

/// A run.json value as the command line would spell it.
std::string describeSetting(const json &value) {
  return value.is_string() ? "'" + value.get<std::string>() + "'" : value.dump();
}

/// Checks the settings the resuming command line gave (`given`, the keys in
/// `o.givenSettings`) against the run's recorded ones (`recorded`): equal
/// values are accepted, so the original command plus --resume works; a real
/// change is refused with both values.
Status checkGivenSettings(const PretrainOptions &o, const json &given,
                          const json &recorded, const std::string &path) {
  for (const std::string &key : o.givenSettings) {
    const json &now = given.at(key);
    const json &then = recorded.at(key);
    bool same;
    if (key == "artifact" || key == "data" || key == "tokenizer" ||
        key == "val_data" || key == "init" || key == "reward_model" ||
        key == "reward_checkpoint" || key == "teacher" ||
        key == "teacher_checkpoint") {
      auto resolved = [&](const json &v) {
        std::string text = v.get<std::string>();
        return key == "data" && text.empty() &&
                       (o.task == "pretrain" || o.task == "distill")
                   ? defaultCorpusPath()
                   : text;
      };
      same = samePath(resolved(now), resolved(then));
    } else if (now.is_number() && then.is_number()) {
      same = now.get<double>() == then.get<double>();
    } else {
      same = now == then;
    }
    if (!same) {
      std::string flag = key == "artifact" ? "the artifact" : "--" + key;
      std::replace(flag.begin(), flag.end(), '_', '-');
      return Status::error(
          "cannot resume '" + o.runDir + "' with " + flag + " " +
          describeSetting(now) + ": the run was started with " +
          describeSetting(then) + " (" + path +
          "); only --steps may change when resuming");
    }
  }
  return Status::ok();
}

/// Reads the options a run was started with; `steps`, `logEvery`,
/// `peakGflops` and `watts` stay as given. Settings the command line gave
/// must match the recorded ones; with `checkTask`, so must the task (a run
/// resumes with the command that started it).
Status restoreOptions(PretrainOptions &o, bool checkTask) {
  std::string path = runConfigPath(o.runDir);
  Expected<std::string> text = runtime::readFile(path);
  if (!text)
    return Status::error("cannot resume '" + o.runDir +
                         "': it has no run.json (" + text.message() + ")");
  if (Status s = runtime::checkJsonNesting(*text, "'" + path + "'"); !s)
    return s;
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const char *key) {
    return Status::error("'" + path + "' is not a Kiln run file: key '" + key +
                         "' is missing or has the wrong type");
  };
  if (!j.is_object())
    return Status::error("'" + path + "' is not a Kiln run file (not JSON)");
  const json given = optionsJson(o);
  auto str = [&](const char *key, std::string &out) {
    if (!j.contains(key) || !j[key].is_string())
      return false;
    out = j[key].get<std::string>();
    return true;
  };
  auto integer = [&](const char *key, auto &out) {
    if (!j.contains(key) || !j[key].is_number_integer())
      return false;
    out = j[key].get<std::decay_t<decltype(out)>>();
    return true;
  };
  auto number = [&](const char *key, double &out) {
    if (!j.contains(key) || !j[key].is_number())
      return false;
    out = j[key].get<double>();
    return true;
  };
  std::string kind;
  double minLr = 0;
  int64_t recordedSteps = 0;
  // Keys that runs before fine-tuning existed did not record.
  std::string task = "pretrain";
  if (j.contains("task") && !str("task", task))
    return bad("task");
  if (task != "pretrain" && task != "sft" && task != "dpo" && task != "grpo" &&
      task != "reward" && task != "ppo" && task != "distill" &&
      task != "clip" && task != "caption")
    return Status::error("'" + path + "' records task '" + task +
                         "', which this kiln does not know");
  if (checkTask && task != o.task && (task == "clip" || task == "caption"))
    return Status::error("'" + o.runDir + "' holds a " +
                         (task == "clip" ? "CLIP" : "captioning") +
                         " run; continue it with 'kiln pretrain --task " +
                         task + " --resume --out " + o.runDir + "'");
  if (checkTask && task != o.task)
    return Status::error("'" + o.runDir + "' holds a " +
                         (task == "sft"   ? "fine-tuning"
                          : task == "dpo"  ? "DPO"
                          : task == "grpo"   ? "GRPO"
                          : task == "ppo"    ? "PPO"
                          : task == "reward" ? "reward-model"
                          : task == "distill" ? "distillation"
                                             : "pretraining") +
                         " run; continue it with 'kiln " + task +
                         " --resume --out " + o.runDir + "'");
  o.task = task;
  for (auto [key, out] : {std::pair{"val_data", &o.valData},
                          std::pair{"init", &o.init},
                          std::pair{"reward_model", &o.rewardModel},
                          std::pair{"reward_checkpoint", &o.rewardCheckpoint},
                          std::pair{"teacher", &o.teacher},
                          std::pair{"teacher_checkpoint", &o.teacherCheckpoint}})
    if (j.contains(key) && !str(key, *out))
      return bad(key);
  if (j.contains("beta") && !number("beta", o.beta))
    return bad("beta");
  for (auto [key, out] : {std::pair{"value_clip", &o.valueClip},
                          std::pair{"vf_coef", &o.vfCoef},
                          std::pair{"gamma", &o.gamma},
                          std::pair{"lambda", &o.lambda}})
    if (j.contains(key) && !number(key, *out))
      return bad(key);
  if (j.contains("ppo_epochs") && !integer("ppo_epochs", o.ppoEpochs))
    return bad("ppo_epochs");
  if (j.contains("ppo_minibatches") &&
      !integer("ppo_minibatches", o.ppoMinibatches))
    return bad("ppo_minibatches");
  for (auto [key, out] : {std::pair{"nll_coef", &o.nllCoef},
                          std::pair{"kl_coef", &o.klCoef},
                          std::pair{"clip", &o.clip},
                          std::pair{"temperature", &o.temperature},
                          std::pair{"alpha", &o.alpha},
                          std::pair{"reverse", &o.reverse},
                          std::pair{"hidden_coef", &o.hiddenCoef}})
    if (j.contains(key) && !number(key, *out))
      return bad(key);
  for (auto [key, out] : {std::pair{"cache_teacher", &o.cacheTeacher},
                          std::pair{"init_from_teacher", &o.initFromTeacher}})
    if (j.contains(key)) {
      if (!j[key].is_boolean())
        return bad(key);
      *out = j[key].get<bool>();
    }
  if ((j.contains("group") && !integer("group", o.group)) ||
      (j.contains("max_tokens") && !integer("max_tokens", o.maxTokens)))
    return bad("group");
  if (!str("artifact", o.artifact))
    return bad("artifact");
  if (!str("data", o.data))
    return bad("data");
  if (!integer("steps", recordedSteps))
    return bad("steps");
  if (!integer("batch", o.batch) || !integer("seq", o.seq))
    return bad("batch");
  if (!number("lr", o.schedule.lr) || !number("min_lr", minLr))
    return bad("lr");
  if (!integer("warmup", o.schedule.warmupSteps))
    return bad("warmup");
  if (!str("schedule", kind))
    return bad("schedule");
  if (!integer("seed", o.seed))
    return bad("seed");
  if (!integer("eval_every", o.evalEvery) ||
      !integer("eval_batches", o.evalBatches) ||
      !integer("checkpoint_every", o.checkpointEvery))
    return bad("eval_every");
  if (!str("tokenizer", o.tokenizer) || !integer("vocab_size", o.vocabSize) ||
      !number("val_fraction", o.valFraction))
    return bad("tokenizer");
  Expected<ScheduleKind> parsed = parseScheduleKind(kind);
  if (!parsed)
    return parsed.status();
  o.schedule.kind = *parsed;
  o.schedule.minLr = minLr;
  if (o.steps <= 0)
    o.steps = recordedSteps;
  // Every key was read above, so `j` holds each one with its type (the
  // optional ones are recorded as read).
  j["val_data"] = o.valData;
  j["init"] = o.init;
  j["beta"] = o.beta;
  j["nll_coef"] = o.nllCoef;
  j["group"] = o.group;
  j["kl_coef"] = o.klCoef;
  j["clip"] = o.clip;
  j["temperature"] = o.temperature;
  j["max_tokens"] = o.maxTokens;
  j["ppo_epochs"] = o.ppoEpochs;
  j["ppo_minibatches"] = o.ppoMinibatches;
  j["value_clip"] = o.valueClip;
  j["vf_coef"] = o.vfCoef;
  j["gamma"] = o.gamma;
  j["lambda"] = o.lambda;
  j["reward_model"] = o.rewardModel;
  j["reward_checkpoint"] = o.rewardCheckpoint;
  j["teacher"] = o.teacher;
  j["teacher_checkpoint"] = o.teacherCheckpoint;
  j["alpha"] = o.alpha;
  j["reverse"] = o.reverse;
  j["hidden_coef"] = o.hiddenCoef;
  j["cache_teacher"] = o.cacheTeacher;
  j["init_from_teacher"] = o.initFromTeacher;
  return checkGivenSettings(o, given, j, path);
}

//===----------------------------------------------------------------------===//
// The artifact's training interface
//===----------------------------------------------------------------------===//

struct TrainingInterface {
  const EntryPointSpec *train = nullptr;
  const EntryPointSpec *eval = nullptr;
  int64_t batch = 0, seq = 0, vocab = 0;
  /// distill: the width of teacher_hidden (0: no hidden-state term).
  int64_t teacherHidden = 0;
  /// clip: the id the text tower pools at (appended to every caption;
  /// the tokenizer's pieces are below it), and the image size.
  int64_t endToken = 0, imageHeight = 0, imageWidth = 0;
};

/// Resolves `size` against a spec dim: static dims win (a different request
/// is an error), dynamic ones take the request (which must be given).
Status resolveDim(const TensorSpec &spec, size_t dim, const char *option,
                  int64_t &size) {
  int64_t declared = spec.shape[dim];
  if (declared != runtime::kDynamicDim) {
    if (size != 0 && size != declared)
      return Status::error("the artifact's train_step takes " + spec.name +
                           " of shape " + runtime::formatSpecShape(spec.shape) +
                           ": " + option + " must be " +
                           std::to_string(declared) + ", not " +
                           std::to_string(size));
    size = declared;
    return Status::ok();
  }
  if (size <= 0)
    return Status::error(std::string("the artifact's train_step has a dynamic ") +
                         option + " dimension; give " + option);
  if (dim < spec.maxShape.size() && spec.maxShape[dim] > 0 &&
      size > spec.maxShape[dim])
    return Status::error(std::string(option) + " " + std::to_string(size) +
                         " is more than the model's maximum of " +
                         std::to_string(spec.maxShape[dim]));
  return Status::ok();
}

/// The batch and sequence of train_step's input_ids [batch, seq] (see
/// resolveDim), into `t`.
Status resolveIdsShape(const TensorSpec &ids, int64_t batch, int64_t seq,
                       TrainingInterface &t) {
  if (Status s = resolveDim(ids, 0, "--batch", batch); !s)
    return s;
  if (Status s = resolveDim(ids, 1, "--seq", seq); !s)
    return s;
  t.batch = batch;
  t.seq = seq;
  return Status::ok();
}

/// The image size of train_step's `pixels` [B, 3, H, W] into `t`; an
/// error unless the images are RGB.
Status resolveImageShape(const Artifact &artifact, const TensorSpec &pixels,
                         TrainingInterface &t) {
  if (pixels.shape[1] != 3)
    return Status::error("'" + artifact.dir() + "' takes images of " +
                         std::to_string(pixels.shape[1]) +
                         " channels; image-caption sets are RGB (3)");
  t.imageHeight = pixels.shape[2];
  t.imageWidth = pixels.shape[3];
  return Status::ok();
}

/// A clip artifact's training interface: train_step(input_ids,
/// pixel_values, attention_mask, lr), encode_image and encode_text, and
/// the model description kiln-compile records (the end-of-text id).
Expected<TrainingInterface> clipInterface(const Artifact &artifact,
                                          TrainingInterface t, int64_t batch,
                                          int64_t seq) {
  const TensorSpec *ids = t.train->findInput("input_ids");
  const TensorSpec *pixels = t.train->findInput("pixel_values");
  const TensorSpec *mask = t.train->findInput("attention_mask");
  if (!ids || !pixels || !mask || !t.train->findInput("lr") ||
      t.train->findInput("targets") || ids->rank() != 2 ||
      pixels->rank() != 4 || !artifact.findEntryPoint("encode_image") ||
      !artifact.findEntryPoint("encode_text"))
    return Status::error("'" + artifact.dir() +
                         "' is not a CLIP training artifact (train_step of "
                         "input_ids, pixel_values, attention_mask and lr; "
                         "encode_image and encode_text): compile a clip "
                         "config with kiln-compile --mode train --objective "
                         "contrastive");
  if (Status s = resolveIdsShape(*ids, batch, seq, t); !s)
    return s;
  if (Status s = resolveImageShape(artifact, *pixels, t); !s)
    return s;
  Expected<ClipModelInfo> info = readClipModelInfo(artifact);
  if (!info)
    return info.status();
  int64_t eos = info->endToken;
  t.endToken = eos;
  // The tokenizer's pieces stay below the end token.
  t.vocab = eos;
  return t;
}

/// A captioner's training interface: train_step(input_ids, pixel_values,
/// targets, lr) and forward(input_ids, pixel_values) -> logits (a llava or
/// vision-encoder-decoder config compiled with --mode train).
Expected<TrainingInterface> captionInterface(const Artifact &artifact,
                                             TrainingInterface t, int64_t batch,
                                             int64_t seq) {
  const TensorSpec *ids = t.train->findInput("input_ids");
  const TensorSpec *pixels = t.train->findInput("pixel_values");
  const EntryPointSpec *forward = artifact.findEntryPoint("forward");
  if (!ids || !pixels || !t.train->findInput("targets") ||
      !t.train->findInput("lr") || ids->rank() != 2 || pixels->rank() != 4 ||
      !forward || !forward->findInput("pixel_values") ||
      forward->outputs.size() != 1 || forward->outputs[0].rank() != 3)
    return Status::error("'" + artifact.dir() +
                         "' is not a captioning training artifact (train_step "
                         "of input_ids, pixel_values, targets and lr; "
                         "forward(input_ids, pixel_values) -> logits): "
                         "compile a llava or vision-encoder-decoder config "
                         "with kiln-compile --mode train");
  if (Status s = resolveIdsShape(*ids, batch, seq, t); !s)
    return s;
  if (Status s = resolveImageShape(artifact, *pixels, t); !s)
    return s;
  t.vocab = forward->outputs[0].shape.back();
  return t;
}

Expected<TrainingInterface> trainingInterface(const Artifact &artifact,
                                              int64_t batch, int64_t seq,
                                              const std::string &task) {
  bool preference = task == "dpo" || task == "reward";
  TrainingInterface t;
  t.train = artifact.findEntryPoint(KILN_ENTRY_TRAIN_STEP);
  t.eval = artifact.findEntryPoint(KILN_ENTRY_EVAL_STEP);
  if (!t.train || !t.eval)
    return Status::error("'" + artifact.dir() +
                         "' is not a training artifact: it has no train_step "
                         "and eval_step (it has: " +
                         artifact.manifest().entryPointNames() +
                         "); compile it with kiln-compile --mode train");
  if (task == "clip")
    return clipInterface(artifact, t, batch, seq);
  if (task == "caption")
    return captionInterface(artifact, t, batch, seq);
  if (t.train->findInput("pixel_values"))
    return Status::error(
        "'" + artifact.dir() + "' takes images: train it with kiln pretrain " +
        (t.train->findInput("targets") ? "--task caption (a captioner)"
                                       : "--task clip (a CLIP model)"));
  const TensorSpec *ids = t.train->findInput("input_ids");
  const TensorSpec *targets = t.train->findInput(
      task == "reward" ? "lengths" : "targets");
  const TensorSpec *lr = t.train->findInput("lr");
  if (task == "reward" &&
      (!targets || !artifact.findEntryPoint("score") ||
       t.train->findInput("targets")))
    return Status::error("'" + artifact.dir() +
                         "' is not a reward model: compile it with "
                         "kiln-compile --mode train --objective reward");
  if (!ids || !targets || !lr || ids->rank() != 2 ||
      !t.train->findOutput("loss") || !t.train->findOutput("grad_norm"))
    return Status::error("'" + artifact.dir() +
                         "': train_step must take input_ids [batch, seq], "
                         "targets and lr and return loss and grad_norm, as "
                         "kiln-compile --mode train builds it for language "
                         "models");
  if (Status s = resolveIdsShape(*ids, batch, seq, t); !s)
    return s;
  if (preference) {
    const TensorSpec *reference = t.train->findInput("reference_logprobs");
    if (task == "reward") {
      // Checked above.
    } else if (!reference || !t.train->findInput("beta") ||
               !t.train->findInput("nll_coef") ||
        !artifact.findEntryPoint(KILN_ENTRY_TOKEN_LOGPROBS))
      return Status::error("'" + artifact.dir() +
                           "' has no DPO train_step (reference_logprobs, "
                           "beta and nll_coef inputs) and token_logprobs; "
                           "compile it with kiln-compile --mode train "
                           "--objective dpo");
    if (batch % 2 != 0)
      return Status::error("'" + artifact.dir() + "' takes batches of " +
                           std::to_string(batch) +
                           " rows; pairs need an even batch (pairs x 2)");
  } else if (task == "grpo" || task == "ppo") {
    bool ppo = task == "ppo";
    if (!t.train->findInput("sample_logprobs") ||
        !t.train->findInput("advantages") ||
        (ppo && (!t.train->findInput("returns") ||
                 !artifact.findEntryPoint("values"))) ||
        (!ppo && !t.train->findInput("reference_logprobs")) ||
        !artifact.findEntryPoint(KILN_ENTRY_TOKEN_LOGPROBS))
      return Status::error("'" + artifact.dir() + "' has no " +
                           (ppo ? "PPO" : "GRPO") +
                           " train_step and token_logprobs" +
                           (ppo ? " and values" : "") +
                           "; compile it with kiln-compile --mode train "
                           "--objective " + task + " --kv-cache N");
    if (!KVCacheDecoder::isAvailable(artifact))
      return Status::error("'" + artifact.dir() +
                           "' has no KV cache to sample rollouts with; "
                           "compile it with --kv-cache N as well");
  } else if (task == "distill") {
    const TensorSpec *teacher = t.train->findInput(kTeacherLogits);
    if (!teacher || !t.train->findInput("alpha") ||
        !t.train->findInput("temperature") || !t.train->findInput("reverse"))
      return Status::error("'" + artifact.dir() + "' has no distillation "
                           "train_step (teacher_logits, alpha, temperature "
                           "and reverse inputs); compile it with "
                           "kiln-compile --mode train --objective distill");
    if (const TensorSpec *hidden = t.train->findInput(kTeacherHidden))
      t.teacherHidden = hidden->shape.back();
  } else if (t.train->findInput(kTeacherLogits)) {
    return Status::error("'" + artifact.dir() + "' was compiled for "
                         "distillation (its train_step takes "
                         "teacher_logits); train it with kiln distill");
  } else if (t.train->findInput("reference_logprobs")) {
    return Status::error("'" + artifact.dir() + "' was compiled for another "
                         "objective (its train_step takes "
                         "reference_logprobs); compile it with --objective "
                         "lm for pretraining and kiln sft");
  }
  const EntryPointSpec *forward = artifact.findEntryPoint("forward");
  const TensorSpec *logits =
      forward && !forward->outputs.empty() ? &forward->outputs[0] : nullptr;
  if (!logits || logits->shape.empty() ||
      logits->shape.back() == runtime::kDynamicDim)
    return Status::error("'" + artifact.dir() +
                         "': cannot tell the vocabulary size (forward's first "
                         "output should be logits [..., vocab])");
  t.vocab = logits->shape.back();
  return t;
}

//===----------------------------------------------------------------------===//
// The loop
//===----------------------------------------------------------------------===//

/// Where a run's training batches come from: a resumable stream whose
/// whole state is one line of text (the checkpoint's "sampler" metadata).
class TrainingData {
public:
  virtual ~TrainingData() = default;
  virtual Expected<Batch> next() = 0;
  /// Adds what making the last batch measured (rollout rewards) to `row`.
  virtual void addMetrics(MetricsRow &row) const {}
  /// The samples the last batch was made of, one record each (rollouts),
  /// for RUN_DIR/rollouts.jsonl; empty for fixed data.
  virtual const std::vector<MetricsRow> &records() const {
    static const std::vector<MetricsRow> none;
    return none;
  }
  virtual std::string saveState() const = 0;
  virtual Status restoreState(const std::string &state) = 0;
  /// Epochs completed, for data drawn in epochs.
  virtual std::optional<double> epochs() const { return std::nullopt; }
};

/// Pretraining: windows at random positions of the training tokens.
class TokenWindows final : public TrainingData {
public:
  explicit TokenWindows(BatchSampler sampler) : sampler(std::move(sampler)) {}
  Expected<Batch> next() override { return sampler.next(); }
  std::string saveState() const override { return sampler.saveState(); }
  Status restoreState(const std::string &state) override {
    return sampler.restoreState(state);
  }

private:
  BatchSampler sampler;
};

/// A captioner's framing tokens: each caption between `bos` and `eos`.
struct CaptionIds {
  int64_t bos, eos;
};

/// CLIP and captioning: image-caption pairs in shuffled epochs.
class ImageTextEpochs final : public TrainingData {
public:
  /// With `caption`: captioning rows (packCaptions) instead of CLIP's.
  ImageTextEpochs(std::shared_ptr<const ImageTextSplit> split, int64_t batch,
                  int64_t seq, uint64_t seed, std::optional<CaptionIds> caption)
      : split(std::move(split)), order(this->split->count, batch, seed),
        seq(seq), caption(caption) {}
  Expected<Batch> next() override {
    return imageTextBatch(*split, order.next(), seq, caption);
  }
  std::string saveState() const override {
    return saveEpochState(kTag, order, seq);
  }
  Status restoreState(const std::string &state) override {
    return restoreEpochState(kTag, "image", state, seq, order);
  }
  std::optional<double> epochs() const override { return order.epochs(); }

  /// The rows of `split` as one batch: input_ids and attention_mask
  /// [rows, seq] (CLIP) or, with `caption`, input_ids and targets
  /// (captioning); pixel_values [rows, 3, H, W].
  static Batch imageTextBatch(const ImageTextSplit &split,
                              const std::vector<int64_t> &rows, int64_t seq,
                              std::optional<CaptionIds> caption) {
    Batch b;
    b.batch = static_cast<int64_t>(rows.size());
    b.seq = seq;
    if (caption)
      packCaptions(split.tokens, rows, seq, caption->bos, caption->eos,
                   b.inputs, b.targets);
    else
      packTokens(split.tokens, rows, seq, b.inputs, b.mask);
    b.extra.push_back(
        {"pixel_values",
         {b.batch, 3, split.height, split.width},
         gatherRows(split.pixels, rows, 3 * split.height * split.width)});
    return b;
  }

private:
  static constexpr const char *kTag = "kiln-image-sampler";
  std::shared_ptr<const ImageTextSplit> split;
  EpochOrder order;
  int64_t seq;
  std::optional<CaptionIds> caption;
};

/// Distillation: fixed windows in shuffled epochs, each batch with the
/// teacher's outputs, from the teacher or from the run's cache of them.
/// With alpha 0 and no hidden-state term the loss does not read them: the
/// teacher is not run and zeros stand in (a student trained alone on the
/// same windows).
class DistillWindows final : public TrainingData {
public:
  DistillWindows(TokenWindowEpochs windows, const Teacher &teacher,
                 const TeacherCache *cache, bool teacherNeeded)
      : windows(std::move(windows)), teacher(teacher), cache(cache),
        teacherNeeded(teacherNeeded) {}
  Expected<Batch> next() override {
    std::vector<int64_t> indices;
    Batch batch = windows.next(indices);
    if (cache) {
      cache->annotate(indices, batch);
    } else if (teacherNeeded) {
      auto begin = std::chrono::steady_clock::now();
      if (Status s = teacher.annotate(batch); !s)
        return s;
      teacherSeconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - begin)
                           .count();
    } else {
      for (auto [name, width] :
           {std::pair{kTeacherLogits, teacher.vocab()},
            std::pair{kTeacherHidden, teacher.hiddenWidth()}})
        if (width > 0)
          batch.extra.push_back(
              {name,
               {batch.batch, batch.seq, width},
               std::vector<float>(
                   static_cast<size_t>(batch.batch * batch.seq * width))});
    }
    return batch;
  }
  std::string saveState() const override { return windows.saveState(); }
  Status restoreState(const std::string &state) override {
    return windows.restoreState(state);
  }
  std::optional<double> epochs() const override { return windows.epochs(); }
  /// The time the teacher took on the last batch (when it ran).
  void addMetrics(MetricsRow &row) const override {
    if (teacherSeconds > 0)
      row.set("teacher_ms", teacherSeconds * 1e3);
  }

private:
  double teacherSeconds = 0;
  TokenWindowEpochs windows;
  const Teacher &teacher;
  const TeacherCache *cache;
  bool teacherNeeded;
};

/// Fine-tuning: prompt/response examples in shuffled epochs.
class ExampleEpochs final : public TrainingData {
public:
  explicit ExampleEpochs(ExampleSampler sampler)
      : sampler(std::move(sampler)) {}
  Expected<Batch> next() override { return sampler.next(); }
  std::string saveState() const override { return sampler.saveState(); }
  Status restoreState(const std::string &state) override {
    return sampler.restoreState(state);
  }
  std::optional<double> epochs() const override { return sampler.epochs(); }

private:
  ExampleSampler sampler;
};

/// DPO: pairs in shuffled epochs, batch / 2 per step.
class PairEpochs final : public TrainingData {
public:
  PairEpochs(const std::vector<PairExample> &pairs, EpochOrder order,
             int64_t batch, int64_t seq, int64_t padId)
      : pairs(pairs), order(std::move(order)), batch(batch), seq(seq),
        padId(padId) {}
  Expected<Batch> next() override {
    std::vector<const PairExample *> group;
    for (int64_t i : order.next())
      group.push_back(&pairs[static_cast<size_t>(i)]);
    return pairBatch(group, batch, seq, padId);
  }
  std::string saveState() const override {
    return saveEpochState(kTag, order, seq);
  }
  Status restoreState(const std::string &state) override {
    return restoreEpochState(kTag, "pair", state, seq, order);
  }
  std::optional<double> epochs() const override { return order.epochs(); }

private:
  static constexpr const char *kTag = "kiln-pair-sampler";
  /// The run's pairs, whose references are filled after creation.
  const std::vector<PairExample> &pairs;
  EpochOrder order;
  int64_t batch, seq, padId;
};

/// GRPO: each batch is made by the policy itself. P = batch / group
/// prompts (in shuffled epochs) are each answered `group` times through the
/// policy's KV cache, the judge rewards the answers (1 right, 0 wrong), the
/// rewards become group-normalized advantages, and the rows get the
/// log-probabilities of the current policy (the samples') and of the
/// frozen reference, from token_logprobs. The sampling seed depends on the
/// run's seed and the step alone, so a resumed run draws the same samples.
class Rollouts final : public TrainingData {
public:
  Rollouts(const Artifact &policy, const Artifact &reference,
           const Artifact *rewardModel, const Tokenizer &tokenizer,
           const std::vector<PromptAnswer> &prompts, const PretrainOptions &o,
           int64_t batch, int64_t seq, int64_t padId)
      : policy(policy), reference(reference), rewardModel(rewardModel),
        tokenizer(tokenizer),
        prompts(prompts), o(o), order(static_cast<int64_t>(prompts.size()),
                                      batch / o.group, o.seed),
        batch(batch), seq(seq), padId(padId) {}

  Expected<Batch> next() override {
    int64_t step = order.drawn();
    std::vector<int64_t> picked = order.next();
    std::vector<std::vector<int32_t>> rows;
    std::vector<const PromptAnswer *> answers;
    for (int64_t i : picked)
      for (int64_t g = 0; g < o.group; ++g) {
        rows.push_back(promptTokens(tokenizer, prompts[static_cast<size_t>(i)].prompt));
        answers.push_back(&prompts[static_cast<size_t>(i)]);
      }
    BatchOptions sampling;
    sampling.maxTokens = o.maxTokens;
    sampling.sampling.temperature = o.temperature;
    sampling.sampling.topK = 0;
    sampling.sampling.topP = 1.0;
    sampling.stop = {"\n"};
    // Row r of step s draws with seed (seed * 2^20 + s) * batch + r.
    sampling.seed = (o.seed * (uint64_t(1) << 20) + static_cast<uint64_t>(step)) *
                    static_cast<uint64_t>(batch);
    Expected<std::vector<Sample>> samples =
        samplePrompts(policy, tokenizer, rows, sampling);
    if (!samples)
      return Status::error("sampling the rollouts of step " +
                           std::to_string(step + 1) + ": " + samples.message());
    std::vector<double> verdicts;
    double length = 0;
    for (size_t r = 0; r < samples->size(); ++r) {
      verdicts.push_back(judgeAnswer((*samples)[r].text, answers[r]->answer) ? 1.0
                                                                              : 0.0);
      length += static_cast<double>((*samples)[r].tokens.size());
    }
    Batch b = policyRows(rows, *samples, seq, padId, tokenizer.eosId());
    // The rewards: the judge's verdicts, or a reward model's scores of the
    // whole rows (prompt, answer, end token).
    std::vector<double> rewards = verdicts;
    if (rewardModel) {
      std::vector<int64_t> lengths(static_cast<size_t>(b.batch));
      for (int64_t r = 0; r < b.batch; ++r) {
        // targets[t] is the token at t + 1: the row's last token (the end
        // token, or the answer's last) is at the last target's t + 1, as a
        // reward model is trained to score it (prepareRollouts leaves room).
        int64_t last = 0;
        for (int64_t t = 0; t < b.seq; ++t)
          if (b.targets[static_cast<size_t>(r * b.seq + t)] != -100)
            last = t + 1;
        lengths[static_cast<size_t>(r)] = std::min(b.seq, last + 1);
      }
      std::vector<int64_t> shape = {b.batch, b.seq};
      auto out = rewardModel->run(
          "score", {{"input_ids", TensorView{DType::I64, shape, b.inputs.data()}},
                    {"lengths", TensorView{DType::I64, {b.batch}, lengths.data()}}});
      if (!out)
        return Status::error("scoring the rollouts with the reward model: " +
                             out.message());
      const float *scores = (*out)[0].as<float>();
      rewards.assign(scores, scores + b.batch);
    }
    std::vector<double> advantages =
        o.task == "ppo" ? std::vector<double>(rewards.size(), 0.0)
                        : groupAdvantages(rewards, o.group);
    auto logprobs = [&](const Artifact &model) -> Expected<std::vector<float>> {
      std::vector<int64_t> shape = {b.batch, b.seq};
      auto out = model.run(
          KILN_ENTRY_TOKEN_LOGPROBS,
          {{"input_ids", TensorView{DType::I64, shape, b.inputs.data()}},
           {"targets", TensorView{DType::I64, shape, b.targets.data()}}});
      if (!out)
        return out.status();
      const float *v = (*out)[0].as<float>();
      return std::vector<float>(v, v + (*out)[0].numElements());
    };
    Expected<std::vector<float>> sampled = logprobs(policy);
    if (!sampled)
      return sampled.status();
    Expected<std::vector<float>> frozen = logprobs(reference);
    if (!frozen)
      return frozen.status();
    std::vector<float> values;
    AdvantageEstimate estimate;
    if (o.task == "ppo") {
      std::vector<int64_t> shape = {b.batch, b.seq};
      auto out = policy.run(
          "values", {{"input_ids", TensorView{DType::I64, shape, b.inputs.data()}}});
      if (!out)
        return out.status();
      const float *v = (*out)[0].as<float>();
      values.assign(v, v + (*out)[0].numElements());
      estimate = generalizedAdvantages(b.targets, b.batch, b.seq, *sampled,
                                       *frozen, values, rewards, o.klCoef,
                                       o.gamma, o.lambda);
    }
    // What the batch measures: rewards, the policy's distance from the
    // reference (mean of log p - log q over response tokens, and k3), and
    // the sampled tokens' mean surprisal (an estimate of the entropy).
    double tokens = 0, kl = 0, k3 = 0, surprisal = 0;
    for (size_t i = 0; i < b.targets.size(); ++i) {
      if (b.targets[i] == -100)
        continue;
      double d = static_cast<double>((*frozen)[i]) - (*sampled)[i];
      tokens += 1;
      kl -= d;
      k3 += std::exp(d) - d - 1;
      surprisal -= (*sampled)[i];
    }
    double reward = 0;
    int64_t learning = 0;
    for (size_t r = 0; r < rewards.size(); ++r) {
      reward += rewards[r];
      learning += advantages[r] != 0;
    }
    double n = static_cast<double>(rewards.size());
    double right = 0;
    for (double v : verdicts)
      right += v;
    metrics = {{"reward", reward / n},
               {"success", right / n},
               {"kl", tokens ? kl / tokens : 0.0},
               {"kl_k3", tokens ? k3 / tokens : 0.0},
               {"entropy", tokens ? surprisal / tokens : 0.0},
               {"response_tokens", length / n}};
    if (o.task == "grpo")
      metrics.push_back({"learning_rows", static_cast<double>(learning) / n});
    samplesMade.clear();
    for (size_t r = 0; r < samples->size(); ++r) {
      MetricsRow record;
      record.set("step", step + 1)
          .set("row", static_cast<int64_t>(r))
          .set("prompt", answers[r]->prompt)
          .set("response", (*samples)[r].text)
          .set("finish", (*samples)[r].finish)
          .set("reward", rewards[r])
          .set("advantage", advantages[r]);
      samplesMade.push_back(std::move(record));
    }
    if (o.task == "ppo") {
      metrics.push_back({"kl_penalty", estimate.klPenalty});
      b.extra.push_back({"sample_logprobs", {b.batch, b.seq}, sampled.take()});
      b.extra.push_back({"advantages", {b.batch, b.seq},
                         std::move(estimate.advantages)});
      b.extra.push_back({"returns", {b.batch, b.seq}, std::move(estimate.returns)});
      b.extra.push_back({"sample_values", {b.batch, b.seq}, std::move(values)});
      return b;
    }
    std::vector<float> adv(advantages.begin(), advantages.end());
    b.extra.push_back({"sample_logprobs", {b.batch, b.seq}, sampled.take()});
    b.extra.push_back({"reference_logprobs", {b.batch, b.seq}, frozen.take()});
    b.extra.push_back({"advantages", {b.batch}, std::move(adv)});
    return b;
  }
  void addMetrics(MetricsRow &row) const override {
    for (const auto &[key, value] : metrics)
      row.set(key, value);
  }
  const std::vector<MetricsRow> &records() const override {
    return samplesMade;
  }
  std::string saveState() const override {
    return saveEpochState(kTag, order, seq);
  }
  Status restoreState(const std::string &state) override {
    return restoreEpochState(kTag, "prompt", state, seq, order);
  }
  std::optional<double> epochs() const override { return order.epochs(); }

private:
  static constexpr const char *kTag = "kiln-prompt-sampler";
  const Artifact &policy, &reference;
  /// Scores the rollouts instead of the judge when given.
  const Artifact *rewardModel;
  const Tokenizer &tokenizer;
  const std::vector<PromptAnswer> &prompts;
  const PretrainOptions &o;
  EpochOrder order;
  int64_t batch, seq, padId;
  std::vector<std::pair<std::string, double>> metrics;
  std::vector<MetricsRow> samplesMade;
};

std::string rolloutsPath(const std::string &runDir) {
  return runDir + "/rollouts.jsonl";
}

class Run {
public:
  Run(PretrainOptions options, std::FILE *log)
      : o(std::move(options)), log(log) {}
  Status run();

private:
  bool fineTuning() const {
    return o.task != "pretrain" && o.task != "distill" && !imageText();
  }
  bool contrastive() const { return o.task == "clip"; }
  bool captioning() const { return o.task == "caption"; }
  bool imageText() const { return contrastive() || captioning(); }
  /// CLIP and captioning: the image-caption splits; CLIP's held-out
  /// retrieval measures and the embeddings they come from; a captioner's
  /// greedy captions of the held-out images.
  Status prepareImageText(const TrainingInterface &t);
  Expected<double> evaluateRetrieval(MetricsRow &row);
  Status evaluateCaptions(MetricsRow &row);

  bool distill() const { return o.task == "distill"; }
  /// Distillation: the teacher, its held-out outputs with the eval
  /// batches, the windows sampler and the cache.
  Status prepareDistillation(const TrainingInterface &t);
  /// The held-out cross-entropy and KL to the teacher.
  Expected<double> evaluateDistillation(MetricsRow &row);
  Status prepareTokenizer(const TrainingInterface &t,
                          const std::function<Expected<std::string>()> &text);
  Status prepareData(const TrainingInterface &t);
  Status prepareExamples(const TrainingInterface &t);
  Status loadInitialParameters();
  /// Evaluates on the held-out set, writes eval_loss and the task's other
  /// eval metrics into `row`, returns the loss.
  Expected<double> evaluate(MetricsRow &row);
  /// DPO's and a reward model's held-out metrics over every held-out pair.
  Expected<double> evaluatePairs(MetricsRow &row);
  /// Summed response log-probabilities (DPO) or scores (a reward model) of
  /// the pairs of `pairs` in batches of rows / 2 pairs, in order:
  /// `visit(first, count, values)` gets the index of a batch's first pair,
  /// its pair count and the batch's row values (chosen rows, then
  /// rejected rows).
  Status forEachPairBatch(
      const std::vector<PairExample> &pairs,
      const std::function<Status(size_t, size_t, const std::vector<double> &)>
          &visit);
  Status preparePairs(const TrainingInterface &t);
  /// DPO: the reference log-probabilities of every pair, from the
  /// parameters the run starts with, written with the pairs.
  Status computeReferences(int64_t step);
  Expected<std::vector<double>>
  sequenceLogProbs(const Batch &batch);
  bool preference() const { return o.task == "dpo" || o.task == "reward"; }
  bool rewardModel() const { return o.task == "reward"; }
  bool policy() const { return o.task == "grpo" || o.task == "ppo"; }
  bool ppo() const { return o.task == "ppo"; }
  Status prepareRollouts(const TrainingInterface &t);
  Expected<double> evaluateAnswers(MetricsRow &row);
  Status checkpoint(int64_t step);
  Status resumeFromCheckpoint(int64_t &step);
  void say(const std::string &line) {
    if (log) {
      if (progressShown)
        std::fputc('\n', log);
      progressShown = false;
      std::fprintf(log, "%s\n", line.c_str());
      std::fflush(log);
    }
  }

  PretrainOptions o;
  std::FILE *log;
  bool progressShown = false;
  std::unique_ptr<Artifact> artifact;
  std::optional<Tokenizer> tokenizer;
  std::shared_ptr<const TokenFile> trainTokens, valTokens;
  std::unique_ptr<TrainingData> sampler;
  std::vector<Batch> evalSet;
  /// Fine-tuning: the response tokens of each eval batch, which weigh its
  /// mean loss (the last batch is partly padding).
  std::vector<int64_t> evalTokens;
  int64_t trainExamples = 0, valExamples = 0;
  double unigramLoss = 0;
  /// DPO: the pairs (their references filled by computeReferences), and the
  /// padding id and rows per batch.
  std::vector<PairExample> trainPairs, valPairs;
  bool referencesReady = false;
  double lastAccuracy = 0;
  /// GRPO: the frozen reference, the prompts, and the held-out ones.
  std::unique_ptr<Artifact> reference, rewardArtifact;
  std::vector<PromptAnswer> trainPrompts, evalPrompts;
  std::optional<double> firstSuccess;
  int64_t padId = 0, rows = 0, seq = 0;
  /// Distillation.
  std::optional<Teacher> teacher;
  std::optional<TeacherCache> teacherCache;
  /// The teacher's held-out loss, from the first evaluation's outputs.
  std::optional<double> teacherEvalLoss;
  int64_t trainWindows = 0;
  /// CLIP.
  std::shared_ptr<const ImageTextSplit> imageTrain, imageVal, imageNovel;
  /// The last evaluation's retrieval, by split ("val", "novel").
  std::map<std::string, RetrievalScores> lastRetrieval;
  /// Captioning: the last evaluation's caption scores by split, and a few
  /// of its captions ("split: caption (reference)").
  std::map<std::string, CaptionScores> lastCaptions;
  std::vector<std::string> captionExamples;
};

std::string teacherCachePath(const std::string &runDir) {
  return runDir + "/teacher.cache";
}
std::string teacherInitPath(const std::string &runDir) {
  return runDir + "/init-from-teacher.safetensors";
}

/// Cross-entropy of the add-one unigram distribution of the training tokens
/// on the held-out tokens: the loss a model that ignores context gets.
double unigramCrossEntropy(const TokenFile &train, const TokenFile &val,
                           int64_t vocab) {
  std::vector<double> counts(static_cast<size_t>(vocab), 1.0);
  for (int64_t i = 0; i < train.size(); ++i)
    counts[static_cast<size_t>(train[i])] += 1.0;
  double total = static_cast<double>(train.size() + vocab);
  double loss = 0;
  for (int64_t i = 0; i < val.size(); ++i)
    loss -= std::log(counts[static_cast<size_t>(val[i])] / total);
  return val.size() ? loss / static_cast<double>(val.size()) : 0.0;
}

/// The run's tokenizer: RUN_DIR/tokenizer.model when the run has one;
/// else --tokenizer, or the one of the --init run, copied into the run
/// directory (so kiln generate --run finds it); else one trained on
/// `text()`.
Status Run::prepareTokenizer(
    const TrainingInterface &t,
    const std::function<Expected<std::string>()> &text) {
  std::string modelPath = tokenizerModelPath(o.runDir);
  std::string source = o.tokenizer;
  if (source.empty() && !o.init.empty() && runtime::isDirectory(o.init))
    source = tokenizerModelPath(o.init);
  if (distill()) {
    // The student reads the teacher's tokens: the teacher run's tokenizer,
    // or --tokenizer (which must then be the same model).
    std::string teacherModel =
        !o.teacherCheckpoint.empty() && runtime::isDirectory(o.teacherCheckpoint)
            ? tokenizerModelPath(o.teacherCheckpoint)
            : std::string();
    if (!teacherModel.empty() && runtime::pathExists(teacherModel)) {
      if (!source.empty() && runtime::pathExists(source) &&
          !samePath(source, teacherModel)) {
        Expected<std::string> given = runtime::readFile(source, "tokenizer model");
        Expected<std::string> theirs =
            runtime::readFile(teacherModel, "tokenizer model");
        if (!given)
          return given.status();
        if (!theirs)
          return theirs.status();
        if (*given != *theirs)
          return Status::error("--tokenizer '" + source + "' is not the "
                               "teacher's tokenizer ('" + teacherModel +
                               "'): teacher and student must share the "
                               "tokenizer");
      }
      if (source.empty())
        source = teacherModel;
    }
    if (source.empty() && !runtime::pathExists(modelPath))
      return Status::error("distillation needs the teacher's tokenizer: give "
                           "--teacher-checkpoint RUN_DIR (the teacher's run, "
                           "which has it) or --tokenizer MODEL");
  }
  if (!source.empty() && !runtime::pathExists(source)) {
    if (!runtime::pathExists(modelPath))
      return Status::error("no tokenizer model at '" + source + "'");
    source.clear(); // Resuming: the run's copy stands in for it.
  }
  if (!source.empty() && !samePath(source, modelPath)) {
    // The given model wins over an earlier copy (the settings check made
    // sure a resumed run names the same one).
    Expected<std::string> bytes = runtime::readFile(source, "tokenizer model");
    if (!bytes)
      return bytes.status();
    if (Status s = writeText(modelPath, *bytes); !s)
      return s;
  }
  if (runtime::pathExists(modelPath)) {
    Expected<Tokenizer> loaded = Tokenizer::load(modelPath);
    if (!loaded)
      return loaded.status();
    tokenizer.emplace(loaded.take());
  } else {
    Expected<std::string> corpus = text();
    if (!corpus)
      return corpus.status();
    int vocab = o.vocabSize > 0 ? o.vocabSize : static_cast<int>(t.vocab);
    say("training a " + std::to_string(vocab) +
        "-piece SentencePiece tokenizer on " +
        std::to_string(corpus->size()) + " bytes of text");
    std::string prefix = modelPath.substr(0, modelPath.size() - 6);
    Expected<Tokenizer> trained =
        Tokenizer::train(*corpus, prefix, vocab, o.seed);
    if (!trained)
      return trained.status();
    tokenizer.emplace(trained.take());
  }
  if (tokenizer->vocabSize() > t.vocab)
    return Status::error("the tokenizer has " +
                         std::to_string(tokenizer->vocabSize()) +
                         " pieces but the model's vocabulary has only " +
                         std::to_string(t.vocab));
  return Status::ok();
}

Status Run::prepareData(const TrainingInterface &t) {
  if (imageText())
    return prepareImageText(t);
  if (policy())
    return prepareRollouts(t);
  if (preference())
    return preparePairs(t);
  if (fineTuning())
    return prepareExamples(t);
  std::optional<std::string> corpus;
  auto loadCorpus = [&]() -> Status {
    if (corpus)
      return Status::ok();
    std::string path = o.data.empty() ? defaultCorpusPath() : o.data;
    if (!runtime::pathExists(path))
      return Status::error("no training data at '" + path + "'" +
                           (o.data.empty()
                                ? " (the default corpus; install Debian's "
                                  "'fortunes' package or give --data)"
                                : ""));
    Expected<std::string> text = readCorpus(path);
    if (!text)
      return text.status();
    corpus = text.take();
    return Status::ok();
  };

  if (Status s = prepareTokenizer(t, [&]() -> Expected<std::string> {
        if (Status s = loadCorpus(); !s)
          return s;
        return *corpus;
      });
      !s)
    return s;

  // The token files, made once per run.
  std::string trainPath = trainTokensPath(o.runDir);
  std::string valPath = valTokensPath(o.runDir);
  if (!runtime::pathExists(trainPath) || !runtime::pathExists(valPath)) {
    if (Status s = loadCorpus(); !s)
      return s;
    TokenDataOptions options;
    options.valFraction = o.valFraction;
    options.minValTokens = t.batch * t.seq + 1;
    Expected<TokenDataSummary> summary =
        writeTokenData(o.runDir, *corpus, *tokenizer, options);
    if (!summary)
      return summary.status();
    say("tokenized: " + std::to_string(summary->trainTokens) +
        " training and " + std::to_string(summary->valTokens) +
        " held-out tokens from " + std::to_string(summary->documents) +
        " documents");
  }
  Expected<TokenFile> trainFile = TokenFile::open(trainPath);
  if (!trainFile)
    return trainFile.status();
  Expected<TokenFile> valFile = TokenFile::open(valPath);
  if (!valFile)
    return valFile.status();
  if (trainFile->vocabSize() != tokenizer->vocabSize() ||
      valFile->vocabSize() != tokenizer->vocabSize())
    return Status::error("the token files in '" + o.runDir +
                         "' were made with another tokenizer (vocabulary " +
                         std::to_string(trainFile->vocabSize()) + ", not " +
                         std::to_string(tokenizer->vocabSize()) + ")");
  trainTokens = std::make_shared<const TokenFile>(trainFile.take());
  valTokens = std::make_shared<const TokenFile>(valFile.take());

  Expected<BatchSampler> created =
      BatchSampler::create(trainTokens, t.batch, t.seq, o.seed);
  if (!created)
    return Status::error("training data: " + created.message());
  sampler = std::make_unique<TokenWindows>(created.take());
  Expected<BatchSampler> held =
      BatchSampler::create(valTokens, t.batch, t.seq, o.seed);
  if (!held)
    return Status::error("held-out data: " + held.message());
  evalSet = held->evalBatches(std::max<int64_t>(1, o.evalBatches));
  unigramLoss = unigramCrossEntropy(*trainTokens, *valTokens, t.vocab);
  if (distill())
    return prepareDistillation(t);
  return Status::ok();
}

/// --init, --teacher-checkpoint: the checkpoint of a run directory, or the
/// checkpoint/weights file given.
std::string initialParametersPath(const std::string &init) {
  return runtime::isDirectory(init) ? checkpointPath(init) : init;
}

std::string formatBytes(uint64_t bytes) {
  char text[64];
  if (bytes >= (uint64_t(1) << 30))
    std::snprintf(text, sizeof text, "%.2f GiB", bytes / double(1 << 30));
  else
    std::snprintf(text, sizeof text, "%.1f MiB", bytes / double(1 << 20));
  return text;
}

/// The teacher (checked against the student's batch, vocabulary and hidden
/// width), its outputs for the held-out batches, and the training windows
/// with the teacher's outputs run per batch or cached once.
Status Run::prepareDistillation(const TrainingInterface &t) {
  if (o.teacher.empty())
    return Status::error("kiln distill needs --teacher T.kiln (an artifact "
                         "with forward)");
  if (!(o.alpha >= 0 && o.alpha <= 1) || !(o.reverse >= 0 && o.reverse <= 1))
    return Status::error("--alpha and --reverse must be in [0, 1]");
  if (!(o.temperature > 0) || !std::isfinite(o.temperature))
    return Status::error("--temperature must be positive");
  if (!(o.hiddenCoef >= 0) || !std::isfinite(o.hiddenCoef))
    return Status::error("--hidden-coef must be non-negative");
  if (o.initFromTeacher && !o.init.empty())
    return Status::error("--init and --init-from-teacher both name the "
                         "starting parameters; give one");
  Expected<Teacher> opened = Teacher::open(
      o.teacher,
      o.teacherCheckpoint.empty() ? std::string()
                                  : initialParametersPath(o.teacherCheckpoint),
      t.batch, t.seq, t.vocab, t.teacherHidden);
  if (!opened)
    return opened.status();
  teacher.emplace(opened.take());
  if (tokenizer->vocabSize() > teacher->vocab())
    return Status::error("the tokenizer has more pieces than the teacher's "
                         "vocabulary");
  Expected<TokenWindowEpochs> windows =
      TokenWindowEpochs::create(trainTokens, t.batch, t.seq, o.seed);
  if (!windows)
    return Status::error("training data: " + windows.message());
  trainWindows = windows->windows();
  if (o.cacheTeacher) {
    std::string path = teacherCachePath(o.runDir);
    uint64_t bytes = TeacherCache::bytesFor(trainWindows, t.seq,
                                            teacher->vocab(),
                                            teacher->hiddenWidth());
    say("teacher cache: " + std::to_string(trainWindows) + " windows x " +
        std::to_string(t.seq) + " tokens x " +
        std::to_string(teacher->floatsPerToken()) + " floats = " +
        formatBytes(bytes) + " on disk (" + path + "), mapped while training");
    if (!runtime::pathExists(path))
      if (Status s = TeacherCache::write(path, *teacher, *windows, t.seq, log);
          !s)
        return s;
    Expected<TeacherCache> cache =
        TeacherCache::open(path, trainWindows, t.seq, teacher->vocab(),
                           teacher->hiddenWidth());
    if (!cache)
      return cache.status();
    teacherCache.emplace(cache.take());
  }
  bool teacherNeeded =
      o.alpha > 0 || (t.teacherHidden > 0 && o.hiddenCoef > 0);
  sampler = std::make_unique<DistillWindows>(
      windows.take(), *teacher, teacherCache ? &*teacherCache : nullptr,
      teacherNeeded);
  return Status::ok();
}

/// Splits `lines` (a seeded shuffle of them) into training lines and the
/// last valFraction, held out.
template <typename T>
Status holdOut(std::vector<T> &lines, std::vector<T> &held,
               const PretrainOptions &o, const std::string &what) {
  std::mt19937_64 rng(o.seed);
  for (size_t i = lines.size(); i > 1; --i)
    std::swap(lines[i - 1], lines[detail::uniformBelow(rng, i)]);
  size_t count = static_cast<size_t>(
      std::ceil(o.valFraction * static_cast<double>(lines.size())));
  if (o.valFraction <= 0 || count == 0 || count >= lines.size())
    return Status::error(
        "'" + o.data + "' has " + std::to_string(lines.size()) + " " + what +
        ": --val-fraction " + std::to_string(o.valFraction) + " holds out " +
        std::to_string(count) + " of them; at least one must be held out "
        "and one left to train on (or give --val-data FILE)");
  held.assign(std::make_move_iterator(lines.end() - count),
              std::make_move_iterator(lines.end()));
  lines.resize(lines.size() - count);
  return Status::ok();
}

/// --data's lines read by `read`, and the held-out ones: --val-data's, or
/// the last valFraction of a seeded shuffle of --data's (`what` names them
/// in errors).
template <typename T, typename Read>
Status readSplit(const PretrainOptions &o, Read read, const std::string &what,
                 std::vector<T> &train, std::vector<T> &held) {
  Expected<std::vector<T>> all = read(o.data);
  if (!all)
    return all.status();
  train = all.take();
  if (o.valData.empty())
    return holdOut(train, held, o, what);
  Expected<std::vector<T>> given = read(o.valData);
  if (!given)
    return given.status();
  held = given.take();
  return Status::ok();
}

/// Fine-tuning data: the prompt/response lines tokenized once into
/// RUN_DIR/{train,val}.examples.jsonl (a resumed run reads those, so it
/// trains on exactly the same rows), held-out examples from --val-data or a
/// seeded shuffle of --data.
Status Run::prepareExamples(const TrainingInterface &t) {
  if (o.data.empty())
    return Status::error("fine-tuning needs --data FILE.jsonl (JSON lines of "
                         "{\"prompt\": ..., \"response\": ...})");
  std::optional<std::vector<PromptResponse>> train, val;
  auto loadText = [&]() -> Status {
    if (train)
      return Status::ok();
    train.emplace();
    val.emplace();
    return readSplit(o, readPromptResponses, "examples", *train, *val);
  };

  if (Status s = prepareTokenizer(t, [&]() -> Expected<std::string> {
        if (Status s = loadText(); !s)
          return s;
        std::string text;
        for (const auto *set : {&*train, &*val})
          for (const PromptResponse &line : *set)
            text += line.prompt + line.response + "\n";
        return text;
      });
      !s)
    return s;

  std::string trainPath = trainExamplesPath(o.runDir);
  std::string valPath = valExamplesPath(o.runDir);
  if (!runtime::pathExists(trainPath) || !runtime::pathExists(valPath)) {
    if (Status s = loadText(); !s)
      return s;
    std::vector<Example> encoded[2];
    for (const PromptResponse &line : *train)
      encoded[0].push_back(encodeExample(*tokenizer, line));
    for (const PromptResponse &line : *val)
      encoded[1].push_back(encodeExample(*tokenizer, line));
    // Refused before anything is written: a rerun with a longer --seq
    // starts clean.
    if (Status s = checkExamplesFit(encoded[0], t.seq, "training example");
        !s)
      return s;
    if (Status s = checkExamplesFit(encoded[1], t.seq, "held-out example");
        !s)
      return s;
    if (Status s = writeExamples(trainPath, encoded[0]); !s)
      return s;
    if (Status s = writeExamples(valPath, encoded[1]); !s)
      return s;
    say("tokenized: " + std::to_string(train->size()) + " training and " +
        std::to_string(val->size()) + " held-out examples");
  }
  Expected<std::vector<Example>> trainSet =
      readExamples(trainPath, tokenizer->vocabSize());
  if (!trainSet)
    return trainSet.status();
  Expected<std::vector<Example>> valSet =
      readExamples(valPath, tokenizer->vocabSize());
  if (!valSet)
    return valSet.status();
  if (trainSet->empty() || valSet->empty())
    return Status::error("'" + o.runDir + "' has no training or no held-out "
                         "examples");
  if (Status s = checkExamplesFit(*trainSet, t.seq, "training example"); !s)
    return s;
  if (Status s = checkExamplesFit(*valSet, t.seq, "held-out example"); !s)
    return s;
  // Padding is never a target; the end-of-text id keeps it a real token.
  int64_t padId = std::max(0, tokenizer->eosId());
  trainExamples = static_cast<int64_t>(trainSet->size());
  valExamples = static_cast<int64_t>(valSet->size());
  // Every held-out example, up to eval_batches batches of them.
  size_t evalCount = static_cast<size_t>(
      std::min<int64_t>(valExamples, o.evalBatches * t.batch));
  std::vector<Example> evalExamples(valSet->begin(),
                                    valSet->begin() + evalCount);
  evalSet = exampleBatches(evalExamples, t.batch, t.seq, padId);
  for (const Batch &batch : evalSet)
    evalTokens.push_back(std::count_if(batch.targets.begin(),
                                       batch.targets.end(),
                                       [](int64_t v) { return v != -100; }));
  Expected<ExampleSampler> created =
      ExampleSampler::create(trainSet.take(), t.batch, t.seq, padId, o.seed);
  if (!created)
    return Status::error("training data: " + created.message());
  sampler = std::make_unique<ExampleEpochs>(created.take());
  return Status::ok();
}

/// CLIP data: the set's splits read whole into memory as pixel values and
/// caption tokens (the tokenizer trained on the training captions), the
/// eval batches from the start of the held-out split.
Status Run::prepareImageText(const TrainingInterface &t) {
  if (o.data.empty())
    return Status::error("--task " + o.task +
                         " needs --data DIR holding train.jsonl "
                         "and val.jsonl of {\"image\": FILE, \"caption\": "
                         "TEXT} lines ('kiln shapes --out DIR' writes one)");
  std::vector<ImageCaption> examples[3];
  const char *files[3] = {"train.jsonl", "val.jsonl", "novel.jsonl"};
  for (int i = 0; i < 3; ++i) {
    std::string path = o.data + "/" + files[i];
    if (i == 2 && !runtime::pathExists(path))
      continue; // The unseen-combination split is optional.
    Expected<std::vector<ImageCaption>> read = readImageCaptions(path);
    if (!read)
      return read.status();
    examples[i] = read.take();
  }
  if (Status s = prepareTokenizer(t, [&]() -> Expected<std::string> {
        std::string text;
        for (const ImageCaption &example : examples[0])
          text += example.caption + "\n";
        return text;
      });
      !s)
    return s;
  // A caption stands between the tokenizer's <s> and </s>, which must be
  // tokens of the model (a --tokenizer model may lack them).
  if (captioning())
    for (int id : {tokenizer->bosId(), tokenizer->eosId()})
      if (id < 0 || id >= t.vocab)
        return Status::error(
            "the tokenizer's <s> or </s> (id " + std::to_string(id) +
            ") is not a token of the model's vocabulary of " +
            std::to_string(t.vocab) +
            "; captions are framed by them: use a tokenizer kiln trained");
  std::shared_ptr<const ImageTextSplit> *splits[3] = {&imageTrain, &imageVal,
                                                      &imageNovel};
  for (int i = 0; i < 3; ++i) {
    if (examples[i].empty())
      continue;
    // A caption ends in the tokenizer's </s> (captioning) or the id the
    // text tower pools at (CLIP).
    Expected<ImageTextSplit> loaded = loadImageTextSplit(
        examples[i], *tokenizer, captioning() ? tokenizer->eosId() : t.endToken,
        t.imageHeight, t.imageWidth, t.seq);
    if (!loaded)
      return loaded.status();
    *splits[i] = std::make_shared<const ImageTextSplit>(loaded.take());
  }
  int64_t evalCount = std::min(o.evalBatches, imageVal->count / t.batch);
  if (evalCount < 1)
    return Status::error("'" + o.data + "/val.jsonl' has " +
                         std::to_string(imageVal->count) +
                         " images, fewer than one batch of " +
                         std::to_string(t.batch));
  std::optional<CaptionIds> caption;
  if (captioning())
    caption = CaptionIds{tokenizer->bosId(), tokenizer->eosId()};
  for (int64_t b = 0; b < evalCount; ++b) {
    std::vector<int64_t> rows(static_cast<size_t>(t.batch));
    std::iota(rows.begin(), rows.end(), b * t.batch);
    evalSet.push_back(
        ImageTextEpochs::imageTextBatch(*imageVal, rows, t.seq, caption));
    // The caption loss is a mean over each batch's caption tokens.
    if (captioning())
      evalTokens.push_back(static_cast<int64_t>(std::count_if(
          evalSet.back().targets.begin(), evalSet.back().targets.end(),
          [](int64_t target) { return target != -100; })));
  }
  sampler = std::make_unique<ImageTextEpochs>(imageTrain, t.batch, t.seq,
                                              o.seed, caption);
  say("image-caption data: " + std::to_string(imageTrain->count) +
      " training, " + std::to_string(imageVal->count) + " held-out" +
      (imageNovel ? " and " + std::to_string(imageNovel->count) +
                        " unseen-combination"
                  : std::string()) +
      " images of " + std::to_string(t.imageWidth) + "x" +
      std::to_string(t.imageHeight));
  return Status::ok();
}

/// DPO data: the preference lines tokenized, held out as the SFT examples
/// are; the reference log-probabilities come once the starting parameters
/// are loaded (computeReferences), and are written with the pairs to
/// RUN_DIR/{train,val}.pairs.jsonl, which a resumed run reads.
Status Run::preparePairs(const TrainingInterface &t) {
  if (o.data.empty())
    return Status::error("DPO needs --data FILE.jsonl (JSON lines of "
                         "{\"prompt\": ..., \"chosen\": ..., "
                         "\"rejected\": ...})");
  padId = 0;
  rows = t.batch;
  seq = t.seq;
  std::optional<std::vector<PreferencePair>> train, val;
  auto loadText = [&]() -> Status {
    if (train)
      return Status::ok();
    train.emplace();
    val.emplace();
    return readSplit(o, readPreferencePairs, "pairs", *train, *val);
  };
  if (Status s = prepareTokenizer(t, [&]() -> Expected<std::string> {
        if (Status s = loadText(); !s)
          return s;
        std::string text;
        for (const auto *set : {&*train, &*val})
          for (const PreferencePair &pair : *set)
            text += pair.prompt + pair.chosen + "\n" + pair.prompt +
                    pair.rejected + "\n";
        return text;
      });
      !s)
    return s;
  padId = std::max(0, tokenizer->eosId());
  std::string trainPath = trainPairsPath(o.runDir);
  std::string valPath = valPairsPath(o.runDir);
  if (runtime::pathExists(trainPath) && runtime::pathExists(valPath)) {
    Expected<std::vector<PairExample>> a =
        readPairs(trainPath, tokenizer->vocabSize());
    if (!a)
      return a.status();
    Expected<std::vector<PairExample>> b =
        readPairs(valPath, tokenizer->vocabSize());
    if (!b)
      return b.status();
    trainPairs = a.take();
    valPairs = b.take();
    referencesReady = true;
  } else {
    if (Status s = loadText(); !s)
      return s;
    for (auto [lines, out] : {std::pair{&*train, &trainPairs},
                              std::pair{&*val, &valPairs}})
      for (const PreferencePair &pair : *lines) {
        PairExample e;
        e.chosen = encodeExample(*tokenizer, {pair.prompt, pair.chosen});
        e.rejected = encodeExample(*tokenizer, {pair.prompt, pair.rejected});
        out->push_back(std::move(e));
      }
  }
  if (trainPairs.empty() || valPairs.empty())
    return Status::error("'" + o.runDir + "' has no training or no held-out "
                         "pairs");
  for (auto [set, what] : {std::pair{&trainPairs, "training pair"},
                           std::pair{&valPairs, "held-out pair"}}) {
    std::vector<Example> responses;
    for (const PairExample &pair : *set) {
      responses.push_back(pair.chosen);
      responses.push_back(pair.rejected);
    }
    // Example 2k+1 and 2k+2 are pair k+1's responses. A reward model
    // scores a row's last token, so the whole response must be its input.
    if (Status s = checkExamplesFit(responses,
                                    rewardModel() ? t.seq - 1 : t.seq,
                                    std::string(what) + " response");
        !s)
      return s;
  }
  if (rewardModel() && !referencesReady) {
    // No reference: the pairs are kept as they are.
    if (Status s = writePairs(trainPairsPath(o.runDir), trainPairs); !s)
      return s;
    if (Status s = writePairs(valPairsPath(o.runDir), valPairs); !s)
      return s;
    referencesReady = true;
  }
  sampler = std::make_unique<PairEpochs>(
      trainPairs, EpochOrder(static_cast<int64_t>(trainPairs.size()),
                             t.batch / 2, o.seed),
      t.batch, t.seq, padId);
  return Status::ok();
}

Status Run::computeReferences(int64_t step) {
  if (referencesReady)
    return Status::ok();
  if (step > 0)
    return Status::error("'" + o.runDir + "' lost its pair files (" +
                         trainPairsPath(o.runDir) + "); the reference "
                         "log-probabilities cannot be recomputed from a "
                         "checkpoint after training started");
  say("scoring " + std::to_string(trainPairs.size() + valPairs.size()) +
      " pairs with the reference (the starting parameters)");
  size_t half = static_cast<size_t>(rows / 2);
  for (std::vector<PairExample> *set : {&trainPairs, &valPairs})
    if (Status s = forEachPairBatch(
            *set,
            [&](size_t first, size_t count, const std::vector<double> &s) {
              for (size_t i = 0; i < count; ++i) {
                PairExample &pair = (*set)[first + i];
                pair.referenceChosen = s[i];
                pair.referenceRejected = s[half + i];
                if (!std::isfinite(pair.referenceChosen) ||
                    !std::isfinite(pair.referenceRejected))
                  return Status::error(
                      "the reference log-probability of pair " +
                      std::to_string(first + i + 1) + " is not finite");
              }
              return Status::ok();
            });
        !s)
      return s;
  if (Status s = writePairs(trainPairsPath(o.runDir), trainPairs); !s)
    return s;
  if (Status s = writePairs(valPairsPath(o.runDir), valPairs); !s)
    return s;
  referencesReady = true;
  return Status::ok();
}

Status Run::loadInitialParameters() {
  std::string path = initialParametersPath(o.init);
  // An unstructured or N:M pruned artifact keeps the zeros of the weights
  // it starts from: other weights would bring none to keep.
  const runtime::OptionMap &compiled = artifact->manifest().compileOptions;
  if (auto prune = compiled.find("prune");
      prune != compiled.end() && prune->second.isString &&
      prune->second.text != "heads" && prune->second.text != "ffn" &&
      prune->second.text != "heads+ffn")
    return Status::error(
        "--init on an artifact compiled with --prune " + prune->second.text +
        ": training keeps the zeros of the artifact's own weights, and '" +
        path + "' would replace them; compile the artifact from that "
        "checkpoint instead (kiln-compile --weights " + path + " --prune " +
        prune->second.text + " ...) and train without --init");
  // A reward model's score head and PPO's value head are not in a language
  // model's checkpoint: they keep their initial values (ModelOnly).
  if (Status s = artifact->loadParameters(path, /*requireAll=*/true,
                                          Artifact::LoadSelection::ModelOnly);
      !s)
    return Status::error("--init: " + s.message());
  say("starting from the parameters of '" + path + "'");
  return Status::ok();
}

/// GRPO data: the prompts with answers (--data; held-out ones from
/// --val-data or --val-fraction of --data), the frozen reference (the
/// starting parameters, opened without optimizer state), and the rollout
/// sampler. Every prompt must leave room for --max-tokens in the sequence
/// and the KV cache.
Status Run::prepareRollouts(const TrainingInterface &t) {
  if (o.data.empty())
    return Status::error("GRPO needs --data FILE.jsonl (JSON lines of "
                         "{\"prompt\": ..., \"answer\": ...}, such as kiln "
                         "task's prompts.jsonl)");
  int64_t minGroup = ppo() ? 1 : 2;
  if (o.group < minGroup || t.batch % o.group != 0)
    return Status::error("--group " + std::to_string(o.group) + " must be at "
                         "least " + std::to_string(minGroup) +
                         " and divide the artifact's batch of " +
                         std::to_string(t.batch) +
                         " rows (prompts per step x group)");
  if (ppo() && (o.ppoMinibatches < 1 || o.ppoMinibatches > t.batch))
    return Status::error("--ppo-minibatches " +
                         std::to_string(o.ppoMinibatches) +
                         " must be between 1 and the batch's " +
                         std::to_string(t.batch) + " rows");
  if (ppo() && (o.ppoEpochs < 1 || !(o.valueClip > 0) || !(o.vfCoef >= 0) ||
                !(o.gamma > 0 && o.gamma <= 1) ||
                !(o.lambda >= 0 && o.lambda <= 1)))
    return Status::error("--ppo-epochs must be at least 1, --value-clip "
                         "positive, --vf-coef non-negative, --gamma in (0, 1] "
                         "and --lambda in [0, 1]");
  if (o.maxTokens < 1 || !(o.temperature > 0) || !(o.clip > 0) ||
      !(o.klCoef >= 0))
    return Status::error("--max-tokens, --temperature and --clip must be "
                         "positive and --kl-coef non-negative");
  if (Status s = readSplit(
          o, [](const std::string &path) { return readPromptAnswers(path); },
          "prompts", trainPrompts, evalPrompts);
      !s)
    return s;
  if (Status s = prepareTokenizer(t, [&]() -> Expected<std::string> {
        std::string text;
        for (const auto *set : {&trainPrompts, &evalPrompts})
          for (const PromptAnswer &line : *set)
            text += line.prompt + line.answer + "\n";
        return text;
      });
      !s)
    return s;
  padId = std::max(0, tokenizer->eosId());
  rows = t.batch;
  seq = t.seq;
  Expected<KVCacheDecoder> decoder = KVCacheDecoder::create(
      *artifact, KVCacheDecoder::staticRows(*artifact)
                     ? KVCacheDecoder::staticRows(*artifact)
                     : t.batch);
  if (!decoder)
    return decoder.status();
  // A rollout row holds the prompt, the response and an end token: it must
  // fit the training row (seq + 1 tokens) and the cache without a refill.
  // A reward model reads the end token, so it must be an input too.
  int64_t room = std::min(o.rewardModel.empty() ? t.seq : t.seq - 1,
                          decoder->slots() - 1);
  room = std::min(room, decoder->maxPrompt() + o.maxTokens);
  for (const auto *set : {&trainPrompts, &evalPrompts})
    for (size_t i = 0; i < set->size(); ++i) {
      int64_t length = static_cast<int64_t>(
          promptTokens(*tokenizer, (*set)[i].prompt).size());
      if (length + o.maxTokens > room)
        return Status::error(
            std::string(set == &trainPrompts ? "prompt " : "held-out prompt ") +
            std::to_string(i + 1) + " is " + std::to_string(length) +
            " tokens: with --max-tokens " + std::to_string(o.maxTokens) +
            " it does not fit the artifact's " + std::to_string(t.seq) +
            "-token sequence and " + std::to_string(decoder->slots()) +
            "-slot KV cache (" +
            std::to_string(room) + " tokens for prompt and response)");
    }
  Expected<std::unique_ptr<Artifact>> frozen =
      Artifact::open(o.artifact, Artifact::OpenMode::Reference);
  if (!frozen)
    return frozen.status();
  reference = frozen.take();
  if (!o.init.empty())
    if (Status s = reference->loadParameters(
            initialParametersPath(o.init), /*requireAll=*/true,
            Artifact::LoadSelection::ModelOnly);
        !s)
      return Status::error("--init (the reference): " + s.message());
  if (!o.rewardModel.empty()) {
    Expected<std::unique_ptr<Artifact>> opened =
        Artifact::open(o.rewardModel, Artifact::OpenMode::Resident);
    if (!opened)
      return opened.status();
    rewardArtifact = opened.take();
    const EntryPointSpec *score = rewardArtifact->findEntryPoint("score");
    const EntryPointSpec *forward = rewardArtifact->findEntryPoint("forward");
    if (!score || !forward || forward->outputs.empty())
      return Status::error("--reward-model '" + o.rewardModel +
                           "' has no score entry point; compile it with "
                           "kiln-compile --score-head (or --objective "
                           "reward)");
    const TensorSpec &ids = score->inputs[0];
    if (ids.rank() != 2 ||
        (ids.shape[0] != runtime::kDynamicDim && ids.shape[0] != t.batch) ||
        (ids.shape[1] != runtime::kDynamicDim && ids.shape[1] != t.seq))
      return Status::error("--reward-model '" + o.rewardModel +
                           "' scores input_ids of shape " +
                           runtime::formatSpecShape(ids.shape) +
                           "; the rollouts are [" + std::to_string(t.batch) +
                           ", " + std::to_string(t.seq) + "]");
    if (forward->outputs[0].shape.back() != t.vocab)
      return Status::error("--reward-model '" + o.rewardModel +
                           "' has another vocabulary (" +
                           std::to_string(forward->outputs[0].shape.back()) +
                           " ids, the policy " + std::to_string(t.vocab) +
                           "): it must read the policy's tokens");
    if (!o.rewardCheckpoint.empty()) {
      std::string path = initialParametersPath(o.rewardCheckpoint);
      if (!rewardArtifact->writesParameters())
        return Status::error("--reward-checkpoint: '" + o.rewardModel +
                             "' is an inference artifact; it keeps the "
                             "weights it was compiled with");
      if (Status s = rewardArtifact->loadParameters(
              path, /*requireAll=*/true, Artifact::LoadSelection::All);
          !s)
        return Status::error("--reward-checkpoint: " + s.message());
    }
  }
  sampler = std::make_unique<Rollouts>(*artifact, *reference,
                                       rewardArtifact.get(), *tokenizer,
                                       trainPrompts, o, t.batch, t.seq, padId);
  return Status::ok();
}

/// GRPO's held-out measure: the judge's success rate on the held-out
/// prompts, greedy answers through the KV cache.
Expected<double> Run::evaluateAnswers(MetricsRow &row) {
  JudgeOptions options;
  options.sampling.maxTokens = o.maxTokens;
  options.sampling.sampling.temperature = 0;
  options.limit = o.evalBatches * rows;
  Expected<JudgeResult> judged =
      judgePrompts(*artifact, *tokenizer, evalPrompts, options);
  if (!judged)
    return judged.status();
  double success = static_cast<double>(judged->correct) /
                   static_cast<double>(judged->samples);
  if (!firstSuccess)
    firstSuccess = success;
  row.set("eval_success", success);
  return success;
}

float scalarOf(const OwnedTensor &tensor) { return *tensor.as<float>(); }

/// PPO's updates on one batch: --ppo-epochs passes, each the rows in a
/// fresh order (seeded by the run's seed, the step and the pass, so a
/// resumed run repeats them) cut into --ppo-minibatches minibatches.
std::vector<std::vector<int64_t>> ppoMinibatches(const PretrainOptions &o,
                                                 int64_t step, int64_t rows) {
  std::vector<std::vector<int64_t>> minibatches;
  for (int64_t epoch = 0; epoch < o.ppoEpochs; ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i)
      order[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(o.seed ^ (0x9e3779b97f4a7c15ull *
                                  static_cast<uint64_t>(step * 1024 + epoch + 1)));
    for (int64_t i = rows - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)],
                order[detail::uniformBelow(rng, static_cast<uint64_t>(i + 1))]);
    for (int64_t m = 0; m < o.ppoMinibatches; ++m) {
      int64_t first = rows * m / o.ppoMinibatches;
      int64_t last = rows * (m + 1) / o.ppoMinibatches;
      minibatches.emplace_back(order.begin() + first, order.begin() + last);
    }
  }
  return minibatches;
}

/// The tensors of `batch` that `entry` takes (input_ids, targets, lengths,
/// the objective's extra inputs), by name.
std::vector<NamedTensor> batchInputs(const Batch &batch,
                                     const EntryPointSpec &entry) {
  std::vector<int64_t> shape = {batch.batch, batch.seq};
  std::vector<NamedTensor> all = {
      {"input_ids", TensorView{DType::I64, shape, batch.inputs.data()}},
      {"targets", TensorView{DType::I64, shape, batch.targets.data()}}};
  if (!batch.lengths.empty())
    all.push_back({"lengths", TensorView{DType::I64, {batch.batch},
                                         batch.lengths.data()}});
  if (!batch.mask.empty())
    all.push_back(
        {"attention_mask", TensorView{DType::I64, shape, batch.mask.data()}});
  for (const Batch::Input &input : batch.extra)
    all.push_back(
        {input.name, TensorView{DType::F32, input.shape, input.values.data()}});
  std::vector<NamedTensor> inputs;
  for (NamedTensor &tensor : all)
    if (entry.findInput(tensor.name))
      inputs.push_back(std::move(tensor));
  return inputs;
}

Expected<double> Run::evaluate(MetricsRow &row) {
  if (contrastive())
    return evaluateRetrieval(row);
  if (preference())
    return evaluatePairs(row);
  if (policy())
    return evaluateAnswers(row);
  if (distill())
    return evaluateDistillation(row);
  // Pretraining: every batch has batch x seq targets, a plain mean.
  // Fine-tuning: each batch's mean over its response tokens, weighted by
  // their count: the mean over every held-out response token.
  double total = 0, weights = 0;
  for (size_t i = 0; i < evalSet.size(); ++i) {
    auto outputs = artifact->run(
        KILN_ENTRY_EVAL_STEP,
        batchInputs(evalSet[i], *artifact->findEntryPoint(KILN_ENTRY_EVAL_STEP)));
    if (!outputs)
      return outputs.status();
    double weight =
        evalTokens.empty() ? 1.0 : static_cast<double>(evalTokens[i]);
    total += weight * scalarOf((*outputs)[0]);
    weights += weight;
  }
  double loss = total / weights;
  row.set("eval_loss", loss).set("eval_ppl", std::exp(loss));
  if (captioning())
    if (Status s = evaluateCaptions(row); !s)
      return s;
  return loss;
}

/// A captioner's greedy captions of every held-out image (val: seen
/// colour-shape pairs; novel: unseen ones) against the references.
Status Run::evaluateCaptions(MetricsRow &row) {
  captionExamples.clear();
  for (auto [name, split] : {std::pair{"val", imageVal.get()},
                             std::pair{"novel", imageNovel.get()}}) {
    if (!split)
      continue;
    Expected<std::vector<std::vector<int64_t>>> tokens = greedyCaptions(
        *artifact, split->pixels, split->count, split->height, split->width,
        o.batch, tokenizer->bosId(), tokenizer->eosId(), o.seq);
    if (!tokens)
      return tokens.status();
    std::vector<std::string> captions, references;
    for (int64_t i = 0; i < split->count; ++i) {
      const std::vector<int64_t> &ids = (*tokens)[static_cast<size_t>(i)];
      captions.push_back(
          tokenizer->decode(std::vector<int32_t>(ids.begin(), ids.end())));
      references.push_back(split->distinctCaptions[static_cast<size_t>(
          split->captionOf[static_cast<size_t>(i)])]);
    }
    CaptionScores scores = captionScores(captions, references);
    std::string p = name;
    row.set(p + "_caption_exact", scores.exact)
        .set(p + "_caption_words", scores.words);
    lastCaptions[p] = scores;
    for (int64_t i = 0; i < std::min<int64_t>(3, split->count); ++i)
      captionExamples.push_back(p + ": \"" + captions[static_cast<size_t>(i)] +
                                "\" (reference \"" +
                                references[static_cast<size_t>(i)] + "\")");
  }
  return Status::ok();
}

/// CLIP's held-out measures: the contrastive loss over the eval batches,
/// and zero-shot retrieval between every held-out image and the distinct
/// captions of its split (val: seen combinations; novel: unseen ones).
Expected<double> Run::evaluateRetrieval(MetricsRow &row) {
  const EntryPointSpec &entry = *artifact->findEntryPoint(KILN_ENTRY_EVAL_STEP);
  double total = 0;
  for (const Batch &batch : evalSet) {
    auto outputs = artifact->run(KILN_ENTRY_EVAL_STEP, batchInputs(batch, entry));
    if (!outputs)
      return outputs.status();
    total += scalarOf((*outputs)[0]);
  }
  double loss = total / static_cast<double>(evalSet.size());
  row.set("eval_loss", loss);
  std::vector<float> valTexts;
  for (auto [name, split] : {std::pair{"val", imageVal.get()},
                             std::pair{"novel", imageNovel.get()}}) {
    if (!split)
      continue;
    Expected<std::vector<float>> images =
        embedImages(*artifact, split->pixels, split->count, split->height,
                    split->width, o.batch);
    if (!images)
      return images.status();
    Expected<std::vector<float>> texts =
        embedTexts(*artifact, split->distinctTokens, o.seq, o.batch);
    if (!texts)
      return texts.status();
    int64_t width = static_cast<int64_t>(images->size()) / split->count;
    RetrievalScores r =
        retrievalScores(*images, *texts, width, split->captionOf);
    std::string p = name;
    row.set(p + "_image_to_text_top1", r.imageToTextTop1)
        .set(p + "_image_to_text_top5", r.imageToTextTop5)
        .set(p + "_text_to_image_top1", r.textToImageTop1)
        .set(p + "_text_to_image_top5", r.textToImageTop5)
        .set(p + "_image_to_text_chance", r.imageToTextChance1)
        .set(p + "_text_to_image_chance", r.textToImageChance1);
    lastRetrieval[p] = r;
    if (split == imageVal.get()) {
      valTexts = *texts;
    } else {
      // Unseen combinations against every held-out caption: the val
      // captions (seen pairs: "red squares" beside "red triangles") are
      // candidates too, so an image must be told from its seen neighbours.
      std::vector<float> all = *texts;
      all.insert(all.end(), valTexts.begin(), valTexts.end());
      RetrievalScores wide =
          retrievalScores(*images, all, width, split->captionOf);
      row.set("novel_image_to_text_top1_vs_all", wide.imageToTextTop1)
          .set("novel_image_to_text_top5_vs_all", wide.imageToTextTop5)
          .set("novel_image_to_text_chance_vs_all", wide.imageToTextChance1);
      lastRetrieval["novel against every held-out caption"] = wide;
    }
  }
  return loss;
}

/// Distillation's held-out measures, from eval_step on batches with the
/// teacher's outputs: with alpha 0 the loss is the student's cross-entropy
/// (eval_loss, the number kiln pretrain reports for a student alone); with
/// alpha 1, temperature 1 and no reverse share it is KL(teacher ||
/// student) per token (eval_kl). The teacher's outputs are made again at
/// each evaluation rather than kept (eval batches x batch x seq x vocab
/// floats); the first one also gives the teacher's own held-out loss.
Expected<double> Run::evaluateDistillation(MetricsRow &row) {
  const EntryPointSpec &entry = *artifact->findEntryPoint(KILN_ENTRY_EVAL_STEP);
  double loss = 0, kl = 0, teacherLoss = 0;
  for (Batch batch : evalSet) {
    if (Status s = teacher->annotate(batch); !s)
      return s;
    if (!teacherEvalLoss)
      teacherLoss += crossEntropy(batch.extra[0].values.data(),
                                  batch.targets, teacher->vocab());
    for (float alpha : {0.0f, 1.0f}) {
      float one = 1.0f, zero = 0.0f;
      std::vector<NamedTensor> inputs = batchInputs(batch, entry);
      inputs.push_back({"alpha", TensorView{DType::F32, {}, &alpha}});
      inputs.push_back({"temperature", TensorView{DType::F32, {}, &one}});
      inputs.push_back({"reverse", TensorView{DType::F32, {}, &zero}});
      if (entry.findInput("hidden_coef"))
        inputs.push_back({"hidden_coef", TensorView{DType::F32, {}, &zero}});
      auto outputs = artifact->run(KILN_ENTRY_EVAL_STEP, inputs);
      if (!outputs)
        return outputs.status();
      (alpha == 0 ? loss : kl) += scalarOf((*outputs)[0]);
    }
  }
  loss /= static_cast<double>(evalSet.size());
  kl /= static_cast<double>(evalSet.size());
  if (!teacherEvalLoss)
    teacherEvalLoss = teacherLoss / static_cast<double>(evalSet.size());
  row.set("eval_loss", loss).set("eval_ppl", std::exp(loss)).set("eval_kl", kl);
  return loss;
}

/// The summed response log-probability of each row of `batch`
/// (token_logprobs), in double precision.
Expected<std::vector<double>> Run::sequenceLogProbs(const Batch &batch) {
  auto outputs = artifact->run(
      KILN_ENTRY_TOKEN_LOGPROBS,
      batchInputs(batch, *artifact->findEntryPoint(KILN_ENTRY_TOKEN_LOGPROBS)));
  if (!outputs)
    return outputs.status();
  const float *logprobs = (*outputs)[0].as<float>();
  std::vector<double> sums(static_cast<size_t>(batch.batch), 0.0);
  for (int64_t r = 0; r < batch.batch; ++r)
    for (int64_t t = 0; t < batch.seq; ++t)
      sums[static_cast<size_t>(r)] += logprobs[r * batch.seq + t];
  return sums;
}

Status Run::forEachPairBatch(
    const std::vector<PairExample> &pairs,
    const std::function<Status(size_t, size_t, const std::vector<double> &)>
        &visit) {
  size_t half = static_cast<size_t>(rows / 2);
  for (size_t first = 0; first < pairs.size(); first += half) {
    std::vector<const PairExample *> group;
    for (size_t i = first; i < std::min(pairs.size(), first + half); ++i)
      group.push_back(&pairs[i]);
    Batch batch = pairBatch(group, rows, seq, padId);
    std::vector<double> values;
    if (rewardModel()) {
      auto outputs = artifact->run(
          "score", batchInputs(batch, *artifact->findEntryPoint("score")));
      if (!outputs)
        return outputs.status();
      const float *scores = (*outputs)[0].as<float>();
      values.assign(scores, scores + rows);
    } else {
      Expected<std::vector<double>> summed = sequenceLogProbs(batch);
      if (!summed)
        return summed.status();
      values = summed.take();
    }
    if (Status s = visit(first, group.size(), values); !s)
      return s;
  }
  return Status::ok();
}

/// The held-out metrics over every held-out pair, in double precision: with
/// a pair's margin m = c - r, where c and r are the chosen and rejected
/// responses' scores (a reward model) or implicit rewards beta * (s - s_ref)
/// (DPO: s the summed response log-probability from token_logprobs), the
/// loss -log sigmoid(m), the accuracy (m > 0) and the mean margin; DPO also
/// records the mean implicit rewards.
Expected<double> Run::evaluatePairs(MetricsRow &row) {
  double loss = 0, correct = 0, margin = 0, chosen = 0, rejected = 0;
  size_t half = static_cast<size_t>(rows / 2);
  Status status = forEachPairBatch(
      valPairs, [&](size_t first, size_t count, const std::vector<double> &s) {
        for (size_t i = 0; i < count; ++i) {
          const PairExample &pair = valPairs[first + i];
          double c = rewardModel() ? s[i]
                                   : o.beta * (s[i] - pair.referenceChosen);
          double r = rewardModel()
                         ? s[half + i]
                         : o.beta * (s[half + i] - pair.referenceRejected);
          double m = c - r;
          // -log sigmoid(m), stable.
          loss += std::max(-m, 0.0) + std::log1p(std::exp(-std::abs(m)));
          correct += m > 0;
          margin += m;
          chosen += c;
          rejected += r;
        }
        return Status::ok();
      });
  if (!status)
    return status;
  double n = static_cast<double>(valPairs.size());
  lastAccuracy = correct / n;
  row.set("eval_loss", loss / n)
      .set("eval_accuracy", correct / n)
      .set("eval_margin", margin / n);
  if (!rewardModel())
    row.set("eval_chosen_reward", chosen / n)
        .set("eval_rejected_reward", rejected / n);
  return loss / n;
}

/// The error for a loss, gradient norm or eval loss that is not finite.
Status notFinite(const std::string &what, double value, int64_t step) {
  return Status::error("the " + what + " is " + std::to_string(value) +
                       " at step " + std::to_string(step) +
                       "; try a lower --lr (the last checkpoint is "
                       "unaffected)");
}

/// Counts the non-finite elements of a float tensor (f32, bf16, f16);
/// other dtypes have none.
int64_t countNonFinite(const TensorView &tensor) {
  int64_t n = runtime::numElements(tensor.shape), bad = 0;
  switch (tensor.dtype) {
  case DType::F32: {
    const float *v = static_cast<const float *>(tensor.data);
    for (int64_t i = 0; i < n; ++i)
      bad += !std::isfinite(v[i]);
    break;
  }
  case DType::BF16:
  case DType::F16: {
    // All exponent bits set: infinity or NaN.
    uint16_t exponent = tensor.dtype == DType::BF16 ? 0x7f80 : 0x7c00;
    const uint16_t *v = static_cast<const uint16_t *>(tensor.data);
    for (int64_t i = 0; i < n; ++i)
      bad += (v[i] & exponent) == exponent;
    break;
  }
  default:
    break;
  }
  return bad;
}

Status Run::checkpoint(int64_t step) {
  // A checkpoint is the last good state: never write a non-finite one.
  // (parameter() is the module's own memory on the CPU, a host snapshot of
  // device memory on CUDA.)
  for (const runtime::ParameterSpec &p : artifact->parameters()) {
    std::optional<TensorView> value = artifact->parameter(p.name);
    std::optional<OwnedTensor> copy;
    if (!value) {
      // parameter() says nothing of why; readParameter() does.
      Expected<OwnedTensor> read = artifact->readParameter(p.name);
      if (!read)
        return read.status();
      copy.emplace(read.take());
      value = copy->view();
    }
    if (int64_t bad = countNonFinite(*value))
      return Status::error(
          "step " + std::to_string(step) + ": " + std::to_string(bad) +
          " element(s) of '" + p.name + "' are not finite; the checkpoint "
          "was not written (the last one is unaffected); try a lower --lr");
  }
  std::map<std::string, std::string> metadata = {
      {"format", kCheckpointFormat},
      {"step", std::to_string(step)},
      {"sampler", sampler->saveState()},
      {"seed", std::to_string(o.seed)}};
  return artifact->saveParameters(checkpointPath(o.runDir), metadata);
}

Status Run::resumeFromCheckpoint(int64_t &step) {
  std::string path = checkpointPath(o.runDir);
  if (!runtime::pathExists(path)) {
    // Stopped before its first checkpoint: start over, from what run.json,
    // the tokenizer and the token files already hold.
    say("'" + o.runDir + "' has no checkpoint yet: starting from step 0");
    step = 0;
    if (Status s = truncateMetrics(rolloutsPath(o.runDir), -1); !s)
      return s;
    return truncateMetrics(metricsPath(o.runDir), -1);
  }
  Expected<runtime::SafeTensorsFile> file = runtime::SafeTensorsFile::open(path);
  if (!file)
    return file.status();
  const auto &meta = file->metadata();
  auto format = meta.find("format");
  auto at = meta.find("step");
  auto state = meta.find("sampler");
  if (format == meta.end() || format->second != kCheckpointFormat ||
      at == meta.end() || state == meta.end())
    return Status::error("'" + path + "' is not a Kiln checkpoint (its "
                         "metadata lacks format, step or sampler)");
  char *end = nullptr;
  step = std::strtoll(at->second.c_str(), &end, 10);
  if (*end != '\0' || step < 0)
    return Status::error("'" + path + "': bad step '" + at->second + "'");
  if (Status s = sampler->restoreState(state->second); !s)
    return Status::error("'" + path + "': " + s.message());
  if (Status s = artifact->loadParameters(path, /*requireAll=*/true); !s)
    return s;
  if (Status s = truncateMetrics(rolloutsPath(o.runDir), step); !s)
    return s;
  return truncateMetrics(metricsPath(o.runDir), step);
}

Status Run::run() {
  if (o.runDir.empty())
    return Status::error("no run directory (--out RUN_DIR)");
  if (o.resume) {
    if (Status s = restoreOptions(o, /*checkTask=*/true); !s)
      return s;
  } else if (runtime::pathExists(checkpointPath(o.runDir)) ||
             runtime::pathExists(metricsPath(o.runDir))) {
    return Status::error("'" + o.runDir +
                         "' already holds a run; pass --resume to continue "
                         "it, or choose another --out");
  }
  if (o.steps <= 0)
    return Status::error("--steps must be at least 1");
  if (o.evalBatches < 1 || o.evalEvery < 0 || o.checkpointEvery < 0 ||
      o.logEvery < 1)
    return Status::error("--eval-batches and --log-every must be at least 1; "
                         "--eval-every and --checkpoint-every at least 0");
  o.schedule.totalSteps = o.steps;
  if (Status s = validateSchedule(o.schedule); !s)
    return s;
  for (double lr : {o.schedule.lr, effectiveMinLr(o.schedule)})
    if (!std::isfinite(static_cast<float>(lr)))
      return Status::error("the learning rate " + std::to_string(lr) +
                           " is not finite as float32, the type train_step "
                           "takes it in");
  if (Status s = runtime::makeDirectories(o.runDir); !s)
    return s;
  // What a kill or a full disk left of interrupted atomic writes.
  for (const std::string &file :
       {checkpointPath(o.runDir), metricsPath(o.runDir), runConfigPath(o.runDir),
        lossPlotPath(o.runDir), trainTokensPath(o.runDir), valTokensPath(o.runDir),
        trainExamplesPath(o.runDir), valExamplesPath(o.runDir),
        trainPairsPath(o.runDir), valPairsPath(o.runDir), rolloutsPath(o.runDir),
        tokenizerModelPath(o.runDir), teacherCachePath(o.runDir),
        teacherInitPath(o.runDir)})
    runtime::removeStaleTemporaries(file);

  if (!o.init.empty() && !runtime::pathExists(initialParametersPath(o.init)))
    return Status::error("--init: no checkpoint at '" +
                         initialParametersPath(o.init) + "'");
  Expected<std::unique_ptr<Artifact>> opened = Artifact::open(o.artifact);
  if (!opened)
    return opened.status();
  artifact = opened.take();
  Expected<TrainingInterface> t =
      trainingInterface(*artifact, o.batch, o.seq, o.task);
  if (!t)
    return t.status();
  o.batch = t->batch;
  o.seq = t->seq;
  if (Status s = prepareData(*t); !s)
    return s;
  if (!o.resume)
    if (Status s = writeText(runConfigPath(o.runDir), optionsJson(o).dump(2) + "\n");
        !s)
      return s;

  int64_t step = 0;
  if (o.resume) {
    if (Status s = resumeFromCheckpoint(step); !s)
      return s;
    say("resuming '" + o.runDir + "' at step " + std::to_string(step));
  }
  // A fresh run (or one resumed before its first checkpoint) starts from
  // --init; later ones from their checkpoint.
  if (step == 0 && !o.init.empty())
    if (Status s = loadInitialParameters(); !s)
      return s;
  if (step == 0 && o.initFromTeacher) {
    std::string summary;
    if (Status s = initializeFromTeacher(*artifact, teacher->artifact(),
                                         teacherInitPath(o.runDir), &summary);
        !s)
      return s;
    say("starting from the teacher's parameters (" + summary + ")");
  }
  if (preference() && !rewardModel())
    if (Status s = computeReferences(step); !s)
      return s;
  Expected<MetricsWriter> metrics = MetricsWriter::open(metricsPath(o.runDir));
  if (!metrics)
    return metrics.status();
  std::optional<MetricsWriter> rolloutLog;
  if (policy()) {
    Expected<MetricsWriter> opened = MetricsWriter::open(rolloutsPath(o.runDir));
    if (!opened)
      return opened.status();
    rolloutLog.emplace(opened.take());
  }

  const double tokensPerStep = static_cast<double>(t->batch * t->seq);
  std::optional<double> flopsPerStep;
  if (t->train->flops && t->train->hasStaticInputs())
    flopsPerStep = *t->train->flops;
  say(std::string(contrastive()   ? "contrastive training of '"
                  : captioning()  ? "captioning training of '"
                  : distill()     ? "distilling '" + o.teacher + "' into '"
                  : ppo()         ? "PPO on '"
                  : policy()      ? "GRPO on '"
                  : rewardModel() ? "reward model '"
                  : preference()  ? "DPO on '"
                  : fineTuning()  ? "fine-tuning '"
                                  : "pretraining '") +
      o.artifact + "': " + std::to_string(o.steps) + " steps of batch " +
      std::to_string(t->batch) + " x seq " + std::to_string(t->seq) + ", lr " +
      std::to_string(o.schedule.lr) + " (" + scheduleKindName(o.schedule.kind) +
      ", warmup " + std::to_string(o.schedule.warmupSteps) + ")");
  char line[256];
  if (policy()) {
    std::snprintf(line, sizeof line,
                  "%lld prompts x %lld samples per step (temperature %g, "
                  "up to %lld tokens), kl_coef %g, clip %g; ",
                  static_cast<long long>(t->batch / o.group),
                  static_cast<long long>(o.group), o.temperature,
                  static_cast<long long>(o.maxTokens), o.klCoef, o.clip);
    say(line + std::to_string(trainPrompts.size()) + " training and " +
        std::to_string(evalPrompts.size()) + " held-out prompts");
  } else if (rewardModel()) {
    say("Bradley-Terry loss on the score of each response's last token; " +
        std::to_string(trainPairs.size()) + " training and " +
        std::to_string(valPairs.size()) + " held-out pairs of " +
        std::to_string(t->batch / 2) + " per step");
  } else if (preference()) {
    std::snprintf(line, sizeof line, "beta %g, nll_coef %g; ", o.beta,
                  o.nllCoef);
    say(line + std::to_string(trainPairs.size()) + " training and " +
        std::to_string(valPairs.size()) + " held-out pairs of " +
        std::to_string(t->batch / 2) + " per step");
  } else if (distill()) {
    std::snprintf(line, sizeof line,
                  "alpha %g, temperature %g, reverse KL share %g%s; unigram "
                  "baseline %.4f; ",
                  o.alpha, o.temperature, o.reverse,
                  t->teacherHidden ? (", hidden_coef " +
                                      std::to_string(o.hiddenCoef)).c_str()
                                   : "",
                  unigramLoss);
    say(line + std::to_string(trainWindows) + " training windows" +
        (teacherCache ? " (teacher cached)" : ""));
  } else if (contrastive()) {
    say("symmetric InfoNCE over the batch's image-caption pairs; held-out "
        "retrieval at each evaluation");
  } else if (captioning()) {
    say("cross-entropy of each caption token after the image; held-out "
        "greedy captions at each evaluation");
  } else if (fineTuning()) {
    say("loss over the response tokens only; " +
        std::to_string(trainExamples) + " training and " +
        std::to_string(valExamples) + " held-out examples");
  } else {
    std::snprintf(line, sizeof line,
                  "unigram baseline: eval loss %.4f (perplexity %.1f)",
                  unigramLoss, std::exp(unigramLoss));
    say(line);
  }

  std::optional<double> lastEval;
  int64_t lastEvalStep = 0;
  if (step == 0) {
    MetricsRow row;
    row.set("step", int64_t(0));
    Expected<double> initial = evaluate(row);
    if (!initial)
      return initial.status();
    if (!std::isfinite(*initial))
      return notFinite("eval loss", *initial, 0);
    lastEval = *initial;
    if (distill()) {
      std::snprintf(line, sizeof line,
                    "teacher's held-out loss %.4f (perplexity %.1f); the "
                    "student's %.4f",
                    *teacherEvalLoss, std::exp(*teacherEvalLoss), *initial);
      say(line);
    }
    if (imageText())
      row.set("train_images", imageTrain->count)
          .set("val_images", imageVal->count)
          .set("novel_images", imageNovel ? imageNovel->count : int64_t(0));
    else if (policy())
      row.set("train_prompts", static_cast<int64_t>(trainPrompts.size()))
          .set("val_prompts", static_cast<int64_t>(evalPrompts.size()));
    else if (preference())
      row.set("train_pairs", static_cast<int64_t>(trainPairs.size()))
          .set("val_pairs", static_cast<int64_t>(valPairs.size()));
    else if (fineTuning())
      row.set("train_examples", trainExamples)
          .set("val_examples", valExamples);
    else if (distill())
      row.set("unigram_loss", unigramLoss)
          .set("teacher_eval_loss", *teacherEvalLoss)
          .set("train_windows", trainWindows)
          .set("val_tokens", valTokens->size());
    else
      row.set("unigram_loss", unigramLoss)
          .set("train_tokens", trainTokens->size())
          .set("val_tokens", valTokens->size());
    if (Status s = metrics->write(row); !s)
      return s;
  }

  double trainSeconds = 0;
  auto started = std::chrono::steady_clock::now();
  int64_t firstStep = step;
  bool terminal = log && isTerminal(log);
  while (step < o.steps) {
    double lr = learningRate(step, o.schedule);
    Expected<Batch> drawn = sampler->next();
    if (!drawn)
      return drawn.status();
    Batch batch = drawn.take();
    std::vector<NamedTensor> inputs = batchInputs(batch, *t->train);
    float lrValue = static_cast<float>(lr);
    float betaValue = static_cast<float>(o.beta);
    float nllValue = static_cast<float>(o.nllCoef);
    float klValue = static_cast<float>(o.klCoef);
    float clipValue = static_cast<float>(o.clip);
    if (preference() && !rewardModel()) {
      inputs.push_back({"beta", TensorView{DType::F32, {}, &betaValue}});
      inputs.push_back({"nll_coef", TensorView{DType::F32, {}, &nllValue}});
    }
    float valueClipValue = static_cast<float>(o.valueClip);
    float vfValue = static_cast<float>(o.vfCoef);
    float alphaValue = static_cast<float>(o.alpha);
    float temperatureValue = static_cast<float>(o.temperature);
    float reverseValue = static_cast<float>(o.reverse);
    float hiddenValue = static_cast<float>(o.hiddenCoef);
    if (policy() || distill()) {
      // Each objective's train_step takes the scalars it declares.
      for (NamedTensor scalar :
           {NamedTensor{"kl_coef", TensorView{DType::F32, {}, &klValue}},
            NamedTensor{"clip", TensorView{DType::F32, {}, &clipValue}},
            NamedTensor{"value_clip",
                        TensorView{DType::F32, {}, &valueClipValue}},
            NamedTensor{"vf_coef", TensorView{DType::F32, {}, &vfValue}},
            NamedTensor{"alpha", TensorView{DType::F32, {}, &alphaValue}},
            NamedTensor{"temperature",
                        TensorView{DType::F32, {}, &temperatureValue}},
            NamedTensor{"reverse", TensorView{DType::F32, {}, &reverseValue}},
            NamedTensor{"hidden_coef",
                        TensorView{DType::F32, {}, &hiddenValue}}})
        if (t->train->findInput(scalar.name))
          inputs.push_back(scalar);
    }
    inputs.push_back({"lr", TensorView{DType::F32, {}, &lrValue}});
    // PPO takes --ppo-epochs passes over each batch of rollouts, each in
    // --ppo-minibatches minibatches of rows; the loss and gradient norm
    // reported are the updates' means.
    std::vector<std::vector<int64_t>> minibatches =
        ppo() ? ppoMinibatches(o, step, batch.batch)
              : std::vector<std::vector<int64_t>>{{}};
    double updates = static_cast<double>(minibatches.size());
    double loss = 0, gradNorm = 0;
    auto begin = std::chrono::steady_clock::now();
    for (const std::vector<int64_t> &rows : minibatches) {
      // A minibatch is the static batch with every other row's targets
      // -100: those rows drop out of both losses and of their per-token
      // means.
      std::vector<int64_t> targets;
      std::vector<NamedTensor> call = inputs;
      if (!rows.empty() && static_cast<int64_t>(rows.size()) < batch.batch) {
        targets.assign(batch.targets.size(), -100);
        for (int64_t row : rows)
          std::copy_n(batch.targets.begin() + row * batch.seq, batch.seq,
                      targets.begin() + row * batch.seq);
        for (NamedTensor &input : call)
          if (input.name == "targets")
            input.view.data = targets.data();
      }
      auto outputs = artifact->run(KILN_ENTRY_TRAIN_STEP, call);
      if (!outputs)
        return outputs.status();
      loss += scalarOf((*outputs)[0]) / updates;
      gradNorm += scalarOf((*outputs)[1]) / updates;
    }
    auto finish = std::chrono::steady_clock::now();
    ++step;
    double seconds = std::chrono::duration<double>(finish - begin).count();
    trainSeconds += seconds;
    // The step updated the parameters in place, so a non-finite loss or
    // gradient ends the run here, before anything is checkpointed.
    if (!std::isfinite(loss))
      return notFinite("loss", loss, step);
    if (!std::isfinite(gradNorm))
      return notFinite("gradient norm", gradNorm, step);

    MetricsRow row;
    row.set("step", step)
        .set("loss", loss)
        .set("lr", lr)
        .set("grad_norm", gradNorm)
        .set("tokens_per_s", tokensPerStep / seconds)
        .set("step_ms", seconds * 1e3);
    if (imageText())
      row.set("images_per_s", static_cast<double>(batch.batch) / seconds);
    double mfu = 0;
    if (flopsPerStep) {
      mfu = *flopsPerStep / seconds / (o.peakGflops * 1e9);
      row.set("mfu", mfu);
    }
    row.set("energy_j", trainSeconds * o.watts);
    if (std::optional<double> epochs = sampler->epochs())
      row.set("epoch", *epochs);
    sampler->addMetrics(row);
    bool evalNow = step == o.steps || (o.evalEvery && step % o.evalEvery == 0);
    if (evalNow) {
      Expected<double> evalLoss = evaluate(row);
      if (!evalLoss)
        return evalLoss.status();
      if (!std::isfinite(*evalLoss))
        return notFinite("eval loss", *evalLoss, step);
      lastEval = *evalLoss;
      lastEvalStep = step;
    }
    if (Status s = metrics->write(row); !s)
      return s;
    if (rolloutLog)
      for (const MetricsRow &record : sampler->records())
        if (Status s = rolloutLog->write(record); !s)
          return s;
    if (step == o.steps || (o.checkpointEvery && step % o.checkpointEvery == 0))
      if (Status s = checkpoint(step); !s)
        return s;

    if (log && (terminal || step % o.logEvery == 0 || step == o.steps ||
                evalNow)) {
      ProgressLine progress;
      progress.step = step;
      progress.totalSteps = o.steps;
      progress.loss = loss;
      progress.evalLoss = lastEval;
      progress.evalStep = lastEvalStep;
      progress.lr = lr;
      progress.tokensPerSecond = tokensPerStep / seconds;
      if (imageText())
        progress.imagesPerSecond = static_cast<double>(batch.batch) / seconds;
      if (flopsPerStep)
        progress.mfu = mfu;
      double elapsed = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - started)
                           .count();
      progress.etaSeconds = elapsed / static_cast<double>(step - firstStep) *
                            static_cast<double>(o.steps - step);
      if (terminal) {
        printProgressInPlace(log, progress.format());
        progressShown = true;
      } else {
        printProgressLine(log, progress.format());
      }
    }
  }

  std::string png;
  if (Status s = plotRun(o.runDir, &png); !s)
    return s;
  if (lastEval && contrastive()) {
    for (const auto &[split, r] : lastRetrieval) {
      if (split.find("every") != std::string::npos) {
        std::snprintf(line, sizeof line,
                      "done: %s, image to text top-1 %.1f%% top-5 %.1f%% "
                      "(chance %.1f%%)",
                      split.c_str(), 100 * r.imageToTextTop1,
                      100 * r.imageToTextTop5, 100 * r.imageToTextChance1);
        say(line);
        continue;
      }
      std::snprintf(line, sizeof line,
                    "done: %s retrieval, image to text top-1 %.1f%% top-5 "
                    "%.1f%% (chance %.1f%%), text to image top-1 %.1f%% "
                    "top-5 %.1f%% (chance %.1f%%)",
                    split.c_str(), 100 * r.imageToTextTop1,
                    100 * r.imageToTextTop5, 100 * r.imageToTextChance1,
                    100 * r.textToImageTop1, 100 * r.textToImageTop5,
                    100 * r.textToImageChance1);
      say(line);
    }
    std::snprintf(line, sizeof line, "held-out contrastive loss %.4f",
                  *lastEval);
    say(line);
  } else if (lastEval && captioning()) {
    for (const std::string &example : captionExamples)
      say("  " + example);
    for (const auto &[split, c] : lastCaptions) {
      std::snprintf(line, sizeof line,
                    "done: %s greedy captions %.1f%% exact, %.1f%% of words "
                    "right (%lld images)",
                    split.c_str(), 100 * c.exact, 100 * c.words,
                    static_cast<long long>(c.images));
      say(line);
    }
    std::snprintf(line, sizeof line,
                  "held-out caption loss %.4f (perplexity %.2f)", *lastEval,
                  std::exp(*lastEval));
    say(line);
  } else if (lastEval && policy()) {
    std::snprintf(line, sizeof line,
                  "done: held-out success %.1f%% (%.1f%% at the first "
                  "evaluation)",
                  100.0 * *lastEval, 100.0 * firstSuccess.value_or(0));
    say(line);
  } else if (lastEval && preference()) {
    std::snprintf(line, sizeof line,
                  "done: held-out %s loss %.4f, preference accuracy %.1f%%",
                  rewardModel() ? "Bradley-Terry" : "DPO", *lastEval,
                  100.0 * lastAccuracy);
    say(line);
  } else if (lastEval && distill()) {
    std::snprintf(line, sizeof line,
                  "done: held-out loss %.4f (perplexity %.1f); the teacher's "
                  "%.4f (perplexity %.1f)",
                  *lastEval, std::exp(*lastEval), *teacherEvalLoss,
                  std::exp(*teacherEvalLoss));
    say(line);
  } else if (lastEval && fineTuning()) {
    std::snprintf(line, sizeof line,
                  "done: held-out response loss %.4f (perplexity %.2f)",
                  *lastEval, std::exp(*lastEval));
    say(line);
  } else if (lastEval) {
    std::snprintf(line, sizeof line,
                  "done: eval loss %.4f (perplexity %.1f); unigram baseline "
                  "%.4f (perplexity %.1f)",
                  *lastEval, std::exp(*lastEval), unigramLoss,
                  std::exp(unigramLoss));
    say(line);
  }
  say("checkpoint: " + checkpointPath(o.runDir));
  say("metrics: " + metricsPath(o.runDir));
  say("loss plot: " + png);
  return Status::ok();
}

} // namespace

runtime::Expected<PretrainOptions>
kiln::train::loadRunOptions(const std::string &runDir) {
  PretrainOptions o;
  o.runDir = runDir;
  if (Status s = restoreOptions(o, /*checkTask=*/false); !s)
    return s;
  return o;
}

std::string kiln::train::checkpointPath(const std::string &runDir) {
  return runDir + "/checkpoint.safetensors";
}
std::string kiln::train::runConfigPath(const std::string &runDir) {
  return runDir + "/run.json";
}
std::string kiln::train::tokenizerModelPath(const std::string &runDir) {
  return runDir + "/tokenizer.model";
}
std::string kiln::train::lossPlotPath(const std::string &runDir) {
  return runDir + "/loss.png";
}

Status kiln::train::pretrain(PretrainOptions options, std::FILE *log) {
  return Run(std::move(options), log).run();
}
