// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// One case per verifier and shape-inference message. Ops whose result type
// is inferred report the reason and then "failed to infer returned types" at
// the same place. Generic forms are used where the custom syntax would infer
// the result type, so the verifier, not the parser, rejects the op.

func.func @add_broadcast(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) {
  // expected-error @+2 {{shapes 2x3 and 4x3 do not broadcast: dimension 0 is 2 vs 4}}
  // expected-error @+1 {{'kiln.add' op failed to infer returned types}}
  %0 = "kiln.add"(%a, %b) : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @add_element_type(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) {
  // expected-error @+2 {{expected operands of one element type, found 'f32' and 'f16'}}
  // expected-error @+1 {{'kiln.add' op failed to infer returned types}}
  %0 = "kiln.add"(%a, %b) : (tensor<2x3xf32>, tensor<2x3xf16>) -> tensor<2x3xf32>
  return
}

// -----

func.func @add_result_shape(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{'kiln.add' op inferred type(s) 'tensor<2x3xf32>' are incompatible with return type(s) of operation 'tensor<3x3xf32>'}}
  // expected-error @+1 {{'kiln.add' op failed to infer returned types}}
  %0 = "kiln.add"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x3xf32>
  return
}

// -----

func.func @add_result_refines_dynamic(%a: tensor<?x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{'kiln.add' op inferred type(s) 'tensor<?x3xf32>' are incompatible with return type(s) of operation 'tensor<2x4xf32>'}}
  // expected-error @+1 {{'kiln.add' op failed to infer returned types}}
  %0 = "kiln.add"(%a, %b) : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @sub_rank_broadcast(%a: tensor<2x3x5xf32>, %b: tensor<4x1xf32>) {
  // expected-error @+2 {{shapes 2x3x5 and 4x1 do not broadcast: dimension 1 is 3 vs 4}}
  // expected-error @+1 {{'kiln.sub' op failed to infer returned types}}
  %0 = kiln.sub %a, %b : (tensor<2x3x5xf32>, tensor<4x1xf32>) -> tensor<2x3x5xf32>
  return
}

// -----

// Unary elementwise ops: the Elementwise trait rejects a different shape.
func.func @exp_result_type(%a: tensor<2xf32>) {
  // expected-error @+1 {{'kiln.exp' op all non-scalar operands/results must have the same shape and base type}}
  %0 = "kiln.exp"(%a) : (tensor<2xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @compare_broadcast(%a: tensor<8xi64>, %b: tensor<4xi64>) {
  // expected-error @+2 {{shapes 8 and 4 do not broadcast: dimension 0 is 8 vs 4}}
  // expected-error @+1 {{'kiln.compare' op failed to infer returned types}}
  %0 = "kiln.compare"(%a, %b) {predicate = 2 : i32} : (tensor<8xi64>, tensor<4xi64>) -> tensor<8xi1>
  return
}

// -----

func.func @compare_element_type(%a: tensor<8xi64>, %b: tensor<8xi32>) {
  // expected-error @+2 {{expected operands of one element type, found 'i64' and 'i32'}}
  // expected-error @+1 {{'kiln.compare' op failed to infer returned types}}
  %0 = "kiln.compare"(%a, %b) {predicate = 2 : i32} : (tensor<8xi64>, tensor<8xi32>) -> tensor<8xi1>
  return
}

// -----

func.func @select_broadcast(%c: tensor<3x8xi1>, %a: tensor<2x8xf32>, %b: tensor<f32>) {
  // expected-error @+2 {{shapes 3x8 and 2x8 do not broadcast: dimension 0 is 3 vs 2}}
  // expected-error @+1 {{'kiln.select' op failed to infer returned types}}
  %0 = "kiln.select"(%c, %a, %b) : (tensor<3x8xi1>, tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @select_element_type(%c: tensor<8xi1>, %a: tensor<8xf32>, %b: tensor<f16>) {
  // expected-error @+2 {{expected operands of one element type, found 'f32' and 'f16'}}
  // expected-error @+1 {{'kiln.select' op failed to infer returned types}}
  %0 = "kiln.select"(%c, %a, %b) : (tensor<8xi1>, tensor<8xf32>, tensor<f16>) -> tensor<8xf32>
  return
}

// -----

// The Elementwise trait checks shapes before CastOp::verify runs.
func.func @cast_shape(%a: tensor<2x8xi64>) {
  // expected-error @+1 {{'kiln.cast' op all non-scalar operands/results must have the same shape and base type}}
  %0 = kiln.cast %a : tensor<2x8xi64> -> tensor<8x2xf32>
  return
}

// -----

func.func @matmul_rank(%a: tensor<8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+2 {{expected operands of rank >= 2, found 1 and 2}}
  // expected-error @+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = "kiln.matmul"(%a, %b) : (tensor<8xf32>, tensor<8x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @matmul_element_type(%a: tensor<2x8xf32>, %b: tensor<8x4xf16>) {
  // expected-error @+2 {{expected rhs to have element type 'f32', found 'f16'}}
  // expected-error @+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = "kiln.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<8x4xf16>) -> tensor<2x4xf32>
  return
}

// -----

func.func @matmul_k(%a: tensor<2x8xf32>, %b: tensor<7x4xf32>) {
  // expected-error @+2 {{contraction dimensions differ: lhs 2x8 has K = 8, rhs 7x4 has K = 7}}
  // expected-error @+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = "kiln.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<7x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @matmul_k_transposed(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+2 {{contraction dimensions differ: lhs 2x8 has K = 8, rhs 8x4 (transposed) has K = 4}}
  // expected-error @+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = "kiln.matmul"(%a, %b) {transpose_rhs} : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<3x2x8xf32>, %b: tensor<5x8x4xf32>) {
  // expected-error @+2 {{shapes 3 and 5 do not broadcast: dimension 0 is 3 vs 5}}
  // expected-error @+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = "kiln.matmul"(%a, %b) : (tensor<3x2x8xf32>, tensor<5x8x4xf32>) -> tensor<3x2x4xf32>
  return
}

// -----

func.func @matmul_result(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+2 {{'kiln.matmul' op inferred type(s) 'tensor<2x4xf32>' are incompatible with return type(s) of operation 'tensor<4x2xf32>'}}
  // expected-error @+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = "kiln.matmul"(%a, %b) : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<4x2xf32>
  return
}

// -----

func.func @reduce_axis_range(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{axis 2 is out of range for rank 2}}
  // expected-error @+1 {{'kiln.reduce' op failed to infer returned types}}
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64: 2>} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @reduce_axis_negative(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{axis -1 is out of range for rank 2}}
  // expected-error @+1 {{'kiln.reduce' op failed to infer returned types}}
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64: -1>} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @reduce_axis_twice(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{axis 1 is listed twice}}
  // expected-error @+1 {{'kiln.reduce' op failed to infer returned types}}
  %0 = "kiln.reduce"(%a) {kind = 1 : i32, axes = array<i64: 1, 1>} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @reduce_no_axes(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{expected at least one axis to reduce}}
  // expected-error @+1 {{'kiln.reduce' op failed to infer returned types}}
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64>} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @reduce_keepdim_result(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{'kiln.reduce' op inferred type(s) 'tensor<2x1xf32>' are incompatible with return type(s) of operation 'tensor<2xf32>'}}
  // expected-error @+1 {{'kiln.reduce' op failed to infer returned types}}
  %0 = "kiln.reduce"(%a) {kind = 0 : i32, axes = array<i64: 1>, keepdim} : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}

