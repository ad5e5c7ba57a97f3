//===- KilnTensorOps.td - Shape and data-movement primitives -*- tablegen -*-===//
//
// Parameters, constants and ops that move or create data without arithmetic:
// reshape, transpose, slice, concat, pad, broadcast, gather, iota, masks.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TENSOR_OPS_TD
#define KILN_TENSOR_OPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"
include "mlir/IR/SymbolInterfaces.td"

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Kiln_ParameterOp : Kiln_Op<"parameter", [Symbol]> {
  let summary = "a named model parameter";
  let description = [{
    A module-level model parameter. Its symbol name is its state-dict name,
    so weights load from and save to safetensors by name. `init` says how it
    is initialized when no weights are given: `zeros`, `ones`, `normal` (with
    `std`, mean 0) or `uniform` (in `[low, high)`). `trainable` parameters
    receive gradients in training graphs.

    ```mlir
    kiln.parameter @"transformer.wte.weight" : tensor<50257x768xf32> init normal std = 2.000000e-02 trainable
    kiln.parameter @"transformer.ln_f.bias" : tensor<768xf32> init zeros trainable
    kiln.parameter @"proj.weight" : tensor<16x8xf32> init uniform range(-1.000000e-01, 1.000000e-01)
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<Kiln_Tensor>:$type,
                       Kiln_InitKind:$init,
                       OptionalAttr<F64Attr>:$std,
                       OptionalAttr<F64Attr>:$low,
                       OptionalAttr<F64Attr>:$high,
                       UnitAttr:$trainable);
  let assemblyFormat = [{
    $sym_name `:` $type `init` $init (`std` `=` $std^)?
    (`range` `(` $low^ `,` $high `)`)? (`trainable` $trainable^)? attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Kiln_ReadParamOp : Kiln_Op<"read_param", [MemoryEffects<[MemRead]>,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "reads a model parameter";
  let description = [{
    The current value of the `kiln.parameter` named `name`; the result type
    is the parameter's type. It reads the parameter's storage, so it stays
    ordered with `kiln.write_param` (a read after a write sees the new value).

    ```mlir
    %w = kiln.read_param @"transformer.wte.weight" : tensor<50257x768xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Kiln_WriteParamOp : Kiln_Op<"write_param", [MemoryEffects<[MemWrite]>,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "overwrites a model parameter";
  let description = [{
    Stores `value` as the new value of the `kiln.parameter` named `name`;
    the value's type is the parameter's type. Optimizer updates are written
    this way: the runtime's parameter buffers are updated in place when the
    entry point returns.

    ```mlir
    kiln.write_param @"transformer.ln_f.bias", %new : tensor<768xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name, Kiln_Tensor:$value);
  let assemblyFormat = "$name `,` $value attr-dict `:` type($value)";
}

def Kiln_StoreParamOp : Kiln_Op<"store_param", [MemoryEffects<[MemWrite]>,
    AllTypesMatch<["value", "dest"]>]> {
  let summary = "writes a value into the argument carrying a parameter";
  let description = [{
    The form `kiln-externalize-parameters` gives `kiln.write_param`: `dest`
    is the function argument that carries the parameter (it has the
    `kiln.parameter` argument attribute). It also ends an entry point that
    updates one of its inputs in place (a KV cache): `dest` is then an
    argument marked `kiln.in_place`. The backends turn it into
    `bufferization.materialize_in_destination` just before bufferization,
    so the new value is computed in the argument's own buffer.

    ```mlir
    kiln.store_param %new to %arg3 : tensor<768xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$value, Kiln_Tensor:$dest);
  let assemblyFormat = "$value `to` $dest attr-dict `:` type($value)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Constants and generators
//===----------------------------------------------------------------------===//

def Kiln_ConstantOp : Kiln_Op<"constant", [Pure, ConstantLike,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    AllTypesMatch<["value", "result"]>]> {
  let summary = "a constant tensor";
  let description = [{
    ```mlir
    %0 = kiln.constant dense<1.000000e+00> : tensor<f32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def Kiln_IotaOp : Kiln_Op<"iota", [Pure,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "index along a dimension";
  let description = [{
    Fills the result with each element's index along `dim`. Dynamic result
    sizes are given as `index` operands, one per `?`, in order.

    ```mlir
    %n = tensor.dim %ids, %c1 : tensor<?x?xi64>
    %0 = kiln.iota (%n) dim = 0 : tensor<?xi64>
    ```
  }];
  let arguments = (ins Variadic<Index>:$dynamic_sizes, I64Attr:$dim);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    `(` $dynamic_sizes `)` `dim` `=` $dim attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

def Kiln_CausalMaskOp : Kiln_Op<"causal_mask", [Pure,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "lower-triangular attention mask";
  let description = [{
    An `i1` tensor `[queries, keys]` that is true where key `j` may be
    attended from query `i`: `j <= i + (keys - queries)`, so with a cache of
    earlier keys the last query sees every key. Dynamic sizes are given as
    `index` operands, one per `?`.

    ```mlir
    %0 = kiln.causal_mask () : tensor<128x128xi1>
    %1 = kiln.causal_mask (%s, %s) : tensor<?x?xi1>
    ```
  }];
  let arguments = (ins Variadic<Index>:$dynamic_sizes);
  let results = (outs 2DTensorOf<[I1]>:$result);
  let assemblyFormat = "`(` $dynamic_sizes `)` attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_PaddingMaskOp : Kiln_Op<"padding_mask", [Pure,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "additive attention mask from a [batch, seq] keep-mask";
  let description = [{
    Turns a `[batch, seq]` mask (nonzero = a real token) into the additive
    mask `[batch, 1, 1, seq]` that attention adds to its scores: `0` where a
    token is kept and the lowest finite value of the result's element type
    where it is padding (as Hugging Face BERT does).

    ```mlir
    %0 = kiln.padding_mask %attention_mask : tensor<?x?xi64> -> tensor<?x1x1x?xf32>
    ```
  }];
  let arguments = (ins Kiln_MaskInputTensor:$mask);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$mask attr-dict `:` type($mask) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shape manipulation
//===----------------------------------------------------------------------===//

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "same elements, new shape";
  let description = [{
    Reinterprets the elements (row-major order) with the result's shape.
    Static element counts must match. Dynamic dimensions carry over in
    order: the result has as many `?` as the input, and the k-th `?` of the
    result has the size of the k-th `?` of the input.

    ```mlir
    %0 = kiln.reshape %x : tensor<?x128x768xf32> -> tensor<?x128x12x64xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Kiln_TransposeOp : Kiln_InferredOp<"transpose",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "permutes dimensions";
  let description = [{
    Result dimension `i` is input dimension `permutation[i]`.

    ```mlir
    %0 = kiln.transpose %x permutation = [0, 2, 1, 3] : (tensor<1x128x12x64xf32>) -> tensor<1x12x128x64xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `permutation` `=` $permutation attr-dict `:`
    functional-type(operands, results)
  }];
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Kiln_UnpackPanelsOp : Kiln_InferredOp<"unpack_panels",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "a matrix from its column panels";
  let description = [{
    `input` (`[ceil(N / w), K, w]`) holds a `[K, N]` matrix in panels of
    `w` columns: panel `p` is the `K` rows of columns `p·w ... p·w + w - 1`,
    each row's `w` values contiguous, the last panel zero-padded past
    column `N` (`columns`). `result[k, n] = input[n / w, k, n mod w]`.

    With a fourth dim `g` (`[ceil(N / w), K / g, w, g]`), each row of a
    panel holds `g` consecutive rows of the matrix interleaved: the `g`
    values of column `n` side by side, as AMX tiles read bf16 pairs
    (`g = 2`): `result[k, n] = input[n / w, k / g, n mod w, k mod g]`; `K`
    is a multiple of `g`.

    With `transposed`, the result is the `[N, K]` transpose of that matrix:
    `result[n, k] = input[n / w, k, n mod w]` (an embedding table whose
    transpose is the LM head's weight, as it is read by `kiln.embedding`).

    kiln-pack-weights stores the linear weights of a CPU inference artifact
    so: the matmul kernels read a panel where it lies, instead of copying
    (and for AMX interleaving) the panel's columns out of the row-major
    weight on every call, and a gather (`kiln.embedding`) of the matrix's
    rows or columns reads its elements in the panels. Lowers to
    `linalg.unpack` (then `linalg.transpose` with `transposed`).

    ```mlir
    %w = kiln.unpack_panels %p columns = 3072 : (tensor<48x768x64xf32>) -> tensor<768x3072xf32>
    %v = kiln.unpack_panels %q columns = 3072 : (tensor<24x384x128x2xbf16>) -> tensor<768x3072xbf16>
    %t = kiln.unpack_panels %e columns = 50257 transposed : (tensor<786x768x64xf32>) -> tensor<50257x768xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$columns,
                       UnitAttr:$transposed);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `columns` `=` $columns (`transposed` $transposed^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_SliceOp : Kiln_InferredOp<"slice",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "strided range along one axis";
  let description = [{
    Keeps indices `start, start + step, ...` below `end` along `axis`; the
    other dimensions are unchanged (and may be dynamic). Requires
    `0 <= start <= end`, `step >= 1`, and `end <= size` when the axis is
    static.

    ```mlir
    %q = kiln.slice %qkv axis = 2 [0 : 768 : 1] : (tensor<?x?x2304xf32>) -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, I64Attr:$axis, I64Attr:$start,
                       I64Attr:$end, DefaultValuedAttr<I64Attr, "1">:$step);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis `[` $start `:` $end `:` $step `]` attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_ConcatOp : Kiln_InferredOp<"concat",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "joins tensors along an axis";
  let description = [{
    All inputs have the same rank and element type and agree on every
    dimension but `axis`.

    ```mlir
    %0 = kiln.concat %a, %b axis = 1 : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
    ```
  }];
  let arguments = (ins Variadic<Kiln_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $inputs `axis` `=` $axis attr-dict `:` functional-type(operands, results)
  }];
  let hasFolder = 1;
}

def Kiln_PadOp : Kiln_InferredOp<"pad",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "pads every dimension with a constant";
  let description = [{
    Adds `low[i]` elements before and `high[i]` after dimension `i`, filled
    with `value`.

    ```mlir
    %0 = kiln.pad %x low = [0, 0, 1, 1] high = [0, 0, 1, 1] value = 0.000000e+00 : (tensor<1x3x8x8xf32>) -> tensor<1x3x10x10xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, DenseI64ArrayAttr:$low,
                       DenseI64ArrayAttr:$high, F64Attr:$value);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $input `low` `=` $low `high` `=` $high `value` `=` $value attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_BroadcastToOp : Kiln_Op<"broadcast_to", [Pure,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "NumPy broadcast to an explicit shape";
  let description = [{
    Stretches size-1 dimensions and prepends leading ones to reach the
    result's shape (shapes aligned on the right). Dynamic result sizes are
    given as `index` operands, one per `?`.

    ```mlir
    %0 = kiln.broadcast_to %bias () : tensor<768xf32> -> tensor<4x768xf32>
    %1 = kiln.broadcast_to %x (%b) : tensor<1x768xf32> -> tensor<?x768xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Variadic<Index>:$dynamic_sizes);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `(` $dynamic_sizes `)` attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_GatherOp : Kiln_InferredOp<"gather",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
    DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "selects slices of a tensor by integer indices";
  let description = [{
    NumPy `take`: the result is `input.shape[:axis] + indices.shape +
    input.shape[axis+1:]`, element `input[..., indices[j...], ...]`. The
    CPU backend clamps an index outside `[0, size)` to the nearest valid
    one, so a bad token id never reads outside the table.

    ```mlir
    %0 = kiln.gather %table[%ids] axis = 0 : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$indices,
                       I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `[` $indices `]` `axis` `=` $axis attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_CacheWriteOp : Kiln_InferredOp<"cache_write",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "writes new keys or values into a KV cache";
  let description = [{
    `cache` is `[B, H, T, D]`: `T` slots per batch row and head. The result
    is `cache` with `update` (`[B, H, S, D]`) written at slots
    `positions[b] .. positions[b] + S - 1` of row `b`, every row from its
    own position (all from 0 without `positions`). `S` is at most `T`; like
    `kiln.gather`, a position outside `[0, T - S]` is clamped to the
    nearest valid one, so a bad position never writes outside the cache. Bufferized, the write happens
    in the cache's own buffer: an entry point's cache argument marked
    `kiln.in_place` is updated without a copy.

    ```mlir
    %0 = kiln.cache_write %cache[%positions], %k : (tensor<?x12x1024x64xf32>, tensor<?xi64>, tensor<?x12x1x64xf32>) -> tensor<?x12x1024x64xf32>
    %1 = kiln.cache_write %cache, %k : (tensor<?x12x1024x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x1024x64xf32>
    ```
  }];
  let arguments = (ins 4DTensorOf<[Kiln_FloatElement]>:$cache,
                       Optional<1DTensorOf<[Kiln_IntElement]>>:$positions,
                       4DTensorOf<[Kiln_FloatElement]>:$update);
  let results = (outs 4DTensorOf<[Kiln_FloatElement]>:$result);
  let assemblyFormat = [{
    $cache (`[` $positions^ `]`)? `,` $update attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_ScatterAddOp : Kiln_InferredOp<"scatter_add",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
     DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "adds slices into a tensor at integer indices";
  let description = [{
    The adjoint of `kiln.gather` (torch `index_add`): the result is `input`
    with `updates[..., j..., ...]` added to `input[..., indices[j...], ...]`
    for every index position `j`; repeated indices accumulate. `updates` is
    `input.shape[:axis] + indices.shape + input.shape[axis+1:]`. Like
    gather, the CPU backend clamps an index outside `[0, size)`. It is the
    gradient of an embedding lookup.

    ```mlir
    %0 = kiln.scatter_add %zeros[%ids], %grad axis = 0 : (tensor<50257x768xf32>, tensor<?x?xi64>, tensor<?x?x768xf32>) -> tensor<50257x768xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, Kiln_IndexTensor:$indices,
                       Kiln_NumericTensor:$updates, I64Attr:$axis);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $input `[` $indices `]` `,` $updates `axis` `=` $axis attr-dict `:`
    functional-type(operands, results)
  }];
}

#endif // KILN_TENSOR_OPS_TD
