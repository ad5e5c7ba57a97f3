// RUN: kiln-opt %s --kiln-autodiff --split-input-file --verify-diagnostics | FileCheck %s
// RUN: kiln-opt %s --kiln-autodiff='wrt-inputs=true result=dloss' --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=INPUTS

// The gradient function returns the loss and one gradient per trainable
// parameter the loss reads, in module order; the untrainable parameter and
// the one the loss does not read get none.
// CHECK-LABEL: func.func @loss_grad
// CHECK-SAME: -> (tensor<f32> {kiln.name = "loss"}, tensor<3x4xf32> {kiln.name = "grad:w"}, tensor<4xf32> {kiln.name = "grad:b"})
// CHECK-SAME: attributes {kiln.gradient_parameters = [@w, @b]}
// The seed; the bias gradient summed over the broadcast rows; matmul's
// rule: d w = xᵀ·g over the flattened rows.
// CHECK: %[[SEED:.*]] = kiln.constant dense<1.000000e+00> : tensor<f32>
// CHECK: kiln.reduce sum %{{.*}} axes = [0, 1] : (tensor<2x3x4xf32>) -> tensor<4xf32>
// CHECK: kiln.matmul %{{.*}}, %{{.*}} transpose_lhs : (tensor<6x3xf32>, tensor<6x4xf32>) -> tensor<3x4xf32>
// CHECK: return
// INPUTS-LABEL: func.func @dloss
// INPUTS-SAME: -> (tensor<f32> {kiln.name = "loss"}, tensor<3x4xf32> {kiln.name = "grad:w"}, tensor<4xf32> {kiln.name = "grad:b"}, tensor<2x3x3xf32> {kiln.name = "grad:x"})
kiln.parameter @w : tensor<3x4xf32> init normal std = 1.000000e-01 trainable
kiln.parameter @frozen : tensor<4xf32> init ones
kiln.parameter @b : tensor<4xf32> init zeros trainable
kiln.parameter @unused : tensor<4xf32> init zeros trainable
func.func @loss(%x: tensor<2x3x3xf32> {kiln.name = "x"}) -> tensor<f32> {
  %w = kiln.read_param @w : tensor<3x4xf32>
  %f = kiln.read_param @frozen : tensor<4xf32>
  %b = kiln.read_param @b : tensor<4xf32>
  %h = kiln.matmul %x, %w : (tensor<2x3x3xf32>, tensor<3x4xf32>) -> tensor<2x3x4xf32>
  %hb = kiln.add %h, %b : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %hf = kiln.mul %hb, %f : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %l = kiln.reduce mean %hf axes = [0, 1, 2] : (tensor<2x3x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Calls are inlined; a parameter read twice gets the sum of both uses'
// gradients; composites with a rule (layer_norm) stay whole, others (gelu)
// are decomposed before differentiating.
// CHECK-LABEL: func.func @loss_grad
// CHECK-NOT: call
// CHECK-NOT: kiln.gelu
// CHECK: kiln.layer_norm
// CHECK: return
kiln.parameter @g : tensor<8xf32> init ones trainable
func.func @body(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %g = kiln.read_param @g : tensor<8xf32>
  %n = kiln.layer_norm %x weight %g eps = 1.000000e-05 : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %a = kiln.gelu %n approximate = tanh : tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}
func.func @loss(%x: tensor<?x8xf32>) -> tensor<f32> {
  %y = call @body(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  %g = kiln.read_param @g : tensor<8xf32>
  %z = kiln.mul %y, %g : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %l = kiln.reduce sum %z axes = [0, 1] : (tensor<?x8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// Embedding lookups are differentiated into scatter_add.
// CHECK-LABEL: func.func @loss_grad
// CHECK: kiln.scatter_add %{{.*}}[%{{.*}}], %{{.*}} axis = 0 : (tensor<16x4xf32>, tensor<?x?xi64>, tensor<?x?x4xf32>) -> tensor<16x4xf32>
kiln.parameter @table : tensor<16x4xf32> init normal std = 1.000000e+00 trainable
func.func @loss(%ids: tensor<?x?xi64>) -> tensor<f32> {
  %t = kiln.read_param @table : tensor<16x4xf32>
  %e = kiln.embedding %t, %ids : (tensor<16x4xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
  %l = kiln.reduce sum %e axes = [0, 1, 2] : (tensor<?x?x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{'func.func' op must return one rank-0 float tensor (the loss) to be differentiated, found '(tensor<4xf32>) -> tensor<4xf32>'}}
func.func @loss(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @+1 {{kiln-autodiff: no function 'loss' to differentiate (set function=<name>)}}
module {
  func.func @other(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

// -----

// An op without a gradient rule on the path from a parameter to the loss.
kiln.parameter @w : tensor<4xf32> init zeros trainable
func.func @loss(%x: tensor<4xf32>) -> tensor<f32> {
  %w = kiln.read_param @w : tensor<4xf32>
  %c = arith.constant 0 : index
  %e = tensor.extract %w[%c] : tensor<4xf32>
  // expected-error @+1 {{'tensor.from_elements' op has no gradient rule; the loss depends on a parameter through it, so it cannot be differentiated}}
  %t = tensor.from_elements %e : tensor<f32>
  return %t : tensor<f32>
}
