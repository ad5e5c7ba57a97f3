// RUN: kiln-opt %s --kiln-externalize-parameters --split-input-file --verify-diagnostics | FileCheck %s

// Parameter reads become trailing arguments in the module's parameter order,
// tagged with their names; the declarations go away.
// CHECK-NOT: kiln.parameter
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[X:.*]]: tensor<?x4xf32>, %[[W:.*]]: tensor<4x4xf32> {kiln.parameter = "layer.weight"}, %[[B:.*]]: tensor<4xf32> {kiln.parameter = "layer.bias"})
// CHECK-NOT: kiln.read_param
// CHECK: kiln.matmul %[[X]], %[[W]]
// CHECK: kiln.add %{{.*}}, %[[B]]
kiln.parameter @"layer.weight" : tensor<4x4xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"unused" : tensor<2xf32> init zeros
kiln.parameter @"layer.bias" : tensor<4xf32> init zeros trainable
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %b = kiln.read_param @"layer.bias" : tensor<4xf32>
  %w = kiln.read_param @"layer.weight" : tensor<4x4xf32>
  %w2 = kiln.read_param @"layer.weight" : tensor<4x4xf32>
  %0 = kiln.matmul %x, %w : (tensor<?x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
  %1 = kiln.add %0, %b : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return %1 : tensor<?x4xf32>
}

// A function without parameter reads keeps its signature.
// CHECK-LABEL: func.func @no_params(%{{.*}}: tensor<4xf32>) -> tensor<4xf32>
func.func @no_params(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

kiln.parameter @w : tensor<4xf32> init zeros
// expected-error @+1 {{function 'inner' reads parameters and is called from another function; only entry points may read parameters}}
func.func @inner(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = kiln.read_param @w : tensor<4xf32>
  %0 = kiln.add %x, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
func.func @outer(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = call @inner(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A write becomes a store into the parameter's argument; the parameter is
// an argument even when it is only written.
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>, %[[W:.*]]: tensor<4xf32> {kiln.parameter = "w"}, %[[C:.*]]: tensor<f32> {kiln.parameter = "count"})
// CHECK: %[[NEW:.*]] = kiln.sub %[[W]], %[[X]]
// CHECK: kiln.store_param %[[NEW]] to %[[W]] : tensor<4xf32>
// CHECK: kiln.store_param %{{.*}} to %[[C]] : tensor<f32>
kiln.parameter @w : tensor<4xf32> init zeros trainable
kiln.parameter @count : tensor<f32> init zeros
func.func @step(%x: tensor<4xf32>) {
  %w = kiln.read_param @w : tensor<4xf32>
  %new = kiln.sub %w, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  kiln.write_param @w, %new : tensor<4xf32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  kiln.write_param @count, %zero : tensor<f32>
  return
}

// -----

kiln.parameter @w : tensor<4xf32> init zeros trainable
func.func @read_after_write(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'kiln.write_param' op is followed by a read of 'w' in the same function; reads after writes are not supported}}
  kiln.write_param @w, %x : tensor<4xf32>
  %w = kiln.read_param @w : tensor<4xf32>
  return %w : tensor<4xf32>
}
