//===- KilnPackWeights.cpp - Linear weights stored as column panels -------===//
//
// The CPU matmul walks its rhs in panels of `w` columns (the register
// tile's width) and, for a row-major [K, N] weight, first copies each
// panel's columns into a contiguous [K, w] buffer, on every call, from a
// weight that is cold in memory (the AMX kernel also interleaves bf16 rows
// in pairs as it copies). An inference artifact's weights never change, so the
// compiler can store them as the panels instead ([ceil(N / w), K, w], the
// last panel zero-padded) and the tiles read each panel where it lies. A
// parameter read only as the [in, out] f32 weight of kiln.linear ops (or,
// for AMX, the bf16 weight of either layout), in an artifact that writes no
// parameter, becomes its panels; each read is unpacked (kiln.unpack_panels,
// a layout change the matmul reads through) and the linears take the
// weight as [in, out]. The compiler packs the values when it writes the
// weights (kiln.packed_from says how).
//
//===----------------------------------------------------------------------===//

#include "LinearWeights.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNPACKWEIGHTSPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// Steps of k an AMX bf16 tile takes (16 pairs): the rows of a weight
/// stored in pairs are a whole number of them, as the kernel's packing
/// pads them.
constexpr int64_t kPairTileK = 32;

struct KilnPackWeightsPass
    : kiln::impl::KilnPackWeightsPassBase<KilnPackWeightsPass> {
  using Base::Base;

  /// Whether every linear takes a static number of rows (its input's
  /// leading dims) of at most dot-product-rows.
  bool fewRows(ArrayRef<LinearOp> linears) const {
    return llvm::all_of(linears, [&](LinearOp linear) {
      ArrayRef<int64_t> shape = linear.getInput().getType().getShape();
      int64_t rows = 1;
      for (int64_t size : shape.drop_back()) {
        if (ShapedType::isDynamic(size))
          return false;
        rows *= size;
      }
      return rows <= dotProductRows;
    });
  }

  void runOnOperation() final {
    ModuleOp module = getOperation();
    if (panelWidth < 1 || pairPanelWidth < 0) {
      module.emitError() << "kiln-pack-weights: panel-width must be positive "
                            "and pair-panel-width not negative (got "
                         << static_cast<int64_t>(panelWidth) << ", "
                         << static_cast<int64_t>(pairPanelWidth) << ")";
      return signalPassFailure();
    }
    // A module that writes parameters (a training artifact) loads
    // checkpoints into them by name and shape: its weights keep their
    // layout. (A store into an input updated in place, a KV cache, is no
    // parameter write.)
    bool writes = false, decodes = false;
    module.walk([&](Operation *op) {
      if (isa<WriteParamOp>(op)) {
        writes = true;
      } else if (auto store = dyn_cast<StoreParamOp>(op)) {
        auto arg = dyn_cast<BlockArgument>(store.getDest());
        auto func =
            arg ? dyn_cast<FunctionOpInterface>(arg.getOwner()->getParentOp())
                : FunctionOpInterface();
        bool inPlace =
            func && func.getArgAttr(arg.getArgNumber(), attrs::kInPlace);
        writes |= !inPlace;
        decodes |= inPlace;
      }
    });
    if (writes)
      return;
    // A head multiplying by a parameter directly (GPT-2's tied h · wteᵀ)
    // is a linear like the others.
    parameterMatmulsToLinears(module);
    OpBuilder builder(module.getContext());
    for (LinearWeight &weight : linearWeights(module, OtherUses::Tables)) {
      ParameterOp param = weight.param;
      RankedTensorType type = param.getTensorType();
      // f32 weights in panels of panel-width columns; bf16 ones (an
      // inference artifact's narrowed weights) for AMX tiles, with
      // pair-panel-width, in pairs of rows and whole tiles of k (32). A
      // parameter the compiler fills from something else (quantized,
      // pruned, compressed: any kiln.* attribute) keeps its type; and every
      // linear reads the weight as it is, not through a cast.
      bool described = isFilledByCompiler(param);
      bool direct = llvm::all_of(weight.linears, [&](LinearOp linear) {
        auto read = linear.getWeight().getDefiningOp<ReadParamOp>();
        return read && read.getName() == param.getSymName();
      });
      Type element = type.getElementType();
      bool pairs = element.isBF16() && pairPanelWidth > 0;
      if (!(element.isF32() || pairs) || !type.hasStaticShape() || described ||
          !direct)
        continue;
      // [in, out] with weight_in_out, else [out, in]. An [out, in] f32
      // weight stays in a module that decodes (one with a KV cache), and
      // where its linears all take few rows (dot-product-rows, static): a
      // decoding step takes dot products over its rows
      // (kiln-matvec-dot-products), faster than panels (measured on
      // llama: 0.41-0.60x packed). Many rows read panels faster than the
      // transposing copy the matmul makes of each panel on every call
      // (llama 768 wide at 1 x 128: 120 -> 105 ms packed).
      bool inOut = weight.transposed;
      if (!pairs && !inOut && (decodes || fewRows(weight.linears)))
        continue;
      int64_t in = type.getDimSize(inOut ? 0 : 1);
      int64_t out = type.getDimSize(inOut ? 1 : 0);
      if (in < 1 || out < 1 || (pairs && in % kPairTileK != 0))
        continue;
      int64_t width = pairs ? pairPanelWidth : panelWidth;
      int64_t panels = (out + width - 1) / width;
      auto packedType =
          pairs ? RankedTensorType::get({panels, in / 2, width, 2}, element)
                : RankedTensorType::get({panels, in, width}, element);
      auto unpackedType =
          RankedTensorType::get({in, out}, type.getElementType());
      MLIRContext *context = module.getContext();
      SmallVector<NamedAttribute> layout = {
          builder.getNamedAttr("shape",
                               builder.getDenseI64ArrayAttr(type.getShape())),
          builder.getNamedAttr("in_out", builder.getBoolAttr(inOut)),
          builder.getNamedAttr("pairs",
                               builder.getI64IntegerAttr(pairs ? 2 : 1)),
          builder.getNamedAttr("width", builder.getI64IntegerAttr(width))};
      if (atLoad)
        layout.push_back(
            builder.getNamedAttr("at_load", builder.getBoolAttr(true)));
      param->setAttr(attrs::kPackedFrom, builder.getDictionaryAttr(layout));
      param.setTypeAttr(TypeAttr::get(packedType));
      for (ReadParamOp read : weight.reads) {
        read.getResult().setType(packedType);
        builder.setInsertionPointAfter(read);
        // The linears read the unpacked [in, out] matrix. An embedding tied
        // to the weight gathers rows of the table as it was stored: that
        // matrix too, or for an [out, in] table its transpose;
        // convert-kiln-to-linalg's gather reads them in the panels. Each
        // unpacking only where this read has a use for it (its uses are
        // linears and embeddings: linearWeights and `direct`).
        auto feeds = [&](auto isUser) {
          return llvm::any_of(read->getUses(), [&](OpOperand &use) {
            return isUser(use.getOwner());
          });
        };
        auto isTable = [](Operation *op) { return isa<EmbeddingOp>(op); };
        auto isLinear = [](Operation *op) { return isa<LinearOp>(op); };
        bool toTables = feeds(isTable), toLinears = feeds(isLinear);
        Value unpacked, transposed;
        if (toLinears || (toTables && inOut))
          unpacked = UnpackPanelsOp::create(builder, read.getLoc(),
                                            unpackedType, read.getResult(),
                                            builder.getI64IntegerAttr(out));
        if (toTables && !inOut)
          transposed = UnpackPanelsOp::create(
              builder, read.getLoc(), type, read.getResult(),
              builder.getI64IntegerAttr(out), builder.getUnitAttr());
        if (toTables)
          read.getResult().replaceUsesWithIf(
              inOut ? unpacked : transposed,
              [&](OpOperand &use) { return isTable(use.getOwner()); });
        if (toLinears)
          read.getResult().replaceUsesWithIf(unpacked, [&](OpOperand &use) {
            return isLinear(use.getOwner());
          });
      }
      for (LinearOp linear : weight.linears)
        if (!inOut)
          linear.setWeightInOutAttr(UnitAttr::get(context));
    }
  }
};
} // namespace
