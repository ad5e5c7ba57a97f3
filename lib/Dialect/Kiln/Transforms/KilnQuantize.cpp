//===- KilnQuantize.cpp - Weight-only quantization of linear layers -------===//
//
// Replaces the float weights of kiln.linear ops by integer codes, scales
// (and zero points) and a kiln.dequantize. The values are not computed
// here: the new parameters say what they are quantized from
// (`kiln.quantized_from`), and the compiler fills them when it writes the
// weights, from a checkpoint or the source's init rule.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Dialect/Kiln/Transforms/Quantization.h"

#include "LinearWeights.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/GlobPattern.h"

#include <cmath>

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNQUANTIZEPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

//===----------------------------------------------------------------------===//
// Schemes and the kiln.quantized_from attribute
//===----------------------------------------------------------------------===//

std::string WeightScheme::name() const {
  if (fp8)
    return "fp8";
  if (dynamicActivations)
    return "int8-dynamic";
  if (staticActivations)
    return "int8-static";
  std::string text = "w" + std::to_string(bits);
  if (group)
    text += "g" + std::to_string(group);
  if (!symmetric)
    text += "-asym";
  return text;
}

llvm::Expected<WeightScheme> WeightScheme::parse(StringRef text,
                                                 bool asymmetric) {
  auto fail = [&](const Twine &why) {
    return llvm::createStringError(
        "unknown quantization scheme '" + text + "': " + why +
        " (known: w8, w8g<N>, w4g<N> such as w4g32, w4g64, w4g128, "
        "int8-dynamic, int8-static, fp8)");
  };
  WeightScheme scheme;
  if (text == "fp8") {
    if (asymmetric)
      return fail("fp8 has symmetric (e4m3) weights");
    scheme.fp8 = true;
    return scheme;
  }
  if (text == "int8-dynamic") {
    if (asymmetric)
      return fail("int8-dynamic has symmetric weights");
    scheme.dynamicActivations = true;
    return scheme;
  }
  if (text == "int8-static") {
    if (asymmetric)
      return fail("int8-static has symmetric weights");
    scheme.staticActivations = true;
    return scheme;
  }
  scheme.symmetric = !asymmetric;
  StringRef rest = text;
  if (rest.consume_back("-asym"))
    scheme.symmetric = false;
  if (!rest.consume_front("w"))
    return fail("it does not start with 'w'");
  StringRef bits = rest.take_while(llvm::isDigit);
  rest = rest.drop_front(bits.size());
  if (bits != "8" && bits != "4")
    return fail("codes are 8 or 4 bits");
  scheme.bits = bits == "8" ? 8 : 4;
  if (rest.consume_front("g")) {
    if (rest.getAsInteger(10, scheme.group) || scheme.group < 2)
      return fail("the group size must be an integer >= 2");
    if (scheme.bits == 4 && scheme.group % 2)
      return fail("4-bit groups must be even (two codes per byte)");
  } else if (!rest.empty()) {
    return fail("expected 'g<N>' after the bits");
  }
  if (scheme.bits == 4 && scheme.group == 0)
    return fail("4-bit weights need a group size (w4g128)");
  return scheme;
}

StringRef mlir::kiln::stringifyQuantizedPart(QuantizedPart part) {
  switch (part) {
  case QuantizedPart::Codes:
    return "codes";
  case QuantizedPart::Scales:
    return "scales";
  case QuantizedPart::ZeroPoints:
    return "zero_points";
  case QuantizedPart::Smoothing:
    return "smoothing";
  case QuantizedPart::InputScale:
    return "input_scale";
  }
  return "";
}

