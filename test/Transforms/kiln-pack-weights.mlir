// RUN: kiln-opt %s --split-input-file --kiln-pack-weights="panel-width=64 pair-panel-width=128" | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-pack-weights="panel-width=32" | FileCheck %s --check-prefix=NOPAIRS
// RUN: not kiln-opt %s --split-input-file --kiln-pack-weights="panel-width=0" 2>&1 | FileCheck %s --check-prefix=WIDTH
// RUN: kiln-opt %s --split-input-file --kiln-pack-weights="panel-width=64 dot-product-rows=8" | FileCheck %s --check-prefix=FEW
// RUN: kiln-opt %s --split-input-file --kiln-pack-weights="panel-width=64 dot-product-rows=7" | FileCheck %s --check-prefix=MANY
// at-load marks the layout for the runtime to pack (the weights file keeps
// the checkpoint's layout); the IR is the same.
// RUN: kiln-opt %s --split-input-file --kiln-pack-weights="panel-width=64 at-load=true" | FileCheck %s --check-prefix=ATLOAD
// ATLOAD: kiln.parameter @w : tensor<4x64x64xf32> init normal std = 2.000000e-02 trainable {kiln.packed_from = {at_load = true, in_out = true, pairs = 1 : i64, shape = array<i64: 64, 200>, width = 64 : i64}}

// WIDTH: kiln-pack-weights: panel-width must be positive and pair-panel-width not negative (got 0, 0)

// An [in, out] f32 weight (GPT-2's Conv1D) becomes 200 / 64 -> 4 panels of
// its 64 rows, the last padded, its read unpacked back to [in, out]; an
// [out, in] f32 one (torch.nn.Linear) too, its linear then taking the
// unpacked [in, out] weight_in_out; with dot-product-rows=8 it stays, as
// its linear takes 1 x 8 rows (a decoding step's dot products read its
// rows), but not with dot-product-rows=7.
// CHECK-LABEL: module
// CHECK: kiln.parameter @w : tensor<4x64x64xf32> init normal std = 2.000000e-02 trainable {kiln.packed_from = {in_out = true, pairs = 1 : i64, shape = array<i64: 64, 200>, width = 64 : i64}}
// CHECK: kiln.parameter @v : tensor<2x200x64xf32> init zeros {kiln.packed_from = {in_out = false, pairs = 1 : i64, shape = array<i64: 100, 200>, width = 64 : i64}}
// CHECK: %[[W:.+]] = kiln.read_param @w : tensor<4x64x64xf32>
// CHECK: %[[WU:.+]] = kiln.unpack_panels %[[W]] columns = 200 : (tensor<4x64x64xf32>) -> tensor<64x200xf32>
// CHECK: %[[Y:.+]] = kiln.linear %{{.*}}, %[[WU]] weight_in_out
// CHECK: %[[V:.+]] = kiln.read_param @v : tensor<2x200x64xf32>
// CHECK: %[[VU:.+]] = kiln.unpack_panels %[[V]] columns = 100 : (tensor<2x200x64xf32>) -> tensor<200x100xf32>
// CHECK: kiln.linear %[[Y]], %[[VU]] weight_in_out : (tensor<1x8x200xf32>, tensor<200x100xf32>) -> tensor<1x8x100xf32>
// FEW-LABEL: module
// FEW: kiln.parameter @w : tensor<4x64x64xf32>
// FEW: kiln.parameter @v : tensor<100x200xf32> init zeros{{$}}
// FEW: %[[V:.+]] = kiln.read_param @v : tensor<100x200xf32>
// FEW: kiln.linear %{{.*}}, %[[V]] : (tensor<1x8x200xf32>, tensor<100x200xf32>) -> tensor<1x8x100xf32>
// MANY-LABEL: module
// MANY: kiln.parameter @v : tensor<2x200x64xf32>
// NOPAIRS-LABEL: module
// NOPAIRS: kiln.parameter @w : tensor<7x64x32xf32>
// NOPAIRS: kiln.parameter @v : tensor<4x200x32xf32>
kiln.parameter @w : tensor<64x200xf32> init normal std = 2.0e-02 trainable
kiln.parameter @v : tensor<100x200xf32> init zeros
func.func @forward(%x: tensor<1x8x64xf32>) -> tensor<1x8x100xf32> {
  %w = kiln.read_param @w : tensor<64x200xf32>
  %y = kiln.linear %x, %w weight_in_out : (tensor<1x8x64xf32>, tensor<64x200xf32>) -> tensor<1x8x200xf32>
  %v = kiln.read_param @v : tensor<100x200xf32>
  %z = kiln.linear %y, %v : (tensor<1x8x200xf32>, tensor<100x200xf32>) -> tensor<1x8x100xf32>
  return %z : tensor<1x8x100xf32>
}

