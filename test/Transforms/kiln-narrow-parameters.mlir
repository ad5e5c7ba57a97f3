// RUN: kiln-opt %s --kiln-narrow-parameters | FileCheck %s

// @w and @emb are read only through casts to bf16 (in two functions, one
// read with two casts): they become bf16 and the casts go. @ln is also
// used as f32, @mixed is cast to two types, @written is updated by a
// function, @f16 is read as f16: each of the first three stays f32.
// CHECK: kiln.parameter @smooth : tensor<4xf32> init ones {kiln.quantized_from
// CHECK: kiln.parameter @w : tensor<4x4xbf16> init normal std = 2.000000e-02 trainable
// CHECK: kiln.parameter @emb : tensor<8x4xbf16> init zeros
// CHECK: kiln.parameter @ln : tensor<4xf32> init ones
// CHECK: kiln.parameter @mixed : tensor<4xf32> init zeros
// CHECK: kiln.parameter @written : tensor<4xf32> init zeros
// CHECK: kiln.parameter @f16 : tensor<4xf16> init zeros
kiln.parameter @smooth : tensor<4xf32> init ones {kiln.quantized_from = {part = "smoothing", source = "w"}}
kiln.parameter @w : tensor<4x4xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @emb : tensor<8x4xf32> init zeros
kiln.parameter @ln : tensor<4xf32> init ones
kiln.parameter @mixed : tensor<4xf32> init zeros
kiln.parameter @written : tensor<4xf32> init zeros
kiln.parameter @f16 : tensor<4xf32> init zeros

// CHECK-LABEL: func.func @forward
// CHECK: %[[W:.+]] = kiln.read_param @w : tensor<4x4xbf16>
// CHECK-NOT: kiln.cast %[[W]]
// CHECK: kiln.matmul %{{.*}}, %[[W]]
// CHECK: %[[L:.+]] = kiln.read_param @ln : tensor<4xf32>
// CHECK: kiln.cast %[[L]]
// CHECK: %[[M:.+]] = kiln.read_param @mixed : tensor<4xf32>
// CHECK: kiln.cast %[[M]] : tensor<4xf32> -> tensor<4xbf16>
// CHECK: kiln.cast %[[M]] : tensor<4xf32> -> tensor<4xf16>
func.func @forward(%x: tensor<2x4xbf16>) -> (tensor<2x4xbf16>, tensor<4xbf16>, tensor<4xf32>, tensor<4xbf16>, tensor<4xf16>, tensor<4xf16>) {
  %w = kiln.read_param @w : tensor<4x4xf32>
  %wb = kiln.cast %w : tensor<4x4xf32> -> tensor<4x4xbf16>
  %y = kiln.matmul %x, %wb : (tensor<2x4xbf16>, tensor<4x4xbf16>) -> tensor<2x4xbf16>
  %l = kiln.read_param @ln : tensor<4xf32>
  %lb = kiln.cast %l : tensor<4xf32> -> tensor<4xbf16>
  %m = kiln.read_param @mixed : tensor<4xf32>
  %mb = kiln.cast %m : tensor<4xf32> -> tensor<4xbf16>
  %mh = kiln.cast %m : tensor<4xf32> -> tensor<4xf16>
  %h = kiln.read_param @f16 : tensor<4xf32>
  %hh = kiln.cast %h : tensor<4xf32> -> tensor<4xf16>
  return %y, %lb, %l, %mb, %mh, %hh : tensor<2x4xbf16>, tensor<4xbf16>, tensor<4xf32>, tensor<4xbf16>, tensor<4xf16>, tensor<4xf16>
}

// CHECK-LABEL: func.func @lookup
// CHECK: %[[E:.+]] = kiln.read_param @emb : tensor<8x4xbf16>
// CHECK: kiln.embedding %[[E]]
// CHECK: %[[W2:.+]] = kiln.read_param @w : tensor<4x4xbf16>
// CHECK: return {{.*}}%[[W2]]
func.func @lookup(%ids: tensor<3xi64>) -> (tensor<3x4xbf16>, tensor<4x4xbf16>, tensor<4x4xbf16>) {
  %e = kiln.read_param @emb : tensor<8x4xf32>
  %eb = kiln.cast %e : tensor<8x4xf32> -> tensor<8x4xbf16>
  %0 = kiln.embedding %eb, %ids : (tensor<8x4xbf16>, tensor<3xi64>) -> tensor<3x4xbf16>
  %w = kiln.read_param @w : tensor<4x4xf32>
  %a = kiln.cast %w : tensor<4x4xf32> -> tensor<4x4xbf16>
  %b = kiln.cast %w : tensor<4x4xf32> -> tensor<4x4xbf16>
  return %0, %a, %b : tensor<3x4xbf16>, tensor<4x4xbf16>, tensor<4x4xbf16>
}

// A part the compiler computes (kiln.quantized_from) stays f32.
// CHECK-LABEL: func.func @smoothing
// CHECK: kiln.read_param @smooth : tensor<4xf32>
func.func @smoothing() -> tensor<4xbf16> {
  %s = kiln.read_param @smooth : tensor<4xf32>
  %b = kiln.cast %s : tensor<4xf32> -> tensor<4xbf16>
  return %b : tensor<4xbf16>
}

// CHECK-LABEL: func.func @update
// CHECK: kiln.write_param @written
func.func @update(%v: tensor<4xf32>) -> tensor<4xbf16> {
  %r = kiln.read_param @written : tensor<4xf32>
  %rb = kiln.cast %r : tensor<4xf32> -> tensor<4xbf16>
  kiln.write_param @written, %v : tensor<4xf32>
  return %rb : tensor<4xbf16>
}