DictionaryAttr WeightQuantization::toAttr(MLIRContext *context) const {
  Builder b(context);
  SmallVector<NamedAttribute> entries = {
      b.getNamedAttr("source", b.getStringAttr(source)),
      b.getNamedAttr("part", b.getStringAttr(stringifyQuantizedPart(part))),
      b.getNamedAttr("bits", b.getI64IntegerAttr(scheme.bits)),
      b.getNamedAttr("group", b.getI64IntegerAttr(scheme.group)),
      b.getNamedAttr("symmetric", b.getBoolAttr(scheme.symmetric)),
      b.getNamedAttr("transposed", b.getBoolAttr(transposed)),
      b.getNamedAttr("source_shape", b.getDenseI64ArrayAttr(sourceShape)),
      b.getNamedAttr("rounding", b.getStringAttr(rounding)),
  };
  if (scheme.fp8)
    entries.push_back(b.getNamedAttr("format", b.getStringAttr("e4m3")));
  if (smoothAlpha >= 0)
    entries.push_back(
        b.getNamedAttr("smoothquant_alpha", b.getF64FloatAttr(smoothAlpha)));
  if (!inputAbsmax.empty())
    entries.push_back(b.getNamedAttr(
        "input_absmax",
        DenseElementsAttr::get(
            RankedTensorType::get({static_cast<int64_t>(inputAbsmax.size())},
                                  b.getF32Type()),
            ArrayRef<float>(inputAbsmax))));
  return b.getDictionaryAttr(entries);
}

llvm::Expected<WeightQuantization>
WeightQuantization::fromAttr(DictionaryAttr attr) {
  auto fail = [](const Twine &why) {
    return llvm::createStringError("malformed " + attrs::kQuantizedFrom + ": " +
                                   why);
  };
  WeightQuantization q;
  auto source = attr.getAs<StringAttr>("source");
  auto part = attr.getAs<StringAttr>("part");
  auto bits = attr.getAs<IntegerAttr>("bits");
  auto group = attr.getAs<IntegerAttr>("group");
  auto symmetric = attr.getAs<BoolAttr>("symmetric");
  auto transposed = attr.getAs<BoolAttr>("transposed");
  auto shape = attr.getAs<DenseI64ArrayAttr>("source_shape");
  if (!source || !part || !bits || !group || !symmetric || !transposed ||
      !shape)
    return fail("expected source, part (strings), bits, group (integers), "
                "symmetric, transposed (booleans) and source_shape (i64 "
                "array)");
  if (shape.size() != 2 || shape[0] <= 0 || shape[1] <= 0)
    return fail("source_shape must be two positive sizes");
  if (auto rounding = attr.get("rounding")) {
    auto text = dyn_cast<StringAttr>(rounding);
    if (!text || (text != "rtn" && text != "gptq" && text != "awq"))
      return fail("rounding must be \"rtn\", \"gptq\" or \"awq\"");
    q.rounding = text.str();
  }
  q.sourceShape.assign(shape.asArrayRef().begin(), shape.asArrayRef().end());
  q.source = source.str();
  if (part == "codes")
    q.part = QuantizedPart::Codes;
  else if (part == "scales")
    q.part = QuantizedPart::Scales;
  else if (part == "zero_points")
    q.part = QuantizedPart::ZeroPoints;
  else if (part == "smoothing")
    q.part = QuantizedPart::Smoothing;
  else if (part == "input_scale")
    q.part = QuantizedPart::InputScale;
  else
    return fail("unknown part '" + part.getValue() +
                "' (codes, scales, zero_points, smoothing, input_scale)");
  if (auto alpha = attr.get("smoothquant_alpha")) {
    auto value = dyn_cast<FloatAttr>(alpha);
    if (!value || !(value.getValueAsDouble() >= 0) ||
        value.getValueAsDouble() > 1)
      return fail("smoothquant_alpha must be a float in [0, 1]");
    q.smoothAlpha = value.getValueAsDouble();
  }
  if (auto stats = attr.get("input_absmax")) {
    auto values = dyn_cast<DenseElementsAttr>(stats);
    auto type = values ? dyn_cast<RankedTensorType>(values.getType())
                       : RankedTensorType();
    if (!type || type.getRank() != 1 || !type.getElementType().isF32())
      return fail("input_absmax must be an f32 vector");
    q.inputAbsmax.assign(values.getValues<float>().begin(),
                         values.getValues<float>().end());
  }
  if (auto format = attr.get("format")) {
    auto text = dyn_cast<StringAttr>(format);
    if (!text || text != "e4m3")
      return fail("format must be \"e4m3\"");
    q.scheme.fp8 = true;
  }
  q.scheme.bits = bits.getInt();
  q.scheme.group = group.getInt();
  q.scheme.symmetric = symmetric.getValue();
  q.transposed = transposed.getValue();
  if (q.scheme.bits != 8 && q.scheme.bits != 4)
    return fail("bits must be 8 or 4");
  if (q.scheme.group < 0 || q.scheme.group == 1 ||
      (q.scheme.bits == 4 && q.scheme.group % 2))
    return fail("bad group size " + Twine(q.scheme.group));
  if (q.scheme.fp8 &&
      (q.scheme.bits != 8 || q.scheme.group != 0 || !q.scheme.symmetric ||
       (q.part != QuantizedPart::Codes && q.part != QuantizedPart::Scales) ||
       q.smoothAlpha >= 0 || q.rounding != "rtn"))
    return fail("an e4m3 part is the codes or the scale of 8 symmetric bits "
                "without groups, smoothing or other rounding than rtn");
  if (q.scheme.symmetric && q.part == QuantizedPart::ZeroPoints)
    return fail("a symmetric scheme has no zero points");
  if (q.part == QuantizedPart::InputScale && q.smoothAlpha < 0)
    return fail("an input_scale part needs smoothquant_alpha");
  if (q.part == QuantizedPart::Smoothing &&
      ((q.smoothAlpha < 0 && q.rounding != "awq") ||
       static_cast<int64_t>(q.inputAbsmax.size()) != q.inDim()))
    return fail("a smoothing part needs smoothquant_alpha (or awq rounding) "
                "and input_absmax of the input dim's size");
  if ((q.scheme.group && q.inDim() % q.scheme.group) ||
      (q.scheme.bits == 4 && q.inDim() % 2))
    return fail("the input dim " + Twine(q.inDim()) + " does not split into " +
                q.scheme.name() + " groups");
  return q;
}

