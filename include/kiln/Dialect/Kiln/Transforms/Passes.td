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
    fused kernels for them.

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

    A function that reads parameters must not be called from another
    function (entry points are not nested).
  }];
}

#endif // KILN_TRANSFORMS_PASSES_TD
