//===- CostModel.cpp - Entry point cost as a polynomial in its sizes ------===//
//
// Evaluating the cost at given sizes refines the types of the entry
// function in place, in program order (inferred ops by their shape
// inference, the others by their own rule: reshape's k-th `?`, the ops with
// `dynamic_sizes` operands from those index values), sums CostOpInterface,
// and puts every type back. Fitting interpolates on the lower set of
// exponents {e : e_i <= 2, sum(e) <= 3} with the tensor-product nodes 2, 3,
// 4 per symbol (multivariate Newton form; unisolvent on a lower set), then
// checks the fit at two sizes off that grid. Size 1 is avoided: it would
// broadcast where a larger size must match.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/CostModel.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <map>

using namespace mlir;
using namespace mlir::kiln;

namespace {

llvm::Error costError(const llvm::Twine &message) {
  return llvm::createStringError(message.str());
}

std::string describe(Operation *op) {
  return ("'" + op->getName().getStringRef() + "'").str();
}

//===----------------------------------------------------------------------===//
// Type refinement
//===----------------------------------------------------------------------===//

/// Refines the types of one function body to static shapes. Remembers every
/// type it changes so that `restore` puts the function back as it was.
class Refiner {
public:
  ~Refiner() { restore(); }

  void setType(Value value, Type type) {
    if (value.getType() == type)
      return;
    originals.try_emplace(value, value.getType());
    saved.push_back({value, value.getType()});
    value.setType(type);
  }

  void restore() {
    for (auto it = saved.rbegin(); it != saved.rend(); ++it)
      it->first.setType(it->second);
    saved.clear();
  }

  /// Refines the results of every op of `body`, in order.
  llvm::Error refine(Block &body);

private:
  llvm::Error refineOp(Operation *op);
  llvm::Error refineIndex(Operation *op);
  /// The result type of `op` with the `?` of `declared` filled, in order,
  /// from `sizes`.
  llvm::Expected<Type> fillDynamic(Operation *op, RankedTensorType declared,
                                   ValueRange sizes);
  /// The original (pre-refinement) type of `value`.
  Type originalType(Value value) {
    auto it = originals.find(value);
    return it == originals.end() ? value.getType() : it->second;
  }

  SmallVector<std::pair<Value, Type>> saved;
  DenseMap<Value, Type> originals;
  /// Known values of index (and integer scalar) SSA values.
  DenseMap<Value, int64_t> indices;
};

llvm::Error Refiner::refine(Block &body) {
  for (Operation &op : body) {
    if (op.getNumRegions() != 0)
      return costError("the entry function has an op with regions (" +
                     describe(&op) + ")");
    if (llvm::Error err = refineOp(&op))
      return err;
  }
  return llvm::Error::success();
}

llvm::Error Refiner::refineIndex(Operation *op) {
  auto get = [&](Value value) -> std::optional<int64_t> {
    auto it = indices.find(value);
    if (it == indices.end())
      return std::nullopt;
    return it->second;
  };
  std::optional<int64_t> result;
  if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
    if (auto integer = dyn_cast<IntegerAttr>(constant.getValue()))
      result = integer.getInt();
  } else if (auto dim = dyn_cast<tensor::DimOp>(op)) {
    auto type = dyn_cast<RankedTensorType>(dim.getSource().getType());
    std::optional<int64_t> axis = get(dim.getIndex());
    if (type && axis && *axis >= 0 && *axis < type.getRank() &&
        !type.isDynamicDim(*axis))
      result = type.getDimSize(*axis);
  } else if (isa<arith::IndexCastOp, arith::IndexCastUIOp>(op)) {
    result = get(op->getOperand(0));
  } else if (op->getNumOperands() == 2) {
    std::optional<int64_t> a = get(op->getOperand(0)),
                           b = get(op->getOperand(1));
    if (a && b) {
      if (isa<arith::AddIOp>(op))
        result = *a + *b;
      else if (isa<arith::SubIOp>(op))
        result = *a - *b;
      else if (isa<arith::MulIOp>(op))
        result = *a * *b;
      else if (isa<arith::MaxSIOp, arith::MaxUIOp>(op))
        result = std::max(*a, *b);
      else if (isa<arith::MinSIOp, arith::MinUIOp>(op))
        result = std::min(*a, *b);
      else if (*b > 0 && isa<arith::DivSIOp, arith::DivUIOp,
                             arith::FloorDivSIOp>(op))
        result = *a >= 0 ? *a / *b : -((-*a + *b - 1) / *b);
      else if (*b > 0 && isa<arith::CeilDivSIOp, arith::CeilDivUIOp>(op))
        result = *a >= 0 ? (*a + *b - 1) / *b : -(-*a / *b);
      else if (*b > 0 && isa<arith::RemSIOp, arith::RemUIOp>(op))
        result = *a % *b;
    }
  }
  // An index this does not know stays unknown; it only matters when a
  // shape needs it, and then that op fails.
  if (result)
    indices[op->getResult(0)] = *result;
  return llvm::Error::success();
}

