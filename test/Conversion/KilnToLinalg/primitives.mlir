// RUN: kiln-opt %s --convert-kiln-to-linalg --split-input-file | FileCheck %s
// RUN: kiln-opt %s --convert-kiln-to-linalg --split-input-file | kiln-opt --split-input-file --verify-each > /dev/null

// Matmul of a batched lhs and a 2-D weight: the batch dims are rows like
// the others, one [(batch m), k] x [k, n] contraction generic over
// (m, k, n) on a zero-filled accumulator (n innermost walks rows of the
// weight and the result contiguously), expanded back.
// CHECK-DAG: #[[$LHS:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$RHS:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func @matmul_batched
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2]] : tensor<?x8x32xf32> into tensor<?x32xf32>
// CHECK: %[[DIM:.*]] = tensor.dim %[[ROWS]], %c0
// CHECK: %[[EMPTY:.*]] = tensor.empty(%[[DIM]]) : tensor<?x16xf32>
// CHECK: %[[ACC:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[EMPTY]]
// CHECK: %[[C:.*]] = linalg.generic {indexing_maps = [#[[$LHS]], #[[$RHS]], #[[$OUT]]], iterator_types = ["parallel", "reduction", "parallel"]}
// CHECK-SAME: ins(%[[ROWS]], %arg1
// CHECK-SAME: outs(%[[ACC]]
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[B:.*]] = tensor.dim %arg0, %c0
// CHECK: tensor.expand_shape %[[C]] {{\[}}[0, 1], [2]] output_shape [%[[B]], 8, 16] : tensor<?x16xf32> into tensor<?x8x16xf32>
func.func @matmul_batched(%x: tensor<?x8x32xf32>, %w: tensor<32x16xf32>) -> tensor<?x8x16xf32> {
  %0 = kiln.matmul %x, %w : (tensor<?x8x32xf32>, tensor<32x16xf32>) -> tensor<?x8x16xf32>
  return %0 : tensor<?x8x16xf32>
}

// -----

// A result type more static than the operands: the expanded product is
// cast to it.
// CHECK-LABEL: func @matmul_static_result
// CHECK: %[[E:.*]] = tensor.expand_shape %{{.*}} {{\[}}[0, 1], [2]] output_shape [%{{.*}}, 8, 16] : tensor<?x16xf32> into tensor<?x8x16xf32>
// CHECK: %[[C:.*]] = tensor.cast %[[E]] : tensor<?x8x16xf32> to tensor<2x8x16xf32>
// CHECK: return %[[C]]
func.func @matmul_static_result(%x: tensor<?x8x32xf32>, %w: tensor<32x16xf32>) -> tensor<2x8x16xf32> {
  %0 = kiln.matmul %x, %w : (tensor<?x8x32xf32>, tensor<32x16xf32>) -> tensor<2x8x16xf32>
  return %0 : tensor<2x8x16xf32>
}

// -----

// With two dynamic row dims the product is reshaped back (an
// expand_shape grouping two dynamic sizes crashes MLIR 22's
// expand-strided-metadata).
// CHECK-LABEL: func @matmul_two_dynamic
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2]] : tensor<?x?x32xf32> into tensor<?x32xf32>
// CHECK: %[[C:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[ROWS]], %arg1
// CHECK: %[[B:.*]] = tensor.dim %arg0, %c0
// CHECK: %[[S:.*]] = tensor.dim %arg0, %c1
// CHECK: %[[SHAPE:.*]] = tensor.from_elements %[[B]], %[[S]], %c16
// CHECK: tensor.reshape %[[C]](%[[SHAPE]]) : (tensor<?x16xf32>, tensor<3xindex>) -> tensor<?x?x16xf32>
func.func @matmul_two_dynamic(%x: tensor<?x?x32xf32>, %w: tensor<32x16xf32>) -> tensor<?x?x16xf32> {
  %0 = kiln.matmul %x, %w : (tensor<?x?x32xf32>, tensor<32x16xf32>) -> tensor<?x?x16xf32>
  return %0 : tensor<?x?x16xf32>
}

// -----

