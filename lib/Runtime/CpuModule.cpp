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
#include <optional>
#include <sstream>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace kiln::runtime {

std::shared_ptr<void> alignedBuffer(size_t bytes) {
  size_t rounded = roundUp(bytes, kBufferAlignment);
  void *data =
      std::aligned_alloc(kBufferAlignment, rounded ? rounded : kBufferAlignment);
  return std::shared_ptr<void>(data, std::free);
}

std::shared_ptr<void> largePageBuffer(size_t bytes) {
  if (bytes < kLargePageBytes)
    return alignedBuffer(bytes);
  // Whole large pages from an address that starts one: a mapping one page
  // longer, used from its first large-page boundary.
  size_t rounded = roundUp(bytes, kLargePageBytes);
  size_t mapped = rounded + kLargePageBytes;
  void *mapping = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED)
    return alignedBuffer(bytes);
  uintptr_t start =
      roundUp(reinterpret_cast<uintptr_t>(mapping), kLargePageBytes);
  // A hint: where transparent huge pages are off, small pages serve.
  (void)::madvise(reinterpret_cast<void *>(start), rounded, MADV_HUGEPAGE);
  return std::shared_ptr<void>(
      reinterpret_cast<void *>(start),
      [mapping, mapped](void *) { ::munmap(mapping, mapped); });
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

#if defined(__x86_64__)
namespace {
/// The cpuid words the checked features live in, and the state the OS
/// saves (XCR0): AVX's ymm registers, AVX-512's zmm and mask registers.
struct X86Cpu {
  uint32_t leaf1Ecx = 0, leaf7Ebx = 0, leaf7Ecx = 0, leaf7Edx = 0,
           leaf7Sub1Eax = 0, extendedEcx = 0;
  bool osAvx = false, osAvx512 = false;

  static X86Cpu read() {
    X86Cpu cpu;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d))
      cpu.leaf1Ecx = c;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      cpu.leaf7Ebx = b;
      cpu.leaf7Ecx = c;
      cpu.leaf7Edx = d;
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d))
      cpu.leaf7Sub1Eax = a;
    if (__get_cpuid(0x80000001, &a, &b, &c, &d))
      cpu.extendedEcx = c;
    // OSXSAVE: the OS uses xsave, and xgetbv reports what it saves.
    if (cpu.leaf1Ecx & (1u << 27)) {
      uint32_t low = 0, high = 0;
      __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
      uint64_t xcr0 = (static_cast<uint64_t>(high) << 32) | low;
      cpu.osAvx = (xcr0 & 0x6) == 0x6;
      cpu.osAvx512 = (xcr0 & 0xe6) == 0xe6;
    }
    return cpu;
  }
};
} // namespace
#endif

std::optional<bool> hostHasCpuFeature(const std::string &name) {
#if defined(__x86_64__)
  static const X86Cpu cpu = X86Cpu::read();
  enum Word { L1C, L7B, L7C, L7D, L7S1A, E1C };
  enum Needs { Nothing, Avx, Avx512 };
  struct Bit {
    const char *name;
    Word word;
    int bit;
    Needs needs;
  };
  // Intel's SDM, vol. 2A, CPUID (and AMD's extended leaf 0x80000001);
  // AMX's tile state is asked of Linux when the module loads
  // (requestAmxState).
  static const Bit bits[] = {
      {"sse4.2", L1C, 20, Nothing},
      {"popcnt", L1C, 23, Nothing},
      {"movbe", L1C, 22, Nothing},
      {"lzcnt", E1C, 5, Nothing},
      {"sse4a", E1C, 6, Nothing},
      {"xop", E1C, 11, Avx},
      {"fma4", E1C, 16, Avx},
      {"tbm", E1C, 21, Nothing},
      {"avx", L1C, 28, Avx},
      {"fma", L1C, 12, Avx},
      {"f16c", L1C, 29, Avx},
      {"bmi", L7B, 3, Nothing},
      {"bmi2", L7B, 8, Nothing},
      {"avx2", L7B, 5, Avx},
      {"avx512f", L7B, 16, Avx512},
      {"avx512dq", L7B, 17, Avx512},
      {"avx512ifma", L7B, 21, Avx512},
      {"avx512cd", L7B, 28, Avx512},
      {"avx512bw", L7B, 30, Avx512},
      {"avx512vl", L7B, 31, Avx512},
      {"avx512vbmi", L7C, 1, Avx512},
      {"avx512vbmi2", L7C, 6, Avx512},
      {"gfni", L7C, 8, Nothing},
      {"vaes", L7C, 9, Avx},
      {"vpclmulqdq", L7C, 10, Avx},
      {"avx512vnni", L7C, 11, Avx512},
      {"avx512bitalg", L7C, 12, Avx512},
      {"avx512vpopcntdq", L7C, 14, Avx512},
      {"amx-bf16", L7D, 22, Nothing},
      {"avx512fp16", L7D, 23, Avx512},
      {"amx-tile", L7D, 24, Nothing},
      {"amx-int8", L7D, 25, Nothing},
      {"avxvnni", L7S1A, 4, Avx},
      {"avx512bf16", L7S1A, 5, Avx512},
  };
  for (const Bit &entry : bits) {
    if (name != entry.name)
      continue;
    uint32_t word = entry.word == L1C     ? cpu.leaf1Ecx
                    : entry.word == L7B   ? cpu.leaf7Ebx
                    : entry.word == L7C   ? cpu.leaf7Ecx
                    : entry.word == L7D   ? cpu.leaf7Edx
                    : entry.word == L7S1A ? cpu.leaf7Sub1Eax
                                          : cpu.extendedEcx;
    bool present = (word >> entry.bit) & 1u;
    if (entry.needs == Avx)
      present = present && cpu.osAvx;
    if (entry.needs == Avx512)
      present = present && cpu.osAvx512;
    return present;
  }
#else
  (void)name;
#endif
  return std::nullopt;
}

