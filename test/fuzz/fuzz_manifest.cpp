//===- fuzz_manifest.cpp - libFuzzer harness for the manifest parser ------===//
//
// Any text: Manifest::parse refuses it with a message or returns a manifest
// whose shapes all have a size that fits (so nothing derived from them
// wraps around), and whose cost models evaluate without overflow traps.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Manifest.h"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  auto manifest = kiln::runtime::Manifest::parse(text, "fuzz.json");
  if (!manifest) {
    if (manifest.message().empty())
      std::abort();
    return 0;
  }
  for (const auto &p : manifest->parameters)
    if (!kiln::runtime::checkedByteSize(p.shape, p.dtype))
      std::abort();
  for (const auto &e : manifest->entryPoints)
    for (const auto *specs : {&e.inputs, &e.outputs})
      for (const auto &s : *specs)
        if (!kiln::runtime::checkedByteSize(s.shape, s.dtype, /*dynamicAsOne=*/true))
          std::abort();
  return 0;
}
