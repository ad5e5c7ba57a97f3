// RUN: kiln-opt %s --convert-kiln-to-linalg -split-input-file -verify-diagnostics

// A composite left in the IR is a pipeline mistake, named as such.
func.func @composite(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{is a composite op; run kiln-decompose before convert-kiln-to-linalg}}
  %0 = kiln.softmax %x axis = -1 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
