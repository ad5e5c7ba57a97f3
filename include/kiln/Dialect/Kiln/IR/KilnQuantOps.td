//===- KilnQuantOps.td - Quantization primitives -------------*- tablegen -*-===//
//
// Conversion between float tensors and integer codes with scales and zero
// points given as tensors: per-tensor, per-channel, per-token and
// group-wise quantization are all one rule, blockwise broadcasting.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_QUANT_OPS_TD
#define KILN_QUANT_OPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"

def Kiln_QuantCodeTensor : RankedTensorOf<[I8]>;
/// Integer codes, or fp8 e4m3 codes (`f8E4M3FN`: torch.float8_e4m3fn's
/// format, finite only, largest 448).
def Kiln_QuantOrFp8CodeTensor : RankedTensorOf<[I8, F8E4M3FN]>;

def Kiln_DequantizeOp : Kiln_InferredOp<"dequantize",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "integer codes to floats: (q - zero_point) · scale";
  let description = [{
    `input` holds `bits`-bit integer codes (8 or 4), signed unless
    `unsigned`. With 4 bits two codes share a byte: element `2k` of the
    last dimension is the low nibble of byte `k`, element `2k+1` the high
    nibble, so `input`'s last dim is half the result's.

    `scale` (and the optional `zero_point`, same shape, integer codes in the
    input's range) has the result's rank; each of its dims is 1, the
    result's size, or a static divisor of it, and covers blocks of
    `size / scale size` consecutive elements. So `[1, 1]` is per tensor,
    `[O, 1]` per output channel, `[T, 1]` per token and `[O, I/128]` groups
    of 128 along the input dim. The result element type is the scale's:
    `result = (q - zero_point) · scale` with `zero_point` 0 when absent.

    `f8E4M3FN` codes are fp8 e4m3 values (no zero point, 8 bits):
    `result = e4m3(q) · scale`.

    ```mlir
    %w = kiln.dequantize %q, %s : (tensor<3072x768xi8>, tensor<3072x1xf32>) -> tensor<3072x768xf32>
    %v = kiln.dequantize %q4, %s zero_point %z bits = 4 unsigned : (tensor<3072x384xi8>, tensor<3072x6xf32>, tensor<3072x6xi8>) -> tensor<3072x768xf32>
    %f = kiln.dequantize %q8, %s1 : (tensor<3072x768xf8E4M3FN>, tensor<1x1xf32>) -> tensor<3072x768xf32>
    ```
  }];
  let arguments = (ins Kiln_QuantOrFp8CodeTensor:$input, Kiln_FloatTensor:$scale,
                       Optional<Kiln_QuantCodeTensor>:$zero_point,
                       DefaultValuedAttr<I64Attr, "8">:$bits,
                       UnitAttr:$unsigned_codes);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $scale (`zero_point` $zero_point^)?
    (`bits` `=` $bits^)? (`unsigned` $unsigned_codes^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The block size along each result dim (result size / scale size).
    ::llvm::SmallVector<int64_t> getBlockSizes();
  }];
}

