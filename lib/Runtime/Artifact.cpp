//===- Artifact.cpp - Loading and running Kiln artifacts ------------------===//
//
// open() validates everything it can before the first call: a bad artifact
// fails there with a message naming the file and the tensor, not in run().
// run() marshals MLIR ranked memref descriptors (docs/artifacts.md) for the
// inputs and parameters, calls kiln_entry_<E>(void **args), and adopts the
// results the module malloc'ed.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Artifact.h"

#include "ArtifactModule.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/File.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <map>
#include <mutex>
#include <set>
#include <sys/stat.h>

namespace kiln::runtime {

namespace {
bool isAligned(const void *data, DType dtype) {
  return reinterpret_cast<uintptr_t>(data) % dtypeSize(dtype) == 0;
}

std::string quotedList(const std::vector<std::string> &names) {
  std::string text;
  for (const std::string &name : names)
    text += (text.empty() ? "'" : ", '") + name + "'";
  return text;
}

std::string specNames(const std::vector<TensorSpec> &specs) {
  std::string text;
  for (const TensorSpec &spec : specs)
    text += (text.empty() ? "" : ", ") + spec.name;
  return text.empty() ? "none" : text;
}

std::string describe(DType dtype, const std::vector<int64_t> &shape) {
  return std::string(dtypeName(dtype)) + " " + formatSpecShape(shape);
}

/// Copies a strided tensor of `rank` dims to a contiguous row-major buffer.
void stridedCopy(const unsigned char *src, unsigned char *dst,
                 const int64_t *sizes, const int64_t *strides, size_t rank,
                 size_t elementSize) {
  if (rank == 0) {
    std::memcpy(dst, src, elementSize);
    return;
  }
  int64_t inner = 1;
  for (size_t d = 1; d < rank; ++d)
    inner *= sizes[d];
  for (int64_t i = 0; i < sizes[0]; ++i)
    stridedCopy(src + i * strides[0] * static_cast<int64_t>(elementSize),
                dst + i * inner * static_cast<int64_t>(elementSize), sizes + 1,
                strides + 1, rank - 1, elementSize);
}

/// The words of a ranked memref descriptor for a contiguous tensor.
void appendDescriptor(std::vector<int64_t> &words, const void *data,
                      const std::vector<int64_t> &shape) {
  int64_t pointer = static_cast<int64_t>(reinterpret_cast<uintptr_t>(data));
  words.push_back(pointer); // allocated
  words.push_back(pointer); // aligned
  words.push_back(0);       // offset
  for (int64_t d : shape)
    words.push_back(d);
  int64_t stride = 1;
  std::vector<int64_t> strides(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  words.insert(words.end(), strides.begin(), strides.end());
}

size_t descriptorWords(size_t rank) { return KILN_DESCRIPTOR_WORDS(rank); }
} // namespace

OwnedTensor OwnedTensor::allocate(DType dtype, std::vector<int64_t> shape) {
  size_t bytes =
      static_cast<size_t>(kiln::runtime::numElements(shape)) * dtypeSize(dtype);
  std::shared_ptr<void> buffer = alignedBuffer(bytes);
  void *data = buffer.get();
  return OwnedTensor(dtype, std::move(shape), data, std::move(buffer));
}

namespace {
Expected<std::unique_ptr<Artifact::Module>>
loadModule(TargetKind target, const std::string &dir, const std::string &path,
           const Manifest &manifest) {
  switch (target) {
  case TargetKind::CPU:
    return loadCpuModule(path, manifest);
  case TargetKind::CUDA:
    return loadCudaModule(dir, path, manifest);
  }
  return Status::error("cannot load '" + path + "': unknown target");
}
} // namespace

//===----------------------------------------------------------------------===//
// Artifact::open
//===----------------------------------------------------------------------===//

Artifact::~Artifact() = default;

/// Generated code allocates its results and large temporaries with
/// malloc on every call. glibc serves big blocks by mmap and returns them
/// with munmap, and trims the heap when much is free at its top, so every
/// call faulted fresh pages in (a tenth of a GPT-2 forward, more of a
/// training step, whose gigabyte of temporaries is freed at once).
/// M_MMAP_THRESHOLD cannot exceed 32 MiB, so mmap is turned off
/// altogether and trimming too: the heap keeps its pages for the next
/// call. Applied once per process, when the first artifact is opened.
static void keepLargeAllocationsInTheHeap() {
  static const bool applied = [] {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);
    return true;
  }();
  (void)applied;
}

Expected<std::unique_ptr<Artifact>> Artifact::open(const std::string &dir) {
  return open(dir, OpenMode::Full);
}

Expected<std::unique_ptr<Artifact>> Artifact::open(const std::string &dir,
                                                   OpenMode mode) {
  keepLargeAllocationsInTheHeap();
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return Status::error("cannot open artifact '" + dir +
                         "': " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return Status::error("'" + dir +
                         "' is not a Kiln artifact: it is not a directory");
  std::string manifestPath = dir + "/" KILN_MANIFEST_FILE;
  if (!pathExists(manifestPath))
    return Status::error("'" + dir +
                         "' is not a Kiln artifact: it has no manifest.json "
                         "(an artifact is complete only once manifest.json "
                         "is written)");

  std::unique_ptr<Artifact> artifact(new Artifact);
  artifact->dir_ = dir;
  Expected<Manifest> manifest = Manifest::read(manifestPath);
  if (!manifest)
    return manifest.status();
  artifact->manifest_ = manifest.take();
  const Manifest &m = artifact->manifest_;

  // Weights first: they need no code to run.
  std::string weightsPath = dir + "/" + m.weights;
  if (!m.parameters.empty() || pathExists(weightsPath)) {
    Expected<SafeTensorsFile> weights = SafeTensorsFile::open(weightsPath);
    if (!weights)
      return weights.status();
    artifact->weights_.emplace(weights.take());
  }
  const SafeTensorsFile *weights = artifact->weights();
  for (const EntryPointSpec &entry : m.entryPoints)
    artifact->writable_ |= !entry.writesParameters.empty();
  bool reference = mode == OpenMode::Reference;
  if (reference && !artifact->writable_)
    return Status::error("'" + dir + "' is an inference artifact; a "
                         "reference copy is made of a training artifact");
  // Check every parameter against the weights before loading any code.
  // sources[i]: where parameter i's initial value lies in the mapping
  // (null for optimizer state, which starts at zero).
  std::vector<const void *> sources;
  for (const ParameterSpec &param : m.parameters) {
    if (param.state) {
      sources.push_back(nullptr);
      continue;
    }
    const SafeTensorInfo *info = weights->find(param.name);
    if (!info)
      return Status::error("'" + weightsPath + "' has no tensor '" +
                           param.name + "', a parameter in manifest.json");
    // A weight packed when loaded is stored as the checkpoint holds it.
    const std::vector<int64_t> &stored = param.packed && param.packed->atLoad
                                             ? param.packed->shape
                                             : param.shape;
    if (info->dtype != param.dtype || info->shape != stored)
      return Status::error("parameter '" + param.name + "' is " +
                           describe(param.dtype, stored) + " in manifest.json" +
                           (param.packed && param.packed->atLoad
                                ? " (to be packed when loaded)"
                                : "") +
                           " but " + describe(info->dtype, info->shape) +
                           " in '" + weightsPath + "'");
    if ((param.offset && *param.offset != info->begin) ||
        (param.size && *param.size != info->end - info->begin))
      return Status::error(
          "parameter '" + param.name + "' lies at bytes [" +
          std::to_string(info->begin) + ", " + std::to_string(info->end) +
          ") of the data in '" + weightsPath +
          "', but manifest.json says offset " +
          (param.offset ? std::to_string(*param.offset) : "?") + ", size " +
          (param.size ? std::to_string(*param.size) : "?"));
    sources.push_back(weights->view(*info).data);
  }
  if (weights)
    for (const SafeTensorInfo &info : weights->tensors())
      if (!m.findParameter(info.name))
        return Status::error("'" + weightsPath + "' has tensor '" + info.name +
                             "', which is not a parameter in manifest.json");

  // Weights packed when loaded are a CPU inference artifact's: a training
  // artifact loads and saves checkpoints in its parameters' shapes.
  for (const ParameterSpec &param : m.parameters)
    if (param.packed && param.packed->atLoad &&
        (m.target != TargetKind::CPU || artifact->writable_))
      return Status::error(
          "parameter '" + param.name +
          "' is to be packed into the CPU matmul's column panels when "
          "loaded, which only a CPU inference artifact does, but '" +
          dir + "' is " +
          (m.target != TargetKind::CPU ? "a device artifact"
                                       : "a training artifact"));

  for (const EntryPointSpec &entry : m.entryPoints) {
    std::vector<size_t> indices;
    for (const std::string &name : entry.parameters)
      indices.push_back(
          static_cast<size_t>(m.findParameter(name) - m.parameters.data()));
    artifact->entryParameters_.push_back(std::move(indices));
  }

  Expected<std::unique_ptr<Module>> module =
      loadModule(m.target, dir, dir + "/" + m.module, m);
  if (!module)
    return module.status();
  artifact->module_ = module.take();
  const Module &code = *artifact->module_;

  // Place the parameters in the module's memory. A device module gets a
  // buffer per parameter. A host module places those it copies in one
  // arena of large pages (largePageBuffer): a training artifact all of
  // them, optimizer state included; an inference artifact the misaligned
  // ones and those it packs into column panels, or, opened Resident, all
  // its weights, copied out of the mapping (whose 4 KiB pages cost a TLB
  // miss every 4 KiB of a weight the matmuls stream). The others are read
  // where they lie.
  auto packsAtLoad = [](const ParameterSpec &param) {
    return param.packed && param.packed->atLoad;
  };
  bool mapWeights =
      !code.isDevice() && !artifact->writable_ && mode != OpenMode::Resident;
  auto bytesOf = [](const ParameterSpec &param) {
    return static_cast<size_t>(numElements(param.shape)) *
           dtypeSize(param.dtype);
  };
  // Per parameter: where it goes in the arena, or npos for none.
  constexpr size_t npos = static_cast<size_t>(-1);
  std::vector<size_t> arenaOffsets(m.parameters.size(), npos);
  size_t arenaBytes = 0;
  if (!code.isDevice())
    for (size_t i = 0; i < m.parameters.size(); ++i) {
      const ParameterSpec &param = m.parameters[i];
      if ((reference && param.state) ||
          (mapWeights && sources[i] && isAligned(sources[i], param.dtype) &&
           !packsAtLoad(param)))
        continue;
      arenaOffsets[i] = arenaBytes;
      arenaBytes += roundUp(bytesOf(param), kBufferAlignment);
    }
  unsigned char *arena = nullptr;
  if (arenaBytes > 0) {
    std::shared_ptr<void> buffer = largePageBuffer(arenaBytes);
    if (!buffer)
      return Status::error("cannot allocate " + std::to_string(arenaBytes) +
                           " bytes for the parameters of '" + dir + "'");
    arena = static_cast<unsigned char *>(buffer.get());
    artifact->parameterBuffers_.push_back(std::move(buffer));
  }
  bool mappingInUse = false;
  for (size_t i = 0; i < m.parameters.size(); ++i) {
    const ParameterSpec &param = m.parameters[i];
    size_t bytes = bytesOf(param);
    const void *source = sources[i];
    if (reference && param.state) {
      artifact->parameterData_.push_back(nullptr);
      continue;
    }
    void *data = nullptr;
    if (arenaOffsets[i] != npos) {
      data = arena + arenaOffsets[i];
    } else if (!code.isDevice()) {
      // Read where it lies.
      artifact->parameterData_.push_back(const_cast<void *>(source));
      mappingInUse = true;
      continue;
    } else {
      Expected<std::shared_ptr<void>> buffer = code.allocate(bytes);
      if (!buffer)
        return Status::error("parameter '" + param.name +
                             "': " + buffer.message());
      data = buffer->get();
      artifact->parameterBuffers_.push_back(buffer.take());
    }
    if (source && packsAtLoad(param)) {
      param.packed->pack(source, data);
      artifact->parameterData_.push_back(data);
      continue;
    }
    Status placed =
        source ? code.copyIn(data, source, bytes) : code.fillZero(data, bytes);
    if (!placed)
      return Status::error("parameter '" + param.name + "': " +
                           placed.message());
    artifact->parameterData_.push_back(data);
  }
  // Everything was copied: the mapping's pages can go (they are read
  // from the file again if anything touches them).
  if (artifact->weights_ && !mappingInUse)
    artifact->weights_->releasePages();
  return artifact;
}

std::optional<TensorView> Artifact::parameter(const std::string &name) const {
  const ParameterSpec *param = manifest_.findParameter(name);
  if (!param)
    return std::nullopt;
  size_t index = static_cast<size_t>(param - manifest_.parameters.data());
  if (!parameterData_[index])
    return std::nullopt; // Optimizer state of a reference copy.
  if (!module_->isDevice())
    return TensorView{param->dtype, param->shape, parameterData_[index]};
  Expected<OwnedTensor> copy = readParameter(name);
  if (!copy)
    return std::nullopt;
  std::lock_guard<std::mutex> lock(hostCopiesMutex_);
  OwnedTensor &slot = hostCopies_[index];
  slot = copy.take();
  return slot.view();
}

Expected<OwnedTensor> Artifact::readParameter(const std::string &name) const {
  const ParameterSpec *param = manifest_.findParameter(name);
  if (!param)
    return Status::error("'" + dir_ + "' has no parameter '" + name + "'");
  size_t index = static_cast<size_t>(param - manifest_.parameters.data());
  if (!parameterData_[index])
    return Status::error("'" + dir_ + "' was opened as a frozen reference: "
                         "it holds no optimizer state '" + name + "'");
  OwnedTensor copy = OwnedTensor::allocate(param->dtype, param->shape);
  if (Status s = module_->copyOut(copy.data(), parameterData_[index],
                                  copy.byteSize());
      !s)
    return Status::error("reading parameter '" + name + "': " + s.message());
  return copy;
}

//===----------------------------------------------------------------------===//
// Saving and loading parameters
//===----------------------------------------------------------------------===//

Status
Artifact::saveParameters(const std::string &path,
                         const std::map<std::string, std::string> &metadata)
    const {
  std::vector<NamedTensor> tensors;
  // Device parameters are read back to the host first.
  std::vector<OwnedTensor> hostCopies;
  for (size_t i = 0; i < manifest_.parameters.size(); ++i) {
    const ParameterSpec &param = manifest_.parameters[i];
    const void *data = parameterData_[i];
    if (!data)
      continue; // A reference copy holds no optimizer state.
    if (module_->isDevice()) {
      Expected<OwnedTensor> copy = readParameter(param.name);
      if (!copy)
        return copy.status();
      hostCopies.push_back(copy.take());
      data = hostCopies.back().data();
    }
    tensors.push_back({param.name, TensorView{param.dtype, param.shape, data}});
  }
  return writeSafeTensors(path, tensors, metadata);
}

Status Artifact::loadParameters(const std::string &path, bool requireAll,
                                LoadSelection selection) {
  bool modelOnly = selection == LoadSelection::ModelOnly;
  // The heads the alignment methods and distillation add to a language
  // model: a checkpoint with one loads into the model without it, and the
  // other way round.
  auto isHead = [](const std::string &name) {
    return name.rfind("score.", 0) == 0 ||
           name.rfind("value_head.", 0) == 0 ||
           name.rfind("distill_projection.", 0) == 0;
  };
  if (!writable_)
    return Status::error("'" + dir_ + "' has no entry point that updates "
                         "parameters; loading parameters needs a training "
                         "artifact (kiln-compile --mode train)");
  Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
  if (!file)
    return file.status();
  // Check everything before copying anything: a bad file changes nothing.
  std::vector<std::pair<size_t, const SafeTensorInfo *>> copies;
  for (const SafeTensorInfo &info : file->tensors()) {
    const ParameterSpec *param = manifest_.findParameter(info.name);
    if (modelOnly && (param ? param->state
                            : info.name.find('/') != std::string::npos ||
                                  isHead(info.name)))
      continue;
    // A reference copy holds no optimizer state to load into.
    if (param && !parameterData_[static_cast<size_t>(
                     param - manifest_.parameters.data())])
      continue;
    if (!param)
      return Status::error("'" + path + "' has tensor '" + info.name +
                           "', which is not a parameter of '" + dir_ + "'");
    if (info.dtype != param->dtype || info.shape != param->shape)
      return Status::error("'" + path + "': tensor '" + info.name + "' is " +
                           describe(info.dtype, info.shape) +
                           ", the artifact's parameter is " +
                           describe(param->dtype, param->shape));
    copies.emplace_back(
        static_cast<size_t>(param - manifest_.parameters.data()), &info);
  }
  if (requireAll)
    for (size_t i = 0; i < manifest_.parameters.size(); ++i) {
      const ParameterSpec &param = manifest_.parameters[i];
      if (!(modelOnly && (param.state || isHead(param.name))) &&
          parameterData_[i] &&
          !file->find(param.name))
        return Status::error("'" + path + "' has no tensor '" + param.name +
                             "' (" + (param.state ? "optimizer state"
                                                  : "a model parameter") +
                             " of '" + dir_ + "')");
    }
  for (auto [index, info] : copies) {
    TensorView view = file->view(*info);
    if (Status s =
            module_->copyIn(parameterData_[index], view.data, view.byteSize());
        !s)
      return Status::error("'" + path + "': copying tensor '" + info->name +
                           "' into the artifact: " + s.message());
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Artifact::run
//===----------------------------------------------------------------------===//

Expected<std::vector<OwnedTensor>>
Artifact::run(const std::string &entryName,
              const std::vector<NamedTensor> &inputs) const {
  return run(entryName, inputs, {});
}

Expected<std::vector<OwnedTensor>>
Artifact::run(const std::string &entryName,
              const std::vector<NamedTensor> &inputs,
              const std::vector<InPlaceTensor> &inPlace) const {
  const EntryPointSpec *entry = manifest_.findEntryPoint(entryName);
  if (!entry)
    return Status::error("unknown entry point '" + entryName +
                         "'; the artifact has: " +
                         manifest_.entryPointNames());
  size_t entryIndex =
      static_cast<size_t>(entry - manifest_.entryPoints.data());
  std::string where = "entry point '" + entry->name + "'";

  // Match the given inputs to the declared ones by name; in-place inputs
  // must come writable, the others read-only.
  std::vector<TensorView> givenViews(entry->inputs.size());
  std::vector<bool> isGiven(entry->inputs.size(), false);
  // Per input: the caller's writable buffer (in-place inputs only).
  std::vector<void *> writable(entry->inputs.size(), nullptr);
  std::vector<std::string> unknown;
  auto match = [&](const std::string &name, TensorView view, bool inPlaceGiven,
                   void *writableData) -> Status {
    const TensorSpec *spec = entry->findInput(name);
    if (!spec) {
      unknown.push_back(name);
      return Status::ok();
    }
    size_t index = static_cast<size_t>(spec - entry->inputs.data());
    if (isGiven[index])
      return Status::error(where + ": input '" + name +
                           "' is given more than once");
    if (spec->inPlace && !inPlaceGiven)
      return Status::error(where + ": input '" + name +
                           "' is updated in place; pass it as a writable "
                           "in-place tensor");
    if (!spec->inPlace && inPlaceGiven)
      return Status::error(where + ": input '" + name +
                           "' is read-only; pass it as an ordinary input");
    isGiven[index] = true;
    givenViews[index] = std::move(view);
    writable[index] = writableData;
    return Status::ok();
  };
  for (const NamedTensor &input : inputs)
    if (Status s = match(input.name, input.view, false, nullptr); !s)
      return s;
  for (const InPlaceTensor &input : inPlace)
    if (Status s = match(input.name, {input.dtype, input.shape, input.data},
                         true, input.data);
        !s)
      return s;
  std::vector<const TensorView *> given(entry->inputs.size(), nullptr);
  for (size_t i = 0; i < given.size(); ++i)
    if (isGiven[i])
      given[i] = &givenViews[i];
  if (!unknown.empty())
    return Status::error(where + " has no input" +
                         (unknown.size() > 1 ? "s " : " ") +
                         quotedList(unknown) +
                         " (its inputs: " + specNames(entry->inputs) + ")");
  std::vector<std::string> missing;
  for (size_t i = 0; i < given.size(); ++i)
    if (!given[i])
      missing.push_back(entry->inputs[i].name);
  if (!missing.empty())
    return Status::error(where + ": missing input" +
                         (missing.size() > 1 ? "s " : " ") +
                         quotedList(missing) + " (its inputs: " +
                         specNames(entry->inputs) + ")");

  // An in-place input is written while the others are read: it must not
  // share memory with any of them.
  for (size_t i = 0; i < given.size(); ++i) {
    if (!writable[i] || !given[i]->byteSize())
      continue;
    auto *begin = static_cast<const unsigned char *>(given[i]->data);
    auto *end = begin + given[i]->byteSize();
    for (size_t j = 0; j < given.size(); ++j) {
      if (j == i || !given[j]->byteSize())
        continue;
      auto *other = static_cast<const unsigned char *>(given[j]->data);
      if (other < end && begin < other + given[j]->byteSize())
        return Status::error(where + ": in-place input '" +
                             entry->inputs[i].name + "' overlaps input '" +
                             entry->inputs[j].name + "'");
    }
  }

  // Check them against their specs and build their descriptors.
  // In-place inputs the module cannot use where they are (device memory, a
  // misaligned buffer) get a copy, copied back after the call.
  struct CopyBack {
    void *to;
    const void *from;
    size_t bytes;
  };
  std::vector<CopyBack> copyBack;
  std::vector<std::vector<int64_t>> descriptors;
  std::vector<std::shared_ptr<void>> realigned;
  std::vector<std::pair<const unsigned char *, size_t>> borrowed;
  for (size_t i = 0; i < given.size(); ++i) {
    const TensorSpec &spec = entry->inputs[i];
    const TensorView &view = *given[i];
    std::string what = where + ": input '" + spec.name + "'";
    if (view.dtype != spec.dtype)
      return Status::error(what + " is " + dtypeName(view.dtype) +
                           ", expected " + dtypeName(spec.dtype));
    if (view.shape.size() != spec.shape.size())
      return Status::error(what + " has rank " +
                           std::to_string(view.shape.size()) + " (shape " +
                           formatShape(view.shape) + "), expected rank " +
                           std::to_string(spec.shape.size()) + " (shape " +
                           formatSpecShape(spec.shape) + ")");
    for (size_t d = 0; d < spec.shape.size(); ++d) {
      if (spec.shape[d] == kDynamicDim ? view.shape[d] < 1
                                       : view.shape[d] != spec.shape[d])
        return Status::error(
            what + " has shape " + formatShape(view.shape) + ", expected " +
            formatSpecShape(spec.shape) + " (dim " + std::to_string(d) +
            (spec.shape[d] == kDynamicDim
                 ? " is dynamic and must be at least 1)"
                 : " must be " + std::to_string(spec.shape[d]) + ")"));
      if (d < spec.maxShape.size() && spec.maxShape[d] > 0 &&
          view.shape[d] > spec.maxShape[d])
        return Status::error(what + " has shape " + formatShape(view.shape) +
                             ": dim " + std::to_string(d) + " is at most " +
                             std::to_string(spec.maxShape[d]) +
                             " for this model");
    }
    const void *data = view.data;
    if (!data && view.byteSize() != 0)
      return Status::error(what + " has no data");
    // Device modules get a device copy; host ones a copy only when the
    // caller's data is misaligned.
    if (data && (module_->isDevice() || !isAligned(data, view.dtype))) {
      Expected<std::shared_ptr<void>> copy =
          module_->allocate(view.byteSize());
      if (!copy)
        return Status::error(what + ": " + copy.message());
      if (Status s = module_->copyIn(copy->get(), data, view.byteSize()); !s)
        return Status::error(what + ": " + s.message());
      data = copy->get();
      realigned.push_back(copy.take());
      if (writable[i])
        copyBack.push_back({writable[i], data, view.byteSize()});
    }
    // Results pointing into inputs (the caller's or a realigned copy) are
    // copied, never freed.
    borrowed.emplace_back(static_cast<const unsigned char *>(view.data),
                          view.byteSize());
    if (data != view.data)
      borrowed.emplace_back(static_cast<const unsigned char *>(data),
                            view.byteSize());
    descriptors.emplace_back();
    appendDescriptor(descriptors.back(), data, view.shape);
  }
  for (size_t index : entryParameters_[entryIndex])
    if (!parameterData_[index])
      return Status::error("'" + dir_ + "' was opened as a frozen reference "
                           "without optimizer state; its entry point '" +
                           entryName + "' needs '" +
                           manifest_.parameters[index].name + "'");
  for (size_t index : entryParameters_[entryIndex]) {
    const ParameterSpec &param = manifest_.parameters[index];
    borrowed.emplace_back(
        static_cast<const unsigned char *>(parameterData_[index]),
        static_cast<size_t>(numElements(param.shape)) *
            dtypeSize(param.dtype));
    descriptors.emplace_back();
    appendDescriptor(descriptors.back(), parameterData_[index], param.shape);
  }

  // The results: one descriptor per output, laid out one after another.
  size_t resultWords = 0;
  for (const TensorSpec &spec : entry->outputs)
    resultWords += descriptorWords(spec.rank());
  std::vector<int64_t> results(resultWords ? resultWords : 1, 0);

  std::vector<void *> args;
  args.push_back(results.data());
  for (std::vector<int64_t> &descriptor : descriptors)
    args.push_back(descriptor.data());
  Status called = module_->call(entryIndex, args.data());

  // Adopt every result buffer first, so that an error below still frees
  // them all (several results may share one buffer: it is freed once).
  std::map<void *, std::shared_ptr<void>> owners;
  auto isBorrowed = [&](const void *pointer) {
    auto *p = static_cast<const unsigned char *>(pointer);
    for (auto &[begin, size] : borrowed)
      if (p >= begin && p < begin + size)
        return true;
    return module_->containsAddress(pointer);
  };
  size_t at = 0;
  for (const TensorSpec &spec : entry->outputs) {
    void *allocated = reinterpret_cast<void *>(results[at]);
    at += descriptorWords(spec.rank());
    if (allocated && !owners.count(allocated))
      owners[allocated] = isBorrowed(allocated)
                              ? std::shared_ptr<void>()
                              : module_->adoptResult(allocated);
  }
  if (!called)
    return Status::error(where + ": " + called.message());
  for (const CopyBack &copy : copyBack) {
    if (!module_->isDevice()) {
      std::memcpy(copy.to, copy.from, copy.bytes);
    } else if (Status s = module_->copyOut(copy.to, copy.from, copy.bytes);
               !s) {
      return Status::error(where + ": copying an in-place input back: " +
                           s.message());
    }
  }

  std::vector<OwnedTensor> outputs;
  at = 0;
  for (const TensorSpec &spec : entry->outputs) {
    const int64_t *words = &results[at];
    at += descriptorWords(spec.rank());
    void *allocated = reinterpret_cast<void *>(words[0]);
    auto *aligned = reinterpret_cast<unsigned char *>(words[1]);
    int64_t offset = words[2];
    const int64_t *sizes = words + 3;
    const int64_t *strides = words + 3 + spec.rank();
    std::vector<int64_t> shape(sizes, sizes + spec.rank());
    std::string what = where + " returned output '" + spec.name + "'";
    for (size_t d = 0; d < spec.rank(); ++d)
      if (sizes[d] < 0 ||
          (spec.shape[d] != kDynamicDim && sizes[d] != spec.shape[d]))
        return Status::error(what + " of shape " + formatShape(shape) +
                             ", the manifest declares " +
                             formatSpecShape(spec.shape));
    size_t elementSize = dtypeSize(spec.dtype);
    int64_t elements = numElements(shape);
    if (elements == 0) {
      outputs.push_back(OwnedTensor::allocate(spec.dtype, shape));
      continue;
    }
    if (!aligned)
      return Status::error(what + " with no data (a null pointer)");
    unsigned char *data = aligned + offset * static_cast<int64_t>(elementSize);
    bool rowMajor = true;
    int64_t expected = 1;
    for (size_t d = spec.rank(); d-- > 0;) {
      if (sizes[d] != 1 && strides[d] != expected)
        rowMajor = false;
      expected *= sizes[d];
    }
    std::shared_ptr<void> owner = allocated ? owners[allocated] : nullptr;
    if (rowMajor && owner && !module_->isDevice()) {
      outputs.emplace_back(spec.dtype, std::move(shape), data, owner);
      continue;
    }
    // Strided, memory the module does not hand over, or device memory:
    // copy.
    OwnedTensor copy = OwnedTensor::allocate(spec.dtype, shape);
    if (!module_->isDevice()) {
      stridedCopy(data, static_cast<unsigned char *>(copy.data()), sizes,
                  strides, spec.rank(), elementSize);
    } else if (rowMajor) {
      if (Status s = module_->copyOut(copy.data(), data, copy.byteSize()); !s)
        return Status::error(what + ": " + s.message());
    } else {
      // Bring the elements' whole span to the host, then gather them.
      int64_t low = 0, high = 0;
      for (size_t d = 0; d < spec.rank(); ++d)
        (strides[d] < 0 ? low : high) += (sizes[d] - 1) * strides[d];
      size_t spanBytes = static_cast<size_t>(high - low + 1) * elementSize;
      std::shared_ptr<void> span = alignedBuffer(spanBytes);
      if (Status s = module_->copyOut(
              span.get(), data + low * static_cast<int64_t>(elementSize),
              spanBytes);
          !s)
        return Status::error(what + ": " + s.message());
      stridedCopy(static_cast<unsigned char *>(span.get()) -
                      low * static_cast<int64_t>(elementSize),
                  static_cast<unsigned char *>(copy.data()), sizes, strides,
                  spec.rank(), elementSize);
    }
    outputs.push_back(std::move(copy));
  }
  return outputs;
}

} // namespace kiln::runtime
