//===- Distill.cpp - Knowledge distillation's pieces ----------------------===//
//
// The teacher, fixed windows in epochs, the teacher cache and the student
// initialized from the teacher (Distill.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Train/Distill.h"

#include "kiln/Runtime/SafeTensors.h"
#include "kiln/Train/Eval.h"
#include "kiln/Train/Metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

using namespace kiln::train;
using kiln::runtime::Artifact;
using kiln::runtime::DType;
using kiln::runtime::EntryPointSpec;
using kiln::runtime::Expected;
using kiln::runtime::NamedTensor;
using kiln::runtime::OwnedTensor;
using kiln::runtime::Status;
using kiln::runtime::TensorSpec;
using kiln::runtime::TensorView;
using json = nlohmann::json;
namespace runtime = kiln::runtime;

namespace {

/// Whether a static dim of `spec` (or its maximum) refuses `size`.
bool refuses(const TensorSpec &spec, size_t dim, int64_t size) {
  int64_t declared = spec.shape[dim];
  if (declared != runtime::kDynamicDim)
    return declared != size;
  return dim < spec.maxShape.size() && spec.maxShape[dim] > 0 &&
         size > spec.maxShape[dim];
}

/// Checks `entry(input_ids) -> [B, S, width]` takes [batch, seq] ids.
Status checkTokenEntry(const Artifact &artifact, const EntryPointSpec *entry,
                       const std::string &name, int64_t batch, int64_t seq) {
  if (!entry)
    return Status::error("the teacher '" + artifact.dir() + "' has no " +
                         name + " entry point (it has: " +
                         artifact.manifest().entryPointNames() + ")" +
                         (name == "hidden_states"
                              ? "; compile it with kiln-compile --hidden-states"
                              : ""));
  if (entry->inputs.size() != 1 || entry->inputs[0].name != "input_ids" ||
      entry->inputs[0].rank() != 2 || entry->outputs.empty() ||
      entry->outputs[0].rank() != 3)
    return Status::error("the teacher's " + name + " must take input_ids "
                         "[batch, seq] alone and return [batch, seq, width] "
                         "(compile it without --attention-mask and "
                         "--position-ids)");
  const TensorSpec &ids = entry->inputs[0];
  if (refuses(ids, 0, batch) || refuses(ids, 1, seq))
    return Status::error("the teacher's " + name + " takes input_ids of "
                         "shape " + runtime::formatSpecShape(ids.shape) +
                         "; the student's batches are [" +
                         std::to_string(batch) + ", " + std::to_string(seq) +
                         "] (compile the teacher with that --batch and "
                         "--seq, or dynamic ones)");
  return Status::ok();
}

/// A float output as a batch input.
Batch::Input extraInput(const char *name, const OwnedTensor &tensor) {
  const float *data = tensor.as<float>();
  return {name, tensor.shape(),
          std::vector<float>(data, data + tensor.numElements())};
}

} // namespace

//===----------------------------------------------------------------------===//
// Teacher
//===----------------------------------------------------------------------===//

