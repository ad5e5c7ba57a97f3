//===- fuzz_npy.cpp - libFuzzer harness for the .npy reader ---------------===//
//
// Any bytes: readNpy refuses them with a message, or returns an array whose
// payload is exactly its shape times its element size.
//
//===----------------------------------------------------------------------===//

#include "FuzzInput.h"
#include "kiln/Runtime/Npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto array = kiln::runtime::readNpy(kiln::fuzz::asFile(data, size));
  if (!array) {
    if (array.message().empty())
      std::abort();
    return 0;
  }
  auto bytes = kiln::runtime::checkedByteSize(array->shape, array->dtype);
  if (!bytes || *bytes != array->bytes.size())
    std::abort();
  return 0;
}