// -----

// expected-error @+1 {{'kiln.parameter' op 'std' only applies to 'normal' init, found init 'zeros'}}
kiln.parameter @p : tensor<4xf32> init zeros std = 1.000000e-01

// -----

// expected-error @+1 {{'kiln.parameter' op 'range' only applies to 'uniform' init, found init 'normal'}}
kiln.parameter @p : tensor<4xf32> init normal std = 1.000000e-01 range(0.000000e+00, 1.000000e+00)

// -----

// expected-error @+1 {{'kiln.parameter' op 'normal' init needs 'std = <value>'}}
kiln.parameter @p : tensor<4xf32> init normal

// -----

// expected-error @+1 {{'kiln.parameter' op expected std >= 0, found -1.000000e+00}}
kiln.parameter @p : tensor<4xf32> init normal std = -1.000000e+00

// -----

// expected-error @+1 {{'kiln.parameter' op 'uniform' init needs 'range(<low>, <high>)'}}
kiln.parameter @p : tensor<4xf32> init uniform

// -----

// expected-error @+1 {{'kiln.parameter' op 'uniform' init needs 'range(<low>, <high>)'}}
"kiln.parameter"() <{init = 3 : i32, sym_name = "p", type = tensor<4xf32>, low = 0.0 : f64}> : () -> ()

// -----

// expected-error @+1 {{'kiln.parameter' op expected low <= high in range, found (1.000000e+00, 0.000000e+00)}}
kiln.parameter @p : tensor<4xf32> init uniform range(1.000000e+00, 0.000000e+00)

// -----

// expected-error @+1 {{'kiln.parameter' op expected a static shape, found 'tensor<?x4xf32>'}}
kiln.parameter @p : tensor<?x4xf32> init zeros

// -----

// The Symbol trait rejects a parameter outside a symbol table before
// ParameterOp::verify's module-level check can.
func.func @param_in_func() {
  // expected-error @+1 {{'kiln.parameter' op symbol's parent must have the SymbolTable trait}}
  kiln.parameter @p : tensor<4xf32> init zeros
  return
}

// -----

func.func @read_unknown() {
  // expected-error @+1 {{'kiln.read_param' op refers to 'missing', which is not a kiln.parameter in this module}}
  %0 = kiln.read_param @missing : tensor<4xf32>
  return
}

// -----

// A symbol that exists but is not a kiln.parameter.
func.func @read_not_param() {
  // expected-error @+1 {{'kiln.read_param' op refers to 'read_not_param', which is not a kiln.parameter in this module}}
  %0 = kiln.read_param @read_not_param : tensor<4xf32>
  return
}

// -----

kiln.parameter @p : tensor<4xf32> init zeros
func.func @read_type() {
  // expected-error @+1 {{'kiln.read_param' op result type 'tensor<4xf16>' does not match parameter 'p' of type 'tensor<4xf32>'}}
  %0 = kiln.read_param @p : tensor<4xf16>
  return
}

// -----

kiln.parameter @q : tensor<4x!quant.uniform<i8:f32, 1.000000e-01>> init zeros
func.func @read_quant_type() {
  // expected-error @+1 {{'kiln.read_param' op result type 'tensor<4x!quant.uniform<i8:f32, 2.000000e-01>>' does not match parameter 'q' of type 'tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>'}}
  %0 = kiln.read_param @q : tensor<4x!quant.uniform<i8:f32, 2.000000e-01>>
  return
}

// -----

func.func @iota_sizes(%n: index) {
  // expected-error @+1 {{'kiln.iota' op expected 1 dynamic size operand(s), one per '?' in 'tensor<?xi64>', found 0}}
  %0 = kiln.iota () dim = 0 : tensor<?xi64>
  return
}

// -----

func.func @iota_extra_sizes(%n: index) {
  // expected-error @+1 {{'kiln.iota' op expected 0 dynamic size operand(s), one per '?' in 'tensor<4xi64>', found 1}}
  %0 = kiln.iota (%n) dim = 0 : tensor<4xi64>
  return
}

// -----

func.func @iota_dim() {
  // expected-error @+1 {{'kiln.iota' op dim 2 is out of range for rank 2}}
  %0 = kiln.iota () dim = 2 : tensor<4x4xi64>
  return
}

// -----

// The dim is reported signed (it used to print as 2^64 - 1).
func.func @iota_dim_negative() {
  // expected-error @+1 {{'kiln.iota' op dim -1 is out of range for rank 2}}
  %0 = kiln.iota () dim = -1 : tensor<4x4xi64>
  return
}

// -----

func.func @causal_mask_sizes(%n: index) {
  // expected-error @+1 {{'kiln.causal_mask' op expected 2 dynamic size operand(s), one per '?' in 'tensor<?x?xi1>', found 1}}
  %0 = kiln.causal_mask (%n) : tensor<?x?xi1>
  return
}

// -----

func.func @random_uniform_sizes(%seed: tensor<i64>, %n: index) {
  // expected-error @+1 {{'kiln.random_uniform' op expected 1 dynamic size operand(s), one per '?' in 'tensor<?x8xf32>', found 2}}
  %0 = kiln.random_uniform %seed (%n, %n) : (tensor<i64>) -> tensor<?x8xf32>
  return
}

// -----

func.func @padding_mask_rank(%m: tensor<2x3x4xi64>) {
  // expected-error @+1 {{'kiln.padding_mask' op expected a [batch, seq] mask, found rank 3}}
  %0 = kiln.padding_mask %m : tensor<2x3x4xi64> -> tensor<2x1x1x4xf32>
  return
}

// -----

func.func @padding_mask_shape(%m: tensor<2x16xi64>) {
  // expected-error @+1 {{'kiln.padding_mask' op expected result shape 2x1x1x16, found 2x1x16x1}}
  %0 = kiln.padding_mask %m : tensor<2x16xi64> -> tensor<2x1x16x1xf32>
  return
}

// -----

func.func @padding_mask_result_rank(%m: tensor<2x16xi64>) {
  // expected-error @+1 {{'kiln.padding_mask' op expected result shape 2x1x1x16, found 2x16}}
  %0 = kiln.padding_mask %m : tensor<2x16xi64> -> tensor<2x16xf32>
  return
}

// -----

func.func @reshape_element_type(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{'kiln.reshape' op expected the result element type 'f32', found 'f16'}}
  %0 = kiln.reshape %a : tensor<2x3xf32> -> tensor<6xf16>
  return
}

// -----

func.func @reshape_dynamic(%a: tensor<?x3xf32>) {
  // expected-error @+1 {{'kiln.reshape' op expected as many dynamic dims in the result as in the input (1), found 2}}
  %0 = kiln.reshape %a : tensor<?x3xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{'kiln.reshape' op element count differs: 2x3 has 6 static elements, 7 has 7}}
  %0 = kiln.reshape %a : tensor<2x3xf32> -> tensor<7xf32>
  return
}

// -----

func.func @transpose_size(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected a permutation of 2 dims, found 3}}
  // expected-error @+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = "kiln.transpose"(%a) {permutation = array<i64: 0, 1, 2>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @transpose_repeat(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected a permutation of [0, 2), found [1, 1]}}
  // expected-error @+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = "kiln.transpose"(%a) {permutation = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<3x3xf32>
  return
}

