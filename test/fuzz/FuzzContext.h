//===- FuzzContext.h - An MLIR context for harnesses, renewed -----*- C++ -*-===//
//
// Types and attributes are uniqued for the life of a context, so one context
// for a long run would only grow: the harnesses that parse or build IR get a
// fresh one every 500 inputs, with `Dialects` loaded and threading off.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_FUZZ_FUZZCONTEXT_H
#define KILN_TEST_FUZZ_FUZZCONTEXT_H

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"

#include <memory>

namespace mlir::kiln::fuzz {

template <typename... Dialects> mlir::MLIRContext &freshContext() {
  static std::unique_ptr<mlir::MLIRContext> context;
  static int uses = 0;
  if (!context || ++uses % 500 == 0) {
    mlir::DialectRegistry registry;
    registry.insert<Dialects...>();
    context = std::make_unique<mlir::MLIRContext>(
        registry, mlir::MLIRContext::Threading::DISABLED);
    context->loadAllAvailableDialects();
  }
  return *context;
}

} // namespace mlir::kiln::fuzz

#endif // KILN_TEST_FUZZ_FUZZCONTEXT_H
