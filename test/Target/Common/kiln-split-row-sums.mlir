// RUN: kiln-opt %s --kiln-split-row-sums --split-input-file | FileCheck %s
// RUN: kiln-opt %s --kiln-split-row-sums="lanes=8" --split-input-file | FileCheck %s --check-prefix=EIGHT
// RUN: not kiln-opt %s --kiln-split-row-sums="lanes=1" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

#row = affine_map<(d0, d1) -> (d0, d1)>
#sum = affine_map<(d0, d1) -> (d0)>

// A row sum of squares (a layer norm's variance) over 768 elements becomes
// 16 partial sums per row, lane l adding elements l, l + 16, ... (the
// reduced loop split into [48, 16], the 16 parallel and innermost), then
// the sum of the 16 into the original output. The max reduction is left
// alone.
// CHECK-LABEL: func.func @row_sums
// CHECK: %[[E:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1, 2]] output_shape [4, 48, 16] : tensor<4x768xf32> into tensor<4x48x16xf32>
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<4x16xf32>)
// CHECK: %[[P:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[E]] : tensor<4x48x16xf32>) outs(%[[Z]] : tensor<4x16xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[S:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<4x16xf32>) outs(%arg1 : tensor<4xf32>)
// CHECK: %[[M:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<4x768xf32>)
// CHECK: arith.maximumf
// CHECK: return %[[S]], %[[M]]
// EIGHT-LABEL: func.func @row_sums
// EIGHT: tensor.expand_shape %arg0 {{\[}}[0], [1, 2]] output_shape [4, 96, 8]
// BAD: lanes must be at least 2 (got 1)
func.func @row_sums(%x: tensor<4x768xf32>, %acc: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x768xf32>) outs(%acc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sq = arith.mulf %in, %in : f32
    %s = arith.addf %out, %sq : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %1 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x768xf32>) outs(%acc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %out, %in : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  return %0, %1 : tensor<4xf32>, tensor<4xf32>
}

// -----

#row = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>
#sum = affine_map<(d0, d1) -> (d0)>

// Left alone: elementwise adds, integer sums, rows too short (32 < 4 x 16)
// or of a dynamic count, column sums (the reduced loop is
// not the innermost), and a sum whose running value is read besides.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: tensor.expand_shape
// CHECK: return
func.func @left_alone(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>, %i: tensor<4x8xi32>, %acc: tensor<4xi32>,
                      %short: tensor<4x32xf32>, %odd: tensor<4x100xf32>, %facc: tensor<4xf32>,
                      %tall: tensor<768x4xf32>, %cacc: tensor<4xf32>, %dyn: tensor<4x?xf32>) -> (tensor<4x8xf32>, tensor<4xi32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %0 = linalg.generic {indexing_maps = [#row, #row], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x8xf32>) outs(%y : tensor<4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %out, %in : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %1 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%i : tensor<4x8xi32>) outs(%acc : tensor<4xi32>) {
  ^bb0(%in: i32, %out: i32):
    %s = arith.addi %out, %in : i32
    linalg.yield %s : i32
  } -> tensor<4xi32>
  %2 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%short : tensor<4x32xf32>) outs(%facc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %out, %in : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %3 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%dyn : tensor<4x?xf32>) outs(%facc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %out, %in : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %4 = linalg.generic {indexing_maps = [#row, #col], iterator_types = ["reduction", "parallel"]}
      ins(%tall : tensor<768x4xf32>) outs(%cacc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %out, %in : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %5 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%odd : tensor<4x100xf32>) outs(%facc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c = arith.cmpf ogt, %in, %out : f32
    %p = arith.select %c, %in, %out : f32
    %s = arith.addf %out, %p : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %0, %1, %2, %3, %4, %5 : tensor<4x8xf32>, tensor<4xi32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// Also left alone: an input that reads the reduced loop twice (a
// diagonal), and an output that does not read every other loop.
// CHECK-LABEL: func.func @odd_maps
// CHECK-NOT: tensor.expand_shape
// CHECK: return
func.func @odd_maps(%sq: tensor<64x64xf32>, %acc: tensor<f32>, %x: tensor<2x3x64xf32>, %acc2: tensor<2xf32>) -> (tensor<f32>, tensor<2xf32>) {
  %0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0, d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
      ins(%sq : tensor<64x64xf32>) outs(%acc : tensor<f32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %out, %in : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %1 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<2x3x64xf32>) outs(%acc2 : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %out, %in : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  return %0, %1 : tensor<f32>, tensor<2xf32>
}

// -----

// A contraction (a matmul, loops in kiln's (m, k, n) order) keeps its own
// order: its tiles sum it.
// CHECK-LABEL: func.func @matmul
// CHECK-NOT: tensor.expand_shape
// CHECK: return
func.func @matmul(%a: tensor<4x768xf32>, %b: tensor<768x1xf32>, %c: tensor<4x1xf32>) -> tensor<4x1xf32> {
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%a, %b : tensor<4x768xf32>, tensor<768x1xf32>) outs(%c : tensor<4x1xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %out, %p : f32
    linalg.yield %s : f32
  } -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

#row = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d0, 0)>
#sum = affine_map<(d0, d1) -> (d0)>

// A softmax denominator with the row max fused in (exp(x - max) summed):
// the row is split into lanes, the max (broadcast along the row, a
// constant index) is read as it was for every lane.
// CHECK-LABEL: func.func @row_sum_with_broadcast
// CHECK: %[[E:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1, 2]] output_shape [4, 48, 16]
// CHECK: %[[P:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[E]], %arg1 : tensor<4x48x16xf32>, tensor<4x1xf32>)
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: arith.addf
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<4x16xf32>)
func.func @row_sum_with_broadcast(%x: tensor<4x768xf32>, %m: tensor<4x1xf32>, %acc: tensor<4xf32>) -> tensor<4xf32> {
  %0 = linalg.generic {indexing_maps = [#row, #bcast, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%x, %m : tensor<4x768xf32>, tensor<4x1xf32>) outs(%acc : tensor<4xf32>) {
  ^bb0(%in: f32, %max: f32, %out: f32):
    %d = arith.subf %in, %max : f32
    %e = math.exp %d : f32
    %s = arith.addf %e, %out : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

#row = affine_map<(d0, d1) -> (d0, d1)>
#sum = affine_map<(d0, d1) -> (d0)>

// A row of 100 elements (not a multiple of 16): the first 96 in 16 lanes,
// then the last 4 added to the lanes' sum by the original body.
// CHECK-LABEL: func.func @row_sum_with_tail
// CHECK: %[[MAIN:.*]] = tensor.extract_slice %arg0[0, 0] [4, 96] [1, 1]
// CHECK: %[[E:.*]] = tensor.expand_shape %[[MAIN]] {{\[}}[0], [1, 2]] output_shape [4, 6, 16]
// CHECK: %[[P:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[E]] : tensor<4x6x16xf32>)
// CHECK: %[[S:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<4x16xf32>) outs(%arg1 : tensor<4xf32>)
// CHECK: %[[T:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%{{.*}} : tensor<4x4xf32>) outs(%[[S]] : tensor<4xf32>)
// CHECK: arith.mulf
// CHECK: return %[[T]]
func.func @row_sum_with_tail(%x: tensor<4x100xf32>, %acc: tensor<4xf32>) -> tensor<4xf32> {
  %0 = linalg.generic {indexing_maps = [#row, #sum], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x100xf32>) outs(%acc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sq = arith.mulf %in, %in : f32
    %s = arith.addf %sq, %out : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
