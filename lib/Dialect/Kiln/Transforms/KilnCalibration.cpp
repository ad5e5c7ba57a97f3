//===- KilnCalibration.cpp - The calibrate entry point --------------------===//
//
// Static quantization of activations needs the range of each linear
// layer's input on real data, which only running the float model tells.
// This pass adds an entry point that computes it: `calibrate` is a clone
// of `forward` that returns, instead of forward's outputs, the largest
// |input| of each input channel of every linear layer over every other dim
// (tokens, batch). The driver (`kiln calibrate`) runs it over calibration
// text and keeps the maximum per channel. Percentile and MSE ranges need
// the distribution of |x|, not only its maximum: with `histogram` the
// entry also returns each layer's input itself and the driver bins it.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNCALIBRATIONENTRYPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {

/// The parameter `weight` reads (directly or through one cast), if it is a
/// 2-D float parameter.
std::optional<StringRef> weightParameter(Value weight) {
  if (auto cast = weight.getDefiningOp<CastOp>())
    weight = cast.getInput();
  auto read = weight.getDefiningOp<ReadParamOp>();
  if (!read)
    return std::nullopt;
  auto type = dyn_cast<RankedTensorType>(read.getType());
  if (!type || type.getRank() != 2 || !isa<FloatType>(type.getElementType()))
    return std::nullopt;
  return read.getName();
}

struct KilnCalibrationEntryPass
    : kiln::impl::KilnCalibrationEntryPassBase<KilnCalibrationEntryPass> {
  using Base::Base;

  void runOnOperation() final {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward || forward.isExternal()) {
      module.emitError("kiln-calibration-entry: the module has no 'forward' "
                       "function to calibrate");
      return signalPassFailure();
    }
    if (module.lookupSymbol("calibrate")) {
      module.emitError("kiln-calibration-entry: the module has a 'calibrate' "
                       "symbol already");
      return signalPassFailure();
    }
    auto calibrate = forward.clone();
    calibrate.setName("calibrate");
    module.insert(std::next(Block::iterator(forward)), calibrate);

    // Each weight's layers' inputs, in the order the graph meets them.
    llvm::MapVector<StringRef, SmallVector<Value>> inputs;
    calibrate.walk([&](Operation *op) {
      if (auto linear = dyn_cast<LinearOp>(op)) {
        if (auto name = weightParameter(linear.getWeight()))
          inputs[*name].push_back(linear.getInput());
      } else if (auto matmul = dyn_cast<MatmulOp>(op)) {
        if (auto name = weightParameter(matmul.getRhs());
            name && !matmul.getTransposeLhs())
          inputs[*name].push_back(matmul.getLhs());
      }
    });
    if (inputs.empty()) {
      calibrate.erase();
      module.emitError("kiln-calibration-entry: 'forward' has no linear layer "
                       "with a parameter as its weight");
      return signalPassFailure();
    }

    auto ret = cast<func::ReturnOp>(calibrate.getBody().back().getTerminator());
    OpBuilder b(ret);
    Location loc = calibrate.getLoc();
    Type f32 = b.getF32Type();
    // A layer's input in f32 (a bf16 or f16 one converted, once).
    llvm::DenseMap<Value, Value> converted;
    auto asF32 = [&](Value x) -> Value {
      auto type = cast<RankedTensorType>(x.getType());
      if (type.getElementType() == f32)
        return x;
      Value &f = converted[x];
      if (!f)
        f = CastOp::create(b, loc, RankedTensorType::get(type.getShape(), f32),
                           x);
      return f;
    };
    SmallVector<Value> stats;
    SmallVector<Attribute> names;
    for (auto &[name, values] : inputs) {
      Value combined;
      for (Value x : values) {
        Value magnitude = AbsOp::create(b, loc, asF32(x));
        int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
        if (rank > 1)
          magnitude =
              ReduceOp::create(b, loc, ReduceKind::max, magnitude,
                               llvm::to_vector(llvm::seq<int64_t>(0, rank - 1)),
                               /*keepdim=*/false);
        combined = combined ? Value(MaxOp::create(b, loc, combined, magnitude))
                            : magnitude;
      }
      stats.push_back(combined);
      names.push_back(b.getStringAttr((name + ".input_absmax").str()));
    }
    // Σ x xᵀ per weight: xᵀ·x over the last two dims, summed over the
    // batch dims and over the layers sharing the weight.
    if (gram)
      for (auto &[name, values] : inputs) {
        Value sum;
        for (Value input : values) {
          Value x = asF32(input);
          auto type = cast<RankedTensorType>(x.getType());
          int64_t rank = type.getRank();
          if (rank == 1) {
            auto row = RankedTensorType::get({1, type.getDimSize(0)}, f32);
            x = ReshapeOp::create(b, loc, row, x);
            rank = 2;
          }
          Value g =
              MatmulOp::create(b, loc, x, x, /*transpose_lhs=*/b.getUnitAttr(),
                               /*transpose_rhs=*/UnitAttr());
          if (rank > 2)
            g = ReduceOp::create(
                b, loc, ReduceKind::sum, g,
                llvm::to_vector(llvm::seq<int64_t>(0, rank - 2)),
                /*keepdim=*/false);
          sum = sum ? Value(AddOp::create(b, loc, sum, g)) : g;
        }
        stats.push_back(sum);
        names.push_back(b.getStringAttr((name + ".input_gram").str()));
      }
    // The inputs themselves, for the driver's |x| histograms. A weight
    // several layers share gets their inputs joined along dim 0, which
    // needs them to agree on every other dim.
    if (histogram)
      for (auto &[name, values] : inputs) {
        Value all = asF32(values.front());
        if (values.size() > 1) {
          SmallVector<Value> joined;
          for (Value x : values)
            joined.push_back(asF32(x));
          auto first = cast<RankedTensorType>(all.getType());
          for (Value x : joined) {
            auto type = cast<RankedTensorType>(x.getType());
            if (type.getRank() != first.getRank() || type.getRank() == 0 ||
                type.getShape().drop_front() != first.getShape().drop_front()) {
              module.emitError("kiln-calibration-entry: the layers of '")
                  << name << "' take inputs of different shapes (" << first
                  << " and " << type
                  << "), which one histogram input cannot join";
              calibrate.erase();
              return signalPassFailure();
            }
          }
          all = ConcatOp::create(b, loc, ValueRange(joined), /*axis=*/0);
        }
        stats.push_back(all);
        names.push_back(b.getStringAttr((name + ".input_values").str()));
      }
    func::ReturnOp::create(b, ret.getLoc(), stats);
    ret.erase();
    calibrate.setFunctionType(b.getFunctionType(calibrate.getArgumentTypes(),
                                                ValueRange(stats).getTypes()));
    calibrate.setAllResultAttrs(ArrayRef<DictionaryAttr>{});
    for (auto [index, name] : llvm::enumerate(names))
      calibrate.setResultAttr(index, attrs::kName, name);
  }
};

} // namespace
