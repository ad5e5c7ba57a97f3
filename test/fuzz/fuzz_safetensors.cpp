//===- fuzz_safetensors.cpp - libFuzzer harness for the weights reader ----===//
//
// Any bytes: SafeTensorsFile::open either refuses them with a message or
// returns tensors whose extents lie inside the file; reading every tensor
// must stay in bounds (AddressSanitizer checks).
//
//===----------------------------------------------------------------------===//

#include "FuzzInput.h"
#include "kiln/Runtime/SafeTensors.h"

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = kiln::runtime::SafeTensorsFile::open(kiln::fuzz::asFile(data, size));
  if (!file) {
    if (file.message().empty())
      std::abort(); // every refusal says why
    return 0;
  }
  volatile uint8_t sink = 0;
  for (const auto &tensor : file->tensors()) {
    kiln::runtime::TensorView view = file->view(tensor);
    const auto *bytes = static_cast<const uint8_t *>(view.data);
    size_t n = view.byteSize();
    if (n)
      sink = sink ^ bytes[0] ^ bytes[n - 1];
  }
  for (const auto &[key, value] : file->metadata())
    sink = sink ^ static_cast<uint8_t>(key.size() + value.size());
  (void)sink;
  return 0;
}
