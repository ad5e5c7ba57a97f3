// RUN: kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-static' --verify-diagnostics | FileCheck %s
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-dynamic smoothquant=0.5' 2>/dev/null | FileCheck %s --check-prefix=SMOOTH
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-dynamic smoothquant=0.5' 2>&1 >/dev/null | FileCheck %s --check-prefix=SMOOTHERR
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=w8 smoothquant=0.5' 2>&1 | FileCheck %s --check-prefix=SMOOTHW8
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-static smoothquant=0.5' 2>/dev/null | FileCheck %s --check-prefix=STATICSQ
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=w4g32 rounding=awq' 2>/dev/null | FileCheck %s --check-prefix=AWQ
// RUN: not kiln-opt %s --split-input-file --kiln-quantize='scheme=int8-static smoothquant=0.5' 2>&1 >/dev/null | FileCheck %s --check-prefix=STATICSQERR

// int8-static: the layer's input is quantized with one scale for every
// token, max(kiln.input_absmax) / 127 (8.89 / 127 = 0.07), a [1, 1, 1]
// constant; the rest is int8-dynamic's. The statistics attribute is gone
// afterwards, also from parameters left float (the tied table).
// CHECK-LABEL: module
// CHECK-NOT: kiln.input_absmax
// CHECK: kiln.parameter @h.fc.qweight : tensor<96x64xi8>
// CHECK: %[[SX:.+]] = kiln.constant dense<7.000000e-02> : tensor<1x1x1xf32>
// CHECK: %[[XQ:.+]] = kiln.quantize %{{.*}}, %[[SX]] : (tensor<?x3x64xf32>, tensor<1x1x1xf32>) -> tensor<?x3x64xi8>
// CHECK: kiln.integer_matmul %[[XQ]], %{{.*}} transpose_rhs
// CHECK: kiln.mul %{{.*}}, %[[SX]] : (tensor<?x3x96xf32>, tensor<1x1x1xf32>) -> tensor<?x3x96xf32>
// CHECK-NOT: kiln.abs
// SmoothQuant: a [64] f32 smoothing part (1 / s, filled by the compiler
// from the statistics and alpha it records), read and multiplied into the
// input before the per-token quantization.
// SMOOTH-DAG: kiln.parameter @h.fc.smooth : tensor<64xf32> {{.*}}input_absmax = dense<[8.89{{.*}}> : tensor<64xf32>, part = "smoothing", rounding = "rtn", smoothquant_alpha = 5.000000e-01 : f64, source = "h.fc.weight"
// SMOOTH-DAG: kiln.parameter @h.fc.qweight : tensor<96x64xi8> {{.*}}smoothquant_alpha = 5.000000e-01
// SMOOTH: %[[SM:.+]] = kiln.read_param @h.fc.smooth : tensor<64xf32>
// SMOOTH: %[[XS:.+]] = kiln.mul %{{.*}}, %[[SM]] : (tensor<?x3x64xf32>, tensor<64xf32>) -> tensor<?x3x64xf32>
// SMOOTH: kiln.abs %[[XS]]
// SMOOTH: kiln.quantize %[[XS]]
// SMOOTHERR: error: cannot quantize 'h.fc.weight' with smoothquant: no calibration statistics of 64 input channels for it
// SMOOTHW8: kiln-quantize: smoothquant takes an alpha in [0, 1] and an int8 scheme (got 5.000000e-01 with w8)

// AWQ (weight-only): a smoothing part as SmoothQuant's (rounding "awq",
// the compiler searches s), and the weight-only linear reads x · (1 / s).
// AWQ-DAG: kiln.parameter @h.fc.smooth : tensor<64xf32> {{.*}}part = "smoothing", rounding = "awq"
// AWQ-DAG: kiln.parameter @h.fc.qweight : tensor<96x32xi8> {{.*}}rounding = "awq"
// AWQ: %[[SM:.+]] = kiln.read_param @h.fc.smooth : tensor<64xf32>
// AWQ: %[[W:.+]] = kiln.dequantize
// AWQ: %[[XS:.+]] = kiln.mul %{{.*}}, %[[SM]] : (tensor<?x3x64xf32>, tensor<64xf32>) -> tensor<?x3x64xf32>
// AWQ: kiln.linear %[[XS]], %[[W]]

