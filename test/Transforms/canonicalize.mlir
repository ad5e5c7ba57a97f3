// RUN: kiln-opt %s --canonicalize --split-input-file | FileCheck %s
// RUN: kiln-opt %s --cse --split-input-file | FileCheck %s --check-prefix=CSE

// Folders and canonicalization patterns of KilnFolds.cpp: every rewrite with
// a positive case and the nearest case that must stay.

// CHECK-LABEL: func.func @add_zero_rhs(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3xf32>
// CHECK-NOT: kiln.add
// CHECK: return %[[X]]
func.func @add_zero_rhs(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %zero = kiln.constant dense<0.000000e+00> : tensor<3xf32>
  %0 = kiln.add %x, %zero : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @add_zero_lhs(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3xi32>
// CHECK-NOT: kiln.add
// CHECK: return %[[X]]
func.func @add_zero_lhs(%x: tensor<2x3xi32>) -> tensor<2x3xi32> {
  %zero = kiln.constant dense<0> : tensor<i32>
  %0 = kiln.add %zero, %x : (tensor<i32>, tensor<2x3xi32>) -> tensor<2x3xi32>
  return %0 : tensor<2x3xi32>
}

// -----

// Adding zero broadcasts %x from [3] to [2, 3]: the shape changes, no fold.
// CHECK-LABEL: func.func @add_zero_broadcasting(
// CHECK: %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<2x3xf32>
// CHECK: %[[SUM:.*]] = kiln.add %{{.*}}, %[[ZERO]] : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK: return %[[SUM]]
func.func @add_zero_broadcasting(%x: tensor<3xf32>) -> tensor<2x3xf32> {
  %zero = kiln.constant dense<0.000000e+00> : tensor<2x3xf32>
  %0 = kiln.add %x, %zero : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// The result refines a `?` of %x: folding would change the value's type.
// CHECK-LABEL: func.func @add_zero_refined_result(
// CHECK: kiln.add
func.func @add_zero_refined_result(%x: tensor<?x3xf32>) -> tensor<2x3xf32> {
  %zero = kiln.constant dense<0.000000e+00> : tensor<3xf32>
  %0 = kiln.add %x, %zero : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @add_nonzero(
// CHECK: %[[SUM:.*]] = kiln.add
// CHECK: return %[[SUM]]
func.func @add_nonzero(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %c = kiln.constant dense<1.000000e+00> : tensor<f32>
  %0 = kiln.add %x, %c : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// A non-splat constant is not an identity even if it holds zeros only in part.
// CHECK-LABEL: func.func @add_non_splat(
// CHECK: kiln.add
func.func @add_non_splat(%x: tensor<2xf32>) -> tensor<2xf32> {
  %c = kiln.constant dense<[0.000000e+00, 1.000000e+00]> : tensor<2xf32>
  %0 = kiln.add %x, %c : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// CHECK-LABEL: func.func @sub_zero(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4xf32>
// CHECK-NOT: kiln.sub
// CHECK: return %[[X]]
func.func @sub_zero(%x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = kiln.constant dense<0.000000e+00> : tensor<f32>
  %0 = kiln.sub %x, %zero : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// 0 - x is -x, not x.
// CHECK-LABEL: func.func @zero_sub(
// CHECK: %[[D:.*]] = kiln.sub
// CHECK: return %[[D]]
func.func @zero_sub(%x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = kiln.constant dense<0.000000e+00> : tensor<f32>
  %0 = kiln.sub %zero, %x : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @mul_one(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4x?xf32>
// CHECK-NOT: kiln.mul
// CHECK: return %[[X]], %[[X]]
func.func @mul_one(%x: tensor<4x?xf32>) -> (tensor<4x?xf32>, tensor<4x?xf32>) {
  %one = kiln.constant dense<1.000000e+00> : tensor<f32>
  %0 = kiln.mul %x, %one : (tensor<4x?xf32>, tensor<f32>) -> tensor<4x?xf32>
  %1 = kiln.mul %one, %x : (tensor<f32>, tensor<4x?xf32>) -> tensor<4x?xf32>
  return %0, %1 : tensor<4x?xf32>, tensor<4x?xf32>
}

// -----

// CHECK-LABEL: func.func @mul_two(
// CHECK: %[[P:.*]] = kiln.mul
// CHECK: return %[[P]]
func.func @mul_two(%x: tensor<4xi64>) -> tensor<4xi64> {
  %two = kiln.constant dense<2> : tensor<i64>
  %0 = kiln.mul %x, %two : (tensor<4xi64>, tensor<i64>) -> tensor<4xi64>
  return %0 : tensor<4xi64>
}

// -----

// x * 0 is not folded (NaN * 0 is NaN).
// CHECK-LABEL: func.func @mul_zero(
// CHECK: kiln.mul
func.func @mul_zero(%x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = kiln.constant dense<0.000000e+00> : tensor<f32>
  %0 = kiln.mul %x, %zero : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @div_one(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4xbf16>
// CHECK-NOT: kiln.div
// CHECK: return %[[X]]
func.func @div_one(%x: tensor<4xbf16>) -> tensor<4xbf16> {
  %one = kiln.constant dense<1.000000e+00> : tensor<4xbf16>
  %0 = kiln.div %x, %one : (tensor<4xbf16>, tensor<4xbf16>) -> tensor<4xbf16>
  return %0 : tensor<4xbf16>
}

// -----

// 1 / x is a reciprocal, not x.
// CHECK-LABEL: func.func @one_div(
// CHECK: %[[Q:.*]] = kiln.div
// CHECK: return %[[Q]]
func.func @one_div(%x: tensor<4xf32>) -> tensor<4xf32> {
  %one = kiln.constant dense<1.000000e+00> : tensor<f32>
  %0 = kiln.div %one, %x : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @neg_neg(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4xf32>
// CHECK-NOT: kiln.neg
// CHECK: return %[[X]]
func.func @neg_neg(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.neg %x : tensor<4xf32>
  %1 = kiln.neg %0 : tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @neg_once(
// CHECK: %[[N:.*]] = kiln.neg
// CHECK: return %[[N]]
func.func @neg_once(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.neg %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// The outer neg refines `?` (generic form): no fold, the types differ.
// CHECK-LABEL: func.func @neg_neg_refined(
// CHECK-COUNT-2: kiln.neg
func.func @neg_neg_refined(%x: tensor<?xf32>) -> tensor<4xf32> {
  %0 = kiln.neg %x : tensor<?xf32>
  %1 = "kiln.neg"(%0) : (tensor<?xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// neg(neg(neg(x))) is neg(x).
// CHECK-LABEL: func.func @neg_three(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4xi32>
// CHECK: %[[N:.*]] = kiln.neg %[[X]] : tensor<4xi32>
// CHECK-NOT: kiln.neg
// CHECK: return %[[N]]
func.func @neg_three(%x: tensor<4xi32>) -> tensor<4xi32> {
  %0 = kiln.neg %x : tensor<4xi32>
  %1 = kiln.neg %0 : tensor<4xi32>
  %2 = kiln.neg %1 : tensor<4xi32>
  return %2 : tensor<4xi32>
}

// -----

// CHECK-LABEL: func.func @cast_same_type(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4xf32>
// CHECK-NOT: kiln.cast
// CHECK: return %[[X]]
func.func @cast_same_type(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.cast %x : tensor<4xf32> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @cast_other_type(
// CHECK: %[[C:.*]] = kiln.cast %{{.*}} : tensor<4xf32> -> tensor<4xbf16>
// CHECK: return %[[C]]
func.func @cast_other_type(%x: tensor<4xf32>) -> tensor<4xbf16> {
  %0 = kiln.cast %x : tensor<4xf32> -> tensor<4xbf16>
  return %0 : tensor<4xbf16>
}

// -----

// A cast that only refines the shape is kept: it changes the type.
// CHECK-LABEL: func.func @cast_refine_shape(
// CHECK: kiln.cast
func.func @cast_refine_shape(%x: tensor<?xf32>) -> tensor<4xf32> {
  %0 = kiln.cast %x : tensor<?xf32> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_same_type(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<?x6xf32>
// CHECK-NOT: kiln.reshape
// CHECK: return %[[X]]
func.func @reshape_same_type(%x: tensor<?x6xf32>) -> tensor<?x6xf32> {
  %0 = kiln.reshape %x : tensor<?x6xf32> -> tensor<?x6xf32>
  return %0 : tensor<?x6xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_chain(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3x4xf32>
// CHECK: %[[R:.*]] = kiln.reshape %[[X]] : tensor<2x3x4xf32> -> tensor<24xf32>
// CHECK-NOT: kiln.reshape
// CHECK: return %[[R]]
func.func @reshape_chain(%x: tensor<2x3x4xf32>) -> tensor<24xf32> {
  %0 = kiln.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %1 = kiln.reshape %0 : tensor<6x4xf32> -> tensor<24xf32>
  return %1 : tensor<24xf32>
}

// -----

// A chain back to the input type folds away entirely.
// CHECK-LABEL: func.func @reshape_round_trip(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<?x128x768xf32>
// CHECK-NOT: kiln.reshape
// CHECK: return %[[X]]
func.func @reshape_round_trip(%x: tensor<?x128x768xf32>) -> tensor<?x128x768xf32> {
  %0 = kiln.reshape %x : tensor<?x128x768xf32> -> tensor<?x128x12x64xf32>
  %1 = kiln.reshape %0 : tensor<?x128x12x64xf32> -> tensor<?x128x768xf32>
  return %1 : tensor<?x128x768xf32>
}

// -----

// The intermediate reshape has another user: it stays, the outer one reads
// %x directly.
// CHECK-LABEL: func.func @reshape_chain_shared(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x6xf32>
// CHECK-DAG: %[[A:.*]] = kiln.reshape %[[X]] : tensor<2x6xf32> -> tensor<3x4xf32>
// CHECK-DAG: %[[B:.*]] = kiln.reshape %[[X]] : tensor<2x6xf32> -> tensor<12xf32>
// CHECK: return %[[A]], %[[B]]
func.func @reshape_chain_shared(%x: tensor<2x6xf32>) -> (tensor<3x4xf32>, tensor<12xf32>) {
  %0 = kiln.reshape %x : tensor<2x6xf32> -> tensor<3x4xf32>
  %1 = kiln.reshape %0 : tensor<3x4xf32> -> tensor<12xf32>
  return %0, %1 : tensor<3x4xf32>, tensor<12xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_splat(
// CHECK: %[[C:.*]] = kiln.constant dense<2.000000e+00> : tensor<3x2xf32>
// CHECK-NOT: kiln.reshape
// CHECK: return %[[C]]
func.func @reshape_splat() -> tensor<3x2xf32> {
  %c = kiln.constant dense<2.000000e+00> : tensor<6xf32>
  %0 = kiln.reshape %c : tensor<6xf32> -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

// CHECK-LABEL: func.func @transpose_identity(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3x4xf32>
// CHECK-NOT: kiln.transpose
// CHECK: return %[[X]]
func.func @transpose_identity(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = kiln.transpose %x permutation = [0, 1, 2] : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

// Swapping two equal dimensions keeps the type but not the value.
// CHECK-LABEL: func.func @transpose_square(
// CHECK: %[[T:.*]] = kiln.transpose %{{.*}} permutation = [1, 0]
// CHECK: return %[[T]]
func.func @transpose_square(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %0 = kiln.transpose %x permutation = [1, 0] : (tensor<4x4xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// -----

// CHECK-LABEL: func.func @transpose_inverse(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3x4xf32>
// CHECK-NOT: kiln.transpose
// CHECK: return %[[X]]
func.func @transpose_inverse(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = kiln.transpose %x permutation = [1, 2, 0] : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %1 = kiln.transpose %0 permutation = [2, 0, 1] : (tensor<3x4x2xf32>) -> tensor<2x3x4xf32>
  return %1 : tensor<2x3x4xf32>
}

// -----

// An identity permutation whose result refines a `?` keeps its op: folding it
// would hand the users a value of another type.
// CHECK-LABEL: func.func @transpose_identity_refined(
// CHECK: %[[T:.*]] = kiln.transpose %{{.*}} permutation = [0, 1] : (tensor<?x3xf32>) -> tensor<2x3xf32>
// CHECK: return %[[T]] : tensor<2x3xf32>
func.func @transpose_identity_refined(%x: tensor<?x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.transpose %x permutation = [0, 1] : (tensor<?x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// Composing to the identity with a refined result leaves one transpose.
// CHECK-LABEL: func.func @transpose_inverse_refined(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<?x3xf32>
// CHECK: %[[T:.*]] = kiln.transpose %[[X]] permutation = [0, 1] : (tensor<?x3xf32>) -> tensor<2x3xf32>
// CHECK-NOT: kiln.transpose
// CHECK: return %[[T]] : tensor<2x3xf32>
func.func @transpose_inverse_refined(%x: tensor<?x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.transpose %x permutation = [1, 0] : (tensor<?x3xf32>) -> tensor<3x?xf32>
  %1 = kiln.transpose %0 permutation = [1, 0] : (tensor<3x?xf32>) -> tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}

// -----

// Result dim i of the pair is x's dim p1[p2[i]]: [1, 2, 0] then [1, 0, 2]
// is [2, 1, 0].
// CHECK-LABEL: func.func @transpose_compose(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3x4xf32>
// CHECK: %[[T:.*]] = kiln.transpose %[[X]] permutation = [2, 1, 0] : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>
// CHECK-NOT: kiln.transpose
// CHECK: return %[[T]]
func.func @transpose_compose(%x: tensor<2x3x4xf32>) -> tensor<4x3x2xf32> {
  %0 = kiln.transpose %x permutation = [1, 2, 0] : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %1 = kiln.transpose %0 permutation = [1, 0, 2] : (tensor<3x4x2xf32>) -> tensor<4x3x2xf32>
  return %1 : tensor<4x3x2xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_splat(
// CHECK: %[[C:.*]] = kiln.constant dense<5.000000e-01> : tensor<4x768xf32>
// CHECK-NOT: kiln.broadcast_to
// CHECK: return %[[C]]
func.func @broadcast_splat() -> tensor<4x768xf32> {
  %c = kiln.constant dense<5.000000e-01> : tensor<768xf32>
  %0 = kiln.broadcast_to %c () : tensor<768xf32> -> tensor<4x768xf32>
  return %0 : tensor<4x768xf32>
}

// -----

// A splat broadcast to a dynamic shape cannot become a constant.
// CHECK-LABEL: func.func @broadcast_splat_dynamic(
// CHECK: %[[B:.*]] = kiln.broadcast_to
// CHECK: return %[[B]]
func.func @broadcast_splat_dynamic(%n: index) -> tensor<?x768xf32> {
  %c = kiln.constant dense<5.000000e-01> : tensor<1x768xf32>
  %0 = kiln.broadcast_to %c (%n) : tensor<1x768xf32> -> tensor<?x768xf32>
  return %0 : tensor<?x768xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_non_splat(
// CHECK: %[[B:.*]] = kiln.broadcast_to
// CHECK: return %[[B]]
func.func @broadcast_non_splat() -> tensor<2x2xf32> {
  %c = kiln.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
  %0 = kiln.broadcast_to %c () : tensor<2xf32> -> tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_same_type(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4x768xf32>
// CHECK-NOT: kiln.broadcast_to
// CHECK: return %[[X]]
func.func @broadcast_same_type(%x: tensor<4x768xf32>) -> tensor<4x768xf32> {
  %0 = kiln.broadcast_to %x () : tensor<4x768xf32> -> tensor<4x768xf32>
  return %0 : tensor<4x768xf32>
}

// -----

// CHECK-LABEL: func.func @broadcast_grows(
// CHECK: %[[B:.*]] = kiln.broadcast_to
// CHECK: return %[[B]]
func.func @broadcast_grows(%x: tensor<1x768xf32>) -> tensor<4x768xf32> {
  %0 = kiln.broadcast_to %x () : tensor<1x768xf32> -> tensor<4x768xf32>
  return %0 : tensor<4x768xf32>
}

// -----

// CHECK-LABEL: func.func @concat_single(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<2x3xf32>
// CHECK-NOT: kiln.concat
// CHECK: return %[[X]]
func.func @concat_single(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.concat %x axis = 1 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @concat_two(
// CHECK: %[[C:.*]] = kiln.concat
// CHECK: return %[[C]]
func.func @concat_two(%x: tensor<2x3xf32>) -> tensor<2x6xf32> {
  %0 = kiln.concat %x, %x axis = 1 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x6xf32>
  return %0 : tensor<2x6xf32>
}

// -----

// A single input whose `?` the result refines keeps the concat.
// CHECK-LABEL: func.func @concat_single_refined(
// CHECK: kiln.concat
func.func @concat_single_refined(%x: tensor<?x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.concat %x axis = 1 : (tensor<?x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// Unused pure ops are erased; constants are deduplicated.
// CHECK-LABEL: func.func @dead_and_duplicate(
// CHECK-SAME: %[[X:[a-z0-9_]+]]: tensor<4xf32>
// CHECK: %[[C:.*]] = kiln.constant dense<3.000000e+00> : tensor<f32>
// CHECK-NOT: kiln.constant
// CHECK: %[[A:.*]] = kiln.mul %[[X]], %[[C]]
// CHECK: %[[B:.*]] = kiln.add %[[A]], %[[C]]
// CHECK-NOT: kiln.exp
// CHECK: return %[[B]]
func.func @dead_and_duplicate(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c1 = kiln.constant dense<3.000000e+00> : tensor<f32>
  %c2 = kiln.constant dense<3.000000e+00> : tensor<f32>
  %dead = kiln.exp %x : tensor<4xf32>
  %0 = kiln.mul %x, %c1 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = kiln.add %0, %c2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// CSE merges identical pure kiln ops and keeps ones that differ in an
// attribute.
// CSE-LABEL: func.func @cse(
// CSE-SAME: %[[X:[a-z0-9_]+]]: tensor<4x8xf32>
// CSE: %[[A:.*]] = kiln.softmax %[[X]] axis = -1
// CSE-NOT: kiln.softmax %[[X]] axis = -1
// CSE: %[[B:.*]] = kiln.softmax %[[X]] axis = 0
// CSE: %[[S:.*]] = kiln.add %[[A]], %[[A]]
// CSE: %[[T:.*]] = kiln.add %[[S]], %[[B]]
// CSE: return %[[T]]
func.func @cse(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = kiln.softmax %x axis = -1 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = kiln.softmax %x axis = -1 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %2 = kiln.softmax %x axis = 0 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %3 = kiln.add %0, %1 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %4 = kiln.add %3, %2 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %4 : tensor<4x8xf32>
}

// -----

// Random numbers are pure functions of the seed, so CSE may merge them.
// CSE-LABEL: func.func @cse_random(
// CSE: %[[R:.*]] = kiln.random_uniform
// CSE-NOT: kiln.random_uniform
// CSE: kiln.add %[[R]], %[[R]]
func.func @cse_random(%seed: tensor<i64>) -> tensor<4xf32> {
  %0 = kiln.random_uniform %seed () : (tensor<i64>) -> tensor<4xf32>
  %1 = kiln.random_uniform %seed () : (tensor<i64>) -> tensor<4xf32>
  %2 = kiln.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}
