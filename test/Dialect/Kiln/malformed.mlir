// RUN: not kiln-opt %s -split-input-file 2>&1 | FileCheck %s --implicit-check-not='PLEASE submit' --implicit-check-not='LLVM ERROR'

// Syntactically broken input: each chunk gives a located diagnostic and
// kiln-opt exits non-zero (`not` fails on a crash), never a crash.

func.func @missing_type(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:23: error: expected ':'
  %0 = kiln.add %a, %a
  return
}

// -----

func.func @bad_predicate(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:21: error: custom op 'kiln.compare' expected string or keyword containing one of the following enum values for attribute 'predicate' [eq, ne, lt, le, gt, ge]
  %0 = kiln.compare almost, %a, %a : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xi1>
  return
}

// -----

// CHECK: malformed.mlir:[[@LINE+1]]:40: error: custom op 'kiln.parameter' expected string or keyword containing one of the following enum values for attribute 'init' [zeros, ones, normal, uniform]
kiln.parameter @p : tensor<4xf32> init gaussian

// -----

// CHECK: malformed.mlir:[[@LINE+1]]:66: error: expected ','
kiln.parameter @p : tensor<4xf32> init uniform range(1.000000e+00)

// -----

func.func @bad_reduce_kind(%a: tensor<2x3xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:20: error: custom op 'kiln.reduce' expected string or keyword containing one of the following enum values for attribute 'kind' [sum, mean, max, min]
  %0 = kiln.reduce product %a axes = [1] : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @bad_axes(%a: tensor<2x3xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:33: error: expected '['
  %0 = kiln.reduce sum %a axes = 1 : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @bad_gelu(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:35: error: custom op 'kiln.gelu' expected string or keyword containing one of the following enum values for attribute 'approximate' [erf, tanh]
  %0 = kiln.gelu %a approximate = sigmoid : tensor<2xf32>
  return
}

// -----

func.func @unknown_op(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:8: error: custom op 'kiln.frobnicate' is unknown
  %0 = kiln.frobnicate %a : tensor<2xf32>
  return
}

// -----

func.func @undefined_value() {
  // CHECK: malformed.mlir:[[@LINE+1]]:17: error: use of undeclared SSA value name
  %0 = kiln.exp %nope : tensor<2xf32>
  return
}

// -----

func.func @wrong_operand_count(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:19: error: expected ','
  %0 = kiln.add %a : (tensor<2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @functional_type_count(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:8: error: custom op 'kiln.add' number of operands and types do not match: got 2 operands and 1 types
  %0 = kiln.add %a, %a : (tensor<2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @slice_syntax(%a: tensor<2x8xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:37: error: expected ':'
  %0 = kiln.slice %a axis = 1 [0 : 4] : (tensor<2x8xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @unterminated(%a: tensor<2xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:34: error: expected '>' in tensor type
  %0 = kiln.exp %a : tensor<2xf32
  return
}

// -----

func.func @missing_brace(%a: tensor<2xf32>) {
  %0 = kiln.neg %a : tensor<2xf32>
  // CHECK: malformed.mlir:[[@LINE+1]]:9: error: expected operation name in quotes
  return

// -----

func.func @generic_missing_properties(%a: tensor<2x3xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:8: error: 'kiln.transpose' op requires attribute 'permutation'
  %0 = "kiln.transpose"(%a) : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}

// -----

func.func @generic_bad_property(%a: tensor<2x3xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:8: error: invalid properties {permutation = 1 : i64} for op kiln.transpose: Invalid attribute `permutation` in property conversion: 1 : i64
  %0 = "kiln.transpose"(%a) <{permutation = 1 : i64}> : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}

// -----

func.func @dense_mismatch() {
  // CHECK: malformed.mlir:[[@LINE+1]]:22: error: inferred shape of elements literal ([2]) does not match type ([3])
  %0 = kiln.constant dense<[1.0, 2.0]> : tensor<3xf32>
  return
}

// -----

func.func @lstm_one_result(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<32x4xf32>, %wh: tensor<32x8xf32>, %b: tensor<32xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:8: error: 'kiln.lstm_cell' op expected 2 results
  %0 = kiln.lstm_cell %x, %h, %h, %wi, %wh, %b, %b : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<32x4xf32>, tensor<32x8xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<2x8xf32>
  return
}