// -----

// A module that writes a parameter (a training artifact, which loads
// checkpoints by name and shape) keeps every layout.
// CHECK-LABEL: module
// CHECK: kiln.parameter @w : tensor<64x64xf32>
// CHECK-NOT: unpack_panels
// NOPAIRS-LABEL: module
// NOPAIRS: kiln.parameter @w : tensor<64x64xf32>
kiln.parameter @w : tensor<64x64xf32> init zeros
kiln.parameter @step : tensor<f32> init zeros
func.func @forward(%x: tensor<2x64xf32>) -> tensor<2x64xf32> {
  %w = kiln.read_param @w : tensor<64x64xf32>
  %y = kiln.linear %x, %w : (tensor<2x64xf32>, tensor<64x64xf32>) -> tensor<2x64xf32>
  %s = kiln.read_param @step : tensor<f32>
  kiln.write_param @step, %s : tensor<f32>
  return %y : tensor<2x64xf32>
}

// -----

// A weight read as an embedding's table and by a linear (@tied: the token
// embedding and the LM head) is packed: the linear reads it unpacked, the
// embedding through the transposed unpacking, the [100, 64] table. Left as
// they are: one the compiler fills itself (@codes: any kiln.* attribute),
// one read through a cast (@cast), and layouts that differ between linears
// (@both). bf16 weights become pairs with pair-panel-width (@b: [2, 64 / 2,
// 128, 2]) when their input dim is a multiple of 32 (@b48 is not), and stay
// as they are without it.
// CHECK-LABEL: module
// CHECK: kiln.parameter @tied : tensor<2x64x64xf32> init zeros {kiln.packed_from = {in_out = false, pairs = 1 : i64, shape = array<i64: 100, 64>, width = 64 : i64}}
// CHECK: kiln.parameter @codes : tensor<64x64xf32> init zeros {kiln.pruned
// CHECK: kiln.parameter @cast : tensor<64x64xf32>
// CHECK: kiln.parameter @both : tensor<64x64xf32>
// CHECK: kiln.parameter @b : tensor<2x32x128x2xbf16> init zeros {kiln.packed_from = {in_out = true, pairs = 2 : i64, shape = array<i64: 64, 200>, width = 128 : i64}}
// CHECK: kiln.parameter @b48 : tensor<48x64xbf16>
// CHECK: kiln.parameter @bo : tensor<1x32x128x2xbf16> init zeros {kiln.packed_from = {in_out = false, pairs = 2 : i64, shape = array<i64: 100, 64>, width = 128 : i64}}
// CHECK: %[[T:.+]] = kiln.read_param @tied : tensor<2x64x64xf32>
// CHECK-DAG: %[[TU:.+]] = kiln.unpack_panels %[[T]] columns = 100 : (tensor<2x64x64xf32>) -> tensor<64x100xf32>
// CHECK-DAG: %[[TT:.+]] = kiln.unpack_panels %[[T]] columns = 100 transposed : (tensor<2x64x64xf32>) -> tensor<100x64xf32>
// CHECK: kiln.embedding %[[TT]], %{{.*}} : (tensor<100x64xf32>, tensor<2xi64>) -> tensor<2x64xf32>
// CHECK: kiln.linear %{{.*}}, %[[TU]] weight_in_out : (tensor<2x64xf32>, tensor<64x100xf32>) -> tensor<2x100xf32>
// CHECK: %[[B:.+]] = kiln.read_param @b : tensor<2x32x128x2xbf16>
// CHECK: kiln.unpack_panels %[[B]] columns = 200 : (tensor<2x32x128x2xbf16>) -> tensor<64x200xbf16>
// CHECK: %[[BO:.+]] = kiln.read_param @bo : tensor<1x32x128x2xbf16>
// CHECK: %[[BOU:.+]] = kiln.unpack_panels %[[BO]] columns = 100 : (tensor<1x32x128x2xbf16>) -> tensor<64x100xbf16>
// CHECK: kiln.linear %{{.*}}, %[[BOU]] weight_in_out : (tensor<2x64xbf16>, tensor<64x100xbf16>) -> tensor<2x100xbf16>
// NOPAIRS-LABEL: module
// NOPAIRS: kiln.parameter @tied : tensor<4x64x32xf32>
// NOPAIRS: kiln.parameter @b : tensor<64x200xbf16>
kiln.parameter @tied : tensor<100x64xf32> init zeros
kiln.parameter @codes : tensor<64x64xf32> init zeros {kiln.pruned = {}}
kiln.parameter @cast : tensor<64x64xf32> init zeros
kiln.parameter @both : tensor<64x64xf32> init zeros
kiln.parameter @b : tensor<64x200xbf16> init zeros
kiln.parameter @b48 : tensor<48x64xbf16> init zeros
kiln.parameter @bo : tensor<100x64xbf16> init zeros
func.func @forward(%ids: tensor<2xi64>, %x: tensor<2x64xf32>, %h: tensor<2x64xbf16>, %g: tensor<2x48xbf16>) -> (tensor<2x64xf32>, tensor<2x100xf32>, tensor<2x64xf32>, tensor<2x64xbf16>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x200xbf16>, tensor<2x64xbf16>, tensor<2x100xbf16>) {
  %t = kiln.read_param @tied : tensor<100x64xf32>
  %e = kiln.embedding %t, %ids : (tensor<100x64xf32>, tensor<2xi64>) -> tensor<2x64xf32>
  %l = kiln.linear %x, %t : (tensor<2x64xf32>, tensor<100x64xf32>) -> tensor<2x100xf32>
  %c = kiln.read_param @codes : tensor<64x64xf32>
  %cy = kiln.linear %x, %c : (tensor<2x64xf32>, tensor<64x64xf32>) -> tensor<2x64xf32>
  %k = kiln.read_param @cast : tensor<64x64xf32>
  %kb = kiln.cast %k : tensor<64x64xf32> -> tensor<64x64xbf16>
  %ky = kiln.linear %h, %kb : (tensor<2x64xbf16>, tensor<64x64xbf16>) -> tensor<2x64xbf16>
  %o = kiln.read_param @both : tensor<64x64xf32>
  %o1 = kiln.linear %x, %o : (tensor<2x64xf32>, tensor<64x64xf32>) -> tensor<2x64xf32>
  %o2 = kiln.linear %x, %o weight_in_out : (tensor<2x64xf32>, tensor<64x64xf32>) -> tensor<2x64xf32>
  %b = kiln.read_param @b : tensor<64x200xbf16>
  %by = kiln.linear %h, %b weight_in_out : (tensor<2x64xbf16>, tensor<64x200xbf16>) -> tensor<2x200xbf16>
  %b48 = kiln.read_param @b48 : tensor<48x64xbf16>
  %gy = kiln.linear %g, %b48 weight_in_out : (tensor<2x48xbf16>, tensor<48x64xbf16>) -> tensor<2x64xbf16>
  %bo = kiln.read_param @bo : tensor<100x64xbf16>
  %boy = kiln.linear %h, %bo : (tensor<2x64xbf16>, tensor<100x64xbf16>) -> tensor<2x100xbf16>
  return %e, %l, %cy, %ky, %o1, %o2, %by, %gy, %boy : tensor<2x64xf32>, tensor<2x100xf32>, tensor<2x64xf32>, tensor<2x64xbf16>, tensor<2x64xf32>, tensor<2x64xf32>, tensor<2x200xbf16>, tensor<2x64xbf16>, tensor<2x100xbf16>
}

