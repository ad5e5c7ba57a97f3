// RUN: kiln-opt %s --split-input-file --kiln-calibration-entry --verify-diagnostics | FileCheck %s

// calibrate: forward's inputs (and their attributes), one [in] vector per
// weight: the largest |input| per channel over the other dims. The tied
// table's head (a matmul by the parameter) counts; the lookup does not. A
// weight two layers share gets the max of both; a bf16 input is cast to f32
// first. forward stays as it was.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: -> (tensor<?x3x100xf32> {kiln.name = "logits"})
// CHECK-LABEL: func.func @calibrate(
// CHECK-SAME: %[[IDS:.+]]: tensor<?x3xi64> {kiln.name = "input_ids"}
// CHECK-SAME: -> (tensor<64xf32> {kiln.name = "h.fc.weight.input_absmax"}, tensor<64xf32> {kiln.name = "h.proj.weight.input_absmax"}, tensor<64xf32> {kiln.name = "wte.weight.input_absmax"})
// CHECK: %[[X:.+]] = kiln.gather
// CHECK: %[[H:.+]] = kiln.linear %[[X]]
// CHECK: %[[HB:.+]] = kiln.cast %[[H]] : tensor<?x3x64xf32> -> tensor<?x3x64xbf16>
// CHECK: %[[S:.+]] = kiln.add
// CHECK: kiln.matmul %[[S]]
// CHECK: %[[A:.+]] = kiln.abs %[[X]] : tensor<?x3x64xf32>
// CHECK: %[[M:.+]] = kiln.reduce max %[[A]] axes = [0, 1] : (tensor<?x3x64xf32>) -> tensor<64xf32>
// CHECK: %[[B:.+]] = kiln.cast %[[HB]] : tensor<?x3x64xbf16> -> tensor<?x3x64xf32>
// CHECK: kiln.abs %[[B]]
// CHECK: %[[P1:.+]] = kiln.reduce max
// CHECK: kiln.abs %[[H]]
// CHECK: %[[P2:.+]] = kiln.reduce max
// CHECK: %[[P:.+]] = kiln.max %[[P1]], %[[P2]] : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
// CHECK: kiln.abs %[[S]]
// CHECK: %[[W:.+]] = kiln.reduce max
// CHECK: return %[[M]], %[[P]], %[[W]]
kiln.parameter @"wte.weight" : tensor<100x64xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"h.fc.weight" : tensor<64x64xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"h.proj.weight" : tensor<64x64xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%ids: tensor<?x3xi64> {kiln.name = "input_ids"}) -> (tensor<?x3x100xf32> {kiln.name = "logits"}) {
  %wte = kiln.read_param @"wte.weight" : tensor<100x64xf32>
  %x = kiln.gather %wte[%ids] axis = 0 : (tensor<100x64xf32>, tensor<?x3xi64>) -> tensor<?x3x64xf32>
  %w = kiln.read_param @"h.fc.weight" : tensor<64x64xf32>
  %h = kiln.linear %x, %w weight_in_out : (tensor<?x3x64xf32>, tensor<64x64xf32>) -> tensor<?x3x64xf32>
  %p = kiln.read_param @"h.proj.weight" : tensor<64x64xf32>
  %pb = kiln.cast %p : tensor<64x64xf32> -> tensor<64x64xbf16>
  %hb = kiln.cast %h : tensor<?x3x64xf32> -> tensor<?x3x64xbf16>
  %gb = kiln.linear %hb, %pb : (tensor<?x3x64xbf16>, tensor<64x64xbf16>) -> tensor<?x3x64xbf16>
  %g1 = kiln.cast %gb : tensor<?x3x64xbf16> -> tensor<?x3x64xf32>
  %g = kiln.linear %h, %p : (tensor<?x3x64xf32>, tensor<64x64xf32>) -> tensor<?x3x64xf32>
  %s = kiln.add %g, %g1 : (tensor<?x3x64xf32>, tensor<?x3x64xf32>) -> tensor<?x3x64xf32>
  %logits = kiln.matmul %s, %wte transpose_rhs : (tensor<?x3x64xf32>, tensor<100x64xf32>) -> tensor<?x3x100xf32>
  return %logits : tensor<?x3x100xf32>
}

// -----

// expected-error @+1 {{kiln-calibration-entry: the module has no 'forward' function to calibrate}}
module {
  func.func @other(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// expected-error @+1 {{kiln-calibration-entry: 'forward' has no linear layer with a parameter as its weight}}
module {
  func.func @forward(%x: tensor<4x8xf32>, %w: tensor<2x8xf32>) -> tensor<4x2xf32> {
    %y = kiln.linear %x, %w : (tensor<4x8xf32>, tensor<2x8xf32>) -> tensor<4x2xf32>
    return %y : tensor<4x2xf32>
  }
}
