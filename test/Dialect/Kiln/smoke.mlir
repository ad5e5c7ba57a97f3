// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// CHECK: kiln.matmul
kiln.parameter @"w" : tensor<768x2304xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"b" : tensor<2304xf32> init zeros trainable
func.func @forward(%x: tensor<?x128x768xf32>) -> tensor<?x128x2304xf32> {
  %w = kiln.read_param @w : tensor<768x2304xf32>
  %b = kiln.read_param @b : tensor<2304xf32>
  %0 = kiln.matmul %x, %w : (tensor<?x128x768xf32>, tensor<768x2304xf32>) -> tensor<?x128x2304xf32>
  %1 = kiln.add %0, %b : (tensor<?x128x2304xf32>, tensor<2304xf32>) -> tensor<?x128x2304xf32>
  %2 = kiln.gelu %1 approximate = tanh : tensor<?x128x2304xf32>
  %3 = kiln.exp %2 : tensor<?x128x2304xf32>
  %4 = kiln.reduce sum %3 axes = [2] keepdim : (tensor<?x128x2304xf32>) -> tensor<?x128x1xf32>
  return %1 : tensor<?x128x2304xf32>
}