// -----

// A store into an input updated in place (a KV cache) writes no
// parameter: the weights are packed, but for [out, in] ones (@v), whose
// rows the decoding step's dot products read.
// CHECK-LABEL: module
// CHECK: kiln.parameter @w : tensor<1x64x64xf32>
// CHECK: kiln.parameter @v : tensor<64x64xf32> init zeros{{$}}
// CHECK: kiln.unpack_panels
// CHECK: kiln.store_param
kiln.parameter @w : tensor<64x64xf32> init zeros
kiln.parameter @v : tensor<64x64xf32> init zeros
func.func @decode(%x: tensor<?x64xf32>, %c: tensor<?x64xf32> {kiln.in_place}) -> tensor<?x64xf32> {
  %w = kiln.read_param @w : tensor<64x64xf32>
  %y = kiln.linear %x, %w weight_in_out : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %v = kiln.read_param @v : tensor<64x64xf32>
  %z = kiln.linear %y, %v : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  kiln.store_param %z to %c : tensor<?x64xf32>
  return %z : tensor<?x64xf32>
}

// -----

// A matmul by a parameter (GPT-2's tied head, h · wteᵀ) is a linear like
// the others, so the table it shares with the token embedding is packed
// (and kept with dot-product-rows=8: the head takes 1 x 4 rows).
// CHECK-LABEL: module
// CHECK: kiln.parameter @wte : tensor<2x64x64xf32> init zeros {kiln.packed_from = {in_out = false, pairs = 1 : i64, shape = array<i64: 100, 64>, width = 64 : i64}}
// CHECK: %[[T:.+]] = kiln.read_param @wte : tensor<2x64x64xf32>
// CHECK-DAG: %[[TU:.+]] = kiln.unpack_panels %[[T]] columns = 100 : (tensor<2x64x64xf32>) -> tensor<64x100xf32>
// CHECK-DAG: %[[TT:.+]] = kiln.unpack_panels %[[T]] columns = 100 transposed : (tensor<2x64x64xf32>) -> tensor<100x64xf32>
// CHECK: %[[E:.+]] = kiln.embedding %[[TT]], %{{.*}} : (tensor<100x64xf32>, tensor<1x4xi64>) -> tensor<1x4x64xf32>
// CHECK-NOT: kiln.matmul
// CHECK: kiln.linear %[[E]], %[[TU]] weight_in_out : (tensor<1x4x64xf32>, tensor<64x100xf32>) -> tensor<1x4x100xf32>
// FEW-LABEL: module
// FEW: kiln.parameter @wte : tensor<100x64xf32>
kiln.parameter @wte : tensor<100x64xf32> init zeros
func.func @forward(%ids: tensor<1x4xi64>) -> tensor<1x4x100xf32> {
  %t = kiln.read_param @wte : tensor<100x64xf32>
  %e = kiln.embedding %t, %ids : (tensor<100x64xf32>, tensor<1x4xi64>) -> tensor<1x4x64xf32>
  %l = kiln.matmul %e, %t transpose_rhs : (tensor<1x4x64xf32>, tensor<100x64xf32>) -> tensor<1x4x100xf32>
  return %l : tensor<1x4x100xf32>
}

