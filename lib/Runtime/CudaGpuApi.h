//===- CudaGpuApi.h - The GPU API table's state (private) -------*- C++ -*-===//
//
// GpuSession: what stands behind the KilnGpuApi table (GpuApi.h) the runtime
// binds to one cuda module.so (CudaGpuApi.cpp), and which CudaModule.cpp
// reads after each call. Private to libkiln_runtime.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_CUDAGPUAPI_H
#define KILN_LIB_RUNTIME_CUDAGPUAPI_H

#include "CudaDriver.h"

#include "kiln/Runtime/GpuApi.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace kiln::runtime::cuda {

/// The state behind one module.so's KilnGpuApi table: the first failure of
/// the current call, and the kernels looked up so far.
struct GpuSession {
  explicit GpuSession(std::shared_ptr<CudaDriver> driver)
      : driver(std::move(driver)) {}

  std::shared_ptr<CudaDriver> driver;
  std::optional<std::string> failure;
  std::map<std::pair<CUmodule, std::string>, CUfunction> functions;
  std::map<CUfunction, std::string> functionNames;

  bool failed() const { return failure.has_value(); }
  void fail(std::string message) {
    if (!failure)
      failure = std::move(message);
  }
  /// Records `result` when it is an error; true when it is not.
  bool check(CUresult result, const std::string &call) {
    if (result == CUDA_SUCCESS)
      return true;
    fail(call + ": " + driver->describe(result));
    return false;
  }
  std::string kernelName(void *function) const {
    auto it = functionNames.find(static_cast<CUfunction>(function));
    return it == functionNames.end() ? "?" : it->second;
  }

  static GpuSession &of(void *context) {
    return *static_cast<GpuSession *>(context);
  }
  static const KilnGpuApi &table();
};

/// Waits for the stream, recording a failure (of a kernel, most often) in
/// `session`; a no-op once the session has failed.
void synchronizeStream(GpuSession &session);

} // namespace kiln::runtime::cuda

#endif // KILN_LIB_RUNTIME_CUDAGPUAPI_H