llvm::Expected<Type> Refiner::fillDynamic(Operation *op,
                                          RankedTensorType declared,
                                          ValueRange sizes) {
  SmallVector<int64_t> shape(declared.getShape());
  unsigned next = 0;
  for (int64_t &dim : shape) {
    if (!ShapedType::isDynamic(dim))
      continue;
    if (next >= sizes.size())
      return costError(describe(op) + " has fewer dynamic sizes than `?`");
    auto it = indices.find(sizes[next++]);
    if (it == indices.end())
      return costError("a dynamic size of " + describe(op) +
                     " is not computed from the input shapes");
    if (it->second < 0)
      return costError(describe(op) + " gets a negative size");
    dim = it->second;
  }
  return RankedTensorType::get(shape, declared.getElementType(),
                               declared.getEncoding());
}

llvm::Error Refiner::refineOp(Operation *op) {
  if (op->getNumResults() == 1 &&
      op->getResult(0).getType().isIntOrIndex())
    return refineIndex(op);

  bool dynamicResult = llvm::any_of(op->getResultTypes(), [](Type type) {
    auto shaped = dyn_cast<ShapedType>(type);
    return shaped && !shaped.hasStaticShape();
  });
  bool dynamicOperand = llvm::any_of(op->getOperands(), [&](Value value) {
    auto shaped = dyn_cast<ShapedType>(originalType(value));
    return shaped && !shaped.hasStaticShape();
  });
  // Static results are final unless inference re-checks them against the
  // refined operands: do so when any operand was dynamic, so that sizes
  // which contradict the graph fail here rather than pass unnoticed.
  if (!dynamicResult && !dynamicOperand)
    return llvm::Error::success();

  SmallVector<Type> refined;
  if (auto reshape = dyn_cast<ReshapeOp>(op)) {
    // The k-th `?` of the result has the size of the k-th `?` of the input.
    auto input = cast<RankedTensorType>(originalType(reshape.getInput()));
    auto now = cast<RankedTensorType>(reshape.getInput().getType());
    SmallVector<int64_t> sizes;
    for (int64_t i = 0; i < input.getRank(); ++i)
      if (input.isDynamicDim(i))
        sizes.push_back(now.getDimSize(i));
    auto declared = cast<RankedTensorType>(reshape.getType());
    SmallVector<int64_t> shape(declared.getShape());
    unsigned next = 0;
    for (int64_t &dim : shape)
      if (ShapedType::isDynamic(dim)) {
        if (next >= sizes.size())
          return costError("'kiln.reshape' has more `?` than its input");
        dim = sizes[next++];
      }
    if (ShapedType::getNumElements(shape) != now.getNumElements())
      return costError("'kiln.reshape' changes the element count at these "
                     "sizes (the sizes contradict the graph)");
    refined.push_back(RankedTensorType::get(shape, declared.getElementType(),
                                            declared.getEncoding()));
  } else if (isa<IotaOp, CausalMaskOp, RandomUniformOp, BroadcastToOp>(op)) {
    ValueRange sizes;
    if (auto iota = dyn_cast<IotaOp>(op))
      sizes = iota.getDynamicSizes();
    else if (auto mask = dyn_cast<CausalMaskOp>(op))
      sizes = mask.getDynamicSizes();
    else if (auto random = dyn_cast<RandomUniformOp>(op))
      sizes = random.getDynamicSizes();
    else
      sizes = cast<BroadcastToOp>(op).getDynamicSizes();
    auto declared = cast<RankedTensorType>(originalType(op->getResult(0)));
    auto type = fillDynamic(op, declared, sizes);
    if (!type)
      return type.takeError();
    refined.push_back(*type);
  } else if (auto mask = dyn_cast<PaddingMaskOp>(op)) {
    auto input = cast<RankedTensorType>(mask.getMask().getType());
    auto declared = cast<RankedTensorType>(mask.getType());
    refined.push_back(RankedTensorType::get(
        {input.getDimSize(0), 1, 1, input.getDimSize(1)},
        declared.getElementType(), declared.getEncoding()));
  } else if (auto cast = dyn_cast<CastOp>(op)) {
    auto input = llvm::cast<RankedTensorType>(cast.getInput().getType());
    auto declared = llvm::cast<RankedTensorType>(cast.getType());
    refined.push_back(RankedTensorType::get(input.getShape(),
                                            declared.getElementType(),
                                            declared.getEncoding()));
  } else if (auto infer = dyn_cast<InferTypeOpInterface>(op)) {
    // No location: a failure here means the sizes contradict the graph,
    // which is a finding, not a diagnostic.
    if (failed(infer.inferReturnTypes(
            op->getContext(), std::nullopt, op->getOperands(),
            op->getRawDictionaryAttrs(), op->getPropertiesStorage(),
            op->getRegions(), refined)))
      return costError("shape inference of " + describe(op) +
                     " fails at these sizes (the sizes contradict the "
                     "graph)");
  } else if (op->getNumResults() == 0) {
    return llvm::Error::success();
  } else {
    return costError("cannot refine the result shape of " + describe(op));
  }

  if (refined.size() != op->getNumResults())
    return costError(describe(op) + ": inferred result count differs");
  for (auto [result, type] : llvm::zip(op->getResults(), refined)) {
    // The declared type may be more static than the inferred one: keep its
    // sizes, which must agree with the refined ones.
    auto declared = dyn_cast<RankedTensorType>(originalType(result));
    auto inferred = dyn_cast<RankedTensorType>(type);
    if (!declared || !inferred) {
      if (auto shaped = dyn_cast<ShapedType>(result.getType());
          shaped && !shaped.hasStaticShape())
        return costError(describe(op) + " has an unranked result");
      continue;
    }
    if (declared.getRank() != inferred.getRank())
      return costError(describe(op) + ": inferred rank differs");
    SmallVector<int64_t> shape(declared.getShape());
    for (int64_t i = 0; i < declared.getRank(); ++i) {
      int64_t now = inferred.getDimSize(i);
      if (ShapedType::isDynamic(shape[i])) {
        if (ShapedType::isDynamic(now))
          return costError("the result shape of " + describe(op) +
                         " stays dynamic");
        shape[i] = now;
      } else if (!ShapedType::isDynamic(now) && now != shape[i]) {
        return costError(describe(op) + " needs a size of " +
                       std::to_string(shape[i]) + " where these sizes give " +
                       std::to_string(now) +
                       " (the sizes contradict the graph)");
      }
    }
    Type final = RankedTensorType::get(shape, declared.getElementType(),
                                       declared.getEncoding());
    setType(result, final);
  }
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Polynomials
//===----------------------------------------------------------------------===//

using Exponents = std::vector<unsigned>;

constexpr unsigned kMaxDegreePerSymbol = 2;
constexpr unsigned kMaxTotalDegree = 3;
/// More symbols than this would need too many cost evaluations.
constexpr size_t kMaxSymbols = 6;
/// Interpolation nodes, per symbol (kMaxDegreePerSymbol + 1 of them).
constexpr int64_t kNodes[] = {2, 3, 4};

/// The lower set {e : e_i <= 2, sum(e) <= 3}, in graded order.
std::vector<Exponents> lowerSet(size_t symbols) {
  std::vector<Exponents> set;
  Exponents current(symbols, 0);
  std::function<void(size_t, unsigned)> visit = [&](size_t i,
                                                    unsigned total) {
    if (i == symbols) {
      set.push_back(current);
      return;
    }
    for (unsigned e = 0; e <= kMaxDegreePerSymbol && total + e <= kMaxTotalDegree;
         ++e) {
      current[i] = e;
      visit(i + 1, total + e);
    }
    current[i] = 0;
  };
  visit(0, 0);
  std::stable_sort(set.begin(), set.end(),
                   [](const Exponents &a, const Exponents &b) {
                     unsigned sa = 0, sb = 0;
                     for (unsigned e : a)
                       sa += e;
                     for (unsigned e : b)
                       sb += e;
                     return sa < sb;
                   });
  return set;
}

/// 1-D divided-difference weight: the coefficient of f(x_j) in
/// f[x_0, ..., x_k].
double dividedDifferenceWeight(unsigned k, unsigned j) {
  double denominator = 1;
  for (unsigned m = 0; m <= k; ++m)
    if (m != j)
      denominator *= static_cast<double>(kNodes[j] - kNodes[m]);
  return 1.0 / denominator;
}

/// Monomial coefficients (index = power) of the Newton basis polynomial
/// N_k(t) = prod_{m < k} (t - x_m).
std::vector<double> newtonBasis(unsigned k) {
  std::vector<double> poly = {1};
  for (unsigned m = 0; m < k; ++m) {
    std::vector<double> next(poly.size() + 1, 0);
    for (size_t p = 0; p < poly.size(); ++p) {
      next[p + 1] += poly[p];
      next[p] -= static_cast<double>(kNodes[m]) * poly[p];
    }
    poly = std::move(next);
  }
  return poly;
}

/// Interpolates `values` (one per exponent vector of `set`, taken at the
/// nodes it names) and returns the monomial form, without zero terms.
std::vector<CostTerm> interpolate(const std::vector<Exponents> &set,
                                  const std::vector<double> &values) {
  size_t symbols = set.empty() ? 0 : set.front().size();
  std::map<Exponents, size_t> position;
  for (size_t i = 0; i < set.size(); ++i)
    position[set[i]] = i;
  std::map<Exponents, double> monomials;
  for (const Exponents &alpha : set) {
    // Newton coefficient: the tensor divided difference over beta <= alpha
    // (all in the set, since it is a lower set).
    double coefficient = 0;
    Exponents beta(symbols, 0);
    std::function<void(size_t, double)> sum = [&](size_t i, double weight) {
      if (i == symbols) {
        coefficient += weight * values[position.at(beta)];
        return;
      }
      for (unsigned j = 0; j <= alpha[i]; ++j) {
        beta[i] = j;
        sum(i + 1, weight * dividedDifferenceWeight(alpha[i], j));
      }
      beta[i] = 0;
    };
    sum(0, 1.0);
    if (coefficient == 0)
      continue;
    // coefficient * prod_i N_{alpha_i}(x_i), expanded.
    std::map<Exponents, double> product = {{Exponents(symbols, 0), coefficient}};
    for (size_t i = 0; i < symbols; ++i) {
      std::vector<double> basis = newtonBasis(alpha[i]);
      std::map<Exponents, double> next;
      for (const auto &[exponents, value] : product)
        for (size_t p = 0; p < basis.size(); ++p) {
          if (basis[p] == 0)
            continue;
          Exponents e = exponents;
          e[i] += static_cast<unsigned>(p);
          next[e] += value * basis[p];
        }
      product = std::move(next);
    }
    for (const auto &[exponents, value] : product)
      monomials[exponents] += value;
  }
  std::vector<CostTerm> terms;
  for (const auto &[exponents, value] : monomials) {
    // Costs are counts: snap coefficients that are integers up to rounding.
    double rounded = std::round(value);
    double coefficient =
        std::abs(value - rounded) <= 1e-6 * std::max(1.0, std::abs(value))
            ? rounded
            : value;
    if (coefficient != 0)
      terms.push_back({coefficient, exponents});
  }
  return terms;
}

double evaluatePolynomial(const std::vector<CostTerm> &terms,
                          ArrayRef<int64_t> sizes) {
  return ::kiln::runtime::evaluateCostTerms(
      terms, std::vector<double>(sizes.begin(), sizes.end()));
}

bool agrees(double fitted, double exact) {
  return std::abs(fitted - exact) <= 1e-9 * std::max(1.0, std::abs(exact));
}

std::string inputName(func::FuncOp func, unsigned input) {
  auto name = func.getArgAttrOfType<StringAttr>(input, attrs::kName);
  return name ? name.str() : "arg" + std::to_string(input);
}

/// One symbol per axis: the dynamic dims at that axis of all inputs.
std::vector<CostSymbol> chooseSymbols(func::FuncOp func) {
  std::vector<CostSymbol> symbols;
  std::map<unsigned, size_t> byAxis;
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    auto type = dyn_cast<RankedTensorType>(func.getArgument(i).getType());
    if (!type)
      continue;
    for (int64_t axis = 0; axis < type.getRank(); ++axis) {
      if (!type.isDynamicDim(axis))
        continue;
      InputDim dim{i, static_cast<size_t>(axis)};
      auto [it, inserted] = byAxis.try_emplace(dim.axis, symbols.size());
      if (inserted)
        symbols.push_back(
            {inputName(func, i) + "." + std::to_string(axis), {dim}});
      else
        symbols[it->second].dims.push_back(dim);
    }
  }
  return symbols;
}

