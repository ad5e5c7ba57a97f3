//===- Passes.h - Lowering passes every backend runs ------------*- C++ -*-===//
//
// The target-neutral passes of code generation (Passes.td) and the
// attributes they share with the backends.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_COMMON_PASSES_H
#define KILN_TARGET_COMMON_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kiln {

/// An scf.parallel with this attribute keeps its parallelism in
/// kiln-sequentialize-inner-parallel even when nested (a backend maps it to
/// the threads of one block itself).
constexpr llvm::StringLiteral kKeepParallelAttr = "kiln.keep_parallel";

/// An scf.for with this attribute keeps the parallel loops in its body
/// parallel in kiln-sequentialize-inner-parallel: each of its iterations
/// is work enough for a fork and join (the k blocks of a CPU matmul).
constexpr llvm::StringLiteral kParallelBodyAttr = "kiln.parallel_body";

#define GEN_PASS_DECL
#include "kiln/Target/Common/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/Target/Common/Passes.h.inc"

} // namespace mlir::kiln

#endif // KILN_TARGET_COMMON_PASSES_H
