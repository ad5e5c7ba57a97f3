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

/// One input dimension: argument `input`, axis `axis`.
struct InputDim {
  unsigned input = 0;
  unsigned axis = 0;
};

/// A dynamic size of an entry point: one or more dynamic input dims that
/// take the same value (dims the graph ties together share a symbol).
struct CostSymbol {
  /// "<input>.<axis>" of its first dim.
  std::string name;
  std::vector<InputDim> dims;
};

/// coefficient * prod(symbol_i ^ exponents[i]): the runtime's term, which
/// evaluates the manifest's polynomials.
using CostTerm = ::kiln::runtime::CostTerm;

struct CostModel {
  std::vector<CostSymbol> symbols;
  std::vector<CostTerm> flops;
  std::vector<CostTerm> bytes;

  /// The polynomials at `sizes` (one per symbol).
  OpCost evaluate(ArrayRef<int64_t> sizes) const;
};

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
