//===- KilnOps.td - All kiln ops -----------------------------*- tablegen -*-===//
//
// The op definitions, split by area.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"
include "kiln/Dialect/Kiln/IR/KilnTensorOps.td"
include "kiln/Dialect/Kiln/IR/KilnMathOps.td"
include "kiln/Dialect/Kiln/IR/KilnNNOps.td"
include "kiln/Dialect/Kiln/IR/KilnTrainingOps.td"
include "kiln/Dialect/Kiln/IR/KilnQuantOps.td"

#endif // KILN_OPS_TD
