//===- Passes.td - Graph passes on the kiln dialect ----------*- tablegen -*-===//
//
// Declarations of the passes that work on kiln IR.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRANSFORMS_PASSES_TD
#define KILN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnDecomposePass : Pass<"kiln-decompose", "mlir::func::FuncOp"> {
  let summary = "Rewrites composite ops into kiln primitives";
  let description = [{
    Replaces every op implementing `DecomposableOpInterface` (softmax,
    layer_norm, attention, ...) by its decomposition into primitives
    (matmul, elementwise math, reductions, shape ops). Decompositions may
    produce further composites (attention produces softmax); those are
    decomposed in turn. Ops named in `keep` stay whole, for backends with
    fused kernels for them; a kept `kiln.attention` the fused lowering
    cannot take (a dynamic head dim) is decomposed all the same.

    ```
    kiln-opt --kiln-decompose='keep=kiln.attention,kiln.layer_norm' model.mlir
    ```
  }];
  let options = [
    ListOption<"keep", "keep", "std::string",
               "Op names (e.g. kiln.attention) to leave whole">
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def KilnCostReportPass : Pass<"kiln-cost-report", "mlir::ModuleOp"> {
  let summary = "Reports parameters, FLOPs, bytes moved, time, energy and cost";
  let description = [{
    Walks every function of the module and sums each op's cost
    (`CostOpInterface`): FLOPs, bytes read and written, arithmetic
    intensity. Adds the parameter count and bytes from `kiln.parameter`s,
    and estimates the time of one call on a roofline
    (`max(FLOPs / peak, bytes / bandwidth)` per op), then energy and money
    for `calls` calls at `watts` and `price-per-kwh`. Prints a text table to
    stdout (or `output-file`), or JSON with `json`. The IR is left unchanged.

    Dynamic dimensions count as `dynamic-dim-size`.
  }];
  let options = [
    Option<"peakGflops", "peak-gflops", "double", "520.0",
           "Peak compute of the target in GFLOP/s (default: 2 Zen 5 cores, fp32 FMA)">,
    Option<"bandwidthGbs", "bandwidth-gbs", "double", "60.0",
           "Memory bandwidth of the target in GB/s">,
    Option<"watts", "watts", "double", "65.0",
           "Average power draw while running, in watts">,
    Option<"pricePerKwh", "price-per-kwh", "double", "0.30",
           "Electricity price per kWh, in the currency of the report">,
    Option<"calls", "calls", "double", "1000000.0",
           "Number of calls to cost for energy and money">,
    Option<"dynamicDimSize", "dynamic-dim-size", "int64_t", "1",
           "Size assumed for every dynamic dimension">,
    Option<"json", "json", "bool", "false", "Print JSON instead of a table">,
    Option<"perOp", "per-op", "bool", "false",
           "List every op instead of totals per op kind">,
    Option<"function", "function", "std::string", "\"\"",
           "Report only this function (default: all)">,
    Option<"outputFile", "output-file", "std::string", "\"-\"",
           "Write the report to this file (default: stdout)">,
    Option<"title", "title", "std::string", "\"\"",
           "A line naming what is reported (model, input sizes)">
  ];
}

def KilnExternalizeParametersPass
    : Pass<"kiln-externalize-parameters", "mlir::ModuleOp"> {
  let summary = "Turns parameter reads into function arguments";
  let description = [{
    Code generation passes weights in as buffers. This pass appends one
    argument per parameter a function reads (in the module's parameter
    order), tags it with `kiln.parameter = "name"`, replaces the
    `kiln.read_param`s by it and erases the `kiln.parameter` declarations.
    The compiler records the parameter table (for the artifact manifest)
    before running it.

    ```mlir
    // before
    kiln.parameter @w : tensor<4x4xf32> init zeros
    func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
      %w = kiln.read_param @w : tensor<4x4xf32>
      ...
    // after
    func.func @forward(%x: tensor<4xf32>,
                       %w: tensor<4x4xf32> {kiln.parameter = "w"}) -> tensor<4xf32>
    ```

    A `kiln.write_param` becomes `kiln.store_param` into the argument (the
    CPU pipeline computes the new value in that argument's buffer). A
    function that reads parameters must not be called from another
    function (entry points are not nested), and must not read a parameter
    after writing it.
  }];
}

def KilnPackWeightsPass : Pass<"kiln-pack-weights", "mlir::ModuleOp"> {
  let summary = "Stores inference linear weights as the CPU matmul's column "
                "panels";
  let description = [{
    The CPU matmul walks its rhs in panels of `panel-width` columns (the
    register tile's width) and copies each panel of a row-major weight into
    a contiguous buffer before its tiles read it, on every call. In a module
    that writes no parameter (an inference artifact), this pass stores each
    2-D f32 parameter that is read only as the weight of `kiln.linear` ops
    of one layout as those panels instead: `[ceil(out / w), in, w]`, panel
    `p` holding output columns `p·w ...` for every input row, the last one
    zero-padded. That is every `[in, out]` weight (`weight_in_out`, GPT-2's
    Conv1D), and every `[out, in]` one (torch.nn.Linear) but in a module
    with a KV cache (updated in place) and those whose linears all take at
    most `dot-product-rows` rows (static): decoding steps take dot
    products over an `[out, in]` weight's rows
    (kiln-matvec-dot-products), faster than over panels, while many rows
    read panels faster than the transposing copy the matmul otherwise
    makes of each panel on every call. A `kiln.matmul` by a parameter
    (GPT-2's tied LM head, `h · wteᵀ`) is made a linear first, and a weight
    whose reads also feed `kiln.embedding` tables (the token embedding
    tied to that head) is packed too: the embeddings read it through a
    `kiln.unpack_panels ... transposed`, which convert-kiln-to-linalg's
    gather reads in the panels. Each read is followed by a
    `kiln.unpack_panels` back to `[in, out]` (the linears of an `[out, in]`
    weight then take it as `weight_in_out`); the matmul's tiles then read
    the panels where they lie. The parameter gets
    `kiln.packed_from = {shape, in_out, pairs, width}`: its stored shape and
    layout before packing, from which the compiler packs the weights it writes
    (checkpoints keep the original layout), and, with `at-load`,
    `at_load = true`: the artifact's weights file then keeps that layout
    too and the runtime packs the weight when it loads the artifact (the
    default of kiln-compile). With `pair-panel-width`, bf16
    weights of either layout whose `in` is a multiple of 32 (an AMX tile's steps of k) are
    stored as `[ceil(out / w), in / 2, w, 2]`: each panel row two input
    rows interleaved, the pairs an AMX bf16 tile loads, so the AMX kernel
    (kiln-lower-amx-matmuls) reads them in place too. Quantized, pruned or
    compressed parameters and ones read through casts are left as they
    are. kiln-compile runs it for CPU inference artifacts with the target's
    tile width (`--pack-weights=load`, the default, or `file`).

    ```mlir
    // before
    kiln.parameter @w : tensor<768x3072xf32> init normal std = 2.000000e-02
    %w = kiln.read_param @w : tensor<768x3072xf32>
    %y = kiln.linear %x, %w weight_in_out : (tensor<1x128x768xf32>, tensor<768x3072xf32>) -> tensor<1x128x3072xf32>
    // after (panel-width=64)
    kiln.parameter @w : tensor<48x768x64xf32> init normal std = 2.000000e-02 {kiln.packed_from = {in_out = true, pairs = 1 : i64, shape = array<i64: 768, 3072>, width = 64 : i64}}
    %p = kiln.read_param @w : tensor<48x768x64xf32>
    %w = kiln.unpack_panels %p columns = 3072 : (tensor<48x768x64xf32>) -> tensor<768x3072xf32>
    %y = kiln.linear %x, %w weight_in_out : (tensor<1x128x768xf32>, tensor<768x3072xf32>) -> tensor<1x128x3072xf32>
    ```
  }];
  let options = [
    Option<"panelWidth", "panel-width", "int64_t", "64",
           "Columns per panel of an f32 weight: the CPU matmul's register "
           "tile width">,
    Option<"pairPanelWidth", "pair-panel-width", "int64_t", "0",
           "Columns per panel of a bf16 weight stored in pairs of rows for "
           "AMX tiles (the kernel's panel, 128); 0: bf16 weights keep their "
           "layout">,
    Option<"atLoad", "at-load", "bool", "false",
           "Mark the weights to be packed by the runtime when it loads the "
           "artifact (kiln.packed_from's at_load): the weights file keeps "
           "the checkpoint's layout">,
    Option<"dotProductRows", "dot-product-rows", "int64_t", "0",
           "An [out, in] f32 weight whose linears all take at most this "
           "many rows (static) keeps its layout, for the dot-product kernel "
           "of decoding steps">,
  ];
}

def KilnNarrowParametersPass
    : Pass<"kiln-narrow-parameters", "mlir::ModuleOp"> {
  let summary = "Stores an f32 parameter read only through casts to bf16 "
                "(or f16) in that type";
  let description = [{
    A mixed-precision model (`kiln-compile --dtype bf16`) keeps f32
    parameters and casts each to bf16 where it is read: training needs the
    f32 values, which its optimizer updates, but an inference artifact only
    ever uses the narrow ones. For each f32 parameter that no function
    writes and whose every read is used only by `kiln.cast`s to one
    narrower float type, this pass makes the parameter (and its reads) that
    type and removes the casts. The compiler then rounds the weights once
    when it writes them, to nearest even as the cast does, so the results
    are the same; the weights file holds half the bytes and a forward does
    not convert every weight on every call. kiln-compile runs it for
    `--mode inference`.

    ```mlir
    // before
    kiln.parameter @w : tensor<4x4xf32> init zeros
    %w = kiln.read_param @w : tensor<4x4xf32>
    %0 = kiln.cast %w : tensor<4x4xf32> -> tensor<4x4xbf16>
    // after
    kiln.parameter @w : tensor<4x4xbf16> init zeros
    %w = kiln.read_param @w : tensor<4x4xbf16>
    ```

    A parameter with any other use (an f32 layer norm weight, a parameter
    a training step writes) stays f32, and so does one that carries a
    `kiln.*` attribute (a quantized, compressed or pruned part, optimizer
    state, calibration statistics: the compiler computes those in f32).
  }];
}

def KilnAutodiffPass : Pass<"kiln-autodiff", "mlir::ModuleOp"> {
  let summary = "Builds the gradient function of a scalar loss";
  let description = [{
    Reverse-mode differentiation. From `function` (one rank-0 float result,
    the loss) it builds `<function>_grad` with the same arguments, returning
    the loss and then the gradient of every trainable `kiln.parameter` the
    loss reads, in module order (with `wrt-inputs`, then the gradient of
    every float argument). The rules are each op's `GradientOpInterface`;
    composites without one are decomposed first, calls are inlined. An op on
    the path from a parameter to the loss without a rule is an error naming
    it.

    ```
    kiln-opt --kiln-autodiff='function=loss' model.mlir
    ```

    The gradient function carries `kiln.gradient_parameters` (the
    parameters, in result order) and `kiln.name` result attributes
    (`loss`, `grad:<name>`).
  }];
  let options = [
    Option<"function", "function", "std::string", "\"loss\"",
           "The loss function to differentiate">,
    Option<"resultName", "result", "std::string", "\"\"",
           "Name of the gradient function (default: <function>_grad)">,
    Option<"wrtInputs", "wrt-inputs", "bool", "false",
           "Also return gradients of the float arguments">,
    ListOption<"keep", "keep", "std::string",
               "Composites differentiated by their fused rule (kiln.attention: "
               "kiln.attention_grad) for a pipeline that keeps them whole">
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def KilnOptimizerPass : Pass<"kiln-optimizer", "mlir::ModuleOp"> {
  let summary = "Builds train_step and eval_step from a loss function";
  let description = [{
    Appends the optimizer update to the loss's gradient (built by
    `kiln-autodiff` unless `<function>_grad` exists) as a public entry
    `train_step(inputs..., lr: tensor<f32>) -> (loss, grad_norm)` that
    updates the parameters and the optimizer state in place
    (`kiln.write_param`), and `eval_step(inputs...) -> loss`. The loss and
    gradient functions become private.

    - Gradients are clipped to a global L2 norm of `max-grad-norm` (0: no
      clipping) as torch.nn.utils.clip_grad_norm_ does; `grad_norm` is the
      norm before clipping.
    - `adamw` (torch.optim.AdamW): state `<param>/adam_m`, `<param>/adam_v`
      and the step count `optimizer/step`, all `init zeros`; decoupled
      weight decay, bias correction.
    - `sgd` (torch.optim.SGD): `<param>/momentum` when `momentum` > 0;
      weight decay is added to the gradient.
    - Weight decay applies to parameters of rank >= `decay-min-rank`
      (default 2: matrices and embeddings, not biases or norm scales).

    ```
    kiln-opt --kiln-optimizer='optimizer=adamw weight-decay=0.1' model.mlir
    ```
  }];
  let options = [
    Option<"optimizer", "optimizer", "std::string", "\"adamw\"",
           "adamw or sgd">,
    Option<"function", "function", "std::string", "\"loss\"",
           "The loss function">,
    Option<"beta1", "beta1", "double", "0.9", "AdamW β1">,
    Option<"beta2", "beta2", "double", "0.999", "AdamW β2">,
    Option<"epsilon", "epsilon", "double", "1e-8", "AdamW ε">,
    Option<"weightDecay", "weight-decay", "double", "0.01",
           "Weight decay (AdamW: decoupled; SGD: added to the gradient)">,
    Option<"decayMinRank", "decay-min-rank", "int64_t", "2",
           "Decay only parameters of at least this rank">,
    Option<"momentum", "momentum", "double", "0.9", "SGD momentum (0: none)">,
    Option<"maxGradNorm", "max-grad-norm", "double", "1.0",
           "Clip gradients to this global L2 norm (0: no clipping)">,
    ListOption<"keep", "keep", "std::string",
               "Composites differentiated by their fused rule (as "
               "kiln-autodiff's keep), when the gradient is built here">
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def KilnCalibrationEntryPass
    : Pass<"kiln-calibration-entry", "mlir::ModuleOp"> {
  let summary = "Adds calibrate(inputs) -> the largest |input| per channel "
                "of every linear layer";
  let description = [{
    Clones `forward` into a `calibrate` entry point with forward's inputs
    and, instead of its outputs, one `[in]` f32 vector per 2-D float
    parameter that is the weight of a `kiln.linear` (directly or through a
    cast) or the rhs of a `kiln.matmul` (a head tied to the embedding): the
    largest `|x|` of each input channel over every other dim of the
    layer's input `x` (over all layers that share the weight), named
    `<parameter>.input_absmax`:

    ```mlir
    func.func @calibrate(%ids: tensor<?x?xi64>)
        -> (tensor<64xf32> {kiln.name = "h.fc.weight.input_absmax"}, ...)
    ```

    `kiln calibrate` runs it over calibration text and keeps the largest
    value per channel; `kiln-compile --quantize int8-static --calibration
    FILE` turns them into static activation scales
    (docs/quantization.md). `kiln-compile --mode calibrate` runs this pass.
    With `gram`, each weight also gets `<parameter>.input_gram`, the
    `[in, in]` sum of `x xᵀ` over the layer's input vectors (`kiln.matmul`
    with `transpose_lhs`, summed over batch dims), the Hessian GPTQ rounds
    against (`kiln-compile --rounding gptq`).
    With `histogram`, each weight also gets `<parameter>.input_values`:
    the layer's input itself, in f32 (the inputs of several layers that
    share the weight joined along dim 0), from which `kiln calibrate
    --range percentile|mse` bins |x| and picks a clipping threshold.
    A module without `forward`, or without such a layer, is an error.
  }];
  let options = [
    Option<"gram", "gram", "bool", "false",
           "Also return each weight's input Gram matrix Σ x xᵀ">,
    Option<"histogram", "histogram", "bool", "false",
           "Also return each weight's layer inputs (<weight>.input_values), "
           "for kiln calibrate's percentile and MSE ranges">
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def KilnQuantizePass : Pass<"kiln-quantize", "mlir::ModuleOp"> {
  let summary = "Stores linear layers' weights as 8- or 4-bit integer codes";
  let description = [{
    Weight-only quantization. Every `kiln.parameter` whose reads all feed
    the weight operand of `kiln.linear` ops (directly or through a
    `kiln.cast` to the compute type) is replaced by integer codes and
    scales, and its reads by a `kiln.dequantize` of them, so the graph
    computes `linear(x, dequantize(codes, scales))`:

    ```mlir
    // before
    kiln.parameter @"h.0.mlp.c_fc.weight" : tensor<768x3072xf32> init normal std = 2.000000e-02 trainable
    %w = kiln.read_param @"h.0.mlp.c_fc.weight" : tensor<768x3072xf32>
    %y = kiln.linear %x, %w weight_in_out : ...
    // after (scheme=w4g128)
    kiln.parameter @"h.0.mlp.c_fc.qweight" : tensor<3072x384xi8> init normal std = 2.000000e-02 {kiln.quantized_from = {...}}
    kiln.parameter @"h.0.mlp.c_fc.scales" : tensor<3072x6xf32> init normal std = 2.000000e-02 {kiln.quantized_from = {...}}
    %q = kiln.read_param @"h.0.mlp.c_fc.qweight" : tensor<3072x384xi8>
    %s = kiln.read_param @"h.0.mlp.c_fc.scales" : tensor<3072x6xf32>
    %w = kiln.dequantize %q, %s bits = 4 : (tensor<3072x384xi8>, tensor<3072x6xf32>) -> tensor<3072x768xf32>
    %y = kiln.linear %x, %w : ...
    ```

    Codes are stored `[out, in]` whatever the source layout (GPT-2's
    Conv1D `[in, out]` is transposed), one scale per output channel (`w8`)
    or per group of `in` (`w4g128`, `w8g64`, ...), with zero points
    (`<prefix>.qzeros`) when `asymmetric`. The new parameters keep the
    source's init rule and carry `kiln.quantized_from` (source name, part,
    bits, group, symmetric, transposed): the compiler quantizes the source's
    values (from `--weights`, or drawn from that init rule exactly as the
    float model would) when it writes the artifact's weights. They are not
    trainable. See docs/quantization.md.

    `scheme=int8-dynamic` (W8A8) stores the weights as `w8` does, and
    rewrites each linear of f32 inputs to quantize its input per token at
    run time and multiply integers:

    ```mlir
    %a = kiln.abs %x ...
    %m = kiln.reduce max %a axes = [2] keepdim ...   // max |x| per token
    %sx = kiln.div (kiln.max %m, 1e-30), 127 ...     // the token's scale
    %xq = kiln.quantize %x, %sx ...                  // int8 codes
    %acc = kiln.integer_matmul %xq, %q transpose_rhs ...   // i32 sums
    %y = kiln.cast %acc ... ; kiln.mul by %sx, by the channel scales; + bias
    ```

    `scheme=int8-static` quantizes the input with one constant scale per
    layer instead, from the calibration statistics on the weight's
    parameter (`kiln-compile --calibration FILE`): `kiln.input_range /
    127` when the file chose a percentile or MSE threshold, else the
    largest `kiln.input_absmax` over 127. A range with `smoothquant` is an
    error (the threshold is of the unsmoothed input).

    `scheme=fp8` stores f32 weights as fp8 e4m3 codes (`f8E4M3FN`,
    `[out, in]`) with one f32 scale per tensor (`[1]`, max|w| / 448), and
    rewrites each f32 linear to quantize its input to e4m3 with one scale
    per tensor computed at run time and multiply the codes with both
    scales (cuBLASLt's fp8 gemm on CUDA):

    ```mlir
    %m = kiln.reduce max (kiln.abs %x) axes = [0, 1] keepdim ...   // max |x|
    %sx = kiln.div (kiln.max %m, 1e-30), 448 ...
    %xq = kiln.quantize %x, %sx e4m3 ...                          // e4m3 codes
    %y = kiln.scaled_fp8_matmul %xq, %q scales %sx1, %s transpose_rhs ...
    ```

    A weight whose `[out, in]` are not multiples of 16 (cuBLASLt's fp8
    rule), that is not f32, whose layers' inputs are not f32, or that is
    tied to a table, stays float with a remark naming the reason.

    The LM head (a parameter named `lm_head.*`) is left in float unless
    `lm-head`. A table tied to the head (GPT-2's `h · wteᵀ`, a `kiln.matmul`
    of the parameter, or a linear) is also gathered, so it stays float; with
    `lm-head` its product becomes a linear of codes quantized from it
    (`wte.qweight`, `wte.scales`), and the float table stays for the
    lookup. `only` and `skip` are glob patterns on parameter names. A
    group size that does not divide a selected layer's input dim is an
    error naming the layer.

    ```
    kiln-opt --kiln-quantize='scheme=w4g128 asymmetric=true skip=*.attn.*' model.mlir
    ```
  }];
  let options = [
    Option<"scheme", "scheme", "std::string", "\"w8\"",
           "w8 (int8 per output channel), w4g<N> (int4, groups of N inputs), "
           "w8g<N>, int8-dynamic (w8 weights and int8 activations), "
           "int8-static, or fp8 (e4m3 weights and activations, per-tensor "
           "scales)">,
    Option<"asymmetric", "asymmetric", "bool", "false",
           "Unsigned codes with a zero point per group (default: symmetric)">,
    ListOption<"only", "only", "std::string",
               "Quantize only parameters matching one of these globs">,
    ListOption<"skip", "skip", "std::string",
               "Leave parameters matching one of these globs in float">,
    Option<"rounding", "rounding", "std::string", "\"rtn\"",
           "How the compiler chooses the codes: rtn (round to nearest), "
           "gptq (against the calibration Gram matrix of each layer's "
           "inputs) or awq (per-channel scales searched against it, the "
           "input multiplied by their inverse); recorded in "
           "kiln.quantized_from">,
    Option<"smoothquant", "smoothquant", "double", "-1",
           "SmoothQuant's alpha in [0, 1] for int8-dynamic: each linear's "
           "input is multiplied by 1 / s and its weight by s, s_j = "
           "max|x_j|^alpha / max|W_j|^(1 - alpha) from calibration "
           "statistics (kiln.input_absmax); negative: off">,
    Option<"lmHead", "lm-head", "bool", "false",
           "Quantize the LM head (lm_head.*, or the product by a tied "
           "embedding table) too">
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

def KilnPrunePass : Pass<"kiln-prune", "mlir::ModuleOp"> {
  let summary = "Marks linear layers' weights to be pruned to a sparsity";
  let description = [{
    Unstructured and N:M pruning of linear weights. Every `kiln.parameter`
    whose reads all feed the weight operand of `kiln.linear` ops (directly
    or through a `kiln.cast`), as kiln-quantize selects them, gets a
    `kiln.pruned` attribute saying how its zeros are chosen; the graph is
    unchanged (a dense kernel multiplies by the zeros):

    ```mlir
    kiln.parameter @"h.0.mlp.c_fc.weight" : tensor<768x3072xf32> init normal std = 2.000000e-02 trainable {kiln.pruned = {global = false, m = 4 : i64, method = "wanda", n = 2 : i64, sparsity = 5.000000e-01 : f64, transposed = true}}
    ```

    The compiler chooses and zeroes the weights when it writes the
    artifact's weights, from `--weights` or the init rule, as it quantizes
    (and a weight both pruned and quantized is quantized from its pruned
    values):

    - `magnitude`: the smallest |w|, a `sparsity` fraction of each layer,
      or of all selected layers together with `global`;
    - `wanda` (Sun et al., 2023): the smallest |w_ij| · ‖x_j‖ in each
      output row, ‖x_j‖² the diagonal of the layer's calibration Gram
      matrix Σ x xᵀ;
    - `sparsegpt` (Frantar & Alistarh, 2023): masks chosen per block of
      128 inputs from w² / [H⁻¹]_jj², each pruned weight's error spread
      over the inputs not yet visited through H⁻¹, H the damped Gram matrix
      (the one-shot weight update of the paper).

    `sparsity` is a fraction in [0, 1) or `N:M` (at most N nonzeros in
    every M consecutive inputs of a row: `2:4`), whose M must divide every
    selected layer's input dim. In a training artifact kiln-optimizer keeps
    the zeros at zero.

    With `compress` (2:4 only) each weight is stored compressed instead:
    `<prefix>.sparse_first` and `.sparse_second` (`[out, in / 4]`, the two
    values kept in each group of four inputs) and `.sparse_positions` (i8,
    where they go), which carry `kiln.compressed_from` and are read through
    `kiln.expand_2of4` into the dense `[out, in]` weight (a Conv1D weight's
    linears then read it untransposed). An unstructured fraction of at
    least `csr-min-sparsity` is stored as compressed sparse rows:
    `<prefix>.sparse_offsets` (i32 `[out + 1]`), `.sparse_indices` (i16,
    or i32 beyond 65536 inputs) and `.sparse_values` (`[nnz]`, nnz the
    weights the method keeps in the layer), read through `kiln.expand_csr`.
    Below that sparsity, or with `global` (whose share of zeros per layer
    only the weights tell), the weights stay dense and a remark says so.
    See docs/pruning.md.

    ```
    kiln-opt --kiln-prune='method=magnitude sparsity=2:4 skip=*.attn.*' model.mlir
    ```
  }];
  let options = [
    Option<"method", "method", "std::string", "\"magnitude\"",
           "magnitude, wanda or sparsegpt">,
    Option<"sparsity", "sparsity", "std::string", "\"0.5\"",
           "The fraction of weights set to zero, in [0, 1), or N:M (2:4)">,
    Option<"global", "global", "bool", "false",
           "magnitude: one threshold over every selected layer">,
    ListOption<"only", "only", "std::string",
               "Prune only parameters matching one of these globs">,
    ListOption<"skip", "skip", "std::string",
               "Leave parameters matching one of these globs dense">,
    Option<"lmHead", "lm-head", "bool", "false",
           "Prune the LM head (lm_head.*) too">,
    Option<"compress", "compress", "bool", "false",
           "Store each weight compressed (inference artifacts: the parts "
           "are not trainable): 2:4 as two values and their positions per "
           "four inputs, read through kiln.expand_2of4; a fraction at or "
           "above csr-min-sparsity as compressed sparse rows, read through "
           "kiln.expand_csr (below it, or with global, the weights stay "
           "dense and a remark says so)">,
    Option<"csrMinSparsity", "csr-min-sparsity", "double", "0.5",
           "compress: the sparsity from which compressed sparse rows beat "
           "a dense kernel (measured: docs/performance.md)">
  ];
  let dependentDialects = ["::mlir::kiln::KilnDialect"];
}

#endif // KILN_TRANSFORMS_PASSES_TD