Expected<Teacher> Teacher::open(const std::string &path,
                                const std::string &checkpoint, int64_t batch,
                                int64_t seq, int64_t vocab,
                                int64_t hiddenWidth) {
  // A training artifact is opened as a frozen reference: one copy of the
  // model, no optimizer state.
  Expected<runtime::Manifest> manifest =
      runtime::Manifest::read(path + "/manifest.json");
  if (!manifest)
    return Status::error("--teacher: " + manifest.message());
  bool training = false;
  for (const EntryPointSpec &entry : manifest->entryPoints)
    training |= !entry.writesParameters.empty();
  Expected<std::unique_ptr<Artifact>> opened =
      training ? Artifact::open(path, Artifact::OpenMode::Reference)
               : Artifact::open(path, Artifact::OpenMode::Resident);
  if (!opened)
    return Status::error("--teacher: " + opened.message());
  std::unique_ptr<Artifact> artifact = opened.take();
  if (!checkpoint.empty()) {
    if (!artifact->writesParameters())
      return Status::error("--teacher-checkpoint: '" + path +
                           "' is an inference artifact; it keeps the "
                           "weights it was compiled with (compile it with "
                           "--weights FILE instead)");
    Status loaded = artifact->loadParameters(
        checkpoint, /*requireAll=*/true, Artifact::LoadSelection::ModelOnly);
    if (!loaded)
      return Status::error("--teacher-checkpoint: " + loaded.message());
  }
  const EntryPointSpec *forward = artifact->findEntryPoint("forward");
  if (Status s = checkTokenEntry(*artifact, forward, "forward", batch, seq); !s)
    return s;
  int64_t teacherVocab = forward->outputs[0].shape.back();
  if (teacherVocab != vocab)
    return Status::error(
        "the teacher's vocabulary (" + std::to_string(teacherVocab) +
        " logits) differs from the student's (" + std::to_string(vocab) +
        "): teacher and student must share the tokenizer");
  if (hiddenWidth > 0) {
    const EntryPointSpec *hidden = artifact->findEntryPoint("hidden_states");
    if (Status s =
            checkTokenEntry(*artifact, hidden, "hidden_states", batch, seq);
        !s)
      return s;
    int64_t width = hidden->outputs[0].shape.back();
    if (width != hiddenWidth)
      return Status::error(
          "the teacher's hidden states are " + std::to_string(width) +
          " wide, the student's train_step takes teacher_hidden " +
          std::to_string(hiddenWidth) + " wide: compile the student with "
          "--hidden-projection " + std::to_string(width));
  }
  Teacher teacher;
  teacher.artifact_ = std::move(artifact);
  teacher.vocab_ = vocab;
  teacher.hiddenWidth_ = hiddenWidth;
  return teacher;
}

Status Teacher::annotate(Batch &batch) const {
  std::vector<NamedTensor> ids = {
      {"input_ids",
       TensorView{DType::I64, {batch.batch, batch.seq}, batch.inputs.data()}}};
  auto logits = artifact_->run("forward", ids);
  if (!logits)
    return Status::error("the teacher's forward: " + logits.message());
  batch.extra.push_back(extraInput(kTeacherLogits, (*logits)[0]));
  if (hiddenWidth_ > 0) {
    auto hidden = artifact_->run("hidden_states", ids);
    if (!hidden)
      return Status::error("the teacher's hidden_states: " + hidden.message());
    batch.extra.push_back(extraInput(kTeacherHidden, (*hidden)[0]));
  }
  return Status::ok();
}

double kiln::train::crossEntropy(const float *logits,
                                 const std::vector<int64_t> &targets,
                                 int64_t vocab) {
  double total = 0;
  int64_t counted = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] < 0)
      continue;
    total += tokenCrossEntropy(logits + static_cast<int64_t>(i) * vocab, vocab,
                               targets[i]);
    ++counted;
  }
  return counted ? total / static_cast<double>(counted) : 0.0;
}

//===----------------------------------------------------------------------===//
// Windows in epochs
//===----------------------------------------------------------------------===//

namespace {
constexpr const char *kWindowTag = "kiln-window-sampler";
} // namespace

Expected<TokenWindowEpochs>
TokenWindowEpochs::create(std::shared_ptr<const TokenFile> tokens,
                          int64_t batch, int64_t seq, uint64_t seed) {
  if (batch < 1 || seq < 1)
    return Status::error("batch and seq must be positive");
  int64_t windows = tokens->size() > seq ? (tokens->size() - 1) / seq : 0;
  if (windows < batch)
    return Status::error("'" + tokens->path() + "' has " +
                         std::to_string(tokens->size()) + " tokens: " +
                         std::to_string(windows) + " windows of " +
                         std::to_string(seq + 1) + " tokens, fewer than a "
                         "batch of " + std::to_string(batch));
  TokenWindowEpochs sampler;
  sampler.tokens_ = std::move(tokens);
  sampler.batch_ = batch;
  sampler.seq_ = seq;
  sampler.order_ = EpochOrder(windows, batch, seed);
  return sampler;
}