// transpose_rhs copies the rhs to [..., K, N] first, then uses the same
// (batch, m, k, n) contraction.
// CHECK-DAG: #[[$RHSK:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-LABEL: func @matmul_transposed
// CHECK: %[[KT:.*]] = linalg.transpose ins(%arg1 : tensor<1x2x8x4xf32>) outs(%{{.*}} : tensor<1x2x4x8xf32>) permutation = [0, 1, 3, 2]
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[$RHSK]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%arg0, %[[KT]] :
func.func @matmul_transposed(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>) -> tensor<1x2x8x8xf32> {
  %0 = kiln.matmul %q, %k transpose_rhs : (tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x8x8xf32>
  return %0 : tensor<1x2x8x8xf32>
}

// -----

// Broadcasting binary op: the bias reads only the last dim.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$BIAS:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func @add_bias
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$BIAS]], #[[$ID]]]
// CHECK: arith.addf
func.func @add_bias(%x: tensor<?x16xf32>, %b: tensor<16xf32>) -> tensor<?x16xf32> {
  %0 = kiln.add %x, %b : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}

// -----

// A size-1 dim stretches through a constant index.
// CHECK-DAG: #[[$STRETCH:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-LABEL: func @sub_stretch
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[$STRETCH]], #{{.*}}]
// CHECK: arith.subf
func.func @sub_stretch(%x: tensor<4x16xf32>, %m: tensor<4x1xf32>) -> tensor<4x16xf32> {
  %0 = kiln.sub %x, %m : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

// Integer ops use the integer arith ops.
// CHECK-LABEL: func @int_ops
// CHECK: arith.muli
// CHECK: arith.divsi
// CHECK: arith.maxsi
// CHECK: arith.cmpi slt
func.func @int_ops(%a: tensor<4xi64>, %b: tensor<4xi64>) -> (tensor<4xi64>, tensor<4xi64>, tensor<4xi64>, tensor<4xi1>) {
  %0 = kiln.mul %a, %b : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  %1 = kiln.div %a, %b : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  %2 = kiln.max %a, %b : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  %3 = kiln.compare lt, %a, %b : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  return %0, %1, %2, %3 : tensor<4xi64>, tensor<4xi64>, tensor<4xi64>, tensor<4xi1>
}

// -----

// Unary ops map to math/arith; sigmoid and relu are expanded.
// CHECK-LABEL: func @unary
// CHECK: math.exp
// CHECK: math.log
// CHECK: math.tanh
// CHECK: math.erf
// CHECK: math.sqrt
// CHECK: math.rsqrt
// CHECK: arith.negf
// CHECK: arith.divf
// CHECK: arith.maximumf
// CHECK: math.sin
// CHECK: math.cos
// CHECK: math.absf
// CHECK: arith.negf
func.func @unary(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = kiln.exp %x : tensor<8xf32>
  %1 = kiln.log %0 : tensor<8xf32>
  %2 = kiln.tanh %1 : tensor<8xf32>
  %3 = kiln.erf %2 : tensor<8xf32>
  %4 = kiln.sqrt %3 : tensor<8xf32>
  %5 = kiln.rsqrt %4 : tensor<8xf32>
  %6 = kiln.sigmoid %5 : tensor<8xf32>
  %7 = kiln.relu %6 : tensor<8xf32>
  %8 = kiln.sin %7 : tensor<8xf32>
  %9 = kiln.cos %8 : tensor<8xf32>
  %10 = kiln.abs %9 : tensor<8xf32>
  %11 = kiln.neg %10 : tensor<8xf32>
  return %11 : tensor<8xf32>
}

// -----

// Reductions: mean divides by the reduced size; keepdim re-expands;
// max starts from -inf.
// CHECK-LABEL: func @reduce_mean_keepdim
// CHECK: linalg.fill
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK: arith.addf
// CHECK: arith.sitofp
// CHECK: arith.divf
// CHECK: tensor.expand_shape {{.*}} {{\[}}[0, 1]] output_shape [%{{.*}}, 1] : tensor<?xf32> into tensor<?x1xf32>
func.func @reduce_mean_keepdim(%x: tensor<?x16xf32>) -> tensor<?x1xf32> {
  %0 = kiln.reduce mean %x axes = [1] keepdim : (tensor<?x16xf32>) -> tensor<?x1xf32>
  return %0 : tensor<?x1xf32>
}

// CHECK-LABEL: func @reduce_max_all
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]
// CHECK: arith.maximumf
// CHECK-NOT: tensor.expand_shape
func.func @reduce_max_all(%x: tensor<4x16xf32>) -> tensor<f32> {
  %0 = kiln.reduce max %x axes = [0, 1] : (tensor<4x16xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// Shape ops become upstream tensor/linalg ops.
// CHECK-LABEL: func @shapes
// CHECK: linalg.transpose {{.*}} permutation = [2, 0, 1]
// CHECK: tensor.from_elements %c3, %c8 : tensor<2xindex>
// CHECK: tensor.reshape
// CHECK: tensor.extract_slice %arg0[0, 0, 1] [2, 3, 2] [1, 1, 2]
// CHECK: tensor.concat dim(2)
// CHECK: tensor.pad
func.func @shapes(%x: tensor<2x3x4xf32>) -> (tensor<4x2x3xf32>, tensor<3x8xf32>, tensor<2x3x4xf32>, tensor<2x3x6xf32>) {
  %0 = kiln.transpose %x permutation = [2, 0, 1] : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = kiln.reshape %x : tensor<2x3x4xf32> -> tensor<3x8xf32>
  %2 = kiln.slice %x axis = 2 [1 : 4 : 2] : (tensor<2x3x4xf32>) -> tensor<2x3x2xf32>
  %3 = kiln.concat %2, %2 axis = 2 : (tensor<2x3x2xf32>, tensor<2x3x2xf32>) -> tensor<2x3x4xf32>
  %4 = kiln.pad %x low = [0, 0, 1] high = [0, 0, 1] value = 0.0 : (tensor<2x3x4xf32>) -> tensor<2x3x6xf32>
  return %0, %1, %3, %4 : tensor<4x2x3xf32>, tensor<3x8xf32>, tensor<2x3x4xf32>, tensor<2x3x6xf32>
}

// -----

// A reshape whose dims group is an expand or a collapse (a view of the
// same buffer); a dynamic dim carries its size through tensor.dim.
// CHECK-LABEL: func @reshape_dynamic
// CHECK: %[[D:.*]] = tensor.dim %arg0, %c0
// CHECK: %[[E:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1, 2]] output_shape [%[[D]], 4, 2] : tensor<?x8xf32> into tensor<?x4x2xf32>
// CHECK: %[[C:.*]] = tensor.collapse_shape %[[E]] {{\[}}[0], [1, 2]] : tensor<?x4x2xf32> into tensor<?x8xf32>
// CHECK: tensor.collapse_shape %arg1 {{\[}}[0, 1], [2, 3, 4]] : tensor<1x3x4x1x1xf32> into tensor<3x4xf32>
// CHECK: return %[[E]], %[[C]]
func.func @reshape_dynamic(%x: tensor<?x8xf32>, %y: tensor<1x3x4x1x1xf32>) -> (tensor<?x4x2xf32>, tensor<?x8xf32>, tensor<3x4xf32>) {
  %0 = kiln.reshape %x : tensor<?x8xf32> -> tensor<?x4x2xf32>
  %1 = kiln.reshape %0 : tensor<?x4x2xf32> -> tensor<?x8xf32>
  %2 = kiln.reshape %y : tensor<1x3x4x1x1xf32> -> tensor<3x4xf32>
  return %0, %1, %2 : tensor<?x4x2xf32>, tensor<?x8xf32>, tensor<3x4xf32>
}

// -----

// Where the dims do not group (a dynamic dim against a static one), the
// reshape is a general one, its shape built from the dims.
// CHECK-LABEL: func @reshape_general
// CHECK: %[[D:.*]] = tensor.dim %arg0, %c0
// CHECK: %[[S:.*]] = tensor.from_elements %c2, %[[D]], %c2{{.*}} : tensor<3xindex>
// CHECK: tensor.reshape %arg0(%[[S]])
func.func @reshape_general(%x: tensor<?x4xf32>) -> tensor<2x?x2xf32> {
  %0 = kiln.reshape %x : tensor<?x4xf32> -> tensor<2x?x2xf32>
  return %0 : tensor<2x?x2xf32>
}

// -----

// Gather extracts from the table at the index read from the ids, clamped
// to the table.
// CHECK-LABEL: func @gather
// CHECK: linalg.generic {{.*}} ins(%arg1 : tensor<?x?xi64>)
// CHECK: %[[COL:.*]] = linalg.index 2
// CHECK: %[[ID:.*]] = arith.index_cast %in : i64 to index
// CHECK: %[[LOW:.*]] = arith.minsi %[[ID]], %{{.*}} : index
// CHECK: %[[ROW:.*]] = arith.maxsi %[[LOW]], %{{.*}} : index
// CHECK: tensor.extract %arg0[%[[ROW]], %[[COL]]] : tensor<10x4xf32>
func.func @gather(%t: tensor<10x4xf32>, %ids: tensor<?x?xi64>) -> tensor<?x?x4xf32> {
  %0 = kiln.gather %t[%ids] axis = 0 : (tensor<10x4xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
  return %0 : tensor<?x?x4xf32>
}

// -----

// Generators compute from linalg.index.
// CHECK-LABEL: func @generators
// CHECK: linalg.index 1
// CHECK: arith.index_cast
// CHECK: arith.subi
// CHECK: arith.cmpi sle
// CHECK: arith.cmpi ne
// CHECK: arith.select %{{.*}}, %cst{{.*}}, %cst{{.*}} : f32
// The seed is read inside the generic (not on the host before it).
// CHECK-NOT: tensor.extract %arg1
// CHECK: linalg.generic {{.*}} ins(%arg1 : tensor<i64>)
// CHECK: ^bb0(%[[SEED:.*]]: i64,
// CHECK: arith.shrui %[[SEED]]
// CHECK: arith.shrui
// CHECK: arith.uitofp
func.func @generators(%ids: tensor<?x?xi64>, %seed: tensor<i64>, %n: index) -> (tensor<3x5xi64>, tensor<?x?xi1>, tensor<?x1x1x?xf32>, tensor<2x3xf32>) {
  %0 = kiln.iota () dim = 1 : tensor<3x5xi64>
  %1 = kiln.causal_mask (%n, %n) : tensor<?x?xi1>
  %2 = kiln.padding_mask %ids : tensor<?x?xi64> -> tensor<?x1x1x?xf32>
  %3 = kiln.random_uniform %seed () : (tensor<i64>) -> tensor<2x3xf32>
  return %0, %1, %2, %3 : tensor<3x5xi64>, tensor<?x?xi1>, tensor<?x1x1x?xf32>, tensor<2x3xf32>
}

// -----

// Casts pick the arith conversion for the element types.
// CHECK-LABEL: func @casts
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: arith.extui %{{.*}} : i1 to i64
// CHECK: arith.sitofp %{{.*}} : i64 to f32
// CHECK: arith.fptosi %{{.*}} : f32 to i32
func.func @casts(%x: tensor<4xf32>, %m: tensor<4xi1>, %i: tensor<4xi64>) -> (tensor<4xbf16>, tensor<4xi64>, tensor<4xf32>, tensor<4xi32>) {
  %0 = kiln.cast %x : tensor<4xf32> -> tensor<4xbf16>
  %1 = kiln.cast %m : tensor<4xi1> -> tensor<4xi64>
  %2 = kiln.cast %i : tensor<4xi64> -> tensor<4xf32>
  %3 = kiln.cast %x : tensor<4xf32> -> tensor<4xi32>
  return %0, %1, %2, %3 : tensor<4xbf16>, tensor<4xi64>, tensor<4xf32>, tensor<4xi32>
}

// -----

// Select and broadcast_to.
// CHECK-LABEL: func @select_broadcast
// CHECK: arith.select
// CHECK: linalg.generic {{.*}} ins(%arg1 : tensor<4xf32>) outs(%{{.*}} : tensor<3x4xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: linalg.yield %[[IN]]
func.func @select_broadcast(%c: tensor<3x4xi1>, %x: tensor<4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.select %c, %x, %zero : (tensor<3x4xi1>, tensor<4xf32>, tensor<f32>) -> tensor<3x4xf32>
  %1 = kiln.broadcast_to %x () : tensor<4xf32> -> tensor<3x4xf32>
  return %0, %1 : tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// scatter_add: a sequential loop nest over the updates carrying the result,
// clamping each index like gather, adding into the selected element.
// CHECK-LABEL: func.func @scatter_add
// CHECK: %[[R:.*]] = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %{{.*}}) -> (tensor<10x4xf32>)
// CHECK:   scf.for %{{.*}} iter_args(%[[ACC2:.*]] = %[[ACC]])
// CHECK:     %[[I:.*]] = tensor.extract %{{.*}} : tensor<?xi64>
// CHECK:     arith.index_cast %[[I]]
// CHECK:     arith.minsi
// CHECK:     arith.maxsi
// CHECK:     %[[OLD:.*]] = tensor.extract %[[ACC2]]
// CHECK:     %[[SUM:.*]] = arith.addf %[[OLD]], %{{.*}} : f32
// CHECK:     tensor.insert %[[SUM]] into %[[ACC2]]
// CHECK: return %[[R]]
func.func @scatter_add(%t: tensor<10x4xf32>, %ids: tensor<?xi64>, %u: tensor<?x4xf32>) -> tensor<10x4xf32> {
  %0 = kiln.scatter_add %t[%ids], %u axis = 0 : (tensor<10x4xf32>, tensor<?xi64>, tensor<?x4xf32>) -> tensor<10x4xf32>
  return %0 : tensor<10x4xf32>
}

// -----

// cache_write: a parallel loop over the rows, each inserting its slice of
// the update at its position clamped to [0, T - S], into the cache as the
// loop's shared output.
// CHECK-LABEL: func.func @cache_write
// CHECK-SAME: (%[[CACHE:.*]]: tensor<?x2x16x4xf32>, %[[POS:.*]]: tensor<?xi64>, %[[NEW:.*]]: tensor<?x2x?x4xf32>)
// CHECK: %[[S:.*]] = tensor.dim %[[NEW]], %c2
// CHECK: %[[LAST:.*]] = arith.subi %{{.*}}, %{{.*}} : index
// CHECK: %[[R:.*]] = scf.forall (%[[B:.*]]) in (%{{.*}}) shared_outs(%[[OUT:.*]] = %[[CACHE]]) -> (tensor<?x2x16x4xf32>)
// CHECK:   %[[START:.*]] = tensor.extract %[[POS]][%[[B]]] : tensor<?xi64>
// CHECK:   %[[START_I:.*]] = arith.index_cast %[[START]]
// CHECK:   %[[LOW:.*]] = arith.minsi %[[START_I]], %[[LAST]]
// CHECK:   %[[CLAMPED:.*]] = arith.maxsi %[[LOW]], %{{.*}}
// CHECK:   %[[ROW:.*]] = tensor.extract_slice %[[NEW]][%[[B]], 0, 0, 0] [1, 2, %[[S]], 4] [1, 1, 1, 1]
// CHECK:   scf.forall.in_parallel
// CHECK:     tensor.parallel_insert_slice %[[ROW]] into %[[OUT]][%[[B]], 0, %[[CLAMPED]], 0] [1, 2, %[[S]], 4] [1, 1, 1, 1]
// CHECK: return %[[R]]
func.func @cache_write(%cache: tensor<?x2x16x4xf32>, %pos: tensor<?xi64>, %k: tensor<?x2x?x4xf32>) -> tensor<?x2x16x4xf32> {
  %0 = kiln.cache_write %cache[%pos], %k : (tensor<?x2x16x4xf32>, tensor<?xi64>, tensor<?x2x?x4xf32>) -> tensor<?x2x16x4xf32>
  return %0 : tensor<?x2x16x4xf32>
}

// -----

// bf16 (and f16) products accumulate in f32 and are rounded once at the end.
// CHECK-LABEL: func @matmul_bf16
// CHECK: %[[ACC:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<3x4xf32>)
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<3x2xbf16>, tensor<2x4xbf16>) outs(%[[ACC]] : tensor<3x4xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK:   arith.addf %{{.*}}, %{{.*}} : f32
// CHECK: linalg.generic {{.*}} ins(%[[SUM]] : tensor<3x4xf32>) outs(%{{.*}} : tensor<3x4xbf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
func.func @matmul_bf16(%x: tensor<3x2xbf16>, %w: tensor<2x4xbf16>) -> tensor<3x4xbf16> {
  %h = kiln.matmul %x, %w : (tensor<3x2xbf16>, tensor<2x4xbf16>) -> tensor<3x4xbf16>
  return %h : tensor<3x4xbf16>
}

// -----

// bf16 sums and means accumulate in f32, divide in f32 and round once; max
// needs no wider accumulator and stays bf16.
// CHECK-LABEL: func @reduce_bf16
// CHECK: %[[ACC:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<3xf32>)
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<3x8xbf16>) outs(%[[ACC]] : tensor<3xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.addf %{{.*}}, %{{.*}} : f32
// CHECK: %[[MEAN:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<3xf32>) outs(%{{.*}} : tensor<3xf32>)
// CHECK:   arith.divf %{{.*}}, %{{.*}} : f32
// CHECK: linalg.generic {{.*}} ins(%[[MEAN]] : tensor<3xf32>) outs(%{{.*}} : tensor<3xbf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK: linalg.fill ins(%{{.*}} : bf16) outs(%{{.*}} : tensor<3xbf16>)
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<3x8xbf16>) outs(%{{.*}} : tensor<3xbf16>)
// CHECK:   arith.maximumf %{{.*}}, %{{.*}} : bf16
func.func @reduce_bf16(%x: tensor<3x8xbf16>) -> (tensor<3xbf16>, tensor<3xbf16>) {
  %0 = kiln.reduce mean %x axes = [1] : (tensor<3x8xbf16>) -> tensor<3xbf16>
  %1 = kiln.reduce max %x axes = [1] : (tensor<3x8xbf16>) -> tensor<3xbf16>
  return %0, %1 : tensor<3xbf16>, tensor<3xbf16>
}

// -----

// Stored panels unpack with linalg.unpack: the columns in tiles of the
// panel width, outer dims swapped; pairs tile the rows by 2 too.
// CHECK-LABEL: func.func @unpack_panels(
// CHECK: linalg.unpack %{{.*}} outer_dims_perm = [1, 0] inner_dims_pos = [1] inner_tiles = [64] into %{{.*}} : tensor<4x64x64xf32> -> tensor<64x200xf32>
// CHECK: linalg.unpack %{{.*}} outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [128, 2] into %{{.*}} : tensor<2x32x128x2xbf16> -> tensor<64x256xbf16>
func.func @unpack_panels(%p: tensor<4x64x64xf32>, %q: tensor<2x32x128x2xbf16>) -> (tensor<64x200xf32>, tensor<64x256xbf16>) {
  %0 = kiln.unpack_panels %p columns = 200 : (tensor<4x64x64xf32>) -> tensor<64x200xf32>
  %1 = kiln.unpack_panels %q columns = 256 : (tensor<2x32x128x2xbf16>) -> tensor<64x256xbf16>
  return %0, %1 : tensor<64x200xf32>, tensor<64x256xbf16>
}

// -----

// Transposed, the unpacked matrix is transposed too. A gather of a table
// in panels reads its elements where they lie: table row n, column k
// (transposed: the [N, K] table an LM head tied to the token embedding
// multiplies by) at panels[n / 64, k, n mod 64]; an untransposed [K, N]
// table in pairs, row k and column n, at [n / 128, k / 2, n mod 128,
// k mod 2]. Ids are clamped to the table's rows (199 and 63, not the
// panels' padding). The unpacking is left unused.
// CHECK-LABEL: func.func @gather_panels(
// CHECK-SAME: %[[P:[a-z0-9]+]]: tensor<4x64x64xf32>, %[[Q:[a-z0-9]+]]: tensor<2x32x128x2xbf16>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<64x200xf32>) outs(%{{.*}} : tensor<200x64xf32>) permutation = [1, 0]
// CHECK: %[[LAST:.*]] = arith.constant 199 : index
// CHECK: linalg.generic
// CHECK: %[[K:.*]] = linalg.index 1 : index
// CHECK: arith.minsi %{{.*}}, %[[LAST]] : index
// CHECK: %[[N:.*]] = arith.maxsi
// CHECK: %[[C64:.*]] = arith.constant 64 : index
// CHECK: %[[PN:.*]] = arith.divui %[[N]], %[[C64]] : index
// CHECK: %[[CN:.*]] = arith.remui %[[N]], %[[C64]] : index
// CHECK: tensor.extract %[[P]][%[[PN]], %[[K]], %[[CN]]] : tensor<4x64x64xf32>
// CHECK: %[[LAST2:.*]] = arith.constant 63 : index
// CHECK: linalg.generic
// CHECK: %[[N2:.*]] = linalg.index 1 : index
// CHECK: arith.minsi %{{.*}}, %[[LAST2]] : index
// CHECK: %[[K2:.*]] = arith.maxsi
// CHECK: %[[C128:.*]] = arith.constant 128 : index
// CHECK: %[[PN2:.*]] = arith.divui %[[N2]], %[[C128]] : index
// CHECK: %[[CN2:.*]] = arith.remui %[[N2]], %[[C128]] : index
// CHECK: %[[C2:.*]] = arith.constant 2 : index
// CHECK: %[[R2:.*]] = arith.divui %[[K2]], %[[C2]] : index
// CHECK: %[[G2:.*]] = arith.remui %[[K2]], %[[C2]] : index
// CHECK: tensor.extract %[[Q]][%[[PN2]], %[[R2]], %[[CN2]], %[[G2]]] : tensor<2x32x128x2xbf16>
func.func @gather_panels(%p: tensor<4x64x64xf32>, %q: tensor<2x32x128x2xbf16>, %ids: tensor<3xi64>) -> (tensor<3x64xf32>, tensor<3x256xbf16>) {
  %t = kiln.unpack_panels %p columns = 200 transposed : (tensor<4x64x64xf32>) -> tensor<200x64xf32>
  %0 = kiln.gather %t[%ids] axis = 0 : (tensor<200x64xf32>, tensor<3xi64>) -> tensor<3x64xf32>
  %u = kiln.unpack_panels %q columns = 256 : (tensor<2x32x128x2xbf16>) -> tensor<64x256xbf16>
  %1 = kiln.gather %u[%ids] axis = 0 : (tensor<64x256xbf16>, tensor<3xi64>) -> tensor<3x256xbf16>
  return %0, %1 : tensor<3x64xf32>, tensor<3x256xbf16>
}

// -----

// Transposed pairs: the [N, K] transpose of a bf16 matrix in pairs; a
// gather of its row n, column k reads [n / 128, k / 2, n mod 128, k mod 2].
// CHECK-LABEL: func.func @gather_pairs_transposed(
// CHECK-SAME: %[[Q:[a-z0-9]+]]: tensor<2x32x128x2xbf16>
// CHECK: linalg.unpack %{{.*}} outer_dims_perm = [1, 0] inner_dims_pos = [1, 0] inner_tiles = [128, 2] into %{{.*}} : tensor<2x32x128x2xbf16> -> tensor<64x256xbf16>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<64x256xbf16>) outs(%{{.*}} : tensor<256x64xbf16>) permutation = [1, 0]
// CHECK: %[[LAST:.*]] = arith.constant 255 : index
// CHECK: linalg.generic
// CHECK: %[[K:.*]] = linalg.index 1 : index
// CHECK: arith.minsi %{{.*}}, %[[LAST]] : index
// CHECK: %[[N:.*]] = arith.maxsi
// CHECK: %[[C128:.*]] = arith.constant 128 : index
// CHECK: %[[P:.*]] = arith.divui %[[N]], %[[C128]] : index
// CHECK: %[[C:.*]] = arith.remui %[[N]], %[[C128]] : index
// CHECK: %[[C2:.*]] = arith.constant 2 : index
// CHECK: %[[R:.*]] = arith.divui %[[K]], %[[C2]] : index
// CHECK: %[[G:.*]] = arith.remui %[[K]], %[[C2]] : index
// CHECK: tensor.extract %[[Q]][%[[P]], %[[R]], %[[C]], %[[G]]] : tensor<2x32x128x2xbf16>
func.func @gather_pairs_transposed(%q: tensor<2x32x128x2xbf16>, %ids: tensor<3xi64>) -> tensor<3x64xbf16> {
  %t = kiln.unpack_panels %q columns = 256 transposed : (tensor<2x32x128x2xbf16>) -> tensor<256x64xbf16>
  %0 = kiln.gather %t[%ids] axis = 0 : (tensor<256x64xbf16>, tensor<3xi64>) -> tensor<3x64xbf16>
  return %0 : tensor<3x64xbf16>
}
