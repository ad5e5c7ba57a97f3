//===- CApi.cpp - The C API of the Kiln runtime ---------------------------===//
//
// kiln_runtime.h over Artifact: handles wrap the C++ objects, errors go to a
// thread-local message.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/kiln_runtime.h"
#include "kiln/Runtime/Artifact.h"

#include <new>
#include <string>

using namespace kiln::runtime;

struct kiln_artifact {
  std::unique_ptr<Artifact> artifact;
};

struct kiln_tensor {
  OwnedTensor tensor;
};

namespace {
thread_local std::string lastError;

void setError(std::string message) { lastError = std::move(message); }

constexpr DType kDTypes[] = {DType::F64, DType::F32, DType::F16, DType::BF16,
                             DType::I64, DType::I32, DType::I16, DType::I8,
                             DType::U8,  DType::Bool};
constexpr int kNumDTypes = sizeof(kDTypes) / sizeof(kDTypes[0]);

int toC(DType dtype) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (kDTypes[i] == dtype)
      return i;
  return -1;
}

const EntryPointSpec *findEntry(const kiln_artifact *artifact,
                                const char *entry) {
  if (!artifact || !entry)
    return nullptr;
  return artifact->artifact->findEntryPoint(entry);
}
} // namespace

extern "C" {

const char *kiln_dtype_name(int dtype) {
  return dtype >= 0 && dtype < kNumDTypes ? dtypeName(kDTypes[dtype])
                                          : nullptr;
}

size_t kiln_dtype_size(int dtype) {
  return dtype >= 0 && dtype < kNumDTypes ? dtypeSize(kDTypes[dtype]) : 0;
}

const char *kiln_last_error(void) { return lastError.c_str(); }

kiln_artifact *kiln_artifact_open(const char *dir) {
  if (!dir) {
    setError("kiln_artifact_open: the directory is NULL");
    return nullptr;
  }
  Expected<std::unique_ptr<Artifact>> artifact = Artifact::open(dir);
  if (!artifact) {
    setError(artifact.message());
    return nullptr;
  }
  return new kiln_artifact{artifact.take()};
}

void kiln_artifact_close(kiln_artifact *artifact) { delete artifact; }

size_t kiln_artifact_num_entry_points(const kiln_artifact *artifact) {
  return artifact ? artifact->artifact->entryPoints().size() : 0;
}

const char *kiln_artifact_entry_point_name(const kiln_artifact *artifact,
                                           size_t index) {
  if (!artifact || index >= artifact->artifact->entryPoints().size())
    return nullptr;
  return artifact->artifact->entryPoints()[index].name.c_str();
}

int64_t kiln_entry_num_inputs(const kiln_artifact *artifact,
                              const char *entry) {
  const EntryPointSpec *spec = findEntry(artifact, entry);
  return spec ? static_cast<int64_t>(spec->inputs.size()) : -1;
}

int64_t kiln_entry_num_outputs(const kiln_artifact *artifact,
                               const char *entry) {
  const EntryPointSpec *spec = findEntry(artifact, entry);
  return spec ? static_cast<int64_t>(spec->outputs.size()) : -1;
}

const char *kiln_entry_input_name(const kiln_artifact *artifact,
                                  const char *entry, size_t index) {
  const EntryPointSpec *spec = findEntry(artifact, entry);
  return spec && index < spec->inputs.size() ? spec->inputs[index].name.c_str()
                                             : nullptr;
}

const char *kiln_entry_output_name(const kiln_artifact *artifact,
                                   const char *entry, size_t index) {
  const EntryPointSpec *spec = findEntry(artifact, entry);
  return spec && index < spec->outputs.size()
             ? spec->outputs[index].name.c_str()
             : nullptr;
}

int kiln_run(const kiln_artifact *artifact, const char *entry,
             const kiln_tensor_view *inputs, size_t num_inputs,
             kiln_tensor **outputs, size_t num_outputs) {
  if (!artifact || !entry || (num_inputs && !inputs) ||
      (num_outputs && !outputs)) {
    setError("kiln_run: a required argument is NULL");
    return 1;
  }
  std::vector<NamedTensor> named;
  for (size_t i = 0; i < num_inputs; ++i) {
    const kiln_tensor_view &input = inputs[i];
    if (!input.name || (input.rank && !input.shape)) {
      setError("kiln_run: input " + std::to_string(i) +
               " has a NULL name or shape");
      return 1;
    }
    if (input.dtype < 0 || input.dtype >= kNumDTypes) {
      setError("kiln_run: input '" + std::string(input.name) +
               "' has unknown dtype " + std::to_string(input.dtype));
      return 1;
    }
    named.push_back({input.name,
                     {kDTypes[input.dtype],
                      std::vector<int64_t>(input.shape,
                                           input.shape + input.rank),
                      input.data}});
  }
  const EntryPointSpec *spec = findEntry(artifact, entry);
  if (spec && spec->outputs.size() != num_outputs) {
    setError("kiln_run: entry point '" + std::string(entry) + "' has " +
             std::to_string(spec->outputs.size()) + " outputs, the caller "
             "has room for " + std::to_string(num_outputs));
    return 1;
  }
  Expected<std::vector<OwnedTensor>> results =
      artifact->artifact->run(entry, named);
  if (!results) {
    setError(results.message());
    return 1;
  }
  for (size_t i = 0; i < num_outputs; ++i)
    outputs[i] = new kiln_tensor{std::move((*results)[i])};
  return 0;
}

int kiln_tensor_dtype(const kiln_tensor *tensor) {
  return tensor ? toC(tensor->tensor.dtype()) : -1;
}

size_t kiln_tensor_rank(const kiln_tensor *tensor) {
  return tensor ? tensor->tensor.rank() : 0;
}

const int64_t *kiln_tensor_shape(const kiln_tensor *tensor) {
  return tensor ? tensor->tensor.shape().data() : nullptr;
}

const void *kiln_tensor_data(const kiln_tensor *tensor) {
  return tensor ? tensor->tensor.data() : nullptr;
}

size_t kiln_tensor_byte_size(const kiln_tensor *tensor) {
  return tensor ? tensor->tensor.byteSize() : 0;
}

void kiln_tensor_free(kiln_tensor *tensor) { delete tensor; }

} // extern "C"
