//===- CudaTarget.h - CUDA architectures and kernel images ------*- C++ -*-===//
//
// The CUDA half of the artifact contract, shared by the compiler (which
// validates --cuda-arch and --cuda-image and records them in the manifest)
// and the runtime (which reads them back and decides whether a device can
// run the kernels): one parser, one list of images, one rule.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CUDATARGET_H
#define KILN_RUNTIME_CUDATARGET_H

#include "kiln/Runtime/Status.h"

#include <optional>
#include <string>

namespace kiln::runtime {

/// A GPU architecture: `sm_<major><minor>`, optionally `a` (arch-specific
/// features, as sm_90a's wgmma: the code runs on that exact capability
/// only).
struct CudaArch {
  int major = 0, minor = 0;
  bool archSpecific = false;

  std::string name() const;
};

/// The oldest architecture Kiln generates code for.
constexpr int kMinCudaArch = 70;

/// `sm_70` ... `sm_120`, `sm_90a`, `sm_100a`; std::nullopt for anything
/// else (other suffixes, fewer than two digits, below sm_70).
std::optional<CudaArch> parseCudaArch(const std::string &text);

/// What a cuda module.so embeds: PTX (compiled by the driver at load, so it
/// runs on the architecture and every newer one), a cubin (one
/// architecture's machine code: the same major version, at least its
/// minor), or a fatbin (cubin plus PTX, built by the toolkit).
enum class CudaImage { Ptx, Cubin, Fatbin };

/// "ptx", "cubin", "fatbin" (the --cuda-image values and the manifest's
/// target_options.image); std::nullopt for anything else.
std::optional<CudaImage> parseCudaImage(const std::string &text);
const char *cudaImageName(CudaImage image);
/// "ptx, cubin or fatbin", for messages.
const char *cudaImageNames();

/// Whether a device of compute capability `major.minor` runs `image` built
/// for `arch`; when not, `needs` says what it would need ("compute
/// capability 9.0 or newer").
bool cudaImageRuns(const CudaArch &arch, CudaImage image, int major,
                   int minor, std::string *needs = nullptr);

/// Whether this process can run CUDA artifacts: the driver loads (libcuda,
/// or KILN_CUDA_DRIVER), initializes and reports the device to use. The
/// error says why not, as Artifact::open would.
Status cudaDeviceStatus();

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CUDATARGET_H
