//===- fuzz_model_config.cpp - libFuzzer harness for the model builders ---===//
//
// Any text as a model config (config.json): buildModel refuses it with a
// message, or returns a module that verifies. Each input is built twice: for
// inference with the default options, and for training in bf16 with the
// attention-mask and position-id inputs, with the language-model loss added
// (as `kiln-compile --mode train` does). Warnings (unknown keys) are
// dropped.
//
//===----------------------------------------------------------------------===//

#include "FuzzContext.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Compiler/TrainingGraph.h"
#include "kiln/Models/ModelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdlib>
#include <memory>

using namespace mlir;

namespace {

/// A context renewed every 500 inputs (FuzzContext.h).
MLIRContext &freshContext() {
  return kiln::fuzz::freshContext<
      kiln::KilnDialect, func::FuncDialect, tensor::TensorDialect,
      arith::ArithDialect>();
}

void check(MLIRContext &context, const llvm::json::Object &config,
           const kiln::BuildOptions &options, bool withLoss) {
  auto module = kiln::buildModel(context, config, options);
  if (!module) {
    if (llvm::toString(module.takeError()).empty())
      std::abort();
    return;
  }
  // buildModel promises a verified module.
  if (failed(verify(**module)))
    std::abort();
  if (!withLoss)
    return;
  if (auto error = kiln::addLanguageModelLoss(**module)) {
    if (llvm::toString(std::move(error)).empty())
      std::abort();
    return;
  }
  if (failed(verify(**module)))
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto json = llvm::json::parse(
      llvm::StringRef(reinterpret_cast<const char *>(data), size));
  if (!json) {
    llvm::consumeError(json.takeError());
    return 0;
  }
  const llvm::json::Object *config = json->getAsObject();
  if (!config)
    return 0;

  MLIRContext &context = freshContext();
  // Diagnostics the builders emit on the way to an error are not output.
  ScopedDiagnosticHandler quiet(&context, [](Diagnostic &) { return success(); });

  kiln::BuildOptions inference;
  inference.warn = [](const std::string &) {};
  check(context, *config, inference, /*withLoss=*/false);

  kiln::BuildOptions training = inference;
  training.training = true;
  training.compute = kiln::ComputeType::bf16;
  training.attentionMask = true;
  training.positionIds = true;
  training.batch = 2;
  check(context, *config, training, /*withLoss=*/true);
  return 0;
}