// -----

// A tied table read twice, once for the embedding and once for the head:
// each read gets only the unpacking it uses.
// CHECK-LABEL: module
// CHECK: kiln.parameter @split : tensor<2x64x64xf32>
// CHECK: %[[E:.+]] = kiln.read_param @split : tensor<2x64x64xf32>
// CHECK-NEXT: %[[ET:.+]] = kiln.unpack_panels %[[E]] columns = 100 transposed : (tensor<2x64x64xf32>) -> tensor<100x64xf32>
// CHECK-NEXT: kiln.embedding %[[ET]]
// CHECK-NEXT: %[[H:.+]] = kiln.read_param @split : tensor<2x64x64xf32>
// CHECK-NEXT: %[[HU:.+]] = kiln.unpack_panels %[[H]] columns = 100 : (tensor<2x64x64xf32>) -> tensor<64x100xf32>
// CHECK-NEXT: kiln.linear %{{.*}}, %[[HU]] weight_in_out
kiln.parameter @split : tensor<100x64xf32> init zeros
func.func @forward(%ids: tensor<3xi64>, %x: tensor<3x64xf32>) -> (tensor<3x64xf32>, tensor<3x100xf32>) {
  %t = kiln.read_param @split : tensor<100x64xf32>
  %e = kiln.embedding %t, %ids : (tensor<100x64xf32>, tensor<3xi64>) -> tensor<3x64xf32>
  %h = kiln.read_param @split : tensor<100x64xf32>
  %l = kiln.linear %x, %h : (tensor<3x64xf32>, tensor<100x64xf32>) -> tensor<3x100xf32>
  return %e, %l : tensor<3x64xf32>, tensor<3x100xf32>
}