/// Fits with the given symbols.
llvm::Expected<CostModel> fitWith(func::FuncOp func,
                                  std::vector<CostSymbol> symbols) {
  size_t n = symbols.size();
  // Off-grid sizes to check the fit at.
  SmallVector<SmallVector<int64_t>> checks(2);
  for (size_t i = 0; i < n; ++i) {
    checks[0].push_back(5 + static_cast<int64_t>(i));
    checks[1].push_back(13 - static_cast<int64_t>(i));
  }
  SmallVector<OpCost> exact;
  for (const auto &sizes : checks) {
    auto cost = evaluateCostAt(func, symbols, sizes);
    if (!cost)
      return cost.takeError();
    exact.push_back(*cost);
  }

  std::vector<Exponents> set = lowerSet(n);
  std::vector<double> flops, bytes;
  for (const Exponents &alpha : set) {
    SmallVector<int64_t> sizes;
    for (unsigned e : alpha)
      sizes.push_back(kNodes[e]);
    auto cost = evaluateCostAt(func, symbols, sizes);
    if (!cost)
      return cost.takeError();
    flops.push_back(cost->flops);
    bytes.push_back(cost->bytes());
  }
  CostModel model;
  model.symbols = std::move(symbols);
  model.flops = interpolate(set, flops);
  model.bytes = interpolate(set, bytes);
  for (size_t c = 0; c < checks.size(); ++c) {
    OpCost fitted = evaluateCostModel(model, checks[c]);
    if (!agrees(fitted.flops, exact[c].flops) ||
        !agrees(fitted.bytes(), exact[c].bytes()))
      return costError(llvm::formatv(
          "the cost is not a polynomial of degree <= {0} per size and <= "
          "{1} in total: the fit gives {2} flops, {3} bytes where the graph "
          "costs {4} flops, {5} bytes",
          kMaxDegreePerSymbol, kMaxTotalDegree, fitted.flops, fitted.bytes(),
          exact[c].flops, exact[c].bytes()));
  }
  return model;
}

} // namespace

