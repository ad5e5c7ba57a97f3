// RUN: kiln-opt %s --kiln-autodiff --split-input-file | FileCheck %s --check-prefix=DECOMPOSED
// RUN: kiln-opt %s --kiln-autodiff='keep=kiln.attention' --split-input-file | FileCheck %s --check-prefix=FUSED
// RUN: kiln-opt %s --kiln-optimizer='keep=kiln.attention' --split-input-file | FileCheck %s --check-prefix=OPTIMIZER
// RUN: not kiln-opt %s --kiln-autodiff='keep=kiln.nothing' --split-input-file 2>&1 | FileCheck %s --check-prefix=UNKNOWN

// By default attention is differentiated through its decomposition (the
// softmax over materialized scores); kept, through kiln.attention_grad,
// which gets the constant padding mask and returns the q, k, v gradients.

// DECOMPOSED-LABEL: func.func @loss_grad
// DECOMPOSED-NOT: kiln.attention
// DECOMPOSED: kiln.exp
// DECOMPOSED-NOT: kiln.attention_grad

// FUSED-LABEL: func.func @loss_grad
// FUSED: %[[ATT:.*]] = kiln.attention %[[Q:.*]], %[[K:.*]], %[[V:.*]] mask %[[M:.*]] causal
// FUSED-NOT: kiln.exp
// FUSED: %query_grad, %key_grad, %value_grad = kiln.attention_grad %[[Q]], %[[K]], %[[V]], %{{.*}} mask %[[M]] causal

// OPTIMIZER-LABEL: func.func private @loss_grad
// OPTIMIZER: kiln.attention_grad
// OPTIMIZER-LABEL: func.func @train_step

// UNKNOWN: cannot keep unknown op 'kiln.nothing' whole in the gradient
kiln.parameter @wq : tensor<8x8xf32> init normal std = 1.000000e-01 trainable
func.func @loss(%x: tensor<2x1x4x8xf32> {kiln.name = "x"}, %ids: tensor<2x4xi64> {kiln.name = "ids"}) -> tensor<f32> {
  %w = kiln.read_param @wq : tensor<8x8xf32>
  %q = kiln.matmul %x, %w : (tensor<2x1x4x8xf32>, tensor<8x8xf32>) -> tensor<2x1x4x8xf32>
  %m = kiln.padding_mask %ids : tensor<2x4xi64> -> tensor<2x1x1x4xf32>
  %a = kiln.attention %q, %x, %q mask %m causal : (tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<2x1x1x4xf32>) -> tensor<2x1x4x8xf32>
  %l = kiln.reduce mean %a axes = [0, 1, 2, 3] : (tensor<2x1x4x8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A mask that depends on a parameter (a learned bias) needs its gradient,
// which kiln.attention_grad does not give: attention is decomposed even
// when kept.

// FUSED-LABEL: func.func @loss_grad
// FUSED-NOT: kiln.attention_grad
// FUSED: kiln.exp
kiln.parameter @bias : tensor<4x4xf32> init zeros trainable
func.func @loss(%x: tensor<1x2x4x8xf32> {kiln.name = "x"}) -> tensor<f32> {
  %b = kiln.read_param @bias : tensor<4x4xf32>
  %a = kiln.attention %x, %x, %x mask %b : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<4x4xf32>) -> tensor<1x2x4x8xf32>
  %l = kiln.reduce mean %a axes = [0, 1, 2, 3] : (tensor<1x2x4x8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// A dynamic head dim has no fused lowering: decomposed even when kept.

// FUSED-LABEL: func.func @loss_grad
// FUSED-NOT: kiln.attention_grad
// FUSED: kiln.exp
kiln.parameter @w : tensor<1x2x4x3xf32> init normal std = 1.000000e-01 trainable
func.func @loss(%x: tensor<1x2x4x?xf32> {kiln.name = "x"}) -> tensor<f32> {
  %w = kiln.read_param @w : tensor<1x2x4x3xf32>
  %t = kiln.reduce sum %w axes = [0, 1, 2, 3] : (tensor<1x2x4x3xf32>) -> tensor<f32>
  %y = kiln.mul %x, %t : (tensor<1x2x4x?xf32>, tensor<f32>) -> tensor<1x2x4x?xf32>
  %a = kiln.attention %y, %y, %y : (tensor<1x2x4x?xf32>, tensor<1x2x4x?xf32>, tensor<1x2x4x?xf32>) -> tensor<1x2x4x?xf32>
  %l = kiln.reduce sum %a axes = [0, 1, 2, 3] : (tensor<1x2x4x?xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// The learned part of a mask is found behind an integer argument too (the
// padding mask of the ids is not differentiated, the bias added to it is).

// FUSED-LABEL: func.func @loss_grad
// FUSED-NOT: kiln.attention_grad
// FUSED: kiln.exp
kiln.parameter @bias : tensor<1x1x1x4xf32> init zeros trainable
func.func @loss(%x: tensor<2x1x4x8xf32> {kiln.name = "x"}, %ids: tensor<2x4xi64> {kiln.name = "ids"}) -> tensor<f32> {
  %b = kiln.read_param @bias : tensor<1x1x1x4xf32>
  %p = kiln.padding_mask %ids : tensor<2x4xi64> -> tensor<2x1x1x4xf32>
  %m = kiln.add %b, %p : (tensor<1x1x1x4xf32>, tensor<2x1x1x4xf32>) -> tensor<2x1x1x4xf32>
  %a = kiln.attention %x, %x, %x mask %m : (tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<2x1x1x4xf32>) -> tensor<2x1x4x8xf32>
  %l = kiln.reduce mean %a axes = [0, 1, 2, 3] : (tensor<2x1x4x8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