Batch TokenWindowEpochs::batchOf(const std::vector<int64_t> &indices) const {
  std::vector<int64_t> starts;
  for (int64_t window : indices)
    starts.push_back(window * seq_);
  return windowBatch(*tokens_, starts, seq_);
}

Batch TokenWindowEpochs::next(std::vector<int64_t> &indices) {
  indices = order_.next();
  return batchOf(indices);
}

Batch TokenWindowEpochs::range(int64_t first, int64_t count) const {
  std::vector<int64_t> indices;
  for (int64_t row = 0; row < batch_; ++row)
    indices.push_back(first + std::min(row, count - 1));
  return batchOf(indices);
}

std::string TokenWindowEpochs::saveState() const {
  return saveEpochState(kWindowTag, order_, seq_);
}

Status TokenWindowEpochs::restoreState(const std::string &state) {
  return restoreEpochState(kWindowTag, "window", state, seq_, order_);
}

//===----------------------------------------------------------------------===//
// The teacher cache
//===----------------------------------------------------------------------===//

namespace {
constexpr uint64_t kCacheHeaderBytes = 256;
constexpr const char *kCacheFormat = "kiln-teacher-cache";
} // namespace

uint64_t TeacherCache::bytesFor(int64_t windows, int64_t seq, int64_t vocab,
                                int64_t hidden) {
  return kCacheHeaderBytes + static_cast<uint64_t>(windows) *
                                 static_cast<uint64_t>(seq) *
                                 static_cast<uint64_t>(vocab + hidden) * 4;
}

Status TeacherCache::write(const std::string &path, const Teacher &teacher,
                           const TokenWindowEpochs &windows, int64_t seq,
                           std::FILE *log) {
  int64_t count = windows.windows();
  json header = {{"format", kCacheFormat},
                 {"version", 1},
                 {"windows", count},
                 {"seq", seq},
                 {"vocab", teacher.vocab()},
                 {"hidden", teacher.hiddenWidth()}};
  std::string text = header.dump() + "\n";
  if (text.size() > kCacheHeaderBytes)
    return Status::error("teacher cache header too long");
  text.resize(kCacheHeaderBytes, ' ');
  return runtime::writeFileAtomically(path, [&](int fd) -> Status {
    if (Status s = runtime::writeAll(fd, text.data(), text.size(), path); !s)
      return s;
    int64_t rows = windows.batch();
    int64_t reported = -1;
    for (int64_t first = 0; first < count; first += rows) {
      int64_t n = std::min(rows, count - first);
      Batch batch = windows.range(first, n);
      if (Status s = teacher.annotate(batch); !s)
        return s;
      // Per window: its logits, then its hidden states.
      for (int64_t row = 0; row < n; ++row)
        for (const Batch::Input &input : batch.extra) {
          int64_t width = input.shape.back();
          const float *data = input.values.data() + row * seq * width;
          if (Status s = runtime::writeAll(
                  fd, data, static_cast<size_t>(seq * width) * sizeof(float),
                  path);
              !s)
            return s;
        }
      int64_t percent = (first + n) * 100 / count;
      if (log && percent / 10 != reported / 10) {
        std::fprintf(log, "caching the teacher's outputs: %lld of %lld "
                          "windows (%lld%%)\n",
                     static_cast<long long>(first + n),
                     static_cast<long long>(count),
                     static_cast<long long>(percent));
        std::fflush(log);
        reported = percent;
      }
    }
    return Status::ok();
  });
}

