//===- Calibration.cpp - Calibration files for static quantization --------===//
//
// See Calibration.h.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/Calibration.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Runtime/SafeTensors.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/StringRef.h"

#include <cmath>
#include <cstring>
#include <set>

using namespace mlir;
using namespace mlir::kiln;
namespace rt = ::kiln::runtime;

namespace {
llvm::Error error(const std::string &path, const llvm::Twine &why) {
  return llvm::createStringError("calibration file '" + path + "': " + why);
}
} // namespace

llvm::Expected<CalibrationRanges>
mlir::kiln::attachCalibration(ModuleOp module, const std::string &path,
                              const std::string &sourceSHA256) {
  rt::Expected<rt::SafeTensorsFile> file = rt::SafeTensorsFile::open(path);
  if (!file)
    return error(path, file.message());
  const auto &metadata = file->metadata();
  auto meta = [&](const char *key) -> std::string {
    auto found = metadata.find(key);
    return found == metadata.end() ? std::string() : found->second;
  };
  if (meta("kiln") != "calibration" ||
      !llvm::StringRef(meta("statistic")).starts_with("input_absmax"))
    return error(path, "not a calibration file of kiln calibrate (its "
                       "metadata lacks kiln=calibration, "
                       "statistic=input_absmax)");
  std::string made = meta("source_sha256");
  if (!made.empty() && !sourceSHA256.empty() && made != sourceSHA256)
    return error(path, "it was made from another model (source sha256 " +
                           made.substr(0, 12) + "..., this model's " +
                           sourceSHA256.substr(0, 12) + "...)");
  if (file->tensors().empty())
    return error(path, "it holds no statistics");
  CalibrationRanges ranges;
  if (metadata.count("range")) {
    ranges.method = meta("range");
    if (ranges.method != "percentile" && ranges.method != "mse")
      return error(path, "unknown range '" + ranges.method +
                             "' in its metadata (expected percentile or mse)");
    ranges.percentile = meta("percentile");
  }
  // The weights with absmax vectors and with thresholds: a file with
  // ranges has one for every layer, or int8-static would mix methods.
  std::set<std::string> absmaxOf, rangeOf;
  for (const rt::SafeTensorInfo &info : file->tensors()) {
    llvm::StringRef name = info.name;
    // The parameter a statistic names, which must have an input dim of
    // the statistic's size.
    auto parameterOf =
        [&](llvm::StringRef param) -> llvm::Expected<ParameterOp> {
      auto op = module.lookupSymbol<ParameterOp>(param);
      if (!op)
        return error(path, "it has statistics for '" + param +
                               "', which this model has no parameter of "
                               "(calibrated from another model?)");
      return op;
    };
    if (name.consume_back(".input_gram")) {
      // Read by the compiler when GPTQ rounds this weight; checked here.
      llvm::Expected<ParameterOp> param = parameterOf(name);
      if (!param)
        return param.takeError();
      auto type = param->getTensorType();
      if (info.dtype != rt::DType::F32 || info.shape.size() != 2 ||
          info.shape[0] != info.shape[1] || type.getRank() != 2 ||
          (info.shape[0] != type.getDimSize(0) &&
           info.shape[0] != type.getDimSize(1)))
        return error(path, "'" + info.name + "' is " +
                               rt::dtypeName(info.dtype) + " " +
                               rt::formatShape(info.shape) +
                               ", not the square f32 Gram matrix of an input "
                               "dim of '" +
                               name + "'");
      continue;
    }
    if (name.consume_back(".input_range")) {
      llvm::Expected<ParameterOp> param = parameterOf(name);
      if (!param)
        return param.takeError();
      if (ranges.method == "minmax")
        return error(path, "it has '" + info.name +
                               "' but no range=percentile|mse in its "
                               "metadata");
      if (info.dtype != rt::DType::F32 || info.shape.size() != 1 ||
          info.shape[0] != 1 || param->getTensorType().getRank() != 2)
        return error(
            path, "'" + info.name + "' is " + rt::dtypeName(info.dtype) + " " +
                      rt::formatShape(info.shape) +
                      ", not one f32 threshold [1] of '" + name + "'s input");
      float threshold;
      std::memcpy(&threshold, file->view(info).data, sizeof threshold);
      if (!std::isfinite(threshold) || threshold < 0)
        return error(path, "'" + info.name + "' is " +
                               std::to_string(threshold) +
                               " (expected a finite |input| threshold)");
      (*param)->setAttr(
          attrs::kInputRange,
          FloatAttr::get(Float32Type::get(module.getContext()), threshold));
      rangeOf.insert(name.str());
      continue;
    }
    if (!name.consume_back(".input_absmax"))
      return error(path, "unexpected tensor '" + info.name +
                             "' (statistics are named <weight>.input_absmax, "
                             "<weight>.input_range and <weight>.input_gram)");
    absmaxOf.insert(name.str());
    llvm::Expected<ParameterOp> param = parameterOf(name);
    if (!param)
      return param.takeError();
    auto type = param->getTensorType();
    if (info.dtype != rt::DType::F32 || info.shape.size() != 1 ||
        type.getRank() != 2 ||
        (info.shape[0] != type.getDimSize(0) &&
         info.shape[0] != type.getDimSize(1)))
      return error(path, "'" + info.name + "' is " + rt::dtypeName(info.dtype) +
                             " " + rt::formatShape(info.shape) +
                             ", not an f32 vector of one of the input dims "
                             "of '" +
                             name +
                             "' (calibrated from another "
                             "model?)");
    rt::TensorView view = file->view(info);
    std::vector<float> copy(info.shape[0]);
    std::memcpy(copy.data(), view.data, copy.size() * sizeof(float));
    for (size_t i = 0; i < copy.size(); ++i)
      if (!std::isfinite(copy[i]) || copy[i] < 0)
        return error(path, "'" + info.name + "' element " + std::to_string(i) +
                               " is " + std::to_string(copy[i]) +
                               " (expected a finite |input|)");
    auto attrType = RankedTensorType::get(
        {info.shape[0]}, Float32Type::get(module.getContext()));
    (*param)->setAttr(attrs::kInputAbsmax,
                      DenseElementsAttr::get(attrType, llvm::ArrayRef(copy)));
  }
  if (ranges.method != "minmax")
    for (const std::string &weight : absmaxOf)
      if (!rangeOf.count(weight))
        return error(path, "its metadata says range=" + ranges.method +
                               ", but it has no '" + weight +
                               ".input_range' for '" + weight + "'");
  return ranges;
}
