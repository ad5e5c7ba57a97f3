//===- CostModel.h - Entry point cost as a polynomial in its sizes -*- C++ -*-===//
//
// The FLOPs and bytes of a kiln entry point whose inputs have dynamic dims
// are polynomials in those dims (GPT-2: terms in B*S, B*S^2, S, constants).
// This fits that polynomial exactly: it evaluates the cost with the dynamic
// dims set to chosen sizes (refining every value's type to a static one, so
// each op's cost rule sees static shapes), interpolates on a lower set of
// monomials, and checks the result at extra sizes. The manifest stores it as
// the entry point's "cost_model" (docs/artifacts.md).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_COSTMODEL_H
#define KILN_COMPILER_COSTMODEL_H

#include "kiln/Dialect/Kiln/IR/KilnInterfaces.h"
#include "kiln/Runtime/Manifest.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::kiln {

// The cost model is the manifest's (include/kiln/Runtime/Manifest.h): one
// type on both sides, which the compiler fills and the runtime evaluates.
using ::kiln::runtime::CostModel;
using ::kiln::runtime::CostSymbol;
using ::kiln::runtime::CostTerm;
using ::kiln::runtime::InputDim;

/// The polynomials of `model` at `sizes` (one per symbol).
OpCost evaluateCostModel(const CostModel &model, ArrayRef<int64_t> sizes);

/// The cost of one call of `func` with the dims of each symbol set to the
/// matching entry of `sizes`. `func` is left as it was. Fails, with the
/// reason, when some value's type cannot be made static (an op whose result
/// shape this does not know how to refine, a data-dependent size) or when
/// the sizes contradict the graph (dims it needs equal got different sizes).
llvm::Expected<OpCost> evaluateCostAt(func::FuncOp func,
                                      ArrayRef<CostSymbol> symbols,
                                      ArrayRef<int64_t> sizes);

/// Fits the cost of `func` as polynomials in the dynamic dims of its inputs,
/// with exponents up to 2 per symbol and 3 in total. Fails, with the reason,
/// when the inputs are all static, the cost cannot be evaluated at static
/// sizes, or the fit does not reproduce the cost at sizes it was not fitted
/// on (a term of higher degree).
llvm::Expected<CostModel> fitCostModel(func::FuncOp func);

} // namespace mlir::kiln

#endif // KILN_COMPILER_COSTMODEL_H
