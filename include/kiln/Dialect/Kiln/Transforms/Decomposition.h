//===- Decomposition.h - Composites to primitives, one driver ---*- C++ -*-===//
//
// Which composite ops stay whole is the backend's decision, not the
// dialect's: a `keep` list names the composites a pipeline lowers by fused
// kernels, and the backend's KilnLoweringInterface (attached to the kiln
// dialect by the library that holds those kernels) says which instances
// its kernels take. kiln-decompose and kiln-autodiff share this header's
// driver and rule.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_TRANSFORMS_DECOMPOSITION_H
#define KILN_DIALECT_KILN_TRANSFORMS_DECOMPOSITION_H

#include "mlir/IR/DialectInterface.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringSet.h"

#include <string>

namespace mlir::kiln {

/// What a backend tells the graph passes about the composites it lowers
/// whole. The library with the fused kernels attaches it to the kiln
/// dialect (registerKilnToLinalgInterfaces); without one, every composite
/// named in a `keep` list stays whole.
class KilnLoweringInterface
    : public DialectInterface::Base<KilnLoweringInterface> {
public:
  KilnLoweringInterface(Dialect *dialect) : Base(dialect) {}

  /// True when the fused lowering of the composite `op` takes this
  /// instance (its shapes, its attributes); false makes a kept op
  /// decompose after all.
  virtual bool canLowerWhole(Operation *op) const = 0;
};

/// The `keep` op names as a set, each checked to be a registered op in
/// `context`; for the first that is not, returns failure after
/// `emitUnknown(name)` has reported it (each pass words its own message).
FailureOr<llvm::StringSet<>>
parseKeepList(MLIRContext *context, ArrayRef<std::string> keep,
              llvm::function_ref<void(StringRef)> emitUnknown);

/// Whether the composite `op` stays whole: its name is in `keep` and the
/// backend's KilnLoweringInterface, when one is attached, takes it.
bool isKeptWhole(Operation *op, const llvm::StringSet<> &keep);

/// The one decomposition driver: replaces every composite
/// (DecomposableOpInterface) nested in `root` for which `shouldDecompose`
/// holds by its decomposition, repeatedly (decompositions may create
/// composites: attention creates softmax), until none is left. Fails when
/// a decomposition does (it has emitted the error).
LogicalResult
decomposeComposites(Operation *root,
                    llvm::function_ref<bool(Operation *)> shouldDecompose);

} // namespace mlir::kiln

#endif // KILN_DIALECT_KILN_TRANSFORMS_DECOMPOSITION_H
