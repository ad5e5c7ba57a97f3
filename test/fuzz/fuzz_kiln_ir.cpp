//===- fuzz_kiln_ir.cpp - libFuzzer harness for kiln IR parsing -----------===//
//
// Any text as kiln IR (what kiln-opt and kiln-compile read): the parser and
// the verifiers (the kiln ops' custom assembly, attribute and type parsers,
// shape inference and verifiers, with the upstream dialects kiln IR uses)
// either refuse it with a diagnostic, or accept a module that prints and
// parses back to a module that verifies and prints the same.
//
//===----------------------------------------------------------------------===//

#include "FuzzContext.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <cstdlib>
#include <memory>
#include <string>

using namespace mlir;

namespace {

/// A context renewed every 500 inputs (FuzzContext.h).
MLIRContext &freshContext() {
  return kiln::fuzz::freshContext<
      kiln::KilnDialect, func::FuncDialect, tensor::TensorDialect,
      arith::ArithDialect, quant::QuantDialect>();
}

std::string print(ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  return text;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &context = freshContext();
  bool diagnosed = false;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diagnostic) {
    if (diagnostic.getSeverity() == DiagnosticSeverity::Error)
      diagnosed = true;
    return success();
  });

  // MLIR's lexer stops at the NUL that ends every buffer it reads from a
  // file (and every std::string), so the input is copied to have one.
  std::string text(reinterpret_cast<const char *>(data), size);
  // parseSourceString verifies what it parsed.
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(text, ParserConfig(&context));
  if (!module) {
    // A refusal always says why.
    if (!diagnosed)
      std::abort();
    return 0;
  }

  // What was accepted prints, and the printed form is accepted again and is
  // a fixed point of printing.
  std::string printed = print(*module);
  OwningOpRef<ModuleOp> reparsed =
      parseSourceString<ModuleOp>(printed, ParserConfig(&context));
  if (!reparsed || print(*reparsed) != printed)
    std::abort();
  return 0;
}