Expected<TeacherCache> TeacherCache::open(const std::string &path,
                                          int64_t windows, int64_t seq,
                                          int64_t vocab, int64_t hidden) {
  Expected<runtime::MappedFile> mapped =
      runtime::MappedFile::open(path, "teacher cache");
  if (!mapped)
    return mapped.status();
  auto bad = [&](const std::string &why) {
    return Status::error("'" + path + "' is not this run's teacher cache: " +
                         why + " (delete it to have it made again)");
  };
  if (mapped->size() < kCacheHeaderBytes)
    return bad("it is shorter than its header");
  std::string text(reinterpret_cast<const char *>(mapped->data()),
                   kCacheHeaderBytes);
  json header = json::parse(text.substr(0, text.find('\n')), nullptr,
                            /*allow_exceptions=*/false);
  if (!header.is_object() || header.value("format", "") != kCacheFormat ||
      header.value("version", 0) != 1)
    return bad("no kiln-teacher-cache header");
  auto field = [&](const char *key) -> int64_t {
    const json &value = header[key];
    return value.is_number_integer() ? value.get<int64_t>() : -1;
  };
  if (field("windows") != windows || field("seq") != seq ||
      field("vocab") != vocab || field("hidden") != hidden)
    return bad("it holds " + std::to_string(field("windows")) +
               " windows of seq " + std::to_string(field("seq")) +
               ", vocabulary " + std::to_string(field("vocab")) +
               " and hidden width " + std::to_string(field("hidden")) +
               "; the run needs " + std::to_string(windows) + ", " +
               std::to_string(seq) + ", " + std::to_string(vocab) + " and " +
               std::to_string(hidden));
  if (mapped->size() != bytesFor(windows, seq, vocab, hidden))
    return bad("it is " + std::to_string(mapped->size()) + " bytes, not " +
               std::to_string(bytesFor(windows, seq, vocab, hidden)));
  TeacherCache cache;
  cache.file_ = mapped.take();
  cache.offset_ = kCacheHeaderBytes;
  cache.seq_ = seq;
  cache.vocab_ = vocab;
  cache.hidden_ = hidden;
  return cache;
}

void TeacherCache::annotate(const std::vector<int64_t> &indices,
                            Batch &batch) const {
  int64_t rows = static_cast<int64_t>(indices.size());
  const float *base =
      reinterpret_cast<const float *>(file_.data() + offset_);
  int64_t perWindow = seq_ * (vocab_ + hidden_);
  for (auto [name, width, skip] :
       {std::tuple{kTeacherLogits, vocab_, int64_t(0)},
        std::tuple{kTeacherHidden, hidden_, seq_ * vocab_}}) {
    if (width == 0)
      continue;
    Batch::Input input{name, {rows, seq_, width}, {}};
    input.values.resize(static_cast<size_t>(rows * seq_ * width));
    for (int64_t row = 0; row < rows; ++row) {
      const float *window =
          base + indices[static_cast<size_t>(row)] * perWindow + skip;
      std::memcpy(input.values.data() + row * seq_ * width, window,
                  static_cast<size_t>(seq_ * width) * sizeof(float));
    }
    batch.extra.push_back(std::move(input));
  }
}

//===----------------------------------------------------------------------===//
// A student initialized from the teacher
//===----------------------------------------------------------------------===//

namespace {

/// "transformer.h.3.attn.c_attn.weight" -> ("transformer.h.", 3,
/// ".attn.c_attn.weight"); gpt2's and llama's layer names.
bool splitLayerName(const std::string &name, std::string &prefix,
                    int64_t &layer, std::string &rest) {
  static const std::regex pattern(R"(^(.*\.(?:h|layers)\.)(\d+)(\..*)$)");
  std::smatch match;
  if (!std::regex_match(name, match, pattern))
    return false;
  prefix = match[1];
  layer = std::stoll(match[2]);
  rest = match[3];
  return true;
}

bool addedByAlignment(const std::string &name) {
  for (const char *prefix : {"score.", "value_head.", "distill_projection."})
    if (name.rfind(prefix, 0) == 0)
      return true;
  return false;
}

int64_t layerCount(const std::vector<runtime::ParameterSpec> &parameters) {
  std::set<int64_t> layers;
  std::string prefix, rest;
  int64_t layer = 0;
  for (const runtime::ParameterSpec &p : parameters)
    if (!p.state && splitLayerName(p.name, prefix, layer, rest))
      layers.insert(layer);
  return static_cast<int64_t>(layers.size());
}

} // namespace

