// RUN: kiln-opt %s --kiln-parallelize-reductions --split-input-file | FileCheck %s

// A column sum (the outermost loops reduce, the innermost is parallel)
// becomes an scf.forall over chunks of its output: a quarter of the loop
// in whole vectors, at most 64 elements. Each chunk sums its columns over
// every row, in the original order.
// CHECK-LABEL: func.func @column_sum
// CHECK-SAME: (%[[X:.*]]: tensor<4x128x768xf32>)
// CHECK: %[[INIT:.*]] = linalg.fill
// CHECK: %[[R:.*]] = scf.forall (%[[J:.*]]) = (0) to (768) step (64) shared_outs(%[[OUT:.*]] = %[[INIT]])
// CHECK: %[[XS:.*]] = tensor.extract_slice %[[X]][0, 0, %[[J]]] [4, 128, 64] [1, 1, 1]
// CHECK: %[[OS:.*]] = tensor.extract_slice %[[OUT]][%[[J]]] [64] [1]
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "reduction", "parallel"]
// CHECK-SAME: ins(%[[XS]] : tensor<4x128x64xf32>) outs(%[[OS]] : tensor<64xf32>)
// CHECK: tensor.parallel_insert_slice %[[SUM]] into %[[OUT]][%[[J]]] [64] [1]
// CHECK: return %[[R]]
func.func @column_sum(%x: tensor<4x128x768xf32>) -> tensor<768xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<768xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<768xf32>) -> tensor<768xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d2)>],
                       iterator_types = ["reduction", "reduction", "parallel"]}
       ins(%x : tensor<4x128x768xf32>) outs(%init : tensor<768xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  } -> tensor<768xf32>
  return %r : tensor<768xf32>
}

// -----

// Short rows make chunks of a quarter (here 16 of 64); every other
// parallel loop goes one step at a time, and every operand is sliced.
// CHECK-LABEL: func.func @short_rows
// CHECK: scf.forall (%[[H:.*]], %[[J:.*]]) = (0, 0) to (3, 64) step (1, 16)
// CHECK: tensor.extract_slice %{{.*}}[0, %[[H]], %[[J]]] [8, 1, 16] [1, 1, 1]
// CHECK: tensor.extract_slice %{{.*}}[0, %[[H]], %[[J]]] [8, 1, 16] [1, 1, 1]
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<8x1x16xf32>, tensor<8x1x16xf32>) outs({{.*}} : tensor<1x16xf32>)
// CHECK: arith.mulf
// CHECK: tensor.parallel_insert_slice {{.*}}[%[[H]], %[[J]]] [1, 16] [1, 1]
func.func @short_rows(%x: tensor<8x3x64xf32>, %y: tensor<8x3x64xf32>, %init: tensor<3x64xf32>) -> tensor<3x64xf32> {
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>,
                                        affine_map<(d0, d1, d2) -> (d1, d2)>],
                       iterator_types = ["reduction", "parallel", "parallel"]}
       ins(%x, %y : tensor<8x3x64xf32>, tensor<8x3x64xf32>) outs(%init : tensor<3x64xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<3x64xf32>
  return %r : tensor<3x64xf32>
}

// -----

// Left alone: an outer parallel loop already runs on threads (row sums),
// an innermost parallel loop that fits one chunk, an op inside a loop, and
// buffers.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: scf.forall
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK-NOT: scf.forall
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// CHECK-NOT: scf.forall
// CHECK: scf.for
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// CHECK-NOT: scf.forall
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// CHECK-SAME: ins(%{{.*}} : memref<512x768xf32>)
// CHECK-NOT: scf.forall
func.func @left_alone(%x: tensor<512x768xf32>, %rows: tensor<512xf32>, %narrow: tensor<512x16xf32>,
                      %cols16: tensor<16xf32>, %cols: tensor<768xf32>, %n: index,
                      %bx: memref<512x768xf32>, %bcols: memref<768xf32>) -> (tensor<512xf32>, tensor<16xf32>, tensor<768xf32>) {
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                       iterator_types = ["parallel", "reduction"]}
       ins(%x : tensor<512x768xf32>) outs(%rows : tensor<512xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  } -> tensor<512xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>],
                       iterator_types = ["reduction", "parallel"]}
       ins(%narrow : tensor<512x16xf32>) outs(%cols16 : tensor<16xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %l = scf.for %i = %c0 to %n step %c1 iter_args(%acc0 = %cols) -> tensor<768xf32> {
    %s = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>],
                         iterator_types = ["reduction", "parallel"]}
         ins(%x : tensor<512x768xf32>) outs(%acc0 : tensor<768xf32>) {
    ^bb0(%a: f32, %acc: f32):
      %t = arith.addf %a, %acc : f32
      linalg.yield %t : f32
    } -> tensor<768xf32>
    scf.yield %s : tensor<768xf32>
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>],
                  iterator_types = ["reduction", "parallel"]}
       ins(%bx : memref<512x768xf32>) outs(%bcols : memref<768xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  }
  return %r, %c, %l : tensor<512xf32>, tensor<16xf32>, tensor<768xf32>
}

