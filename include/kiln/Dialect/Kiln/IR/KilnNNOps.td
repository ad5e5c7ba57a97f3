//===- KilnNNOps.td - Neural-network composites --------------*- tablegen -*-===//
//
// The ops models are written with and fused kernels want. Each one
// decomposes into primitives (DecomposableOpInterface) and states its cost.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_NN_OPS_TD
#define KILN_NN_OPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"

def Kiln_SoftmaxOp : Kiln_CompositeOp<"softmax",
    [DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "softmax along an axis";
  let description = [{
    `exp(x - max(x)) / sum(exp(x - max(x)))` along `axis` (negative counts
    from the end). Decomposes into reduce max, sub, exp, reduce sum, div.

    ```mlir
    %0 = kiln.softmax %scores axis = -1 : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_LogSoftmaxOp : Kiln_CompositeOp<"log_softmax",
    [DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "log of softmax along an axis";
  let description = [{
    `x - max(x) - log(sum(exp(x - max(x))))` along `axis`.

    ```mlir
    %0 = kiln.log_softmax %logits axis = -1 : (tensor<4x10xf32>) -> tensor<4x10xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `axis` `=` $axis attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_LayerNormOp : Kiln_CompositeOp<"layer_norm",
    [AttrSizedOperandSegments,
     DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "layer normalization over the last dimension";
  let description = [{
    `(x - mean) / sqrt(var + eps) * weight + bias` over the last dimension,
    with the biased variance (as torch.nn.LayerNorm). `weight` and `bias`
    are optional, of shape `[D]`.

    ```mlir
    %0 = kiln.layer_norm %x weight %g bias %b eps = 1.000000e-05 : (tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       Optional<1DTensorOf<[Kiln_FloatElement]>>:$weight,
                       Optional<1DTensorOf<[Kiln_FloatElement]>>:$bias,
                       DefaultValuedAttr<F64Attr, "1e-5">:$eps);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`weight` $weight^)? (`bias` $bias^)? `eps` `=` $eps attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_RMSNormOp : Kiln_CompositeOp<"rms_norm"> {
  let summary = "root-mean-square normalization over the last dimension";
  let description = [{
    `x * rsqrt(mean(x^2) + eps) * weight` over the last dimension (as
    LLaMA's RMSNorm).

    ```mlir
    %0 = kiln.rms_norm %x, %g eps = 1.000000e-06 : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       1DTensorOf<[Kiln_FloatElement]>:$weight,
                       DefaultValuedAttr<F64Attr, "1e-6">:$eps);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `=` $eps attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_GeluOp : Kiln_CompositeOp<"gelu"> {
  let summary = "Gaussian error linear unit";
  let description = [{
    `erf` form: `0.5·x·(1 + erf(x/√2))`; `tanh` form (GPT-2's "gelu_new"):
    `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.

    ```mlir
    %0 = kiln.gelu %x approximate = tanh : tensor<?x?x3072xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
      DefaultValuedAttr<Kiln_GeluApproximation,
                        "::mlir::kiln::GeluApproximation::erf">:$approximate);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `approximate` `=` $approximate attr-dict `:` type($input)
  }];
}

def Kiln_SiluOp : Kiln_CompositeOp<"silu"> {
  let summary = "x · sigmoid(x)";
  let description = [{
    ```mlir
    %0 = kiln.silu %x : tensor<?x?x172xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Kiln_LinearOp : Kiln_CompositeOp<"linear"> {
  let summary = "affine map x·Wᵀ + b";
  let description = [{
    `input` is `[..., in]`; `weight` is `[out, in]` as torch.nn.Linear
    stores it, or `[in, out]` with `weight_in_out` (GPT-2's Conv1D layout);
    the optional `bias` is `[out]`. The result is `[..., out]`.

    ```mlir
    %0 = kiln.linear %x, %w bias %b : (tensor<?x?x512xf32>, tensor<2048x512xf32>, tensor<2048xf32>) -> tensor<?x?x2048xf32>
    %1 = kiln.linear %x, %w weight_in_out : (tensor<?x?x768xf32>, tensor<768x2304xf32>) -> tensor<?x?x2304xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       2DTensorOf<[Kiln_FloatElement]>:$weight,
                       Optional<1DTensorOf<[Kiln_FloatElement]>>:$bias,
                       UnitAttr:$weight_in_out);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? (`weight_in_out` $weight_in_out^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_EmbeddingOp : Kiln_CompositeOp<"embedding"> {
  let summary = "rows of a table looked up by token id";
  let description = [{
    `table` is `[vocab, dim]`, `ids` any integer tensor; the result is
    `ids.shape + [dim]`. Decomposes into `kiln.gather` on axis 0.

    ```mlir
    %0 = kiln.embedding %wte, %ids : (tensor<50257x768xf32>, tensor<?x?xi64>) -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins 2DTensorOf<[Kiln_FloatElement]>:$table,
                       Kiln_IndexTensor:$ids);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $ids attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_AttentionOp : Kiln_CompositeOp<"attention",
    [AttrSizedOperandSegments,
     DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "scaled dot-product attention, multi-head and grouped-query";
  let description = [{
    `softmax(q·kᵀ·scale + mask) · v` per head. `query` is `[B, H, Sq, D]`,
    `key` `[B, Hkv, Sk, D]`, `value` `[B, Hkv, Sk, Dv]` with `H` a multiple
    of `Hkv` (grouped-query attention: query head `h` uses key/value head
    `h / (H / Hkv)`). The optional additive `mask` broadcasts to
    `[B, H, Sq, Sk]`. `causal` hides keys after the query (aligned so the
    last query sees every key, see `kiln.causal_mask`). The optional
    `key_lengths` (`[B]`, integer) hides the keys at or after
    `key_lengths[b]` in batch row `b` (clamped to `[1, Sk]`): a KV cache of
    `Sk` slots of which row `b` has filled `key_lengths[b]`; the fused
    lowering does not visit the hidden keys at all. `scale` defaults to
    `1/√D`. The result is `[B, H, Sq, Dv]`.

    Kept whole (`keep=kiln.attention`), it is lowered by
    `convert-kiln-attention` to one fused loop nest that never materializes
    the score matrix, and its gradient rule is `kiln.attention_grad`; the
    gradient rule is only used when autodiff is asked to keep the op (its
    `keep` option), otherwise the decomposition is differentiated.

    ```mlir
    %0 = kiln.attention %q, %k, %v causal : (tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>, tensor<?x12x?x64xf32>) -> tensor<?x12x?x64xf32>
    %1 = kiln.attention %q1, %kcache, %vcache key_lengths %lengths : (tensor<?x12x1x64xf32>, tensor<?x12x1024x64xf32>, tensor<?x12x1024x64xf32>, tensor<?xi64>) -> tensor<?x12x1x64xf32>
    ```
  }];
  let arguments = (ins 4DTensorOf<[Kiln_FloatElement]>:$query,
                       4DTensorOf<[Kiln_FloatElement]>:$key,
                       4DTensorOf<[Kiln_FloatElement]>:$value,
                       Optional<Kiln_FloatTensor>:$mask,
                       Optional<1DTensorOf<[Kiln_IntElement]>>:$key_lengths,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale);
  let results = (outs 4DTensorOf<[Kiln_FloatElement]>:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` $mask^)?
    (`key_lengths` $key_lengths^)? (`causal` $causal^)?
    (`scale` `=` $scale^)? attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_AttentionGradOp : Kiln_InferredOp<"attention_grad",
    [DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "gradient of kiln.attention with respect to query, key and value";
  let description = [{
    The reverse-mode derivative of `kiln.attention` with the same operands
    and attributes, given `grad` (the gradient of the attention result,
    `[B, H, Sq, Dv]`): the gradients of `query`, `key` and `value`, shaped
    like them. Grouped-query key/value gradients are summed over the query
    heads that share them. The mask is not differentiated. The forward
    softmax statistics are recomputed, flash-attention style, so nothing
    from the forward pass needs to be kept; `convert-kiln-attention` lowers
    it to two fused loop nests (one per query row for the query gradient,
    one per key row for the key and value gradients).

    ```mlir
    %dq, %dk, %dv = kiln.attention_grad %q, %k, %v, %g causal : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>)
    ```
  }];
  let arguments = (ins 4DTensorOf<[Kiln_FloatElement]>:$query,
                       4DTensorOf<[Kiln_FloatElement]>:$key,
                       4DTensorOf<[Kiln_FloatElement]>:$value,
                       4DTensorOf<[Kiln_FloatElement]>:$grad,
                       Optional<Kiln_FloatTensor>:$mask,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale);
  let results = (outs 4DTensorOf<[Kiln_FloatElement]>:$query_grad,
                      4DTensorOf<[Kiln_FloatElement]>:$key_grad,
                      4DTensorOf<[Kiln_FloatElement]>:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $grad (`mask` $mask^)? (`causal` $causal^)?
    (`scale` `=` $scale^)? attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_RopeOp : Kiln_CompositeOp<"rope"> {
  let summary = "rotary position embedding (rotate-half form)";
  let description = [{
    Rotates `input` `[B, H, S, D]` (D even) by position: with
    `inv_freq[i] = theta^(-2i/D)` and angle `p·inv_freq`, the result is
    `x·cos + rotate_half(x)·sin` where `rotate_half(x) = [-x2, x1]` for the
    two halves of the last dimension (the Hugging Face LLaMA form).
    Positions are `0..S-1` unless `positions` (`[S]` or `[B, S]`, integer)
    is given. `inv_freq`, when given (D/2 positive values), replaces the
    frequencies `theta` gives: scaled RoPE (linear, Llama 3) is the
    unscaled one with other frequencies.

    ```mlir
    %0 = kiln.rope %q theta = 1.000000e+04 : (tensor<?x8x?x64xf32>) -> tensor<?x8x?x64xf32>
    %1 = kiln.rope %k theta = 1.000000e+04 inv_freq = [1.0, 0.25] : (tensor<?x8x?x4xf32>) -> tensor<?x8x?x4xf32>
    ```
  }];
  let arguments = (ins 4DTensorOf<[Kiln_FloatElement]>:$input,
                       Optional<Kiln_IndexTensor>:$positions,
                       DefaultValuedAttr<F64Attr, "10000.0">:$theta,
                       OptionalAttr<DenseF64ArrayAttr>:$inv_freq);
  let results = (outs 4DTensorOf<[Kiln_FloatElement]>:$result);
  let assemblyFormat = [{
    $input (`positions` $positions^)? `theta` `=` $theta
    (`inv_freq` `=` $inv_freq^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_Conv2dOp : Kiln_CompositeOp<"conv2d"> {
  let summary = "2-D convolution, NCHW";
  let description = [{
    As torch.nn.functional.conv2d: `input` `[N, C, H, W]`, `weight`
    `[O, C/groups, KH, KW]`, optional `bias` `[O]`; symmetric zero
    `padding`, `stride` and `dilation` per spatial dimension. Spatial and
    channel dimensions must be static. Decomposes into pad, strided slices,
    concat and a matmul (im2col); the sum over `C·KH·KW` is then in that
    order.

    ```mlir
    %0 = kiln.conv2d %x, %w bias %b stride = [2, 2] padding = [1, 1] dilation = [1, 1] groups = 1 : (tensor<?x3x32x32xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<?x16x16x16xf32>
    ```
  }];
  let arguments = (ins 4DTensorOf<[Kiln_FloatElement]>:$input,
                       4DTensorOf<[Kiln_FloatElement]>:$weight,
                       Optional<1DTensorOf<[Kiln_FloatElement]>>:$bias,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding,
                       DenseI64ArrayAttr:$dilation,
                       DefaultValuedAttr<I64Attr, "1">:$groups);
  let results = (outs 4DTensorOf<[Kiln_FloatElement]>:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? `stride` `=` $stride
    `padding` `=` $padding `dilation` `=` $dilation `groups` `=` $groups
    attr-dict `:` functional-type(operands, results)
  }];
}

class Kiln_Pool2dOp<string mnemonic, string what> : Kiln_CompositeOp<mnemonic> {
  let summary = what # " pooling over 2-D windows, NCHW";
  let arguments = (ins 4DTensorOf<[Kiln_FloatElement]>:$input,
                       DenseI64ArrayAttr:$kernel, DenseI64ArrayAttr:$stride,
                       DenseI64ArrayAttr:$padding);
  let results = (outs 4DTensorOf<[Kiln_FloatElement]>:$result);
  let assemblyFormat = [{
    $input `kernel` `=` $kernel `stride` `=` $stride `padding` `=` $padding
    attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_MaxPool2dOp : Kiln_Pool2dOp<"max_pool2d", "max"> {
  let description = [{
    As torch.nn.functional.max_pool2d (padding counts as -inf). Spatial
    dimensions must be static.

    ```mlir
    %0 = kiln.max_pool2d %x kernel = [2, 2] stride = [2, 2] padding = [0, 0] : (tensor<1x16x32x32xf32>) -> tensor<1x16x16x16xf32>
    ```
  }];
}

def Kiln_AvgPool2dOp : Kiln_Pool2dOp<"avg_pool2d", "average"> {
  let description = [{
    As torch.nn.functional.avg_pool2d with `count_include_pad=True`: padded
    zeros count in the divisor. Spatial dimensions must be static.

    ```mlir
    %0 = kiln.avg_pool2d %x kernel = [3, 3] stride = [1, 1] padding = [1, 1] : (tensor<1x16x32x32xf32>) -> tensor<1x16x32x32xf32>
    ```
  }];
}

def Kiln_GRUCellOp : Kiln_CompositeOp<"gru_cell"> {
  let summary = "one step of a GRU, as torch.nn.GRUCell";
  let description = [{
    `input` `[N, I]`, `hidden` `[N, H]`, `w_ih` `[3H, I]`, `w_hh` `[3H, H]`,
    `b_ih` and `b_hh` `[3H]` (gates r, z, n in that order). Returns the new
    hidden state `[N, H]`:
    `r = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr)`, `z` likewise,
    `n = tanh(x·W_inᵀ + b_in + r·(h·W_hnᵀ + b_hn))`, `h' = (1-z)·n + z·h`.

    ```mlir
    %0 = kiln.gru_cell %x, %h, %wih, %whh, %bih, %bhh : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<192x32xf32>, tensor<192x64xf32>, tensor<192xf32>, tensor<192xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins 2DTensorOf<[Kiln_FloatElement]>:$input,
                       2DTensorOf<[Kiln_FloatElement]>:$hidden,
                       2DTensorOf<[Kiln_FloatElement]>:$w_ih,
                       2DTensorOf<[Kiln_FloatElement]>:$w_hh,
                       1DTensorOf<[Kiln_FloatElement]>:$b_ih,
                       1DTensorOf<[Kiln_FloatElement]>:$b_hh);
  let results = (outs 2DTensorOf<[Kiln_FloatElement]>:$result);
  let assemblyFormat = [{
    $input `,` $hidden `,` $w_ih `,` $w_hh `,` $b_ih `,` $b_hh attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_LSTMCellOp : Kiln_CompositeOp<"lstm_cell"> {
  let summary = "one step of an LSTM, as torch.nn.LSTMCell";
  let description = [{
    `input` `[N, I]`, `hidden` and `cell` `[N, H]`, `w_ih` `[4H, I]`,
    `w_hh` `[4H, H]`, `b_ih` and `b_hh` `[4H]` (gates i, f, g, o). Returns
    the new hidden and cell states:
    `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')`.

    ```mlir
    %h2, %c2 = kiln.lstm_cell %x, %h, %c, %wih, %whh, %bih, %bhh : (tensor<?x32xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<256x32xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<256xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins 2DTensorOf<[Kiln_FloatElement]>:$input,
                       2DTensorOf<[Kiln_FloatElement]>:$hidden,
                       2DTensorOf<[Kiln_FloatElement]>:$cell,
                       2DTensorOf<[Kiln_FloatElement]>:$w_ih,
                       2DTensorOf<[Kiln_FloatElement]>:$w_hh,
                       1DTensorOf<[Kiln_FloatElement]>:$b_ih,
                       1DTensorOf<[Kiln_FloatElement]>:$b_hh);
  let results = (outs 2DTensorOf<[Kiln_FloatElement]>:$new_hidden,
                      2DTensorOf<[Kiln_FloatElement]>:$new_cell);
  let assemblyFormat = [{
    $input `,` $hidden `,` $cell `,` $w_ih `,` $w_hh `,` $b_ih `,` $b_hh
    attr-dict `:` functional-type(operands, results)
  }];
}

#endif // KILN_NN_OPS_TD