// int8-static with SmoothQuant: the static scale of the smoothed input is
// a [1] part the compiler fills, reshaped to [1, 1, 1].
// STATICSQ-DAG: kiln.parameter @h.fc.input_scale : tensor<1xf32> {{.*}}part = "input_scale"
// STATICSQ-DAG: kiln.parameter @h.fc.smooth : tensor<64xf32>
// STATICSQ: %[[IS:.+]] = kiln.read_param @h.fc.input_scale : tensor<1xf32>
// STATICSQ: %[[XS:.+]] = kiln.mul
// STATICSQ: %[[SX:.+]] = kiln.reshape %[[IS]] : tensor<1xf32> -> tensor<1x1x1xf32>
// STATICSQ: kiln.quantize %[[XS]], %[[SX]]
kiln.parameter @"wte.weight" : tensor<100x64xf32> init normal std = 2.000000e-02 trainable {kiln.input_absmax = dense<1.0> : tensor<64xf32>}
kiln.parameter @"h.fc.weight" : tensor<64x96xf32> init normal std = 2.000000e-02 trainable {kiln.input_absmax = dense<[8.89, 1.0, 2.0, 3.0, 0.5, 0.25, 0.125, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]> : tensor<64xf32>}
func.func @forward(%ids: tensor<?x3xi64>) -> tensor<?x3x96xf32> {
  %wte = kiln.read_param @"wte.weight" : tensor<100x64xf32>
  %x = kiln.gather %wte[%ids] axis = 0 : (tensor<100x64xf32>, tensor<?x3xi64>) -> tensor<?x3x64xf32>
  %w = kiln.read_param @"h.fc.weight" : tensor<64x96xf32>
  %h = kiln.linear %x, %w weight_in_out : (tensor<?x3x64xf32>, tensor<64x96xf32>) -> tensor<?x3x96xf32>
  return %h : tensor<?x3x96xf32>
}

// -----

// A layer without statistics is an error naming it.
// expected-error @+1 {{cannot quantize 'h.fc.weight' with int8-static: no calibration statistics for it (kiln.input_absmax; kiln-compile --calibration FILE from kiln calibrate)}}
kiln.parameter @"h.fc.weight" : tensor<64x96xf32> init normal std = 2.000000e-02 trainable
func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x96xf32> {
  %w = kiln.read_param @"h.fc.weight" : tensor<64x96xf32>
  %h = kiln.linear %x, %w weight_in_out : (tensor<?x64xf32>, tensor<64x96xf32>) -> tensor<?x96xf32>
  return %h : tensor<?x96xf32>
}

// -----

// Statistics of the wrong size (the output dim here) are refused.
// expected-error @+1 {{cannot quantize 'h.fc.weight' with int8-static: its calibration statistics are 'tensor<96xf32>', the layer has 64 input channels (calibrated from another model?)}}
kiln.parameter @"h.fc.weight" : tensor<64x96xf32> init normal std = 2.000000e-02 trainable {kiln.input_absmax = dense<1.0> : tensor<96xf32>}
func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x96xf32> {
  %w = kiln.read_param @"h.fc.weight" : tensor<64x96xf32>
  %h = kiln.linear %x, %w weight_in_out : (tensor<?x64xf32>, tensor<64x96xf32>) -> tensor<?x96xf32>
  return %h : tensor<?x96xf32>
}

// -----

// A percentile or MSE threshold (kiln.input_range, kiln calibrate --range)
// sets the scale instead of the largest absmax: 2.54 / 127 = 0.02, not
// 8.89 / 127. Both attributes are gone afterwards. With smoothquant the
// threshold (of the unsmoothed input) is refused.
// CHECK-LABEL: module
// CHECK-NOT: kiln.input_range
// CHECK-NOT: kiln.input_absmax
// CHECK: %[[SX:.+]] = kiln.constant dense<2.000000e-02> : tensor<1x1xf32>
// CHECK-NOT: kiln.constant dense<7.000000e-02>
// CHECK: kiln.quantize %{{.*}}, %[[SX]] : (tensor<?x64xf32>, tensor<1x1xf32>) -> tensor<?x64xi8>
// STATICSQERR: error: cannot quantize 'h.fc.weight' with int8-static and smoothquant: its calibration range (kiln.input_range) is of the unsmoothed input; smoothquant takes min-max statistics
kiln.parameter @"h.fc.weight" : tensor<64x96xf32> init normal std = 2.000000e-02 trainable {kiln.input_absmax = dense<8.89> : tensor<64xf32>, kiln.input_range = 2.54 : f32}
func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x96xf32> {
  %w = kiln.read_param @"h.fc.weight" : tensor<64x96xf32>
  %h = kiln.linear %x, %w weight_in_out : (tensor<?x64xf32>, tensor<64x96xf32>) -> tensor<?x96xf32>
  return %h : tensor<?x96xf32>
}
