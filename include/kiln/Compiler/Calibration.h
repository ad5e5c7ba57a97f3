//===- Calibration.h - Calibration files for int8-static -------*- C++ -*-===//
//
// `kiln calibrate` writes, per linear layer, the largest |input| of each
// input channel on calibration text (`<weight>.input_absmax`, f32 [in]) to
// a safetensors file. kiln-compile --calibration reads it back and hangs
// each vector on its weight's kiln.parameter (attrs::kInputAbsmax), where
// kiln-quantize's int8-static scheme finds it. A file made with --range
// percentile|mse also holds one clipping threshold per weight
// (`<weight>.input_range`, f32 [1], attrs::kInputRange), which int8-static
// takes instead of the largest absmax.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_COMPILER_CALIBRATION_H
#define KILN_COMPILER_CALIBRATION_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mlir::kiln {

/// How a calibration file's activation ranges were chosen (its `range`
/// metadata).
struct CalibrationRanges {
  /// "minmax" (the file has no input_range), "percentile" or "mse".
  std::string method = "minmax";
  /// The `percentile` metadata, for "percentile".
  std::string percentile;
};

/// Reads the calibration file `path` and attaches each statistic to the
/// parameter it names. Errors name the problem: not a calibration file (its
/// metadata), made from another model (its source_sha256 differs from
/// `sourceSHA256`, when both are known, or it names a parameter the model
/// lacks, or a vector whose size is not the parameter's input dim), a
/// tensor that is not a finite, non-negative f32 vector, an input_range
/// that is not one finite, non-negative f32 [1] per weight with absmax
/// statistics, or a range method other than percentile and mse.
llvm::Expected<CalibrationRanges>
attachCalibration(ModuleOp module, const std::string &path,
                  const std::string &sourceSHA256);

} // namespace mlir::kiln

#endif // KILN_COMPILER_CALIBRATION_H