// -----

// A reduction of a whole tensor (a sum of squares for a gradient norm)
// becomes 16 contiguous parts of 16 lanes each, folded into the output by
// parts, then by lanes: the parts on threads, the lanes as vectors.
// CHECK-LABEL: func.func @sum_of_squares
// CHECK-SAME: (%[[X:.*]]: tensor<768x2304xf32>, %[[INIT:.*]]: tensor<f32>)
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1]] : tensor<768x2304xf32> into tensor<1769472xf32>
// CHECK: %[[LANES:.*]] = tensor.expand_shape %[[FLAT]] {{\[}}[0, 1]] output_shape [110592, 16]
// CHECK: %[[PARTS:.*]] = tensor.expand_shape %[[LANES]] {{\[}}[0, 1], [2]] output_shape [16, 6912, 16]
// CHECK: %[[ZERO:.*]] = linalg.fill {{.*}} -> tensor<16x16xf32>
// CHECK: %[[P:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]
// CHECK-SAME: ins(%[[PARTS]] : tensor<16x6912x16xf32>) outs(%[[ZERO]] : tensor<16x16xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[L:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]
// CHECK-SAME: ins(%[[P]] : tensor<16x16xf32>) outs(%{{.*}} : tensor<16xf32>)
// CHECK: %[[R:.*]] = linalg.generic {{.*}} iterator_types = ["reduction"]
// CHECK-SAME: ins(%[[L]] : tensor<16xf32>) outs(%[[INIT]] : tensor<f32>)
// CHECK: return %[[R]]
func.func @sum_of_squares(%x: tensor<768x2304xf32>, %init: tensor<f32>) -> tensor<f32> {
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>],
                       iterator_types = ["reduction", "reduction"]}
       ins(%x : tensor<768x2304xf32>) outs(%init : tensor<f32>) {
  ^bb0(%a: f32, %acc: f32):
    %m = arith.mulf %a, %a : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}

// -----

// Parts only as far as the rows divide (4101 rows of 16 lanes: one part,
// the lanes still vectors), and whole reductions left alone: fewer than
// 4096 elements, a count not a multiple of 16, dynamic sizes, a combiner
// splitReduction does not know.
// CHECK-LABEL: func.func @whole_left
// CHECK: tensor.expand_shape {{.*}} output_shape [4101, 16]
// CHECK-NOT: output_shape [{{[0-9]+}}, 4101
// CHECK: iterator_types = ["reduction", "parallel"]
// CHECK-SAME: ins(%{{.*}} : tensor<4101x16xf32>) outs(%{{.*}} : tensor<16xf32>)
// CHECK: iterator_types = ["reduction"]
// CHECK-SAME: ins(%{{.*}} : tensor<16xf32>)
// CHECK: iterator_types = ["reduction"]
// CHECK-SAME: ins(%{{.*}} : tensor<2048xf32>)
// CHECK: iterator_types = ["reduction"]
// CHECK-SAME: ins(%{{.*}} : tensor<4100xf32>)
// CHECK: iterator_types = ["reduction"]
// CHECK-SAME: ins(%{{.*}} : tensor<?xf32>)
// CHECK: iterator_types = ["reduction"]
// CHECK-SAME: ins(%{{.*}} : tensor<8192xf32>)
// CHECK: math.exp
// CHECK-NOT: tensor.expand_shape
func.func @whole_left(%odd: tensor<65616xf32>, %small: tensor<2048xf32>, %ragged: tensor<4100xf32>,
                      %dyn: tensor<?xf32>, %odd_combiner: tensor<8192xf32>, %init: tensor<f32>)
    -> (tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>) {
  %a = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
       ins(%odd : tensor<65616xf32>) outs(%init : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %v, %acc : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
       ins(%small : tensor<2048xf32>) outs(%init : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %v, %acc : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %c = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
       ins(%ragged : tensor<4100xf32>) outs(%init : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %v, %acc : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %d = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
       ins(%dyn : tensor<?xf32>) outs(%init : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %v, %acc : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %e = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
       ins(%odd_combiner : tensor<8192xf32>) outs(%init : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %v, %acc : f32
    %x = math.exp %s : f32
    linalg.yield %x : f32
  } -> tensor<f32>
  return %a, %b, %c, %d, %e : tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>
}