// -----

// The same for an [in, out] table (its linear weight_in_out): the
// embedding's read gets the plain unpacking, and a read with no uses none.
// CHECK-LABEL: module
// CHECK: kiln.parameter @split_io : tensor<2x64x64xf32>
// CHECK: %[[E:.+]] = kiln.read_param @split_io : tensor<2x64x64xf32>
// CHECK-NEXT: %[[EU:.+]] = kiln.unpack_panels %[[E]] columns = 100 : (tensor<2x64x64xf32>) -> tensor<64x100xf32>
// CHECK-NEXT: kiln.embedding %[[EU]]
// CHECK-NEXT: kiln.read_param @split_io : tensor<2x64x64xf32>
// CHECK-NEXT: %[[H:.+]] = kiln.read_param @split_io : tensor<2x64x64xf32>
// CHECK-NEXT: %[[HU:.+]] = kiln.unpack_panels %[[H]] columns = 100 : (tensor<2x64x64xf32>) -> tensor<64x100xf32>
// CHECK-NEXT: kiln.linear %{{.*}}, %[[HU]] weight_in_out
kiln.parameter @split_io : tensor<64x100xf32> init zeros
func.func @forward(%ids: tensor<3xi64>, %x: tensor<3x64xf32>) -> (tensor<3x100xf32>, tensor<3x100xf32>) {
  %t = kiln.read_param @split_io : tensor<64x100xf32>
  %e = kiln.embedding %t, %ids : (tensor<64x100xf32>, tensor<3xi64>) -> tensor<3x100xf32>
  %unused = kiln.read_param @split_io : tensor<64x100xf32>
  %h = kiln.read_param @split_io : tensor<64x100xf32>
  %l = kiln.linear %x, %h weight_in_out : (tensor<3x64xf32>, tensor<64x100xf32>) -> tensor<3x100xf32>
  return %e, %l : tensor<3x100xf32>, tensor<3x100xf32>
}

// -----

// A table whose linear reads it [in, out] (weight_in_out): the embedding
// gathers rows of the unpacked matrix itself.
// CHECK-LABEL: module
// CHECK: kiln.parameter @table : tensor<2x64x64xf32> init zeros {kiln.packed_from = {in_out = true, pairs = 1 : i64, shape = array<i64: 64, 100>, width = 64 : i64}}
// CHECK: %[[T:.+]] = kiln.read_param @table : tensor<2x64x64xf32>
// CHECK: %[[TU:.+]] = kiln.unpack_panels %[[T]] columns = 100 : (tensor<2x64x64xf32>) -> tensor<64x100xf32>
// CHECK-NOT: transposed
// CHECK: kiln.embedding %[[TU]], %{{.*}} : (tensor<64x100xf32>, tensor<3xi64>) -> tensor<3x100xf32>
// CHECK: kiln.linear %{{.*}}, %[[TU]] weight_in_out : (tensor<3x64xf32>, tensor<64x100xf32>) -> tensor<3x100xf32>
kiln.parameter @table : tensor<64x100xf32> init zeros
func.func @forward(%ids: tensor<3xi64>, %x: tensor<3x64xf32>) -> (tensor<3x100xf32>, tensor<3x100xf32>) {
  %t = kiln.read_param @table : tensor<64x100xf32>
  %e = kiln.embedding %t, %ids : (tensor<64x100xf32>, tensor<3xi64>) -> tensor<3x100xf32>
  %l = kiln.linear %x, %t weight_in_out : (tensor<3x64xf32>, tensor<64x100xf32>) -> tensor<3x100xf32>
  return %e, %l : tensor<3x100xf32>, tensor<3x100xf32>
}
