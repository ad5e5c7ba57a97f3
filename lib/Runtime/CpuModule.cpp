//===- CpuModule.cpp - module.so loaded and called on the host ------------===//
//
// What every target shares of a loaded module.so (ModuleLibrary: checked,
// dlopen'ed, its ABI version and signature compared with the manifest, its
// entry symbols resolved), the host-memory defaults of Artifact::Module, and
// the cpu target, whose module.so works on host memory. The cuda target is
// CudaModule.cpp (with CudaDriver.cpp, CudaGpuApi.cpp and CublasLt.cpp).
//
//===----------------------------------------------------------------------===//

#include "ArtifactModule.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/File.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kiln::runtime {

std::shared_ptr<void> alignedBuffer(size_t bytes) {
  size_t rounded = (bytes + kBufferAlignment - 1) / kBufferAlignment *
                   kBufferAlignment;
  void *data =
      std::aligned_alloc(kBufferAlignment, rounded ? rounded : kBufferAlignment);
  return std::shared_ptr<void>(data, std::free);
}

//===----------------------------------------------------------------------===//
// Host memory: the defaults of Artifact::Module
//===----------------------------------------------------------------------===//

Expected<std::shared_ptr<void>> Artifact::Module::allocate(size_t bytes) const {
  return alignedBuffer(bytes);
}

Status Artifact::Module::copyIn(void *destination, const void *hostSource,
                                size_t bytes) const {
  std::memcpy(destination, hostSource, bytes);
  return Status::ok();
}

Status Artifact::Module::copyOut(void *hostDestination, const void *source,
                                 size_t bytes) const {
  std::memcpy(hostDestination, source, bytes);
  return Status::ok();
}

Status Artifact::Module::fillZero(void *destination, size_t bytes) const {
  std::memset(destination, 0, bytes);
  return Status::ok();
}

std::shared_ptr<void> Artifact::Module::adoptResult(void *allocated) const {
  return std::shared_ptr<void>(allocated, std::free);
}

//===----------------------------------------------------------------------===//
// ModuleLibrary
//===----------------------------------------------------------------------===//

namespace {
using AbiVersionFunction = int (*)();
} // namespace

Expected<std::unique_ptr<ModuleLibrary>>
ModuleLibrary::open(const std::string &path, const Manifest &manifest) {
  if (Status s = checkSharedObject(path, "module"); !s)
    return s;
  std::unique_ptr<ModuleLibrary> library(new ModuleLibrary);
  library->path_ = path;
  ::dlerror();
  library->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library->handle_) {
    const char *why = ::dlerror();
    return Status::error("cannot load '" + path + "': " +
                         (why ? why : "dlopen failed"));
  }
  ::dlerror();
  auto abiVersion = reinterpret_cast<AbiVersionFunction>(
      ::dlsym(library->handle_, KILN_ABI_VERSION_SYMBOL));
  if (!abiVersion)
    return Status::error("'" + path +
                         "' is not a Kiln module: it does not export " +
                         KILN_ABI_VERSION_SYMBOL);
  int version = abiVersion();
  if (version != kModuleAbiVersion)
    return Status::error("'" + path + "' has module ABI version " +
                         std::to_string(version) + ", this runtime calls " +
                         std::to_string(kModuleAbiVersion) +
                         " (recompile the model with a matching "
                         "kiln-compile)");
  // The module's own record of the manifest it was built with.
  const char *signature =
      static_cast<const char *>(library->symbol(KILN_MODULE_SIGNATURE_SYMBOL));
  if (!signature)
    return Status::error("'" + path +
                         "' has no kiln_module_signature (recompile the "
                         "model with this kiln-compile)");
  std::string difference =
      firstSignatureDifference(moduleSignature(manifest), signature);
  if (!difference.empty())
    return Status::error("'" + path + "' was not built for this manifest (" +
                         difference +
                         "): the manifest was edited or module.so comes "
                         "from another artifact; recompile the model");
  for (const EntryPointSpec &entry : manifest.entryPoints) {
    void *symbol = library->symbol(entry.symbol.c_str());
    if (!symbol)
      return Status::error("'" + path + "' has no symbol '" + entry.symbol +
                           "' for entry point '" + entry.name + "'");
    library->entries_.push_back(reinterpret_cast<EntryFunction>(symbol));
  }
  return library;
}

ModuleLibrary::~ModuleLibrary() {
  if (handle_)
    ::dlclose(handle_);
}

void *ModuleLibrary::symbol(const char *name) const {
  ::dlerror();
  return ::dlsym(handle_, name);
}

bool ModuleLibrary::isInLoadedImage(const void *address) {
  Dl_info info;
  // Heap memory (and device memory) is in no image.
  return ::dladdr(address, &info) != 0 && info.dli_fbase != nullptr;
}

//===----------------------------------------------------------------------===//
// The cpu target
//===----------------------------------------------------------------------===//

namespace {
/// Asks Linux for the AMX tile state, which an artifact whose bf16 matmuls
/// run on AMX tiles needs (module.so asks too, in a constructor, but cannot
/// report a refusal): an error naming what is missing if it is refused.
Status requestAmxState(const std::string &path, const std::string &key) {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (::syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0)
    return Status::ok();
  return Status::error(
      "'" + path + "' runs matmuls on AMX tiles (target_options." + key +
      " amx), and this machine does not allow them (a CPU without AMX, or "
      "a Linux kernel before 5.16): compile it for this CPU (--cpu native), "
      "or with --bf16-dot none and --int8-dot vnni");
#else
  return Status::error("'" + path +
                       "' runs matmuls on AMX tiles "
                       "(target_options." +
                       key + " amx), which only x86-64 Linux has");
#endif
}

/// A module.so whose entry points take host memref descriptors; all memory
/// is host memory (the defaults of Artifact::Module).
class CpuModule final : public Artifact::Module {
public:
  static Expected<std::unique_ptr<Artifact::Module>>
  load(const std::string &path, const Manifest &manifest) {
    // Before module.so's own constructors run.
    for (const char *key : {"bf16_dot", "int8_dot"}) {
      auto dot = manifest.targetOptions.find(key);
      if (dot != manifest.targetOptions.end() && dot->second.isString &&
          dot->second.text == "amx") {
        if (Status s = requestAmxState(path, key); !s)
          return s;
        break;
      }
    }
    Expected<std::unique_ptr<ModuleLibrary>> library =
        ModuleLibrary::open(path, manifest);
    if (!library)
      return library.status();
    std::unique_ptr<CpuModule> module(new CpuModule);
    module->library_ = library.take();
    return std::unique_ptr<Artifact::Module>(std::move(module));
  }

  Status call(size_t index, void **args) const override {
    library_->entry(index)(args);
    return Status::ok();
  }

  bool containsAddress(const void *address) const override {
    return ModuleLibrary::isInLoadedImage(address);
  }

private:
  CpuModule() = default;
  std::unique_ptr<ModuleLibrary> library_;
};
} // namespace

Expected<std::unique_ptr<Artifact::Module>>
loadCpuModule(const std::string &path, const Manifest &manifest) {
  return CpuModule::load(path, manifest);
}

} // namespace kiln::runtime
