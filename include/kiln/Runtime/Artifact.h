//===- Artifact.h - Loading and running Kiln artifacts ----------*- C++ -*-===//
//
// An Artifact is an opened artifact directory (docs/artifacts.md): its
// validated manifest, its module.so loaded and its entry points resolved,
// and its weights.safetensors mapped and checked against the manifest's
// parameter table. run() calls an entry point on named inputs, passing the
// parameters straight from the mapping (cpu) or from device memory (cuda),
// and hands back the results as host OwnedTensors.
//
// Nothing here links LLVM or MLIR: an artifact plus libkiln_runtime is a
// deployment.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_ARTIFACT_H
#define KILN_RUNTIME_ARTIFACT_H

#include "kiln/Runtime/Manifest.h"
#include "kiln/Runtime/SafeTensors.h"
#include "kiln/Runtime/Status.h"
#include "kiln/Runtime/Tensor.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kiln::runtime {

/// A dense row-major tensor that owns (or shares ownership of) its storage.
/// Results of Artifact::run are OwnedTensors whose storage is the buffer the
/// module malloc'ed; it is freed when the last tensor using it goes away.
class OwnedTensor {
public:
  OwnedTensor() = default;
  /// A tensor at `data`, kept alive by `owner` (whose deleter frees it).
  OwnedTensor(DType dtype, std::vector<int64_t> shape, void *data,
              std::shared_ptr<void> owner)
      : dtype_(dtype), shape_(std::move(shape)), data_(data),
        owner_(std::move(owner)) {}
  /// A fresh uninitialized tensor (malloc'ed, 64-byte aligned).
  static OwnedTensor allocate(DType dtype, std::vector<int64_t> shape);

  OwnedTensor(OwnedTensor &&) = default;
  OwnedTensor &operator=(OwnedTensor &&) = default;
  OwnedTensor(const OwnedTensor &) = delete;
  OwnedTensor &operator=(const OwnedTensor &) = delete;

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  int64_t numElements() const { return kiln::runtime::numElements(shape_); }
  size_t byteSize() const {
    return static_cast<size_t>(numElements()) * dtypeSize(dtype_);
  }
  void *data() { return data_; }
  const void *data() const { return data_; }
  template <typename T> const T *as() const {
    return static_cast<const T *>(data_);
  }
  TensorView view() const { return {dtype_, shape_, data_}; }

private:
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  void *data_ = nullptr;
  std::shared_ptr<void> owner_;
};

/// An opened artifact directory. Not copyable or movable (callers hold it by
/// unique_ptr); run() is const and keeps no per-call state, so it may be
/// called from several threads when the module itself is reentrant (the CPU
/// modules kiln-compile emits are; calls of CUDA artifacts are serialized
/// per process, as they share one stream).
class Artifact {
public:
  /// Opens `dir`: reads and validates manifest.json (format "kiln-artifact",
  /// format_version 1, a target this runtime runs), loads the module and
  /// checks its ABI version and entry symbols, maps the weights and checks
  /// them against the parameter table (name, dtype, shape, extent).
  static Expected<std::unique_ptr<Artifact>> open(const std::string &dir);

  /// How the parameters are held.
  enum class OpenMode {
    /// As the artifact needs them: private, writable memory when an entry
    /// point updates them, optimizer state included; otherwise, on the
    /// host, read where they lie in the weights file's mapping (no copy,
    /// no second footprint: opening is quick).
    Full,
    /// As Full, but an inference artifact's weights on the host are copied
    /// out of the mapping into private memory of large pages, which costs
    /// a copy when opening and saves a TLB miss every 4 KiB of a weight the
    /// matmuls stream on every call (gpt2-small's forward 2% faster, 9%
    /// with weights stored as panels): for many calls (benchmarks,
    /// generation, a teacher or reward model).
    Resident,
    /// A frozen copy of a training artifact's model: the parameters in
    /// private memory (loadParameters works), no optimizer state; entry
    /// points that read optimizer state are refused. A reference model for
    /// RLHF costs one copy of the weights so.
    Reference,
  };
  static Expected<std::unique_ptr<Artifact>> open(const std::string &dir,
                                                  OpenMode mode);

  ~Artifact();
  Artifact(const Artifact &) = delete;
  Artifact &operator=(const Artifact &) = delete;

  const std::string &dir() const { return dir_; }
  const Manifest &manifest() const { return manifest_; }
  const std::vector<EntryPointSpec> &entryPoints() const {
    return manifest_.entryPoints;
  }
  const std::vector<ParameterSpec> &parameters() const {
    return manifest_.parameters;
  }
  const EntryPointSpec *findEntryPoint(const std::string &name) const {
    return manifest_.findEntryPoint(name);
  }
  /// The mapped weights; null when the artifact has no parameters and no
  /// weights file.
  const SafeTensorsFile *weights() const {
    return weights_ ? &*weights_ : nullptr;
  }
  /// A host view of parameter `name`, if it exists. For a cpu artifact it
  /// is the memory the module reads (later runs that update parameters show
  /// through it). For a cuda artifact, whose parameters live in device
  /// memory, it is a host snapshot taken by this call, kept by the artifact
  /// and overwritten by the next parameter() call for the same name; it is
  /// nullopt also when the copy fails (readParameter() says why).
  std::optional<TensorView> parameter(const std::string &name) const;
  /// A host copy of parameter `name`, for any target.
  Expected<OwnedTensor> readParameter(const std::string &name) const;

