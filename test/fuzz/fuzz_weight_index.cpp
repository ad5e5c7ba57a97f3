//===- fuzz_weight_index.cpp - libFuzzer harness for sharded indexes ------===//
//
// Any bytes as a sharded checkpoint's model.safetensors.index.json, beside
// two valid shards: WeightFiles::open refuses them with a message, or
// returns a set in which every tensor is found by its name, in bounds.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/SafeTensors.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace kiln::runtime;

namespace {
/// A scratch directory with shards `a.safetensors` (tensors a, b) and
/// `b.safetensors` (c), made once.
/// Removed at exit; a plain array, so it outlives static destructors.
char gScratch[] = "/tmp/kiln-fuzz-index-XXXXXX";

const std::string &scratch() {
  static std::string dir = [] {
    if (!::mkdtemp(gScratch))
      std::abort();
    std::string d = gScratch;
    std::atexit([] {
      char command[64];
      std::snprintf(command, sizeof command, "rm -rf '%s'", gScratch);
      (void)std::system(command);
    });
    float values[4] = {1, 2, 3, 4};
    if (!writeSafeTensors(d + "/a.safetensors",
                          {{"a", {DType::F32, {2}, values}},
                           {"b", {DType::F32, {2, 1}, values + 2}}}) ||
        !writeSafeTensors(d + "/b.safetensors",
                          {{"c", {DType::F32, {4}, values}}}))
      std::abort();
    return d;
  }();
  return dir;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string index = scratch() + "/model.safetensors.index.json";
  FILE *file = std::fopen(index.c_str(), "wb");
  if (!file || (size && std::fwrite(data, 1, size, file) != size) ||
      std::fclose(file) != 0)
    std::abort();
  Expected<WeightFiles> weights = WeightFiles::open(index);
  if (!weights) {
    if (weights.message().empty())
      std::abort();
    return 0;
  }
  for (const SafeTensorInfo *info : weights->tensors()) {
    if (weights->find(info->name) != info)
      std::abort();
    TensorView view = weights->view(*info);
    if (!view.data && info->end > info->begin)
      std::abort();
  }
  return 0;
}
