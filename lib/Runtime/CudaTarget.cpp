//===- CudaTarget.cpp - CUDA architectures and kernel images --------------===//

#include "kiln/Runtime/CudaTarget.h"

#include <cstdlib>

namespace kiln::runtime {

std::string CudaArch::name() const {
  return "sm_" + std::to_string(major) + std::to_string(minor) +
         (archSpecific ? "a" : "");
}

std::optional<CudaArch> parseCudaArch(const std::string &text) {
  if (text.rfind("sm_", 0) != 0)
    return std::nullopt;
  size_t end = 3;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9')
    ++end;
  size_t digits = end - 3;
  if (digits < 2 || digits > 3 || text[3] == '0')
    return std::nullopt;
  std::string suffix = text.substr(end);
  if (!suffix.empty() && suffix != "a")
    return std::nullopt;
  int number = std::atoi(text.substr(3, digits).c_str());
  if (number < kMinCudaArch)
    return std::nullopt;
  return CudaArch{number / 10, number % 10, suffix == "a"};
}

std::optional<CudaImage> parseCudaImage(const std::string &text) {
  if (text == "ptx")
    return CudaImage::Ptx;
  if (text == "cubin")
    return CudaImage::Cubin;
  if (text == "fatbin")
    return CudaImage::Fatbin;
  return std::nullopt;
}

const char *cudaImageName(CudaImage image) {
  switch (image) {
  case CudaImage::Ptx:
    return "ptx";
  case CudaImage::Cubin:
    return "cubin";
  case CudaImage::Fatbin:
    return "fatbin";
  }
  return "?";
}

const char *cudaImageNames() { return "ptx, cubin or fatbin"; }

bool cudaImageRuns(const CudaArch &arch, CudaImage image, int major,
                   int minor, std::string *needs) {
  std::string version =
      std::to_string(arch.major) + "." + std::to_string(arch.minor);
  bool runs;
  std::string need;
  if (arch.archSpecific) {
    // sm_90a code uses features of 9.0 alone.
    runs = major == arch.major && minor == arch.minor;
    need = "compute capability " + version + " exactly";
  } else if (image == CudaImage::Ptx) {
    runs = major * 10 + minor >= arch.major * 10 + arch.minor;
    need = "compute capability " + version + " or newer";
  } else {
    // A fatbin's PTX is for the same architecture as its cubin, so the
    // cubin's rule holds for both.
    runs = major == arch.major && minor >= arch.minor;
    need = "compute capability " + std::to_string(arch.major) +
           ".x, at least " + version;
  }
  if (needs)
    *needs = need;
  return runs;
}

} // namespace kiln::runtime