OpCost mlir::kiln::evaluateCostModel(const CostModel &model,
                                     ArrayRef<int64_t> sizes) {
  OpCost cost;
  cost.flops = evaluatePolynomial(model.flops, sizes);
  // The model keeps total bytes only.
  cost.bytesRead = evaluatePolynomial(model.bytes, sizes);
  return cost;
}

llvm::Expected<OpCost> mlir::kiln::evaluateCostAt(func::FuncOp func,
                                                  ArrayRef<CostSymbol> symbols,
                                                  ArrayRef<int64_t> sizes) {
  if (func.isExternal())
    return costError("the function has no body");
  if (!func.getBody().hasOneBlock())
    return costError("the function has more than one block");
  assert(symbols.size() == sizes.size() && "one size per symbol");
  Block &body = func.getBody().front();
  // Argument shapes with each symbol's dims set.
  SmallVector<SmallVector<int64_t>> shapes;
  for (BlockArgument arg : body.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    shapes.emplace_back(type ? SmallVector<int64_t>(type.getShape())
                             : SmallVector<int64_t>());
  }
  for (auto [symbol, size] : llvm::zip(symbols, sizes)) {
    for (const InputDim &dim : symbol.dims) {
      auto type =
          dyn_cast<RankedTensorType>(body.getArgument(dim.input).getType());
      if (!type || static_cast<int64_t>(dim.axis) >= type.getRank() ||
          !type.isDynamicDim(dim.axis))
        return costError("symbol '" + symbol.name +
                       "' names a dim that is not dynamic");
      if (auto max = func.getArgAttrOfType<DenseI64ArrayAttr>(
              dim.input, attrs::kMaxShape)) {
        if (static_cast<int64_t>(dim.axis) < max.size() && max[dim.axis] >= 0 &&
            size > max[dim.axis])
          return costError(llvm::formatv(
              "symbol '{0}' needs size {1}, above the input's max_shape {2}",
              symbol.name, size, max[dim.axis]));
      }
      shapes[dim.input][dim.axis] = size;
    }
  }

  Refiner refiner;
  for (BlockArgument arg : body.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type)
      continue;
    auto shape = shapes[arg.getArgNumber()];
    if (ShapedType::isDynamicShape(shape))
      return costError("input " + std::to_string(arg.getArgNumber()) +
                     " keeps a dynamic dim no symbol sets");
    refiner.setType(arg, RankedTensorType::get(shape, type.getElementType(),
                                               type.getEncoding()));
  }
  if (llvm::Error err = refiner.refine(body))
    return std::move(err);
  OpCost cost;
  for (Operation &op : body) {
    auto costly = dyn_cast<CostOpInterface>(&op);
    if (!costly)
      continue;
    cost += costly.getCost(CostOptions());
  }
  return cost;
}

