//===- CPUTarget.h - The CPU backend as the compiler sees it ----*- C++ -*-===//
//
// `kiln-compile --target cpu`: kiln-cpu-pipeline, code for `host.cpu`, and
// a module.so that carries the OpenMP runtime it needs. The kernels are
// shaped for that CPU (CPUKernelConfig.h).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_CPUTARGET_H
#define KILN_TARGET_CPU_CPUTARGET_H

#include "kiln/Target/CPU/CPUKernelConfig.h"
#include "kiln/Target/Common/TargetBackend.h"

#include <memory>

namespace mlir::kiln {

/// The CPU backend for `host`, its kernels shaped for that CPU
/// (selectCPUKernelConfig) with the user's `overrides` applied. Fails on an
/// unknown CPU or a malformed tile.
llvm::Expected<std::unique_ptr<TargetBackend>>
createCPUTarget(const CPUTargetOptions &host,
                const CPUKernelOverrides &overrides = {});

} // namespace mlir::kiln

#endif // KILN_TARGET_CPU_CPUTARGET_H