  /// True when an entry point updates parameters in place (a training
  /// artifact). Its parameters then live in private, writable memory, and
  /// optimizer state starts at zero.
  bool writesParameters() const { return writable_; }
  /// Writes every parameter, optimizer state included, to a safetensors
  /// file (atomically) with `metadata`: a checkpoint of the training state.
  Status saveParameters(const std::string &path,
                        const std::map<std::string, std::string> &metadata =
                            {}) const;
  /// What loadParameters copies.
  enum class LoadSelection {
    /// Every tensor of the file (a checkpoint of this artifact's run).
    All,
    /// The model's parameters only: optimizer state in the file (tensors
    /// that are state here, or named `<param>/<state>` as every optimizer
    /// names them) is skipped and `requireAll` asks only for the model's
    /// parameters; fine-tuning starts from a pretraining checkpoint so.
    /// The heads alignment and distillation add (`score.*`,
    /// `value_head.*`, `distill_projection.*`) are optional
    /// both ways: skipped when the artifact lacks them, kept at their
    /// initial values when the file does.
    ModelOnly,
  };
  /// Copies the tensors of a safetensors file (a checkpoint, or weights)
  /// into the parameters of the same names, checking dtype and shape. A
  /// tensor the artifact does not have is an error; with `requireAll`, so is
  /// a parameter the file lacks. Needs writesParameters().
  Status loadParameters(const std::string &path, bool requireAll,
                        LoadSelection selection = LoadSelection::All);

  /// Runs entry point `entry`; one that writes parameters updates this
  /// artifact's parameter storage (do not run such entry points
  /// concurrently). Every declared input must be given exactly
  /// once, by name, with the declared dtype and rank, its static dims equal
  /// and its dynamic dims at least 1. Returns the outputs in manifest order
  /// (EntryPointSpec::outputs names them), row-major.
  Expected<std::vector<OwnedTensor>>
  run(const std::string &entry, const std::vector<NamedTensor> &inputs) const;

  /// A writable input: one the entry point updates in place (the
  /// manifest's "in_place", a KV cache).
  struct InPlaceTensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    void *data = nullptr;
  };
  /// run() for entry points with in-place inputs: those are given in
  /// `inPlace` (each exactly once; the others in `inputs`), must not
  /// overlap any other input, and hold their new values when the call
  /// returns successfully (after a failed call their contents are
  /// unspecified).
  Expected<std::vector<OwnedTensor>>
  run(const std::string &entry, const std::vector<NamedTensor> &inputs,
      const std::vector<InPlaceTensor> &inPlace) const;

  /// The loaded code of one target (module.so, bound to the CUDA driver
  /// for cuda). Opaque here.
  class Module;

private:
  Artifact() = default;

  std::string dir_;
  Manifest manifest_;
  std::optional<SafeTensorsFile> weights_;
  std::unique_ptr<Module> module_;
  /// Per manifest parameter: the pointer the module receives (into the
  /// mapping, or into parameterBuffers_ when the mapping was misaligned,
  /// the artifact writes parameters or the module's memory is a device's).
  std::vector<void *> parameterData_;
  bool writable_ = false;
  /// Parameter storage allocated by the module (host or device memory).
  std::vector<std::shared_ptr<void>> parameterBuffers_;
  /// Host snapshots parameter() hands out for a device module.
  mutable std::mutex hostCopiesMutex_;
  mutable std::map<size_t, OwnedTensor> hostCopies_;
  /// Per entry point: indices of its parameters in manifest_.parameters.
  std::vector<std::vector<size_t>> entryParameters_;
};

/// Whether this machine can run code that uses the x86 feature `name`
/// (LLVM's name, one of KILN_CHECKED_X86_FEATURES): the CPU has it (cpuid)
/// and, for AVX and AVX-512, the OS saves its registers. Unset for a name
/// this runtime does not know, and on other architectures. A cpu artifact's
/// target_options.cpu_features are checked with it before its module.so is
/// loaded.
std::optional<bool> hostHasCpuFeature(const std::string &name);

/// Whether this machine can run the code of the cpu artifact whose
/// manifest is `manifest` (`path` names its module.so in messages): every
/// feature of target_options.cpu_features (hostHasCpuFeature), and, for
/// AMX kernels, the tile state Linux hands out on request (asked here).
/// Artifact::open checks it before loading module.so.
Status checkHostCanRunCpuModule(const std::string &path,
                                const Manifest &manifest);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ARTIFACT_H