llvm::Expected<CostModel> mlir::kiln::fitCostModel(func::FuncOp func) {
  // Start from the dims at the same axis of every input tied (input_ids
  // and targets share batch and sequence), then untie each dim the graph
  // accepts a different size for (an encoder-decoder's source and target
  // lengths): shape inference rejects sizes that contradict the graph.
  std::vector<CostSymbol> symbols = chooseSymbols(func);
  if (symbols.empty())
    return costError("the inputs have static shapes");
  auto distinctSizes = [](size_t count) {
    SmallVector<int64_t> sizes;
    for (size_t i = 0; i < count; ++i)
      sizes.push_back(5 + static_cast<int64_t>(i));
    return sizes;
  };
  for (size_t s = 0, e = symbols.size(); s < e; ++s) {
    for (size_t d = 1; d < symbols[s].dims.size();) {
      if (symbols.size() >= kMaxSymbols)
        break;
      std::vector<CostSymbol> split = symbols;
      InputDim dim = split[s].dims[d];
      split[s].dims.erase(split[s].dims.begin() + d);
      split.push_back({inputName(func, dim.input) + "." +
                           std::to_string(dim.axis),
                       {dim}});
      auto probe = evaluateCostAt(func, split, distinctSizes(split.size()));
      if (probe) {
        symbols = std::move(split);
        continue;
      }
      llvm::consumeError(probe.takeError());
      ++d;
    }
  }
  if (symbols.size() > kMaxSymbols)
    return costError(llvm::formatv(
        "{0} dynamic sizes (at most {1} are fitted)", symbols.size(),
        kMaxSymbols));
  return fitWith(func, std::move(symbols));
}
