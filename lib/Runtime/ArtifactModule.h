//===- ArtifactModule.h - The loaded code of an artifact (private) -*- C++ -*-===//
//
// Artifact::Module is what Artifact.cpp sees of a target: call an entry point,
// and allocate, fill and copy the memory the module's code works on (host
// memory for cpu, device memory for cuda). ModuleLibrary is the part every
// target shares: module.so dlopen'ed, its ABI version checked and its entry
// symbols resolved (CpuModule.cpp). Private to libkiln_runtime.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_ARTIFACTMODULE_H
#define KILN_LIB_RUNTIME_ARTIFACTMODULE_H

#include "kiln/Runtime/Artifact.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The loaded code of an artifact, one subclass per target. The defaults of
/// the memory hooks are host memory (the cpu target); a target whose code
/// works on other memory overrides all of them and isDevice().
class Artifact::Module {
public:
  virtual ~Module() = default;
  /// Calls entry point `index` (manifest order) with the packed arguments.
  /// A target that cannot report failures from inside the call (cpu)
  /// returns ok.
  virtual Status call(size_t index, void **args) const = 0;
  /// True when `address` lies inside a loaded image (a constant global),
  /// which must never be freed.
  virtual bool containsAddress(const void *address) const = 0;

  /// True when the module's memory is not host memory: the runtime then
  /// copies every input in and every result out, and never hands the
  /// module a pointer into the weights mapping.
  virtual bool isDevice() const { return false; }
  /// A buffer of `bytes` bytes of the module's memory (64-byte aligned or
  /// more; `bytes` may be 0), released with its last owner.
  virtual Expected<std::shared_ptr<void>> allocate(size_t bytes) const;
  /// Copies host memory into the module's memory.
  virtual Status copyIn(void *destination, const void *hostSource,
                        size_t bytes) const;
  /// Copies the module's memory (or host memory in a loaded image) to host
  /// memory.
  virtual Status copyOut(void *hostDestination, const void *source,
                         size_t bytes) const;
  /// Zeroes `bytes` bytes of the module's memory.
  virtual Status fillZero(void *destination, size_t bytes) const;
  /// The owner of a result buffer the module allocated (`allocated` of a
  /// descriptor): releasing the last copy frees it.
  virtual std::shared_ptr<void> adoptResult(void *allocated) const;
};

/// A module.so loaded with dlopen (RTLD_NOW | RTLD_LOCAL), whose
/// kiln_abi_version() matches and which exports every entry point's symbol.
class ModuleLibrary {
public:
  using EntryFunction = void (*)(void **);

  static Expected<std::unique_ptr<ModuleLibrary>>
  open(const std::string &path, const Manifest &manifest);
  ~ModuleLibrary();
  ModuleLibrary(const ModuleLibrary &) = delete;
  ModuleLibrary &operator=(const ModuleLibrary &) = delete;

  const std::string &path() const { return path_; }
  /// An exported symbol, or null.
  void *symbol(const char *name) const;
  /// Entry point `index` in manifest order.
  EntryFunction entry(size_t index) const { return entries_[index]; }
  /// True when `address` lies in any loaded image (not only this one: a
  /// module may hand back a global of a library it links).
  static bool isInLoadedImage(const void *address);

private:
  ModuleLibrary() = default;
  std::string path_;
  void *handle_ = nullptr;
  std::vector<EntryFunction> entries_;
};

/// Alignment of buffers the runtime allocates (results it copies, inputs
/// and parameters it realigns): enough for any vector unit.
constexpr size_t kBufferAlignment = 64;

/// `bytes` rounded up to a multiple of `multiple`.
inline size_t roundUp(size_t bytes, size_t multiple) {
  return (bytes + multiple - 1) / multiple * multiple;
}

/// `bytes` of host memory aligned to kBufferAlignment (a buffer even for 0
/// bytes), freed with its last owner.
std::shared_ptr<void> alignedBuffer(size_t bytes);

/// Size of an x86-64 large page.
constexpr size_t kLargePageBytes = size_t(2) << 20;

/// `bytes` of host memory that lives as long as an artifact (its
/// parameters): from kLargePageBytes up, a private anonymous mapping that
/// starts on a large page, advised to be backed by transparent huge pages
/// (a matmul streaming a weight then misses the TLB once per 2 MiB, not
/// once per 4 KiB); smaller, alignedBuffer. Null if there is no memory.
/// Freed with its last owner.
std::shared_ptr<void> largePageBuffer(size_t bytes);

/// Loads a cpu artifact's module.so (CpuModule.cpp).
Expected<std::unique_ptr<Artifact::Module>>
loadCpuModule(const std::string &path, const Manifest &manifest);

/// Loads a cuda artifact's module.so (CudaModule.cpp): the CUDA driver, a
/// device that can run `manifest`'s target_options, then the module, bound
/// to the runtime's GPU services. `dir` names the artifact in messages.
Expected<std::unique_ptr<Artifact::Module>>
loadCudaModule(const std::string &dir, const std::string &path,
               const Manifest &manifest);

} // namespace kiln::runtime

#endif // KILN_LIB_RUNTIME_ARTIFACTMODULE_H
