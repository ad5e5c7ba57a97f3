//===- Passes.h - Passes of the CPU backend ---------------------*- C++ -*-===//
//
// The passes only the CPU pipeline runs (Passes.td).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_PASSES_H
#define KILN_TARGET_CPU_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kiln {

/// Where kiln-record-noalias-arguments leaves the positions for
/// kiln-apply-noalias-arguments.
constexpr llvm::StringLiteral kNoAliasPositionsAttr = "kiln.noalias_positions";

#define GEN_PASS_DECL
#include "kiln/Target/CPU/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/Target/CPU/Passes.h.inc"

} // namespace mlir::kiln

#endif // KILN_TARGET_CPU_PASSES_H