def Kiln_Expand2of4Op : Kiln_InferredOp<"expand_2of4",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "2:4 sparse values and their positions to a dense tensor";
  let description = [{
    The compressed form of a tensor with at most two nonzeros in every
    group of four consecutive elements of its last dim (2:4 semi-structured
    sparsity): `first` and `second` (`[..., G]`) hold each group's two kept
    values, `positions` (`[..., G]`, i8) where they go: bits 0-1 `first`'s
    position in the group, bits 2-3 `second`'s. The result (`[..., 4G]`)
    has `first` and `second` at their positions and zeros elsewhere; if
    both name one position, `first` wins. kiln-prune stores 2:4 pruned
    weights this way (`--sparse-format compressed`): 9 bytes per group of
    four f32 weights instead of 16, expanded panel by panel in the matmul's
    packing on the CPU.

    ```mlir
    %w = kiln.expand_2of4 %first, %second positions %p : (tensor<3072x192xf32>, tensor<3072x192xf32>, tensor<3072x192xi8>) -> tensor<3072x768xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$first, Kiln_FloatTensor:$second,
                       Kiln_QuantCodeTensor:$positions);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $first `,` $second `positions` $positions attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_ExpandCSROp : Kiln_Op<"expand_csr",
    [Pure, DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "a matrix's nonzeros in compressed sparse rows to a dense matrix";
  let description = [{
    Compressed sparse row (CSR) storage of an `[R, C]` matrix: row `r`'s
    entries are `values[offsets[r] .. offsets[r + 1])`, in the columns
    `indices` names (i16 read unsigned, or i32; `offsets` i32 `[R + 1]`,
    non-decreasing from 0 to at most the number of values). The result is
    zero except where an entry is; entries of one row that name one column
    add up (so padding entries of value 0 change nothing). kiln-prune
    stores unstructured-pruned weights this way above a break-even sparsity
    (`--sparse-format compressed`): 6 bytes per kept f32 weight with i16
    columns, against 4 per weight dense. Offsets, indices and values come
    from the artifact and are checked when it is written, not when it runs.

    ```mlir
    %w = kiln.expand_csr %offsets, %indices, %values : (tensor<3073xi32>, tensor<235930xi16>, tensor<235930xf32>) -> tensor<3072x768xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I32]>:$offsets,
                       RankedTensorOf<[I16, I32]>:$indices,
                       Kiln_FloatTensor:$values);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $offsets `,` $indices `,` $values attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_QuantizeOp : Kiln_InferredOp<"quantize",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "floats to 8-bit integer codes: clamp(round(x / scale) + zero_point)";
  let description = [{
    The inverse of `kiln.dequantize` for 8-bit codes, with its blockwise
    scales: each code is `clamp(round(input · (1 / scale)) + zero_point)`,
    rounded half to even and clamped to `[-128, 127]` (`[0, 255]` when
    `unsigned`), as torch's `quantize_per_channel` and
    `fake_quantize_per_channel_affine`.

    With `e4m3` the codes are fp8 e4m3 (`f8E4M3FN`) instead: `input ·
    (1 / scale)` clamped to [-448, 448] and rounded to the nearest e4m3
    value, ties to even (what `x.clamp(-448, 448).to(torch.float8_e4m3fn)`
    gives; NaN stays NaN). No zero point.

    ```mlir
    %q = kiln.quantize %x, %s : (tensor<?x768xf32>, tensor<?x1xf32>) -> tensor<?x768xi8>
    %f = kiln.quantize %x, %s1 e4m3 : (tensor<?x768xf32>, tensor<1x1xf32>) -> tensor<?x768xf8E4M3FN>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$scale,
                       Optional<Kiln_QuantCodeTensor>:$zero_point,
                       UnitAttr:$unsigned_codes, UnitAttr:$e4m3);
  let results = (outs Kiln_QuantOrFp8CodeTensor:$result);
  let assemblyFormat = [{
    $input `,` $scale (`zero_point` $zero_point^)?
    (`unsigned` $unsigned_codes^)? (`e4m3` $e4m3^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_IntegerMatmulOp : Kiln_InferredOp<"integer_matmul",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "8-bit integer matrix product accumulated in 32 bits";
  let description = [{
    `lhs` is `[..., M, K]` signed 8-bit codes (activations, any number of
    leading dims); `rhs` is a `[K, N]` matrix of signed 8-bit codes, or
    `[N, K]` with `transpose_rhs` (a weight as torch.nn.Linear stores it).
    The result is `[..., M, N]` of exact `i32` sums `Σₖ lhs·rhs` (K up to
    2¹⁷ cannot overflow). Scales are applied by the ops around it: the
    W8A8 schemes of `kiln-quantize` multiply the sums by the per-token and
    per-channel scales afterwards. On CPUs with AVX-512 VNNI it lowers to
    `vpdpbusd` (four products per 32-bit lane and instruction). Cost:
    `2·M·N·K` integer operations, counted with the FLOPs.

    ```mlir
    %acc = kiln.integer_matmul %xq, %wq transpose_rhs : (tensor<?x128x768xi8>, tensor<3072x768xi8>) -> tensor<?x128x3072xi32>
    ```
  }];
  let arguments = (ins Kiln_QuantCodeTensor:$lhs,
                       2DTensorOf<[I8]>:$rhs, UnitAttr:$transpose_rhs);
  let results = (outs RankedTensorOf<[I32]>:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_rhs` $transpose_rhs^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_ScaledFp8MatmulOp : Kiln_InferredOp<"scaled_fp8_matmul",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "fp8 e4m3 matrix product with per-tensor scales, in f32";
  let description = [{
    `lhs` is `[..., M, K]` e4m3 codes (activations, any number of leading
    dims); `rhs` a `[K, N]` matrix of e4m3 codes, or `[N, K]` with
    `transpose_rhs` (a weight as torch.nn.Linear stores it). `lhs_scale`
    and `rhs_scale` are one f32 each (`tensor<1xf32>`). The result is
    `[..., M, N]` f32: `lhs_scale · rhs_scale · Σₖ e4m3(lhs) · e4m3(rhs)`,
    summed in f32 (torch._scaled_mm's product with per-tensor scales). On
    CUDA it becomes cuBLASLt's fp8 gemm with the scales as its A and B
    scale pointers where the layout qualifies
    (`kiln-gpu-matmuls-to-library`). Cost: `2·M·N·K` FLOPs.

    ```mlir
    %y = kiln.scaled_fp8_matmul %xq, %wq scales %sx, %sw transpose_rhs : (tensor<?x768xf8E4M3FN>, tensor<3072x768xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x3072xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F8E4M3FN]>:$lhs,
                       2DTensorOf<[F8E4M3FN]>:$rhs,
                       1DTensorOf<[F32]>:$lhs_scale,
                       1DTensorOf<[F32]>:$rhs_scale, UnitAttr:$transpose_rhs);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `scales` $lhs_scale `,` $rhs_scale
    (`transpose_rhs` $transpose_rhs^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

#endif // KILN_QUANT_OPS_TD
