//===- Autodiff.h - Reverse-mode differentiation of kiln graphs -*- C++ -*-===//
//
// The C++ entry to what `kiln-autodiff` does, for passes (the optimizer)
// and tools that build training graphs: from a function computing a scalar
// loss, build a function returning the loss and its gradients.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_TRANSFORMS_AUTODIFF_H
#define KILN_DIALECT_KILN_TRANSFORMS_AUTODIFF_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::kiln {

struct GradientFunctionOptions {
  /// Name of the new function; "<loss>_grad" when empty.
  std::string name;
  /// Also differentiate with respect to the float arguments.
  bool withRespectToInputs = false;
  /// Composites whose gradient rule builds a fused op that only a backend
  /// keeping them whole can lower (kiln.attention, whose rule is
  /// kiln.attention_grad). They are differentiated through their own rule
  /// when named here, through their decomposition otherwise.
  llvm::SmallVector<std::string> keep;
};

/// Builds, next to `loss` (a function with one rank-0 float result), a
/// function with the same arguments that returns the loss followed by the
/// gradient of every trainable parameter the loss reads (module order;
/// zeros where the loss does not depend on one), then, with
/// `withRespectToInputs`, the gradient of every float argument. Its
/// `kiln.gradient_parameters` attribute lists the parameters; result
/// attributes `kiln.name` are "loss" and "grad:<parameter or argument>".
/// Calls are inlined into the new function; composites without a gradient
/// rule are decomposed there. Errors are emitted on the offending op.
FailureOr<func::FuncOp>
buildGradientFunction(func::FuncOp loss,
                      const GradientFunctionOptions &options = {});

} // namespace mlir::kiln

#endif // KILN_DIALECT_KILN_TRANSFORMS_AUTODIFF_H
