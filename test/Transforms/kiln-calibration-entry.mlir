// RUN: kiln-opt %s --split-input-file --kiln-calibration-entry --verify-diagnostics | FileCheck %s
// RUN: not kiln-opt %s --split-input-file --kiln-calibration-entry='histogram=true' 2>/dev/null | FileCheck %s --check-prefix=HIST
// RUN: not kiln-opt %s --split-input-file --kiln-calibration-entry='histogram=true' 2>&1 >/dev/null | FileCheck %s --check-prefix=HISTERR

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

// histogram: after the vectors, each weight's layer input itself in f32
// (<weight>.input_values), the two inputs of the shared weight joined along
// dim 0.
// HIST-LABEL: func.func @calibrate(
// HIST-SAME: -> (tensor<64xf32> {kiln.name = "h.fc.weight.input_absmax"}, tensor<64xf32> {kiln.name = "h.proj.weight.input_absmax"}, tensor<64xf32> {kiln.name = "wte.weight.input_absmax"}, tensor<?x3x64xf32> {kiln.name = "h.fc.weight.input_values"}, tensor<?x3x64xf32> {kiln.name = "h.proj.weight.input_values"}, tensor<?x3x64xf32> {kiln.name = "wte.weight.input_values"})
// HIST: %[[X:.+]] = kiln.gather
// HIST: %[[H:.+]] = kiln.linear %[[X]]
// HIST: %[[S:.+]] = kiln.add
// HIST: %[[B:.+]] = kiln.cast %{{.+}} : tensor<?x3x64xbf16> -> tensor<?x3x64xf32>
// HIST: %[[J:.+]] = kiln.concat %[[B]], %[[H]] axis = 0 : (tensor<?x3x64xf32>, tensor<?x3x64xf32>) -> tensor<?x3x64xf32>
// HIST: return %{{.+}}, %{{.+}}, %{{.+}}, %[[X]], %[[J]], %[[S]]
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

// -----

// histogram: layers that share a weight but take inputs of different
// shapes (beyond dim 0) cannot be joined into one input; without it the
// entry is built as usual.
// CHECK-LABEL: func.func @calibrate(
// CHECK-SAME: -> (tensor<64xf32> {kiln.name = "h.fc.weight.input_absmax"})
// HISTERR: error: kiln-calibration-entry: the layers of 'h.fc.weight' take inputs of different shapes ('tensor<?x3x64xf32>' and 'tensor<?x64xf32>'), which one histogram input cannot join
kiln.parameter @"h.fc.weight" : tensor<64x64xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%x: tensor<?x3x64xf32>, %y: tensor<?x64xf32>) -> (tensor<?x3x64xf32>, tensor<?x64xf32>) {
  %w = kiln.read_param @"h.fc.weight" : tensor<64x64xf32>
  %a = kiln.linear %x, %w : (tensor<?x3x64xf32>, tensor<64x64xf32>) -> tensor<?x3x64xf32>
  %b = kiln.linear %y, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %a, %b : tensor<?x3x64xf32>, tensor<?x64xf32>
}
