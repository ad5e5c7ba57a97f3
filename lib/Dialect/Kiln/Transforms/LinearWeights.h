//===- LinearWeights.h - Which parameters are linear weights ----*- C++ -*-===//
//
// What kiln-quantize, kiln-prune and the layout passes (kiln-pack-weights,
// kiln-narrow-parameters) share: finding the parameters that are only ever
// the weight of kiln.linear ops, choosing among them by name (glob
// patterns; the LM head left alone unless asked for), and telling the ones
// the compiler fills itself.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_DIALECT_KILN_TRANSFORMS_LINEARWEIGHTS_H
#define KILN_LIB_DIALECT_KILN_TRANSFORMS_LINEARWEIGHTS_H

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "llvm/Support/GlobPattern.h"

#include <optional>
#include <string>

namespace mlir::kiln {

/// Whether the compiler fills `param` from something else than its own
/// values (a quantized, compressed or pruned part, optimizer state, one
/// carrying calibration statistics: any kiln.* attribute): its type is
/// not for a layout pass to change.
bool isFilledByCompiler(ParameterOp param);

/// The linears whose weight a read feeds (directly or through one cast to
/// the compute type), or nullopt if it feeds anything else.
std::optional<SmallVector<LinearOp>> linearUses(ReadParamOp read);

/// Parameters chosen by name: those matching one of `only` (every one when
/// empty) and none of `skip`; an LM head (`lm_head.*`) only with `lmHead`.
class ParameterSelection {
public:
  /// Fails (with an error on `anchor`) on a malformed glob.
  static FailureOr<ParameterSelection> create(Operation *anchor,
                                              ArrayRef<std::string> only,
                                              ArrayRef<std::string> skip,
                                              bool lmHead);
  bool operator()(StringRef name) const;

private:
  SmallVector<llvm::GlobPattern> only, skip;
  bool lmHead = false;
};

/// `kiln.matmul %x, %w [transpose_rhs]` with `%w` a read 2-D float
/// parameter as `kiln.linear %x, %w` (`weight_in_out` when not
/// transposed): the same product, which the passes over linear weights
/// understand (GPT-2's tied LM head, h · wteᵀ).
void parameterMatmulsToLinears(ModuleOp module);

/// Which other uses a linear weight's reads may have besides feeding the
/// weight operand of kiln.linear ops.
enum class OtherUses {
  /// None: every read feeds only linears (directly or through one cast).
  None,
  /// The table of kiln.embedding ops besides (directly, no cast: an
  /// embedding tied to the LM head).
  Tables,
  /// Anything besides: the linears are those a read feeds directly, and
  /// the parameter's float values stay for the rest (kiln-quantize's tied
  /// head).
  Any,
};

/// Every 2-D float parameter not written by the module whose reads feed
/// the weight operand of kiln.linear ops of one layout, and nothing else
/// but what `others` allows, with those linears.
struct LinearWeight {
  ParameterOp param;
  SmallVector<ReadParamOp> reads;
  SmallVector<LinearOp> linears;
  /// The weight is `[in, out]` (the linears' weight_in_out).
  bool transposed = false;
  /// Some read has a use other than the linears (OtherUses::Any).
  bool shared = false;
};
SmallVector<LinearWeight> linearWeights(ModuleOp module,
                                        OtherUses others = OtherUses::None);

} // namespace mlir::kiln

#endif // KILN_LIB_DIALECT_KILN_TRANSFORMS_LINEARWEIGHTS_H
