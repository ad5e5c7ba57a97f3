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
`+head` (--quantize-lm-head), `:gptq` (--rounding gptq), `:sqALPHA`
(--smoothquant ALPHA); `f32` is the float model.

  bench/quantize_perplexity.py --model models/gpt2-tiny.json --run run/
      [--schemes f32,w8,w4g32,w4g32:gptq,int8-dynamic,int8-dynamic:sq0.5,int8-static]
      [--batches 64] [--calibration-batches 64] [--build build]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

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
    bin_dir = os.path.join(args.build, "bin")
    checkpoint = os.path.join(args.run, "checkpoint.safetensors")
    if not os.path.exists(checkpoint):
        sys.exit(f"{checkpoint}: no checkpoint (is '{args.run}' a kiln pretrain run?)")
    schemes = [s for s in args.schemes.split(",") if s]

    def compile_model(out, *extra):
        cmd = [os.path.join(bin_dir, "kiln-compile"), args.model, "--weights", checkpoint,
               "--target", "cpu", "-o", out, *extra]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(cmd)}\n{result.stderr}")

    def evaluate(art):
        out = subprocess.run([os.path.join(bin_dir, "kiln"), "eval", art, "--run", args.run,
                              "--batches", str(args.batches)], check=True, capture_output=True,
                             text=True).stdout
        m = re.search(r"loss ([0-9.]+), perplexity ([0-9.]+) over (\d+) tokens", out)
        return float(m.group(1)), float(m.group(2)), int(m.group(3))

    with tempfile.TemporaryDirectory() as tmp:
        calibration = None
        if any(":" in s or s.startswith("int8-static") for s in schemes):
            cal = os.path.join(tmp, "calibrate.kiln")
            compile_model(cal, "--mode", "calibrate", "--calibration-gram")
            calibration = os.path.join(tmp, "calibration.safetensors")
            subprocess.run([os.path.join(bin_dir, "kiln"), "calibrate", cal, "--run", args.run,
                            "--batches", str(args.calibration_batches), "--out", calibration],
                           check=True, capture_output=True)
        rows = []
        for scheme in schemes:
            art = os.path.join(tmp, re.sub(r"[^A-Za-z0-9.+-]", "_", scheme) + ".kiln")
            base, *options = scheme.split(":")
            extra = []
            if base.endswith("+head"):
                base = base[:-len("+head")]
                extra.append("--quantize-lm-head")
            if base != "f32":
                extra += ["--quantize", base]
            for option in options:
                if option == "gptq":
                    extra += ["--rounding", "gptq"]
                elif option.startswith("sq"):
                    extra += ["--smoothquant", option[2:]]
                else:
                    sys.exit(f"unknown option ':{option}' in '{scheme}' (gptq, sqALPHA)")
            if options or base == "int8-static":
                extra += ["--calibration", calibration]
            compile_model(art, *extra)
            size = os.path.getsize(os.path.join(art, "weights.safetensors"))
            loss, ppl, tokens = evaluate(art)
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
