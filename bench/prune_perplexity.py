#!/usr/bin/env python3
"""What each pruning method costs in held-out perplexity, on a model
pretrained with `kiln pretrain`: the pruning table of docs/performance.md
and docs/pruning.md.

For a run directory and the model config it was trained from, compiles the
dense model and every pruning from the run's checkpoint, calibrates once
where a method needs it (`--mode calibrate --calibration-gram`, `kiln
calibrate` on the run's training split), evaluates each with `kiln eval
--run` (the run's held-out windows), and prints size, zeros, eval loss,
perplexity and the change against the dense model as a Markdown table.

Prunings: METHOD:SPARSITY (`magnitude:0.5`, `wanda:2:4`, `sparsegpt:0.5`,
`heads:0.5`, `ffn:0.5`, `heads+ffn:0.5`), `magnitude:0.5:global` for one
threshold over all layers, `:compressed` after a 2:4 one for the
compressed storage, `:calibrated` after a structured one to rank heads and
channels by their output on calibration text, `dense` for the model as trained; a `+w8` suffix also
quantizes (--quantize w8).

With `--recover STEPS`, each pruning is also fine-tuned: a training
artifact with the same pruning (the dense storage; structured ones from
the smaller config) is trained with `kiln pretrain` for STEPS steps on the
run's corpus with its tokenizer (the held-out split is the run's), and its
final checkpoint evaluated the same way (the "recovered" column).

  bench/prune_perplexity.py --model models/gpt2-reference.json \
      --run ~/.cache/kiln/gpt2-reference/run [--prunings dense,magnitude:0.5,...]
      [--batches 64] [--calibration-batches 32] [--recover STEPS --recover-lr LR]
      [--build build]
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

from run_artifacts import RunArtifacts

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = ("dense,magnitude:0.5,magnitude:0.5:global,wanda:0.5,sparsegpt:0.5,"
           "magnitude:2:4,wanda:2:4,sparsegpt:2:4,sparsegpt:2:4+w8")


def zero_fraction(path):
    """The fraction of zeros over the 2-D f32 tensors of a safetensors file
    that have any share of them (the pruned ones), and how many those are."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    zeros = total = tensors = 0
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32" or len(info["shape"]) != 2:
            continue
        begin, end = info["data_offsets"]
        values = np.frombuffer(data[begin:end], np.float32)
        if (values == 0).mean() > 0.01:
            zeros += int((values == 0).sum())
            total += values.size
            tensors += 1
    return zeros / max(total, 1), tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model config the run was trained from")
    parser.add_argument("--run", required=True, help="a kiln pretrain run directory")
    parser.add_argument("--prunings", default=DEFAULT)
    parser.add_argument("--batches", type=int, default=64, help="held-out calls of kiln eval")
    parser.add_argument("--calibration-batches", type=int, default=32)
    parser.add_argument("--recover", type=int, default=0, help="fine-tuning steps after pruning (0: none)")
    parser.add_argument("--recover-lr", type=float, default=1e-4)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    args = parser.parse_args()
    runs = RunArtifacts(args.build, args.model, args.run)
    bin_dir = runs.bin_dir
    prunings = [p for p in args.prunings.split(",") if p]
    compile_model = runs.compile

    def recover(tmp, name, extra, structured):
        """Fine-tunes the pruned model; returns its recovered artifact."""
        import json as json_module
        with open(os.path.join(args.run, "run.json")) as f:
            run = json_module.load(f)
        train = os.path.join(tmp, name + ".train.kiln")
        config = os.path.join(tmp, name + ".config.json")
        train_extra = [e for e in extra]
        if structured:
            train_extra += ["--pruned-config", config]
        compile_model(train, "--mode", "train", "--batch", str(run["batch"]), "--seq", str(run["seq"]),
                      *train_extra)
        out = os.path.join(tmp, name + ".recovered")
        cmd = [os.path.join(bin_dir, "kiln"), "pretrain", train, "--out", out,
               "--tokenizer", os.path.join(args.run, "tokenizer.model"), "--steps", str(args.recover),
               "--lr", str(args.recover_lr), "--warmup", "0", "--schedule", "constant",
               "--eval-every", "0", "--eval-batches", "1", "--checkpoint-every", "0",
               "--seed", str(run["seed"]), "--val-fraction", str(run["val_fraction"])]
        if run.get("data"):
            cmd += ["--data", run["data"]]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(cmd)}\n{result.stderr}")
        art = os.path.join(tmp, name + ".recovered.kiln")
        compile_model(art, model=config if structured else None,
                      weights=os.path.join(out, "checkpoint.safetensors"))
        return art

    def evaluate(art):
        return runs.evaluate(art, args.batches)

    with tempfile.TemporaryDirectory() as tmp:
        calibration = None
        if any(p.startswith(("wanda", "sparsegpt")) or p.endswith(":calibrated") for p in prunings):
            calibration = runs.calibrate(tmp, args.calibration_batches)
        rows = []
        dense_weights = None
        for pruning in prunings:
            art = os.path.join(tmp, re.sub(r"[^A-Za-z0-9.+-]", "_", pruning) + ".kiln")
            spec, quantize = pruning, None
            if "+w" in pruning:
                spec, quantize = pruning.rsplit("+", 1)
            extra = []
            structured = False
            if spec != "dense":
                method, *rest = spec.split(":")
                scope = rest[-1] == "global"
                compressed = rest[-1] == "compressed"
                calibrated = rest[-1] == "calibrated"
                sparsity = ":".join(rest[:-1] if scope or compressed or calibrated else rest)
                structured = method in ("heads", "ffn", "heads+ffn")
                extra += ["--prune", method, "--sparsity", sparsity]
                if scope:
                    extra.append("--prune-global")
                if method in ("wanda", "sparsegpt") or calibrated:
                    extra += ["--calibration", calibration]
            if quantize:
                extra += ["--quantize", quantize]
            compile_model(art, *(extra + (["--sparse-format", "compressed"]
                                          if spec != "dense" and compressed else [])))
            weights = os.path.join(art, "weights.safetensors")
            if spec == "dense":
                dense_weights = weights
                compressed = False
            size = os.path.getsize(weights)
            zeros, tensors = zero_fraction(weights) if not quantize else (float("nan"), 0)
            loss, ppl, tokens = evaluate(art)
            recovered = None
            if args.recover and spec != "dense" and not quantize and not compressed:
                recovered = evaluate(recover(tmp, re.sub(r"[^A-Za-z0-9.+-]", "_", pruning), extra, structured))[1]
            rows.append((pruning, size, zeros, tensors, loss, ppl, tokens, recovered))
            print(f"{pruning}: loss {loss:.4f}, perplexity {ppl:.2f}"
                  + (f", recovered {recovered:.2f}" if recovered else ""), file=sys.stderr, flush=True)
    dense = next((r for r in rows if r[0] == "dense"), rows[0])
    print(f"\n{args.model}, run {args.run}, {rows[0][6]} held-out tokens "
          f"({args.batches} calls), calibration on {args.calibration_batches} training batches\n")
    recover = f" | after {args.recover} steps" if args.recover else ""
    print(f"| pruning | weights.safetensors | zeros (pruned tensors) | eval loss | perplexity | vs dense{recover} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if args.recover else ""))
    for pruning, size, zeros, tensors, loss, ppl, _, recovered in rows:
        change = "–" if pruning == dense[0] else f"{100 * (ppl / dense[5] - 1):+.2f}%"
        zeros_text = "–" if zeros != zeros or not tensors else f"{100 * zeros:.1f}% ({tensors})"
        after = (f" | {recovered:.2f}" if recovered else " | –") if args.recover else ""
        print(f"| `{pruning}` | {size:,} B | {zeros_text} | {loss:.4f} | {ppl:.2f} | {change}{after} |")


if __name__ == "__main__":
    main()
