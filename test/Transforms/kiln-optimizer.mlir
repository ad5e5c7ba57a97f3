// RUN: kiln-opt %s --kiln-optimizer --split-input-file --verify-diagnostics | FileCheck %s
// RUN: kiln-opt %s --kiln-optimizer='optimizer=sgd momentum=0.5 max-grad-norm=0' --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SGD

// AdamW: state parameters (zeros, marked), the step count, train_step with
// the learning rate as an input, clipping, and writes of every parameter
// and its state; eval_step calls the loss; loss and gradient go private.
// CHECK-DAG: kiln.parameter @"optimizer/step" : tensor<f32> init zeros {kiln.optimizer_state}
// CHECK-DAG: kiln.parameter @"w/adam_m" : tensor<2x4xf32> init zeros {kiln.optimizer_state}
// CHECK-DAG: kiln.parameter @"w/adam_v" : tensor<2x4xf32> init zeros {kiln.optimizer_state}
// CHECK-DAG: kiln.parameter @"b/adam_m" : tensor<4xf32> init zeros {kiln.optimizer_state}
// CHECK-NOT: @"frozen/adam_m"
// CHECK-LABEL: func.func private @loss(
// CHECK-LABEL: func.func private @loss_grad(
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %{{.*}}: tensor<3x2xf32> {kiln.name = "x"}, %[[LR:.*]]: tensor<f32> {kiln.name = "lr"}) -> (tensor<f32> {kiln.name = "loss"}, tensor<f32> {kiln.name = "grad_norm"})
// CHECK: %[[G:.*]]:3 = call @loss_grad
// CHECK: %[[NORM:.*]] = kiln.sqrt
// CHECK: kiln.min
// CHECK: kiln.write_param @"optimizer/step"
// CHECK: kiln.pow
// Decoupled weight decay for the matrix only (decay-min-rank = 2).
// CHECK: kiln.mul %[[LR]], %{{.*}}
// CHECK: kiln.write_param @"w/adam_m"
// CHECK: kiln.write_param @"w/adam_v"
// CHECK: kiln.write_param @w,
// CHECK: kiln.write_param @"b/adam_m"
// CHECK: kiln.write_param @"b/adam_v"
// CHECK: kiln.write_param @b,
// CHECK: return %[[G]]#0, %[[NORM]]
// CHECK-LABEL: func.func @eval_step(
// CHECK: call @loss(
// SGD-NOT: adam
// SGD-DAG: kiln.parameter @"w/momentum" : tensor<2x4xf32> init zeros {kiln.optimizer_state}
// SGD-DAG: kiln.parameter @"b/momentum" : tensor<4xf32> init zeros {kiln.optimizer_state}
// SGD-LABEL: func.func @train_step(
// SGD-NOT: kiln.min
// SGD: kiln.write_param @"w/momentum"
// SGD: kiln.write_param @w,
kiln.parameter @w : tensor<2x4xf32> init normal std = 1.000000e-01 trainable
kiln.parameter @b : tensor<4xf32> init zeros trainable
kiln.parameter @frozen : tensor<4xf32> init ones
func.func @loss(%x: tensor<3x2xf32> {kiln.name = "x"}) -> tensor<f32> {
  %w = kiln.read_param @w : tensor<2x4xf32>
  %b = kiln.read_param @b : tensor<4xf32>
  %f = kiln.read_param @frozen : tensor<4xf32>
  %h = kiln.matmul %x, %w : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
  %hb = kiln.add %h, %b : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %hf = kiln.mul %hb, %f : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %t = kiln.tanh %hf : tensor<3x4xf32>
  %l = kiln.reduce mean %t axes = [0, 1] : (tensor<3x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{kiln-optimizer: no loss function 'loss' (set function=<name>)}}
module {
  func.func @forward(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

// -----

kiln.parameter @h : tensor<4xf16> init zeros trainable
func.func @loss(%x: tensor<4xf16>) -> tensor<f16> {
  %h = kiln.read_param @h : tensor<4xf16>
  %s = kiln.mul %x, %h : (tensor<4xf16>, tensor<4xf16>) -> tensor<4xf16>
  %l = kiln.reduce sum %s axes = [0] : (tensor<4xf16>) -> tensor<f16>
  return %l : tensor<f16>
}
// expected-error @-7 {{'kiln.parameter' op is not f32; the optimizer updates f32 parameters (mixed precision keeps f32 master weights)}}