Status kiln::train::initializeFromTeacher(Artifact &student,
                                          const Artifact &teacher,
                                          const std::string &scratch,
                                          std::string *summary) {
  int64_t studentLayers = layerCount(student.parameters());
  int64_t teacherLayers = layerCount(teacher.parameters());
  if (studentLayers > teacherLayers)
    return Status::error("--init-from-teacher: the student has " +
                         std::to_string(studentLayers) + " layers, the "
                         "teacher only " + std::to_string(teacherLayers));
  std::map<std::string, const runtime::ParameterSpec *> teacherParams;
  for (const runtime::ParameterSpec &p : teacher.parameters())
    if (!p.state)
      teacherParams[p.name] = &p;
  std::vector<OwnedTensor> copies;
  std::vector<NamedTensor> tensors;
  std::map<int64_t, int64_t> layerMap;
  for (const runtime::ParameterSpec &p : student.parameters()) {
    if (p.state || addedByAlignment(p.name))
      continue;
    std::string source = p.name, prefix, rest;
    int64_t layer = 0;
    if (splitLayerName(p.name, prefix, layer, rest)) {
      int64_t from = studentLayers ? layer * teacherLayers / studentLayers : 0;
      layerMap[layer] = from;
      source = prefix + std::to_string(from) + rest;
    }
    auto found = teacherParams.find(source);
    if (found == teacherParams.end())
      return Status::error("--init-from-teacher: the teacher has no '" +
                           source + "' for the student's '" + p.name +
                           "' (teacher and student must be the same family)");
    // An inference teacher's linear weight may be read as column panels:
    // packed when it was loaded (its weights file holds the weight
    // itself), or stored so (no weight to copy).
    const runtime::ParameterSpec &from = *found->second;
    if (from.packed && !from.packed->atLoad)
      return Status::error(
          "--init-from-teacher: the teacher's '" + source +
          "' is stored as the CPU matmul's column panels (an artifact "
          "compiled with --pack-weights=file): compile the teacher with "
          "the default --pack-weights=load, or none");
    const std::vector<int64_t> &shape =
        from.packed ? from.packed->shape : from.shape;
    if (shape != p.shape || from.dtype != p.dtype)
      return Status::error(
          "--init-from-teacher: the student's '" + p.name + "' is " +
          runtime::formatSpecShape(p.shape) + ", the teacher's '" + source +
          "' " + runtime::formatSpecShape(shape) +
          ": initializing from the teacher needs the same widths");
    if (from.packed) {
      const runtime::SafeTensorsFile *file = teacher.weights();
      const runtime::SafeTensorInfo *info = file ? file->find(source) : nullptr;
      if (!info)
        return Status::error("--init-from-teacher: the teacher's weights "
                             "file has no '" +
                             source + "'");
      tensors.push_back({p.name, file->view(*info)});
      continue;
    }
    Expected<OwnedTensor> copy = teacher.readParameter(source);
    if (!copy)
      return copy.status();
    copies.push_back(copy.take());
    tensors.push_back({p.name, copies.back().view()});
  }
  if (Status s = runtime::writeSafeTensors(scratch, tensors); !s)
    return s;
  if (Status s = student.loadParameters(scratch, /*requireAll=*/true,
                                        Artifact::LoadSelection::ModelOnly);
      !s)
    return Status::error("--init-from-teacher: " + s.message());
  if (summary) {
    std::string text;
    for (auto [to, from] : layerMap)
      text += (text.empty() ? "" : ", ") + std::to_string(to) + " <- " +
              std::to_string(from);
    *summary = std::to_string(tensors.size()) + " tensors; layers " + text;
  }
  return Status::ok();
}