namespace {
/// Checks that this machine has every CPU feature the artifact's code may
/// use (target_options.cpu_features): an error naming what is missing, and
/// what to do, rather than SIGILL at the first such instruction.
Status checkCpuFeatures(const std::string &path, const Manifest &manifest) {
#if !defined(__x86_64__)
  // x86 code cannot load here at all: ModuleLibrary::open names the
  // machine module.so was built for.
  (void)path;
  (void)manifest;
  return Status::ok();
#else
  auto option = manifest.targetOptions.find(KILN_CPU_FEATURES_OPTION);
  if (option == manifest.targetOptions.end())
    return Status::ok();
  if (!option->second.isString)
    return Status::error("'" + path + "': target_options." +
                         KILN_CPU_FEATURES_OPTION +
                         " must be a string of comma-separated features");
  std::string cpu = "its --cpu";
  auto named = manifest.targetOptions.find("cpu");
  if (named != manifest.targetOptions.end() && named->second.isString)
    cpu = "--cpu " + named->second.text;
  std::vector<std::string> missing, unknown;
  std::stringstream list(option->second.text);
  std::string feature;
  while (std::getline(list, feature, ',')) {
    if (feature.empty())
      continue;
    std::optional<bool> has = hostHasCpuFeature(feature);
    if (!has)
      unknown.push_back(feature);
    else if (!*has)
      missing.push_back(feature);
  }
  auto join = [](const std::vector<std::string> &names) {
    std::string text;
    for (const std::string &name : names)
      text += (text.empty() ? "" : ", ") + name;
    return text;
  };
  if (!unknown.empty())
    return Status::error(
        "'" + path + "' was compiled for a CPU with " + join(unknown) +
        ", which this runtime cannot check this machine for" +
        (missing.empty() ? std::string()
                         : " (and it lacks " + join(missing) + ")") +
        ": run it with the kiln that compiled it, or recompile the model "
        "for this CPU (--cpu native)");
  if (!missing.empty())
    return Status::error("'" + path + "' was compiled for " + cpu +
                         ", whose code uses CPU features this machine lacks (" +
                         join(missing) +
                         "): recompile the model on this machine (--cpu "
                         "native), or for a CPU both machines have (such as "
                         "--cpu x86-64-v3)");
  return Status::ok();
#endif
}

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

} // namespace

Status checkHostCanRunCpuModule(const std::string &path,
                                const Manifest &manifest) {
  if (Status s = checkCpuFeatures(path, manifest); !s)
    return s;
  for (const char *key : {"bf16_dot", "int8_dot"}) {
    auto dot = manifest.targetOptions.find(key);
    if (dot != manifest.targetOptions.end() && dot->second.isString &&
        dot->second.text == "amx")
      return requestAmxState(path, key);
  }
  return Status::ok();
}

namespace {
/// A module.so whose entry points take host memref descriptors; all memory
/// is host memory (the defaults of Artifact::Module).
class CpuModule final : public Artifact::Module {
public:
  static Expected<std::unique_ptr<Artifact::Module>>
  load(const std::string &path, const Manifest &manifest) {
    // Before module.so's own constructors run (which may use them).
    if (Status s = checkHostCanRunCpuModule(path, manifest); !s)
      return s;
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
