#!/usr/bin/env python3
"""Quantized or pruned GPT-2 against Kiln f32: artifact sizes and forward
latency per weight scheme, same weights, same inputs, in one run.

Compiles models/gpt2-small.json (or --config) for each scheme (f32 and
`kiln-compile --quantize` for the others) from one set of random weights,
at two input shapes (1 x 1, a decoding step without a KV cache, and 1 x
--seq), checks that every quantized artifact's logits follow the f32 ones
(correlation above 0.9: random weights are not a model, so this only
catches a broken artifact; perplexity is kiln eval's job,
docs/quantization.md), then times `kiln bench` in
interleaved rounds (f32, w8, ..., f32, w8, ...; the median of the rounds'
p50s, so a machine whose speed drifts is not read as a scheme's effect),
and prints the sizes, latencies and the ratios against f32.

A scheme `prune:METHOD[:SPARSITY][:compressed]` prunes instead
(`prune:heads+ffn:0.5`, `prune:2:4`, `prune:2:4:compressed`,
`prune:magnitude:0.5`): docs/pruning.md. int8-static is calibrated with
`kiln calibrate` on random token ids. A pruned model computes another
function by design, so its logits are not compared.

  bench/quantize.py [--build build] [--schemes w8,w4g128,int8-dynamic+head]
                    [--seq 128]
                    [--threads 2] [--iters 10] [--rounds 3]
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

import machine
from gpt2_weights import random_gpt2_weights
from schemes import compile_flags

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from kiln.io import save_safetensors  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--config", default=os.path.join(HERE, "..", "models", "gpt2-small.json"))
    parser.add_argument("--schemes", default="w8,w4g128,int8-dynamic",
                        help="kiln-compile --quantize schemes (f32 always runs); SCHEME+head also "
                             "quantizes the (tied) LM head, --quantize-lm-head")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    schemes = ["f32"] + [s for s in args.schemes.split(",") if s]
    line, _ = machine.describe(args.threads, None)
    print(line, flush=True)
    bin_dir = os.path.join(args.build, "bin")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with open(args.config) as f:
        cfg = json.load(f)

    def compile_one(tmp, scheme, seq, weights=None):
        art = os.path.join(tmp, f"{scheme}-{seq}.kiln")
        cmd = [os.path.join(bin_dir, "kiln-compile"), args.config, "--target", "cpu", "-o", art,
               "--batch", "1", "--seq", str(seq)]
        if weights:
            cmd += ["--weights", weights]
        cmd += compile_flags(scheme)
        if scheme.startswith("int8-static"):
            cmd += ["--calibration", calibration]
        subprocess.run(cmd, check=True, capture_output=True)
        return art

    def calibrate(tmp, weights, rng):
        """int8-static's calibration file: kiln calibrate over random token
        ids (random weights: the scales only have to be plausible)."""
        art = os.path.join(tmp, "calibrate.kiln")
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), args.config, "--target", "cpu", "-o", art,
                        "--weights", weights, "--mode", "calibrate"], check=True, capture_output=True)
        ids = rng.integers(0, cfg["vocab_size"], 4 * args.seq + 1)
        tokens = os.path.join(tmp, "calibration.tokens")
        with open(tokens, "wb") as f:
            f.write(b"KILNTOK1" + struct.pack("<IIQQ", 1, 4, len(ids), cfg["vocab_size"]))
            f.write(ids.astype(np.uint32).tobytes())
        out = os.path.join(tmp, "calibration.safetensors")
        subprocess.run([os.path.join(bin_dir, "kiln"), "calibrate", art, "--tokens", tokens, "--batches", "2",
                        "--batch", "1", "--seq", str(args.seq), "--out", out], env=env, check=True,
                       capture_output=True)
        return out

    calibration = None

    with tempfile.TemporaryDirectory() as tmp:
        # One set of weights for every scheme: N(0, 0.02), norm gains near 1.
        first = compile_one(tmp, "f32", 1)
        manifest = json.load(open(os.path.join(first, "manifest.json")))
        weights = random_gpt2_weights(manifest, seed=0)
        rng = np.random.default_rng(1)
        wpath = os.path.join(tmp, "w.safetensors")
        save_safetensors(weights, wpath)
        if any(s.startswith("int8-static") for s in schemes):
            calibration = calibrate(tmp, wpath, rng)
        shapes = [1, args.seq]
        arts, sizes = {}, {}
        for scheme in schemes:
            for seq in shapes:
                arts[scheme, seq] = compile_one(tmp, scheme, seq, wpath)
            sizes[scheme] = os.path.getsize(os.path.join(arts[scheme, shapes[0]], "weights.safetensors"))
        inputs = {}
        for seq in shapes:
            inputs[seq] = os.path.join(tmp, f"ids{seq}.npy")
            np.save(inputs[seq], rng.integers(0, cfg["vocab_size"], (1, seq)).astype(np.int64))

        # Logits close to f32's (catches a broken artifact, not accuracy).
        logits = {}
        for scheme in schemes:
            out = os.path.join(tmp, "out-" + scheme)
            subprocess.run([os.path.join(bin_dir, "kiln"), "run", arts[scheme, args.seq], "--input",
                            f"input_ids={inputs[args.seq]}", "--output-dir", out], env=env, check=True,
                           capture_output=True)
            logits[scheme] = np.load(os.path.join(out, "logits.npy"))
        for scheme in [s for s in schemes[1:] if not s.startswith("prune:")]:
            diff = float(np.abs(logits[scheme] - logits["f32"]).max())
            corr = float(np.corrcoef(logits[scheme].ravel(), logits["f32"].ravel())[0, 1])
            print(f"{scheme}: logits within {diff:.3g} of f32, correlation {corr:.4f}")
            if not corr > 0.9:
                sys.exit(f"{scheme}: logits do not follow f32's (correlation {corr:.4f})")

        latency = {key: [] for key in arts}
        for _ in range(args.rounds):
            for seq in shapes:
                for scheme in schemes:
                    out = subprocess.run([os.path.join(bin_dir, "kiln"), "bench", arts[scheme, seq], "--input",
                                          f"input_ids={inputs[seq]}", "--warmup", "2", "--iters", str(args.iters)],
                                         env=env, check=True, capture_output=True, text=True).stdout
                    latency[scheme, seq].append(float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1)))

    median = {key: sorted(v)[len(v) // 2] for key, v in latency.items()}
    print(f"\n{os.path.basename(args.config)}, batch 1, {args.threads} threads, median of {args.rounds} "
          f"rounds of {args.iters} calls (p50 each)")
    print(f"| scheme | weights.safetensors | size vs f32 | 1 x 1 ms | speed-up | 1 x {args.seq} ms | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scheme in schemes:
        row = [scheme, f"{sizes[scheme] / 1e6:.1f} MB", f"{sizes[scheme] / sizes['f32']:.2f}"]
        for seq in shapes:
            row += [f"{median[scheme, seq]:.1f}", f"{median['f32', seq] / median[scheme, seq]:.2f}x"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
