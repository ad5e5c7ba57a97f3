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

using namespace mlir;
using namespace mlir::kiln;
namespace rt = ::kiln::runtime;

namespace {
llvm::Error error(const std::string &path, const llvm::Twine &why) {
  return llvm::createStringError("calibration file '" + path + "': " + why);
}
} // namespace

llvm::Error mlir::kiln::attachCalibration(ModuleOp module,
                                          const std::string &path,
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
    if (!name.consume_back(".input_absmax"))
      return error(path, "unexpected tensor '" + info.name +
                             "' (statistics are named <weight>.input_absmax "
                             "and <weight>.input_gram)");
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
  return llvm::Error::success();
}
