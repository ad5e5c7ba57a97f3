//===- CPUTarget.h - The CPU backend as the compiler sees it ----*- C++ -*-===//
//
// `kiln-compile --target cpu`: kiln-cpu-pipeline, code for `host.cpu`, and
// a module.so that carries the OpenMP runtime it needs.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_CPUTARGET_H
#define KILN_TARGET_CPU_CPUTARGET_H

#include "kiln/Target/Common/TargetBackend.h"

#include <memory>

namespace mlir::kiln {

std::unique_ptr<TargetBackend> createCPUTarget(const CPUTargetOptions &host);

} // namespace mlir::kiln

#endif // KILN_TARGET_CPU_CPUTARGET_H
