//===- TargetBackend.cpp - What the compiler asks of a backend ------------===//
//
// The interface's out-of-line anchor (TargetBackend.h).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/Common/TargetBackend.h"

mlir::kiln::TargetBackend::~TargetBackend() = default;