bool WeightQuantization::isFloatPart() const {
  return part == QuantizedPart::Scales || part == QuantizedPart::Smoothing ||
         part == QuantizedPart::InputScale;
}

SmallVector<int64_t, 2> WeightQuantization::partShape() const {
  int64_t out = outDim(), in = inDim();
  if (part == QuantizedPart::Codes)
    return {out, scheme.bits == 4 ? in / 2 : in};
  if (part == QuantizedPart::Smoothing)
    return {in};
  if (part == QuantizedPart::InputScale ||
      (scheme.fp8 && part == QuantizedPart::Scales))
    return {1};
  return {out, scheme.group ? in / scheme.group : 1};
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {

/// A kiln.constant of `shape` f32 elements, all `value`.
Value f32Splat(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
               double value) {
  Type f32 = b.getF32Type();
  auto type = RankedTensorType::get(shape, f32);
  return ConstantOp::create(b, loc, type,
                            cast<ElementsAttr>(DenseElementsAttr::get(
                                type, Attribute(FloatAttr::get(f32, value)))));
}

/// `linear` (f32 input `[..., in]`) as W8A8 with the weight's `[out, in]`
/// int8 `codes` and `[out, 1]` `scales`: the input is quantized per token
/// (scale = max(|x|) / 127 over its last dim) or with `staticScale` for
/// every token, multiplied as integers into i32 sums, and the sums scaled
/// back by the token's and the channel's scale, then the bias added:
///   y = f32(Σ q(x)·w) · s_x · s_w + b
Value buildInt8Linear(OpBuilder &b, LinearOp linear, Value codes, Value scales,
                      std::optional<float> staticScale, Value smoothing,
                      Value inputScale) {
  Location loc = linear.getLoc();
  Type f32 = b.getF32Type();
  auto scalar = [&](double value) { return f32Splat(b, loc, {}, value); };
  Value x = linear.getInput();
  int64_t rank = linear.getInput().getType().getRank();
  // SmoothQuant: x · diag(1 / s), against codes of W · diag(s).
  if (smoothing)
    x = MulOp::create(b, loc, x, smoothing);
  Value tokenScale;
  if (inputScale) {
    // A static scale the compiler computes ([1]), for every token.
    tokenScale = ReshapeOp::create(
        b, loc, RankedTensorType::get(SmallVector<int64_t>(rank, 1), f32),
        inputScale);
  } else if (staticScale) {
    // One scale for every token: [1, ..., 1].
    tokenScale = f32Splat(b, loc, SmallVector<int64_t>(rank, 1), *staticScale);
  } else {
    Value magnitude = AbsOp::create(b, loc, x);
    Value largest = ReduceOp::create(b, loc, ReduceKind::max, magnitude,
                                     ArrayRef<int64_t>{rank - 1},
                                     /*keepdim=*/true);
    // An all-zero token gets a tiny scale (its codes are all 0), not 0/0.
    largest = MaxOp::create(b, loc, largest, scalar(1e-30));
    tokenScale = DivOp::create(b, loc, largest, scalar(127.0));
  }
  Value xq = QuantizeOp::create(b, loc, x, tokenScale, /*zero_point=*/Value(),
                                /*unsigned_codes=*/UnitAttr());
  Value sums = IntegerMatmulOp::create(b, loc, xq, codes,
                                       /*transpose_rhs=*/b.getUnitAttr());
  auto sumsType = cast<RankedTensorType>(sums.getType());
  Value y = CastOp::create(
      b, loc, RankedTensorType::get(sumsType.getShape(), f32), sums);
  y = MulOp::create(b, loc, y, tokenScale);
  int64_t out = sumsType.getShape().back();
  Value channelScale =
      ReshapeOp::create(b, loc, RankedTensorType::get({out}, f32), scales);
  y = MulOp::create(b, loc, y, channelScale);
  if (Value bias = linear.getBias())
    y = AddOp::create(b, loc, y, bias);
  return y;
}

/// `linear` (f32 input `[..., in]`) as an fp8 product with the weight's
/// `[out, in]` e4m3 `codes` and its `[1]` scale: the input is quantized to
/// e4m3 with one scale for the whole tensor, computed at run time
/// (s_x = max(max|x|, 1e-30) / 448), and the codes multiplied with both
/// scales applied to the f32 sums, then the bias added:
///   y = s_x · s_w · Σ e4m3(x / s_x) · e4m3(w / s_w) + b
Value buildFp8Linear(OpBuilder &b, LinearOp linear, Value codes, Value scale) {
  Location loc = linear.getLoc();
  Type f32 = b.getF32Type();
  auto scalar = [&](double value) { return f32Splat(b, loc, {}, value); };
  Value x = linear.getInput();
  int64_t rank = linear.getInput().getType().getRank();
  Value magnitude = AbsOp::create(b, loc, x);
  Value largest = ReduceOp::create(b, loc, ReduceKind::max, magnitude,
                                   llvm::to_vector(llvm::seq<int64_t>(0, rank)),
                                   /*keepdim=*/true);
  // An all-zero input gets a tiny scale (its codes are all 0), not 0/0.
  largest = MaxOp::create(b, loc, largest, scalar(1e-30));
  Value inputScale = DivOp::create(b, loc, largest, scalar(448.0));
  Value xq = QuantizeOp::create(b, loc, x, inputScale, /*zero_point=*/Value(),
                                /*unsigned_codes=*/UnitAttr(),
                                /*e4m3=*/b.getUnitAttr());
  Value flatScale =
      ReshapeOp::create(b, loc, RankedTensorType::get({1}, f32), inputScale);
  Value y = ScaledFp8MatmulOp::create(b, loc, xq, codes, flatScale, scale,
                                      /*transpose_rhs=*/b.getUnitAttr());
  if (Value bias = linear.getBias())
    y = AddOp::create(b, loc, y, bias);
  return y;
}

/// Why `fp8` leaves a weight `[out, in]` (`type`) read by `uses` in float
/// (empty if it quantizes it): cuBLASLt's fp8 gemm needs the "TN" layout
/// kiln-quantize stores ([out, in] codes) and in and out multiples of 16,
/// and the rewrite takes f32 layers only.
std::string fp8Refusal(RankedTensorType type, ArrayRef<LinearOp> uses,
                       bool tied, int64_t out, int64_t in) {
  if (tied)
    return "it is also read as a table (a tied embedding)";
  if (!type.getElementType().isF32())
    return "fp8 takes f32 weights, it is " +
           llvm::formatv("{0}", type.getElementType()).str();
  for (LinearOp linear : uses)
    if (!linear.getInput().getType().getElementType().isF32() ||
        linear.getInput().getType().getRank() < 2)
      return "a layer reading it has an input that is not f32 of rank >= 2";
  if (out % 16 != 0 || in % 16 != 0)
    return "cuBLASLt's fp8 gemm needs its [out, in] = [" + std::to_string(out) +
           ", " + std::to_string(in) + "] to be multiples of 16";
  return "";
}

struct KilnQuantizePass
    : kiln::impl::KilnQuantizePassBase<KilnQuantizePass> {
  using Base::Base;

  void runOnOperation() final {
    ModuleOp module = getOperation();
    auto parsed = WeightScheme::parse(scheme, asymmetric);
    if (!parsed) {
      module.emitError(llvm::toString(parsed.takeError()));
      return signalPassFailure();
    }
    if (smoothquant >= 0 &&
        (smoothquant > 1 || !parsed->quantizesActivations())) {
      module.emitError("kiln-quantize: smoothquant takes an alpha in [0, 1] "
                       "and an int8 scheme (got ")
          << smoothquant << " with " << parsed->name() << ")";
      return signalPassFailure();
    }
    if (rounding == "awq" && smoothquant >= 0) {
      module.emitError("kiln-quantize: awq searches its own per-channel "
                       "scales; it does not combine with smoothquant");
      return signalPassFailure();
    }
    if (parsed->fp8 && rounding != "rtn") {
      module.emitError("kiln-quantize: fp8 rounds to nearest (rtn) only, "
                       "not ")
          << rounding;
      return signalPassFailure();
    }
    if (rounding != "rtn" && rounding != "gptq" && rounding != "awq") {
      module.emitError("kiln-quantize: unknown rounding '")
          << rounding << "' (rtn, gptq or awq)";
      return signalPassFailure();
    }
    FailureOr<ParameterSelection> selected =
        ParameterSelection::create(module, only, skip, lmHead);
    if (failed(selected))
      return signalPassFailure();

    // With `lm-head`, a head that multiplies by a parameter directly (GPT-2's
    // tied head, h · wteᵀ) is a linear like the others.
    if (lmHead)
      parameterMatmulsToLinears(module);

    // With `lm-head`, a table that is also the weight of linears (an
    // embedding tied to the LM head) is quantized for the linears and
    // stays float for the rest.
    for (LinearWeight &weight :
         linearWeights(module, lmHead ? OtherUses::Any : OtherUses::None)) {
      ParameterOp param = weight.param;
      StringRef name = param.getSymName();
      auto type = param.getTensorType();
      if (param->hasAttr(attrs::kQuantizedFrom) || !(*selected)(name))
        continue;
      ArrayRef<LinearOp> uses = weight.linears;
      bool tied = weight.shared, transposed = weight.transposed;
      if (parsed->fp8) {
        int64_t out = type.getDimSize(transposed ? 1 : 0);
        int64_t in = type.getDimSize(transposed ? 0 : 1);
        if (std::string why = fp8Refusal(type, uses, tied, out, in);
            !why.empty()) {
          param.emitRemark("kiln-quantize: '")
              << name << "' stays float with fp8: " << why;
          continue;
        }
      }
      if (failed(quantize(param, weight.reads, transposed, *parsed, tied)))
        return signalPassFailure();
    }
    // Calibration statistics are for this pass alone.
    module.walk([](ParameterOp param) {
      param->removeAttr(attrs::kInputAbsmax);
      param->removeAttr(attrs::kInputRange);
    });
  }

  /// Replaces `param`'s linear uses by its quantization; with `keepFloat`
  /// (a tied table) the parameter and its other uses stay.
  LogicalResult quantize(ParameterOp param, ArrayRef<ReadParamOp> reads,
                         bool transposed, const WeightScheme &scheme,
                         bool keepFloat) {
    auto type = param.getTensorType();
    int64_t out = type.getDimSize(transposed ? 1 : 0);
    int64_t in = type.getDimSize(transposed ? 0 : 1);
    StringRef name = param.getSymName();
    if (scheme.group && in % scheme.group != 0)
      return param.emitError("cannot quantize '")
             << name << "' with " << scheme.name() << ": its input dim " << in
             << " is not a multiple of the group size " << scheme.group;
    if (scheme.bits == 4 && in % 2 != 0)
      return param.emitError("cannot quantize '")
             << name << "' to 4 bits: its input dim " << in << " is odd";

    // Each part's type follows from what it records (partShape), as the
    // compiler checks when it writes the weights.
    MLIRContext *ctx = &getContext();
    OpBuilder b(param);
    StringRef prefix = name;
    prefix.consume_back(".weight");
    Type i8 = IntegerType::get(ctx, 8);
    Type f32 = Float32Type::get(ctx);
    auto declare = [&](StringRef suffix, QuantizedPart part,
                       SmallVector<float> stats =
                           {}) -> FailureOr<ParameterOp> {
      std::string partName = (prefix + suffix).str();
      if (SymbolTable::lookupSymbolIn(getOperation(), partName))
        return param.emitError("cannot quantize '")
               << name << "': a parameter named '" << partName
               << "' exists already";
      WeightQuantization q{name.str(),
                           part,
                           scheme,
                           transposed,
                           {type.getShape()[0], type.getShape()[1]},
                           rounding,
                           smoothquant,
                           std::vector<float>(stats.begin(), stats.end())};
      Type codeType = scheme.fp8 ? Type(Float8E4M3FNType::get(ctx)) : i8;
      auto partType = RankedTensorType::get(q.partShape(),
                                            q.isFloatPart() ? f32 : codeType);
      auto made = ParameterOp::create(
          b, param.getLoc(), partName, partType, param.getInit(),
          param.getStdAttr(), param.getLowAttr(), param.getHighAttr(),
          /*trainable=*/false);
      made->setAttr(attrs::kQuantizedFrom, q.toAttr(ctx));
      // A pruned weight's parts are quantized from its pruned values.
      if (Attribute pruned = param->getAttr(attrs::kPruned))
        made->setAttr(attrs::kPruned, pruned);
      return made;
    };
    FailureOr<ParameterOp> codes = declare(".qweight", QuantizedPart::Codes);
    if (failed(codes))
      return failure();
    FailureOr<ParameterOp> scales = declare(".scales", QuantizedPart::Scales);
    if (failed(scales))
      return failure();
    // SmoothQuant: the factors the input is multiplied by, computed by the
    // compiler from the calibration statistics recorded here and the
    // weight.
    FailureOr<ParameterOp> smoothing = ParameterOp();
    if (smoothquant >= 0 || rounding == "awq") {
      auto stats = param->getAttrOfType<DenseElementsAttr>(attrs::kInputAbsmax);
      auto statsType =
          stats ? dyn_cast<RankedTensorType>(stats.getType()) : nullptr;
      if (!statsType || statsType.getRank() != 1 ||
          statsType.getDimSize(0) != in || !statsType.getElementType().isF32())
        return param.emitError("cannot quantize '")
               << name << "' with "
               << (rounding == "awq" ? "awq" : "smoothquant")
               << ": no calibration statistics of "
               << in << " input channels for it (" << attrs::kInputAbsmax
               << "; kiln-compile --calibration FILE from kiln calibrate)";
      smoothing = declare(".smooth", QuantizedPart::Smoothing,
                          llvm::to_vector(stats.getValues<float>()));
      if (failed(smoothing))
        return failure();
    }
    // int8-static with SmoothQuant: the scale of x · diag(1 / s), which
    // only the compiler (with the weight) can compute.
    FailureOr<ParameterOp> inputScalePart = ParameterOp();
    if (smoothquant >= 0 && scheme.staticActivations) {
      inputScalePart = declare(".input_scale", QuantizedPart::InputScale);
      if (failed(inputScalePart))
        return failure();
    }
    FailureOr<ParameterOp> zeros = ParameterOp();
    if (!scheme.symmetric) {
      zeros = declare(".qzeros", QuantizedPart::ZeroPoints);
      if (failed(zeros))
        return failure();
    }

    // int8-static: one scale per layer input, from the calibration
    // statistics of the weight's layers (the largest |x| of any channel).
    std::optional<float> staticScale;
    if (scheme.staticActivations) {
      auto stats = param->getAttrOfType<DenseElementsAttr>(attrs::kInputAbsmax);
      if (!stats)
        return param.emitError("cannot quantize '")
               << name << "' with int8-static: no calibration statistics for "
               << "it (" << attrs::kInputAbsmax
               << "; kiln-compile --calibration FILE from kiln calibrate)";
      auto statsType = dyn_cast<RankedTensorType>(stats.getType());
      if (!statsType || statsType.getRank() != 1 ||
          statsType.getDimSize(0) != in || !statsType.getElementType().isF32())
        return param.emitError("cannot quantize '")
               << name << "' with int8-static: its calibration statistics are "
               << stats.getType() << ", the layer has " << in
               << " input channels (calibrated from another model?)";
      float largest = 0;
      for (float value : stats.getValues<float>()) {
        if (!std::isfinite(value) || value < 0)
          return param.emitError("cannot quantize '")
                 << name << "' with int8-static: a calibration statistic is "
                 << value;
        largest = std::max(largest, value);
      }
      // A percentile or MSE threshold (kiln calibrate --range) clips the
      // values above it instead.
      if (auto range = param->getAttrOfType<FloatAttr>(attrs::kInputRange)) {
        float threshold = range.getValue().convertToFloat();
        if (!std::isfinite(threshold) || threshold < 0)
          return param.emitError("cannot quantize '")
                 << name << "' with int8-static: its calibration range is "
                 << threshold;
        if (smoothquant >= 0)
          return param.emitError("cannot quantize '")
                 << name << "' with int8-static and smoothquant: its "
                 << "calibration range (" << attrs::kInputRange
                 << ") is of the unsmoothed input; smoothquant takes min-max "
                    "statistics";
        largest = threshold;
      }
      staticScale = std::max(largest, 1e-30f) / 127.0f;
    }

    for (ReadParamOp read : reads) {
      b.setInsertionPoint(read);
      Location loc = read.getLoc();
      Value q = ReadParamOp::create(b, loc, codes->getType(),
                                    codes->getSymName());
      Value s = ReadParamOp::create(b, loc, scales->getType(),
                                    scales->getSymName());
      Value z = *zeros ? Value(ReadParamOp::create(b, loc, zeros->getType(),
                                                   zeros->getSymName()))
                       : Value();
      Value smooth =
          *smoothing ? Value(ReadParamOp::create(b, loc, smoothing->getType(),
                                                 smoothing->getSymName()))
                     : Value();
      Value inputScale =
          *inputScalePart
              ? Value(ReadParamOp::create(b, loc, inputScalePart->getType(),
                                          inputScalePart->getSymName()))
              : Value();
      // fp8: every use is an f32 linear (fp8Refusal).
      if (scheme.fp8)
        for (OpOperand &use : llvm::make_early_inc_range(read->getUses()))
          if (auto linear = dyn_cast<LinearOp>(use.getOwner());
              linear && use.getOperandNumber() == 1) {
            b.setInsertionPoint(linear);
            linear.replaceAllUsesWith(buildFp8Linear(b, linear, q, s));
            linear.erase();
          }
      // W8A8: each linear of f32 inputs multiplies integer codes.
      if (scheme.quantizesActivations())
        for (OpOperand &use : llvm::make_early_inc_range(read->getUses()))
          if (auto linear = dyn_cast<LinearOp>(use.getOwner());
              linear && use.getOperandNumber() == 1 &&
              isa<Float32Type>(type.getElementType()) &&
              linear.getInput().getType().getElementType().isF32() &&
              linear.getInput().getType().getRank() >= 2) {
            b.setInsertionPoint(linear);
            linear.replaceAllUsesWith(
                buildInt8Linear(b, linear, q, s, staticScale, smooth, inputScale));
            linear.erase();
          }
      auto isLinearWeight = [](OpOperand &use) {
        return isa<LinearOp>(use.getOwner()) && use.getOperandNumber() == 1;
      };
      if (!llvm::any_of(read->getUses(), [&](OpOperand &use) {
            return isLinearWeight(use) || isa<CastOp>(use.getOwner());
          })) {
        if (read->use_empty())
          read.erase();
        for (Value part : {q, s, z, smooth, inputScale})
          if (part && part.use_empty())
            part.getDefiningOp()->erase();
        continue;
      }
      b.setInsertionPoint(read);
      Value weight = DequantizeOp::create(
          b, loc, RankedTensorType::get({out, in}, f32), q, s, z,
          b.getI64IntegerAttr(scheme.bits),
          scheme.symmetric ? UnitAttr() : b.getUnitAttr());
      if (type.getElementType() != f32)
        weight = CastOp::create(
            b, loc, RankedTensorType::get({out, in}, type.getElementType()),
            weight);
      // Every use is a linear (maybe through a cast): point it at the
      // [out, in] weight.
      // AWQ: the input is multiplied by 1 / s, the codes are of W · s.
      auto smoothInput = [&](LinearOp linear) {
        if (!smooth)
          return;
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(linear);
        Value factors = smooth;
        Type element = linear.getInput().getType().getElementType();
        if (element != f32)
          factors = CastOp::create(
              b, linear.getLoc(), RankedTensorType::get({in}, element), smooth);
        linear.getInputMutable().assign(
            MulOp::create(b, linear.getLoc(), linear.getInput(), factors));
      };
      for (OpOperand &use : llvm::make_early_inc_range(read->getUses())) {
        if (isLinearWeight(use)) {
          auto linear = cast<LinearOp>(use.getOwner());
          linear.getWeightMutable().assign(weight);
          linear.setWeightInOut(false);
          smoothInput(linear);
          continue;
        }
        if (keepFloat)
          continue;
        auto castOp = llvm::cast<CastOp>(use.getOwner());
        b.setInsertionPoint(castOp);
        auto castType = RankedTensorType::get(
            {out, in}, castOp.getType().getElementType());
        Value converted = CastOp::create(b, castOp.getLoc(), castType, weight);
        for (OpOperand &castUse :
             llvm::make_early_inc_range(castOp->getUses())) {
          auto linear = llvm::cast<LinearOp>(castUse.getOwner());
          linear.getWeightMutable().assign(converted);
          linear.setWeightInOut(false);
          smoothInput(linear);
        }
        castOp.erase();
        b.setInsertionPoint(read);
      }
      if (read->use_empty())
        read.erase();
    }
    if (!keepFloat)
      param.erase();
    else {
      param->removeAttr(attrs::kInputAbsmax);
      param->removeAttr(attrs::kInputRange);
    }
    return success();
  }
};

} // namespace
