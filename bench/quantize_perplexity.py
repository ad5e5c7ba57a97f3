#!/usr/bin/env python3
"""What each quantization scheme costs in held-out perplexity, on a model
pretrained with `kiln pretrain`: the table of docs/quantization.md.

For a run directory (its checkpoint, tokenizer splits and windows) and the
model config it was trained from, compiles the float model and every
scheme from the run's checkpoint, calibrates once where a scheme needs it
(`--mode calibrate --calibration-gram`, `kiln calibrate` on the run's
training split), evaluates each with `kiln eval --run` (the run's held-out
windows), and prints size, eval loss, perplexity and the change against
f32 as a Markdown table.

Schemes: a `kiln-compile --quantize` scheme, optionally with suffixes:
`+head` (--quantize-lm-head), `:gptq` and `:awq` (--rounding), `:sqALPHA`
(--smoothquant ALPHA), `:pctP` and `:mse` (int8-static's ranges from
`kiln calibrate --range percentile --percentile P` or `--range mse`, on a
`--calibration-histogram` artifact); `f32` is the float model.

  bench/quantize_perplexity.py --model models/gpt2-tiny.json --run run/
      [--schemes f32,w8,w4g32,w4g32:gptq,int8-dynamic,int8-dynamic:sq0.5,int8-static,int8-static:pct99.99,int8-static:mse]
      [--batches 64] [--calibration-batches 64] [--build build]
"""

import argparse
import os
import re
import sys
import tempfile

from run_artifacts import RunArtifacts

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = "f32,w8,w4g128,w4g32,w4g32:gptq,int8-dynamic,int8-dynamic:sq0.5,int8-dynamic+head,int8-static"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model config the run was trained from")
    parser.add_argument("--run", required=True, help="a kiln pretrain run directory")
    parser.add_argument("--schemes", default=DEFAULT)
    parser.add_argument("--batches", type=int, default=64, help="held-out calls of kiln eval")
    parser.add_argument("--calibration-batches", type=int, default=64)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    args = parser.parse_args()
    runs = RunArtifacts(args.build, args.model, args.run)
    schemes = [s for s in args.schemes.split(",") if s]

    with tempfile.TemporaryDirectory() as tmp:
        calibration = None
        if any(":" in s or s.startswith("int8-static") for s in schemes):
            calibration = runs.calibrate(tmp, args.calibration_batches)
        rows = []
        for scheme in schemes:
            art = os.path.join(tmp, re.sub(r"[^A-Za-z0-9.+-]", "_", scheme) + ".kiln")
            base, *options = scheme.split(":")
            extra = []
            file = calibration
            if base.endswith("+head"):
                base = base[:-len("+head")]
                extra.append("--quantize-lm-head")
            if base != "f32":
                extra += ["--quantize", base]
            for option in options:
                if option in ("gptq", "awq"):
                    extra += ["--rounding", option]
                elif option.startswith("sq"):
                    extra += ["--smoothquant", option[2:]]
                elif option.startswith("pct"):
                    file = runs.calibrate(tmp, args.calibration_batches,
                                          ("--range", "percentile", "--percentile", option[3:]))
                elif option == "mse":
                    file = runs.calibrate(tmp, args.calibration_batches, ("--range", "mse"))
                else:
                    sys.exit(f"unknown option ':{option}' in '{scheme}' (gptq, awq, sqALPHA, pctP, mse)")
            if options or base == "int8-static":
                extra += ["--calibration", file]
            runs.compile(art, *extra)
            size = os.path.getsize(os.path.join(art, "weights.safetensors"))
            loss, ppl, tokens = runs.evaluate(art, args.batches)
            rows.append((scheme, size, loss, ppl, tokens))
            print(f"{scheme}: loss {loss:.4f}, perplexity {ppl:.2f}", file=sys.stderr, flush=True)
    f32 = next((r for r in rows if r[0] == "f32"), rows[0])
    print(f"\n{args.model}, run {args.run}, {rows[0][4]} held-out tokens "
          f"({args.batches} calls), calibration on {args.calibration_batches} training batches\n")
    print("| scheme | weights.safetensors | of f32 | eval loss | perplexity | vs f32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for scheme, size, loss, ppl, _ in rows:
        change = "–" if scheme == f32[0] else f"{100 * (ppl / f32[3] - 1):+.2f}%"
        print(f"| `{scheme}` | {size:,} B | {size / f32[1]:.2f} | {loss:.4f} | {ppl:.2f} | {change} |")


if __name__ == "__main__":
    main()
