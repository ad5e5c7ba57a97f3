//===- KilnTrainingOps.td - Losses, dropout, randomness ------*- tablegen -*-===//
//
// Ops that only training graphs use: losses, dropout and the counter-based
// random numbers dropout decomposes into.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TRAINING_OPS_TD
#define KILN_TRAINING_OPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"

def Kiln_RandomUniformOp : Kiln_Op<"random_uniform", [Pure,
    DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>]> {
  let summary = "counter-based uniform random numbers in [0, 1)";
  let description = [{
    Element at row-major index `i` is a pure function of `(seed, i)`, so a
    graph is reproducible from its seed and the same on every backend.
    Dynamic result sizes are given as `index` operands, one per `?`.

    ```mlir
    %0 = kiln.random_uniform %seed (%b, %s) : (tensor<i64>) -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Kiln_SeedTensor:$seed, Variadic<Index>:$dynamic_sizes);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $seed `(` $dynamic_sizes `)` attr-dict `:` functional-type($seed, $result)
  }];
  let hasVerifier = 1;
}

def Kiln_DropoutOp : Kiln_CompositeOp<"dropout"> {
  let summary = "zeroes elements with probability p, scales the rest";
  let description = [{
    Keeps `x / (1 - p)` where `random_uniform(seed) >= p` and writes 0
    elsewhere. Deterministic for a given `seed` operand. `p` is in `[0, 1)`.

    ```mlir
    %0 = kiln.dropout %x, %seed p = 1.000000e-01 : (tensor<?x?x768xf32>, tensor<i64>) -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_SeedTensor:$seed,
                       F64Attr:$p);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $seed `p` `=` $p attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_CrossEntropyOp : Kiln_CompositeOp<"cross_entropy",
    [DeclareOpInterfaceMethods<Kiln_GradientOpInterface>]> {
  let summary = "softmax cross-entropy against integer class targets";
  let description = [{
    `logits` `[..., C]`, `target` `[...]` (integer). Per element the loss is
    `logsumexp(logits) - logits[target]`; elements whose target equals
    `ignore_index` (default -100) contribute nothing. `mean` (default)
    divides by the number of elements not ignored, `sum` adds, `none` keeps
    the `[...]` tensor (0 where ignored), as torch.nn.functional.cross_entropy.
    A target that is neither `ignore_index` nor a class in `[0, C)` makes
    its element's loss and its logits' gradient NaN (so the reduced loss is
    NaN too): PyTorch raises there, and a compiled step cannot, so the value
    says it, and `kiln pretrain` stops on it.

    ```mlir
    %0 = kiln.cross_entropy %logits, %labels reduction = mean : (tensor<?x?x50257xf32>, tensor<?x?xi64>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$logits, Kiln_IndexTensor:$target,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
                       DefaultValuedAttr<Kiln_LossReduction,
                           "::mlir::kiln::LossReduction::mean">:$reduction);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $target (`ignore_index` `=` $ignore_index^)?
    `reduction` `=` $reduction attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_MSEOp : Kiln_CompositeOp<"mse"> {
  let summary = "mean squared error";
  let description = [{
    `(input - target)^2`, reduced by `reduction` (`mean`, `sum` or `none`);
    shapes are identical.

    ```mlir
    %0 = kiln.mse %pred, %y reduction = mean : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$target,
                       DefaultValuedAttr<Kiln_LossReduction,
                           "::mlir::kiln::LossReduction::mean">:$reduction);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $target `reduction` `=` $reduction attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_KLDivOp : Kiln_CompositeOp<"kl_div"> {
  let summary = "Kullback-Leibler divergence, as torch.nn.functional.kl_div";
  let description = [{
    `input` holds log-probabilities; `target` probabilities (or
    log-probabilities with `log_target`). Pointwise
    `target·(log(target) - input)` (0 where target is 0), reduced by
    `mean` (over all elements), `sum`, `batchmean` (sum / size of dim 0) or
    `none`.

    ```mlir
    %0 = kiln.kl_div %student_logp, %teacher_p reduction = batchmean : (tensor<8x100xf32>, tensor<8x100xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$target,
                       DefaultValuedAttr<Kiln_LossReduction,
                           "::mlir::kiln::LossReduction::mean">:$reduction,
                       UnitAttr:$log_target);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $target `reduction` `=` $reduction (`log_target` $log_target^)?
    attr-dict `:` functional-type(operands, results)
  }];
}

#endif // KILN_TRAINING_OPS_TD