// -----

func.func @transpose_range(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected a permutation of [0, 2), found [0, 2]}}
  // expected-error @+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = "kiln.transpose"(%a) {permutation = array<i64: 0, 2>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @transpose_result(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{'kiln.transpose' op inferred type(s) 'tensor<3x2xf32>' are incompatible with return type(s) of operation 'tensor<2x3xf32>'}}
  // expected-error @+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = "kiln.transpose"(%a) {permutation = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @slice_axis(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{axis 2 is out of range for rank 2}}
  // expected-error @+1 {{'kiln.slice' op failed to infer returned types}}
  %0 = "kiln.slice"(%a) {axis = 2 : i64, start = 0 : i64, end = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @slice_step(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected step >= 1, found 0}}
  // expected-error @+1 {{'kiln.slice' op failed to infer returned types}}
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 0 : i64, end = 1 : i64, step = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  return
}

// -----

func.func @slice_start_end(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected 0 <= start <= end, found [2 : 1]}}
  // expected-error @+1 {{'kiln.slice' op failed to infer returned types}}
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 2 : i64, end = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x0xf32>
  return
}

// -----

func.func @slice_end(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{slice end 4 is past the end of axis 1 of size 3}}
  // expected-error @+1 {{'kiln.slice' op failed to infer returned types}}
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 0 : i64, end = 4 : i64} : (tensor<2x3xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @slice_result(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{'kiln.slice' op inferred type(s) 'tensor<2x4xf32>' are incompatible with return type(s) of operation 'tensor<2x3xf32>'}}
  // expected-error @+1 {{'kiln.slice' op failed to infer returned types}}
  %0 = "kiln.slice"(%a) {axis = 1 : i64, start = 1 : i64, end = 8 : i64, step = 2 : i64} : (tensor<2x8xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @concat_empty() {
  // expected-error @+2 {{expected at least one input}}
  // expected-error @+1 {{'kiln.concat' op failed to infer returned types}}
  %0 = "kiln.concat"() {axis = 0 : i64} : () -> tensor<2xf32>
  return
}

// -----

func.func @concat_axis(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{axis 2 is out of range for rank 2}}
  // expected-error @+1 {{'kiln.concat' op failed to infer returned types}}
  %0 = "kiln.concat"(%a, %a) {axis = 2 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @concat_rank(%a: tensor<2x3xf32>, %b: tensor<2x3x1xf32>) {
  // expected-error @+2 {{input 1 is 'tensor<2x3x1xf32>', expected rank 2 and element type 'f32'}}
  // expected-error @+1 {{'kiln.concat' op failed to infer returned types}}
  %0 = "kiln.concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3x1xf32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @concat_element_type(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) {
  // expected-error @+2 {{input 1 is 'tensor<2x3xf16>', expected rank 2 and element type 'f32'}}
  // expected-error @+1 {{'kiln.concat' op failed to infer returned types}}
  %0 = "kiln.concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf16>) -> tensor<4x3xf32>
  return
}

// -----

func.func @concat_dim(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+2 {{input 1 has dimension 1 of size 4, expected 3}}
  // expected-error @+1 {{'kiln.concat' op failed to infer returned types}}
  %0 = "kiln.concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  return
}

// -----

func.func @concat_result(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>) {
  // expected-error @+2 {{'kiln.concat' op inferred type(s) 'tensor<2x8xf32>' are incompatible with return type(s) of operation 'tensor<2x9xf32>'}}
  // expected-error @+1 {{'kiln.concat' op failed to infer returned types}}
  %0 = "kiln.concat"(%a, %b) {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x9xf32>
  return
}

// -----

func.func @pad_count(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected 2 low and high paddings, found 1 and 2}}
  // expected-error @+1 {{'kiln.pad' op failed to infer returned types}}
  %0 = "kiln.pad"(%a) {low = array<i64: 1>, high = array<i64: 1, 1>, value = 0.0 : f64} : (tensor<2x3xf32>) -> tensor<4x5xf32>
  return
}

// -----

func.func @pad_negative(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{expected non-negative padding, found -1 and 1 on dimension 1}}
  // expected-error @+1 {{'kiln.pad' op failed to infer returned types}}
  %0 = "kiln.pad"(%a) {low = array<i64: 0, -1>, high = array<i64: 0, 1>, value = 0.0 : f64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @broadcast_to_sizes(%a: tensor<1x8xf32>) {
  // expected-error @+1 {{'kiln.broadcast_to' op expected 1 dynamic size operand(s), one per '?' in 'tensor<?x8xf32>', found 0}}
  %0 = kiln.broadcast_to %a () : tensor<1x8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @broadcast_to_element_type(%a: tensor<1x8xf32>) {
  // expected-error @+1 {{'kiln.broadcast_to' op expected the result element type 'f32', found 'f16'}}
  %0 = kiln.broadcast_to %a () : tensor<1x8xf32> -> tensor<4x8xf16>
  return
}

// -----

func.func @broadcast_to_rank(%a: tensor<2x1x8xf32>) {
  // expected-error @+1 {{'kiln.broadcast_to' op cannot broadcast rank 3 to lower rank 2}}
  %0 = kiln.broadcast_to %a () : tensor<2x1x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @broadcast_to_dim(%a: tensor<3x8xf32>) {
  // expected-error @+1 {{'kiln.broadcast_to' op cannot broadcast 3x8 to 4x8: input dimension 0 is 3, expected 1 or 4}}
  %0 = kiln.broadcast_to %a () : tensor<3x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @broadcast_to_dynamic_input(%a: tensor<?x8xf32>) {
  // expected-error @+1 {{'kiln.broadcast_to' op cannot broadcast ?x8 to 4x8: input dimension 0 is ?, expected 1 or 4}}
  %0 = kiln.broadcast_to %a () : tensor<?x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @gather_axis(%t: tensor<10x4xf32>, %i: tensor<3xi64>) {
  // expected-error @+2 {{axis 2 is out of range for rank 2}}
  // expected-error @+1 {{'kiln.gather' op failed to infer returned types}}
  %0 = "kiln.gather"(%t, %i) {axis = 2 : i64} : (tensor<10x4xf32>, tensor<3xi64>) -> tensor<3x4xf32>
  return
}

// -----

func.func @gather_result(%t: tensor<10x4xf32>, %i: tensor<3xi64>) {
  // expected-error @+2 {{'kiln.gather' op inferred type(s) 'tensor<3x4xf32>' are incompatible with return type(s) of operation 'tensor<10x4xf32>'}}
  // expected-error @+1 {{'kiln.gather' op failed to infer returned types}}
  %0 = "kiln.gather"(%t, %i) {axis = 0 : i64} : (tensor<10x4xf32>, tensor<3xi64>) -> tensor<10x4xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{axis 2 is out of range for rank 2 (expected -2 <= axis < 2)}}
  // expected-error @+1 {{'kiln.softmax' op failed to infer returned types}}
  %0 = "kiln.softmax"(%a) {axis = 2 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @log_softmax_axis(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{axis -3 is out of range for rank 2 (expected -2 <= axis < 2)}}
  // expected-error @+1 {{'kiln.log_softmax' op failed to infer returned types}}
  %0 = "kiln.log_softmax"(%a) {axis = -3 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @layer_norm_rank(%a: tensor<f32>) {
  // expected-error @+2 {{expected an input of rank >= 1}}
  // expected-error @+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = "kiln.layer_norm"(%a) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<f32>) -> tensor<f32>
  return
}

// -----

func.func @layer_norm_weight(%a: tensor<2x8xf32>, %w: tensor<4xf32>) {
  // expected-error @+2 {{expected weight of shape [8], found [4]}}
  // expected-error @+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = "kiln.layer_norm"(%a, %w) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @layer_norm_bias(%a: tensor<2x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{expected bias of shape [8], found [4]}}
  // expected-error @+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = "kiln.layer_norm"(%a, %b) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @layer_norm_element_type(%a: tensor<2x8xf32>, %w: tensor<8xf16>) {
  // expected-error @+2 {{expected weight and bias to have element type 'f32', found 'f16'}}
  // expected-error @+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = "kiln.layer_norm"(%a, %w) {eps = 1.0e-05 : f64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x8xf32>, tensor<8xf16>) -> tensor<2x8xf32>
  return
}

// -----

func.func @rms_norm_weight(%a: tensor<2x8xf32>, %w: tensor<16xf32>) {
  // expected-error @+2 {{expected weight of shape [8], found [16]}}
  // expected-error @+1 {{'kiln.rms_norm' op failed to infer returned types}}
  %0 = "kiln.rms_norm"(%a, %w) {eps = 1.0e-06 : f64} : (tensor<2x8xf32>, tensor<16xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @linear_rank(%a: tensor<f32>, %w: tensor<4x8xf32>) {
  // expected-error @+2 {{expected an input of rank >= 1}}
  // expected-error @+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = "kiln.linear"(%a, %w) : (tensor<f32>, tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @linear_element_type(%a: tensor<2x8xf32>, %w: tensor<4x8xbf16>) {
  // expected-error @+2 {{expected weight to have element type 'f32', found 'bf16'}}
  // expected-error @+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = "kiln.linear"(%a, %w) : (tensor<2x8xf32>, tensor<4x8xbf16>) -> tensor<2x4xf32>
  return
}

// -----

func.func @linear_features(%a: tensor<2x8xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+2 {{input features 8 do not match weight 8x4 ([out, in]) which expects 4}}
  // expected-error @+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = "kiln.linear"(%a, %w) : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @linear_features_in_out(%a: tensor<2x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+2 {{input features 8 do not match weight 4x8 ([in, out]) which expects 4}}
  // expected-error @+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = "kiln.linear"(%a, %w) {weight_in_out} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @linear_bias(%a: tensor<2x8xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+2 {{expected bias of shape [4], found [8]}}
  // expected-error @+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = "kiln.linear"(%a, %w, %b) : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @embedding_result(%t: tensor<10x4xf32>, %i: tensor<3xi64>) {
  // expected-error @+2 {{'kiln.embedding' op inferred type(s) 'tensor<3x4xf32>' are incompatible with return type(s) of operation 'tensor<3x10xf32>'}}
  // expected-error @+1 {{'kiln.embedding' op failed to infer returned types}}
  %0 = "kiln.embedding"(%t, %i) : (tensor<10x4xf32>, tensor<3xi64>) -> tensor<3x10xf32>
  return
}

// -----

func.func @attention_key_type(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf16>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+2 {{expected key to have element type 'f32', found 'f16'}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf16>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_value_type(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xbf16>) {
  // expected-error @+2 {{expected value to have element type 'f32', found 'bf16'}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xbf16>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_key_batch(%q: tensor<1x2x4x8xf32>, %k: tensor<3x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+2 {{expected key batch to be 1, found 3}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x2x4x8xf32>, tensor<3x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_value_batch(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<3x2x4x8xf32>) {
  // expected-error @+2 {{expected value batch to be 1, found 3}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<3x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+2 {{expected key head dim to be 8, found 16}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_value_heads(%q: tensor<1x4x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x4x4x8xf32>) {
  // expected-error @+2 {{expected value heads to be 2, found 4}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x4x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  return
}

// -----

func.func @attention_value_length(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x5x8xf32>) {
  // expected-error @+2 {{expected value length to be 4, found 5}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_gqa(%q: tensor<1x6x4x8xf32>, %k: tensor<1x4x4x8xf32>, %v: tensor<1x4x4x8xf32>) {
  // expected-error @+2 {{query heads (6) must be a multiple of key/value heads (4)}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<1x6x4x8xf32>, tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x6x4x8xf32>
  return
}

// -----

// One message for a mask that does not broadcast (not also the generic
// broadcast message).
func.func @attention_mask(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x6x8xf32>, %v: tensor<1x2x6x8xf32>, %m: tensor<4x4xf32>) {
  // expected-error @+2 {{mask 4x4 does not broadcast to the scores 1x2x4x6}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v, %m) <{operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>, tensor<4x4xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_mask_rank(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %m: tensor<1x1x1x4x4xf32>) {
  // expected-error @+2 {{mask 1x1x1x4x4 does not broadcast to the scores 1x2x4x4}}
  // expected-error @+1 {{'kiln.attention' op failed to infer returned types}}
  %0 = "kiln.attention"(%q, %k, %v, %m) <{operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>}> : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x1x1x4x4xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @attention_rank(%q: tensor<2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+1 {{'kiln.attention' op operand #0 must be 4D tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<2x4x8xf32>'}}
  %0 = "kiln.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}> : (tensor<2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @rope_odd(%x: tensor<1x2x4x7xf32>) {
  // expected-error @+2 {{expected an even head dim, found 7}}
  // expected-error @+1 {{'kiln.rope' op failed to infer returned types}}
  %0 = "kiln.rope"(%x) {theta = 1.0e+04 : f64} : (tensor<1x2x4x7xf32>) -> tensor<1x2x4x7xf32>
  return
}

// -----

func.func @rope_dynamic_dim(%x: tensor<1x2x4x?xf32>) {
  // expected-error @+2 {{expected a static head dim}}
  // expected-error @+1 {{'kiln.rope' op failed to infer returned types}}
  %0 = "kiln.rope"(%x) {theta = 1.0e+04 : f64} : (tensor<1x2x4x?xf32>) -> tensor<1x2x4x?xf32>
  return
}

// -----

func.func @rope_positions(%x: tensor<2x2x4x8xf32>, %p: tensor<5xi64>) {
  // expected-error @+2 {{expected positions of shape [4] or [2, 4], found [5]}}
  // expected-error @+1 {{'kiln.rope' op failed to infer returned types}}
  %0 = "kiln.rope"(%x, %p) {theta = 1.0e+04 : f64} : (tensor<2x2x4x8xf32>, tensor<5xi64>) -> tensor<2x2x4x8xf32>
  return
}

// -----

func.func @rope_inv_freq_count(%x: tensor<2x2x4x8xf32>) {
  // expected-error @+2 {{expected 4 inv_freq values (head dim / 2), found 3}}
  // expected-error @+1 {{'kiln.rope' op failed to infer returned types}}
  %0 = kiln.rope %x theta = 1.0e+04 inv_freq = [1.0, 0.5, 0.25] : (tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return
}

// -----

func.func @rope_inv_freq_negative(%x: tensor<2x2x4x4xf32>) {
  // expected-error @+2 {{expected positive finite inv_freq values, found -1.0}}
  // expected-error @+1 {{'kiln.rope' op failed to infer returned types}}
  %0 = kiln.rope %x theta = 1.0e+04 inv_freq = [1.0, -1.0] : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  return
}

// -----

func.func @rope_positions_batch(%x: tensor<2x2x4x8xf32>, %p: tensor<3x4xi64>) {
  // expected-error @+2 {{expected positions of shape [4] or [2, 4], found [3, 4]}}
  // expected-error @+1 {{'kiln.rope' op failed to infer returned types}}
  %0 = "kiln.rope"(%x, %p) {theta = 1.0e+04 : f64} : (tensor<2x2x4x8xf32>, tensor<3x4xi64>) -> tensor<2x2x4x8xf32>
  return
}

// -----

func.func @conv2d_stride_count(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+2 {{expected 2 values for stride, found 1}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_stride_zero(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+2 {{expected stride >= 1, found 0}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 0, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_padding_negative(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+2 {{expected padding >= 0, found -1}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: -1, 0>, dilation = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_dilation(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+2 {{expected dilation >= 1, found 0}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_element_type(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf16>) {
  // expected-error @+2 {{expected weight to have element type 'f32', found 'f16'}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf16>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_dynamic(%x: tensor<1x?x8x8xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+2 {{expected static channel and spatial dims and a static weight, found input 'tensor<1x?x8x8xf32>' and weight 'tensor<4x3x3x3xf32>'}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x?x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_groups(%x: tensor<1x4x8x8xf32>, %w: tensor<6x2x3x3xf32>) {
  // expected-error @+2 {{groups 3 must divide input channels 4 and output channels 6}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 3 : i64} : (tensor<1x4x8x8xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x6x6xf32>
  return
}

// -----

func.func @conv2d_groups_zero(%x: tensor<1x4x8x8xf32>, %w: tensor<6x2x3x3xf32>) {
  // expected-error @+2 {{groups 0 must divide input channels 4 and output channels 6}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 0 : i64} : (tensor<1x4x8x8xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x6x6xf32>
  return
}

// -----

func.func @conv2d_weight_channels(%x: tensor<1x4x8x8xf32>, %w: tensor<6x4x3x3xf32>) {
  // expected-error @+2 {{expected weight dimension 1 to be 2 (channels / groups), found 4}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<6x4x3x3xf32>) -> tensor<1x6x6x6xf32>
  return
}

// -----

func.func @conv2d_bias(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{expected bias of shape [4], found [3]}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_kernel_fit(%x: tensor<1x3x2x8xf32>, %w: tensor<4x3x3x3xf32>) {
  // expected-error @+2 {{the kernel does not fit: spatial dimension 0 would have size 0}}
  // expected-error @+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = "kiln.conv2d"(%x, %w) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x3x2x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x1x6xf32>
  return
}

// -----

func.func @max_pool_kernel(%x: tensor<1x3x8x8xf32>) {
  // expected-error @+2 {{expected 2 values for kernel, found 3}}
  // expected-error @+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = "kiln.max_pool2d"(%x) {kernel = array<i64: 2, 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
  return
}

// -----

func.func @max_pool_dynamic(%x: tensor<1x3x?x8xf32>) {
  // expected-error @+2 {{expected static spatial dims, found 'tensor<1x3x?x8xf32>'}}
  // expected-error @+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = "kiln.max_pool2d"(%x) {kernel = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>} : (tensor<1x3x?x8xf32>) -> tensor<1x3x?x7xf32>
  return
}

// -----

func.func @avg_pool_padding(%x: tensor<1x3x8x8xf32>) {
  // expected-error @+2 {{padding 2 must be at most half the kernel 2}}
  // expected-error @+1 {{'kiln.avg_pool2d' op failed to infer returned types}}
  %0 = "kiln.avg_pool2d"(%x) {kernel = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 2, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x11x7xf32>
  return
}

// -----

func.func @avg_pool_stride(%x: tensor<1x3x8x8xf32>) {
  // expected-error @+2 {{expected stride >= 1, found 0}}
  // expected-error @+1 {{'kiln.avg_pool2d' op failed to infer returned types}}
  %0 = "kiln.avg_pool2d"(%x) {kernel = array<i64: 2, 2>, stride = array<i64: 1, 0>, padding = array<i64: 0, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
  return
}

// -----

func.func @max_pool_fit(%x: tensor<1x3x2x8xf32>) {
  // expected-error @+2 {{the window does not fit: spatial dimension 0 would have size 0}}
  // expected-error @+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = "kiln.max_pool2d"(%x) {kernel = array<i64: 3, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>} : (tensor<1x3x2x8xf32>) -> tensor<1x3x1x7xf32>
  return
}

// -----

func.func @gru_hidden_dynamic(%x: tensor<2x4xf32>, %h: tensor<2x?xf32>, %wi: tensor<24x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected a static hidden size}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x?xf32>, tensor<24x4xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<2x?xf32>
  return
}

// -----

func.func @gru_batch(%x: tensor<2x4xf32>, %h: tensor<3x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected hidden batch to be 2, found 3}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<3x8xf32>, tensor<24x4xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<3x8xf32>
  return
}

// -----

func.func @gru_w_ih_rows(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<32x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected w_ih rows (3H) to be 24, found 32}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<32x4xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gru_w_ih_cols(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x5xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected w_ih columns (input size) to be 4, found 5}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<24x5xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gru_w_hh_rows(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<16x8xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected w_hh rows (3H) to be 24, found 16}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<24x4xf32>, tensor<16x8xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gru_w_hh_cols(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<24x4xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected w_hh columns (hidden size) to be 8, found 4}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<24x4xf32>, tensor<24x4xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gru_b_ih(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>, %bad: tensor<8xf32>) {
  // expected-error @+2 {{expected b_ih of shape [24], found [8]}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %bad, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<24x4xf32>, tensor<24x8xf32>, tensor<8xf32>, tensor<24xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gru_b_hh(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>, %bad: tensor<32xf32>) {
  // expected-error @+2 {{expected b_hh of shape [24], found [32]}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %bad) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<24x4xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<32xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @gru_element_type(%x: tensor<2x4xf32>, %h: tensor<2x8xf16>, %wi: tensor<24x4xf32>, %wh: tensor<24x8xf32>, %b: tensor<24xf32>) {
  // expected-error @+2 {{expected every operand to have element type 'f32', found 'f16'}}
  // expected-error @+1 {{'kiln.gru_cell' op failed to infer returned types}}
  %0 = "kiln.gru_cell"(%x, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf16>, tensor<24x4xf32>, tensor<24x8xf32>, tensor<24xf32>, tensor<24xf32>) -> tensor<2x8xf16>
  return
}

// -----

func.func @lstm_w_ih_rows(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %wi: tensor<24x4xf32>, %wh: tensor<32x8xf32>, %b: tensor<32xf32>) {
  // expected-error @+2 {{expected w_ih rows (4H) to be 32, found 24}}
  // expected-error @+1 {{'kiln.lstm_cell' op failed to infer returned types}}
  %0:2 = "kiln.lstm_cell"(%x, %h, %h, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<24x4xf32>, tensor<32x8xf32>, tensor<32xf32>, tensor<32xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @lstm_cell_state(%x: tensor<2x4xf32>, %h: tensor<2x8xf32>, %c: tensor<2x16xf32>, %wi: tensor<32x4xf32>, %wh: tensor<32x8xf32>, %b: tensor<32xf32>) {
  // expected-error @+2 {{expected cell state of type 'tensor<2x8xf32>', found 'tensor<2x16xf32>'}}
  // expected-error @+1 {{'kiln.lstm_cell' op failed to infer returned types}}
  %0:2 = "kiln.lstm_cell"(%x, %h, %c, %wi, %wh, %b, %b) : (tensor<2x4xf32>, tensor<2x8xf32>, tensor<2x16xf32>, tensor<32x4xf32>, tensor<32x8xf32>, tensor<32xf32>, tensor<32xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
  return
}

// -----

func.func @dropout_p(%x: tensor<4xf32>, %s: tensor<i64>) {
  // expected-error @+2 {{expected 0 <= p < 1, found 1.000000e+00}}
  // expected-error @+1 {{'kiln.dropout' op failed to infer returned types}}
  %0 = "kiln.dropout"(%x, %s) {p = 1.0 : f64} : (tensor<4xf32>, tensor<i64>) -> tensor<4xf32>
  return
}

// -----

func.func @dropout_p_negative(%x: tensor<4xf32>, %s: tensor<i64>) {
  // expected-error @+2 {{expected 0 <= p < 1, found -5.000000e-01}}
  // expected-error @+1 {{'kiln.dropout' op failed to infer returned types}}
  %0 = "kiln.dropout"(%x, %s) {p = -0.5 : f64} : (tensor<4xf32>, tensor<i64>) -> tensor<4xf32>
  return
}

// -----

func.func @dropout_seed(%x: tensor<4xf32>, %s: tensor<1xi64>) {
  // expected-error @+1 {{'kiln.dropout' op operand #1 must be 0D tensor of 64-bit signless integer values, but got 'tensor<1xi64>'}}
  %0 = "kiln.dropout"(%x, %s) {p = 0.5 : f64} : (tensor<4xf32>, tensor<1xi64>) -> tensor<4xf32>
  return
}

// -----

func.func @cross_entropy_rank(%l: tensor<4x10xf32>, %t: tensor<4x10xi64>) {
  // expected-error @+2 {{expected target of rank 1 for logits 4x10, found 4x10}}
  // expected-error @+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = "kiln.cross_entropy"(%l, %t) : (tensor<4x10xf32>, tensor<4x10xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_dim(%l: tensor<4x10xf32>, %t: tensor<5xi64>) {
  // expected-error @+2 {{expected target dimension 0 to be 4, found 5}}
  // expected-error @+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = "kiln.cross_entropy"(%l, %t) : (tensor<4x10xf32>, tensor<5xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_batchmean(%l: tensor<4x10xf32>, %t: tensor<4xi64>) {
  // expected-error @+2 {{reduction 'batchmean' is only for kl_div}}
  // expected-error @+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = "kiln.cross_entropy"(%l, %t) {reduction = 3 : i32} : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_none_result(%l: tensor<4x10xf32>, %t: tensor<4xi64>) {
  // expected-error @+2 {{'kiln.cross_entropy' op inferred type(s) 'tensor<4xf32>' are incompatible with return type(s) of operation 'tensor<f32>'}}
  // expected-error @+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = "kiln.cross_entropy"(%l, %t) {reduction = 2 : i32} : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<f32>
  return
}

// -----

func.func @mse_shape(%a: tensor<8x1xf32>, %b: tensor<8xf32>) {
  // expected-error @+2 {{expected target of type 'tensor<8x1xf32>', found 'tensor<8xf32>'}}
  // expected-error @+1 {{'kiln.mse' op failed to infer returned types}}
  %0 = "kiln.mse"(%a, %b) : (tensor<8x1xf32>, tensor<8xf32>) -> tensor<f32>
  return
}

// -----

func.func @mse_element_type(%a: tensor<8xf32>, %b: tensor<8xf16>) {
  // expected-error @+2 {{expected target of type 'tensor<8xf32>', found 'tensor<8xf16>'}}
  // expected-error @+1 {{'kiln.mse' op failed to infer returned types}}
  %0 = "kiln.mse"(%a, %b) : (tensor<8xf32>, tensor<8xf16>) -> tensor<f32>
  return
}

// -----

func.func @mse_batchmean(%a: tensor<8xf32>) {
  // expected-error @+2 {{reduction 'batchmean' is only for kl_div}}
  // expected-error @+1 {{'kiln.mse' op failed to infer returned types}}
  %0 = "kiln.mse"(%a, %a) {reduction = 3 : i32} : (tensor<8xf32>, tensor<8xf32>) -> tensor<f32>
  return
}

// -----

func.func @kl_div_type(%a: tensor<8x4xf32>, %b: tensor<8x4xbf16>) {
  // expected-error @+2 {{expected target of type 'tensor<8x4xf32>', found 'tensor<8x4xbf16>'}}
  // expected-error @+1 {{'kiln.kl_div' op failed to infer returned types}}
  %0 = "kiln.kl_div"(%a, %b) : (tensor<8x4xf32>, tensor<8x4xbf16>) -> tensor<f32>
  return
}

// -----

func.func @kl_div_batchmean_scalar(%a: tensor<f32>) {
  // expected-error @+2 {{'batchmean' needs an input of rank >= 1}}
  // expected-error @+1 {{'kiln.kl_div' op failed to infer returned types}}
  %0 = "kiln.kl_div"(%a, %a) {reduction = 3 : i32} : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return
}

// -----

func.func @write_unknown(%v: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.write_param' op refers to 'missing', which is not a kiln.parameter in this module}}
  kiln.write_param @missing, %v : tensor<4xf32>
  return
}

// -----

kiln.parameter @p : tensor<4xf32> init zeros
func.func @write_type(%v: tensor<2x2xf32>) {
  // expected-error @+1 {{'kiln.write_param' op value type 'tensor<2x2xf32>' does not match parameter 'p' of type 'tensor<4xf32>'}}
  kiln.write_param @p, %v : tensor<2x2xf32>
  return
}

// -----

func.func @store_not_parameter_argument(%v: tensor<4xf32>, %d: tensor<4xf32>) {
  // expected-error @+1 {{'kiln.store_param' op expected the destination to be a function argument with a 'kiln.parameter' or 'kiln.in_place' attribute}}
  kiln.store_param %v to %d : tensor<4xf32>
  return
}

// -----

func.func @scatter_add_shape(%t: tensor<10x4xf32>, %ids: tensor<3xi64>, %u: tensor<3x5xf32>) {
  // expected-error @+2 {{expected updates of shape 'tensor<3x4xf32>' (input dims around the axis, indices dims at it), found 'tensor<3x5xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.scatter_add %t[%ids], %u axis = 0 : (tensor<10x4xf32>, tensor<3xi64>, tensor<3x5xf32>) -> tensor<10x4xf32>
  return
}

// -----

func.func @scatter_add_axis(%t: tensor<10x4xf32>, %ids: tensor<3xi64>, %u: tensor<3x4xf32>) {
  // expected-error @+2 {{axis 2 is out of range for rank 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.scatter_add %t[%ids], %u axis = 2 : (tensor<10x4xf32>, tensor<3xi64>, tensor<3x4xf32>) -> tensor<10x4xf32>
  return
}

// -----

func.func @dequantize_bits(%q: tensor<4x8xi8>, %s: tensor<4x1xf32>) {
  // expected-error @+2 {{bits must be 4 or 8, found 2}}
  // expected-error @+1 {{'kiln.dequantize' op failed to infer returned types}}
  %0 = "kiln.dequantize"(%q, %s) {bits = 2 : i64} : (tensor<4x8xi8>, tensor<4x1xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @dequantize_e4m3_zero_point(%q: tensor<4x8xf8E4M3FN>, %s: tensor<1x1xf32>, %z: tensor<1x1xi8>) {
  // expected-error @+2 {{e4m3 codes take neither bits = 4, a zero point nor unsigned}}
  // expected-error @+1 {{'kiln.dequantize' op failed to infer returned types}}
  %0 = "kiln.dequantize"(%q, %s, %z) : (tensor<4x8xf8E4M3FN>, tensor<1x1xf32>, tensor<1x1xi8>) -> tensor<4x8xf32>
  return
}

// -----

func.func @quantize_e4m3_unsigned(%x: tensor<4x8xf32>, %s: tensor<1x1xf32>) {
  // expected-error @+1 {{'kiln.quantize' op e4m3 codes take neither a zero point nor unsigned}}
  %0 = kiln.quantize %x, %s unsigned e4m3 : (tensor<4x8xf32>, tensor<1x1xf32>) -> tensor<4x8xf8E4M3FN>
  return
}

// -----

func.func @scaled_fp8_matmul_k(%x: tensor<4x32xf8E4M3FN>, %w: tensor<16x48xf8E4M3FN>, %s: tensor<1xf32>) {
  // expected-error @+2 {{contraction dimensions differ: lhs 4x32 has K = 32, rhs 16x48 (transposed) has K = 48}}
  // expected-error @+1 {{'kiln.scaled_fp8_matmul' op failed to infer returned types}}
  %0 = kiln.scaled_fp8_matmul %x, %w scales %s, %s transpose_rhs : (tensor<4x32xf8E4M3FN>, tensor<16x48xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @scaled_fp8_matmul_scale(%x: tensor<4x32xf8E4M3FN>, %w: tensor<16x32xf8E4M3FN>, %s: tensor<1xf32>, %t: tensor<16xf32>) {
  // expected-error @+2 {{expected per-tensor scales of one element, found 'tensor<16xf32>'}}
  // expected-error @+1 {{'kiln.scaled_fp8_matmul' op failed to infer returned types}}
  %0 = kiln.scaled_fp8_matmul %x, %w scales %s, %t transpose_rhs : (tensor<4x32xf8E4M3FN>, tensor<16x32xf8E4M3FN>, tensor<1xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @scaled_fp8_matmul_dynamic_scale(%x: tensor<4x32xf8E4M3FN>, %w: tensor<16x32xf8E4M3FN>, %s: tensor<1xf32>, %t: tensor<?xf32>) {
  // The kernel reads element 0: a dynamic scale (possibly empty) is refused.
  // expected-error @+2 {{expected per-tensor scales of one element, found 'tensor<?xf32>'}}
  // expected-error @+1 {{'kiln.scaled_fp8_matmul' op failed to infer returned types}}
  %0 = kiln.scaled_fp8_matmul %x, %w scales %t, %s transpose_rhs : (tensor<4x32xf8E4M3FN>, tensor<16x32xf8E4M3FN>, tensor<?xf32>, tensor<1xf32>) -> tensor<4x16xf32>
  return
}

// -----

func.func @dequantize_group_divides(%q: tensor<4x96xi8>, %s: tensor<4x5xf32>) {
  // expected-error @+2 {{scale dim 1 (5) must be 1, the value's size (96) or a static divisor of it}}
  // expected-error @+1 {{'kiln.dequantize' op failed to infer returned types}}
  %0 = "kiln.dequantize"(%q, %s) : (tensor<4x96xi8>, tensor<4x5xf32>) -> tensor<4x96xf32>
  return
}

// -----

func.func @dequantize_scale_rank(%q: tensor<4x8xi8>, %s: tensor<4xf32>) {
  // expected-error @+2 {{expected a scale of rank 2 (one block size per dim), found 'tensor<4xf32>'}}
  // expected-error @+1 {{'kiln.dequantize' op failed to infer returned types}}
  %0 = "kiln.dequantize"(%q, %s) : (tensor<4x8xi8>, tensor<4xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @dequantize_odd_4bit_block(%q: tensor<4x6xi8>, %s: tensor<4x4xf32>) {
  // expected-error @+2 {{4-bit codes pack two per byte along the last dim, so its blocks must be even, found 3}}
  // expected-error @+1 {{'kiln.dequantize' op failed to infer returned types}}
  %0 = "kiln.dequantize"(%q, %s) {bits = 4 : i64} : (tensor<4x6xi8>, tensor<4x4xf32>) -> tensor<4x12xf32>
  return
}

// -----

func.func @dequantize_4bit_shape(%q: tensor<4x6xi8>, %s: tensor<4x1xf32>) {
  // expected-error @+2 {{'kiln.dequantize' op inferred type(s) 'tensor<4x12xf32>' are incompatible with return type(s) of operation 'tensor<4x6xf32>'}}
  // expected-error @+1 {{'kiln.dequantize' op failed to infer returned types}}
  %0 = "kiln.dequantize"(%q, %s) {bits = 4 : i64} : (tensor<4x6xi8>, tensor<4x1xf32>) -> tensor<4x6xf32>
  return
}

// -----

func.func @dequantize_zero_point_shape(%q: tensor<4x8xi8>, %s: tensor<4x1xf32>, %z: tensor<4x2xi8>) {
  // expected-error @+1 {{'kiln.dequantize' op expected a zero point of the scale's shape 4x1, found 4x2}}
  %0 = kiln.dequantize %q, %s zero_point %z unsigned : (tensor<4x8xi8>, tensor<4x1xf32>, tensor<4x2xi8>) -> tensor<4x8xf32>
  return
}

// -----

func.func @quantize_scale_type(%x: tensor<4x8xf32>, %s: tensor<4x1xf16>) {
  // expected-error @+2 {{expected scale to have element type 'f32', found 'f16'}}
  // expected-error @+1 {{'kiln.quantize' op failed to infer returned types}}
  %0 = "kiln.quantize"(%x, %s) : (tensor<4x8xf32>, tensor<4x1xf16>) -> tensor<4x8xi8>
  return
}

// -----

func.func @integer_matmul_k(%x: tensor<4x8xi8>, %w: tensor<16x6xi8>) {
  // expected-error @+2 {{contraction dimensions differ: lhs 4x8 has K = 8, rhs 16x6 (transposed) has K = 6}}
  // expected-error @+1 {{'kiln.integer_matmul' op failed to infer returned types}}
  %0 = kiln.integer_matmul %x, %w transpose_rhs : (tensor<4x8xi8>, tensor<16x6xi8>) -> tensor<4x16xi32>
  return
}

// -----

func.func @integer_matmul_rank(%x: tensor<8xi8>, %w: tensor<8x16xi8>) {
  // expected-error @+2 {{expected an lhs of rank >= 2, found 1}}
  // expected-error @+1 {{'kiln.integer_matmul' op failed to infer returned types}}
  %0 = "kiln.integer_matmul"(%x, %w) : (tensor<8xi8>, tensor<8x16xi8>) -> tensor<16xi32>
  return
}

// -----

func.func @integer_matmul_overflow(%x: tensor<1x262144xi8>, %w: tensor<262144x2xi8>) {
  // expected-error @+2 {{K = 262144 could overflow the 32-bit sums (at most 2^17)}}
  // expected-error @+1 {{'kiln.integer_matmul' op failed to infer returned types}}
  %0 = kiln.integer_matmul %x, %w : (tensor<1x262144xi8>, tensor<262144x2xi8>) -> tensor<1x2xi32>
  return
}

// -----

func.func @integer_matmul_float(%x: tensor<4x8xf32>, %w: tensor<8x16xi8>) {
  // expected-error @+1 {{'kiln.integer_matmul' op operand #0 must be ranked tensor of 8-bit signless integer values}}
  %0 = "kiln.integer_matmul"(%x, %w) : (tensor<4x8xf32>, tensor<8x16xi8>) -> tensor<4x16xi32>
  return
}


// -----

func.func @cache_write_width(%cache: tensor<2x4x16x8xf32>, %k: tensor<2x4x1x4xf32>) {
  // expected-error @+2 {{update 'tensor<2x4x1x4xf32>' does not fit the cache 'tensor<2x4x16x8xf32>' (expected the same batch, heads and width)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.cache_write %cache, %k : (tensor<2x4x16x8xf32>, tensor<2x4x1x4xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @cache_write_too_long(%cache: tensor<2x4x16x8xf32>, %k: tensor<2x4x17x8xf32>) {
  // expected-error @+2 {{update 'tensor<2x4x17x8xf32>' has more slots than the cache 'tensor<2x4x16x8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.cache_write %cache, %k : (tensor<2x4x16x8xf32>, tensor<2x4x17x8xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @cache_write_positions(%cache: tensor<2x4x16x8xf32>, %pos: tensor<3xi64>, %k: tensor<2x4x1x8xf32>) {
  // expected-error @+2 {{positions 'tensor<3xi64>' must have one entry per batch row of the cache 'tensor<2x4x16x8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.cache_write %cache[%pos], %k : (tensor<2x4x16x8xf32>, tensor<3xi64>, tensor<2x4x1x8xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @attention_key_lengths(%q: tensor<2x4x1x8xf32>, %k: tensor<2x4x16x8xf32>, %len: tensor<3xi64>) {
  // expected-error @+2 {{key_lengths 'tensor<3xi64>' must have one entry per batch row of the query 'tensor<2x4x1x8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %k, %k key_lengths %len : (tensor<2x4x1x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<3xi64>) -> tensor<2x4x1x8xf32>
  return
}

// -----

func.func @expand_2of4_shapes(%f: tensor<4x8xf32>, %s: tensor<4x8xf32>, %p: tensor<4x7xi8>) {
  // expected-error @+2 {{first, second and positions must have one shape, found 'tensor<4x8xf32>', 'tensor<4x8xf32>' and 'tensor<4x7xi8>'}}
  // expected-error @+1 {{'kiln.expand_2of4' op failed to infer returned types}}
  %0 = kiln.expand_2of4 %f, %s positions %p : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x7xi8>) -> tensor<4x32xf32>
  return
}

// -----

func.func @expand_2of4_result(%f: tensor<4x8xf32>, %s: tensor<4x8xf32>, %p: tensor<4x8xi8>) {
  // expected-error @+2 {{'kiln.expand_2of4' op inferred type(s) 'tensor<4x32xf32>' are incompatible with return type(s) of operation 'tensor<4x16xf32>'}}
  // expected-error @+1 {{'kiln.expand_2of4' op failed to infer returned types}}
  %0 = kiln.expand_2of4 %f, %s positions %p : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xi8>) -> tensor<4x16xf32>
  return
}

// -----

func.func @expand_csr_offsets(%o: tensor<4xi32>, %i: tensor<10xi16>, %v: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.expand_csr' op expected 5 offsets (rows + 1), found 4}}
  %0 = kiln.expand_csr %o, %i, %v : (tensor<4xi32>, tensor<10xi16>, tensor<10xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @expand_csr_entries(%o: tensor<5xi32>, %i: tensor<9xi16>, %v: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.expand_csr' op expected one index per value, found 9 indices and 10 values}}
  %0 = kiln.expand_csr %o, %i, %v : (tensor<5xi32>, tensor<9xi16>, tensor<10xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @expand_csr_columns(%o: tensor<5xi32>, %i: tensor<10xi16>, %v: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.expand_csr' op i16 indices address at most 65536 columns, not 70000}}
  %0 = kiln.expand_csr %o, %i, %v : (tensor<5xi32>, tensor<10xi16>, tensor<10xf32>) -> tensor<4x70000xf32>
  return
}

// -----

func.func @expand_csr_dynamic(%o: tensor<5xi32>, %i: tensor<10xi16>, %v: tensor<10xf32>) {
  // expected-error @+1 {{'kiln.expand_csr' op expected a static 2-D result, found 'tensor<?x8xf32>'}}
  %0 = kiln.expand_csr %o, %i, %v : (tensor<5xi32>, tensor<10xi16>, tensor<10xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @unpack_panels_count(%p: tensor<3x8x4xf32>) {
  // expected-error @+2 {{13 columns in panels of 4 take 4 panels, found 3}}
  // expected-error @+1 {{'kiln.unpack_panels' op failed to infer returned types}}
  %0 = "kiln.unpack_panels"(%p) {columns = 13 : i64} : (tensor<3x8x4xf32>) -> tensor<8x13xf32>
  return
}

// -----

func.func @unpack_panels_rank(%p: tensor<8x4xf32>) {
  // expected-error @+2 {{expected static [panels, rows, width] or [panels, rows / g, width, g] panels, found 'tensor<8x4xf32>'}}
  // expected-error @+1 {{'kiln.unpack_panels' op failed to infer returned types}}
  %0 = "kiln.unpack_panels"(%p) {columns = 4 : i64} : (tensor<8x4xf32>) -> tensor<8x4xf32>
  return
}

// -----

func.func @unpack_panels_type(%p: tensor<1x8x4x2xf32>) {
  // Pairs: [1, 8, 4, 2] holds 16 rows, not 8.
  // expected-error @+2 {{'kiln.unpack_panels' op inferred type(s) 'tensor<16x3xf32>' are incompatible with return type(s) of operation 'tensor<8x3xf32>'}}
  // expected-error @+1 {{'kiln.unpack_panels' op failed to infer returned types}}
  %0 = "kiln.unpack_panels"(%p) {columns = 3 : i64} : (tensor<1x8x4x2xf32>) -> tensor<8x3xf32>
  return
}

// -----

func.func @unpack_panels_transposed_type(%p: tensor<2x8x4xf32>) {
  // Transposed: the [8, 6] matrix is [6, 8].
  // expected-error @+2 {{'kiln.unpack_panels' op inferred type(s) 'tensor<6x8xf32>' are incompatible with return type(s) of operation 'tensor<8x6xf32>'}}
  // expected-error @+1 {{'kiln.unpack_panels' op failed to infer returned types}}
  %0 = kiln.unpack_panels %p columns = 6 transposed : (tensor<2x8x4xf32>) -> tensor<8x6xf32>
  return
}
