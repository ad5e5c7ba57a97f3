#!/usr/bin/env python3
"""GPT-2 small forward: a Kiln artifact against PyTorch eager, same weights,
same input, same number of threads, in one run.

The Kiln side compiles models/gpt2-small.json for batch x seq with random
weights (written to safetensors by name) and times `kiln bench`. The
PyTorch side is GPT-2 written with torch ops (the reference the e2e tests
use), timed in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from its environment (this machine pins OpenBLAS to slower kernels
through them). Both outputs are compared, then the latencies, tokens/s,
GFLOP/s, the ratio and the fraction of the FMA peak are printed.

  bench/gpt2.py [--build build] [--batch 1] [--seq 128] [--threads 2] [--iters 5]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

import machine

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))
from kiln.io import save_safetensors  # noqa: E402

PEER = r"""
import json, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from kiln.io import load_safetensors
from test_models import gpt2_reference
weights_path, ids_path, cfg_path, threads, iters, out_path = sys.argv[2:8]
torch.set_num_threads(int(threads))
w = load_safetensors(weights_path)
ids = np.load(ids_path)
cfg = json.load(open(cfg_path))
with torch.no_grad():
    logits = gpt2_reference(w, ids, cfg)
    times = []
    for _ in range(int(iters)):
        t = time.perf_counter(); gpt2_reference(w, ids, cfg); times.append(time.perf_counter() - t)
np.save(out_path, logits)
print(sorted(times)[len(times) // 2])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--peak", type=float, default=None,
                        help="fp32 FMA peak in GFLOP/s for the %% columns (default: measured, bench/machine.py)")
    parser.add_argument("--attention", default="fused", choices=["fused", "decomposed"],
                        help="kiln-compile --attention (default fused)")
    args = parser.parse_args()
    machine_line, args.peak = machine.describe(args.threads, args.peak)
    print(machine_line, flush=True)
    args.peak = args.peak or float("nan")
    config = os.path.join(HERE, "..", "models", "gpt2-small.json")
    with open(config) as f:
        cfg = json.load(f)
    bin_dir = os.path.join(args.build, "bin")
    with tempfile.TemporaryDirectory() as tmp:
        art = os.path.join(tmp, "gpt2.kiln")
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), config, "--target", "cpu", "-o", art,
                        "--batch", str(args.batch), "--seq", str(args.seq),
                        "--attention", args.attention], check=True)
        manifest = json.load(open(os.path.join(art, "manifest.json")))
        rng = np.random.default_rng(0)
        weights = {}
        for p in manifest["parameters"]:
            scale = 1.0 if p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.02
            base = 1.0 if scale == 1.0 else 0.0
            weights[p["name"]] = (base + 0.02 * rng.standard_normal(p["shape"])).astype(np.float32)
        wpath = os.path.join(tmp, "w.safetensors")
        save_safetensors(weights, wpath)
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), config, "--target", "cpu", "-o", art,
                        "--batch", str(args.batch), "--seq", str(args.seq),
                        "--attention", args.attention, "--weights", wpath], check=True)
        ids = rng.integers(0, cfg["vocab_size"], (args.batch, args.seq)).astype(np.int64)
        np.save(os.path.join(tmp, "ids.npy"), ids)

        out = subprocess.run([os.path.join(bin_dir, "kiln"), "bench", art, "--input", f"input_ids={tmp}/ids.npy",
                              "--warmup", "1", "--iters", str(args.iters)], check=True, capture_output=True, text=True).stdout
        kiln_s = float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1)) / 1e3
        subprocess.run([os.path.join(bin_dir, "kiln"), "run", art, "--input", f"input_ids={tmp}/ids.npy",
                        "--output-dir", os.path.join(tmp, "out")], check=True, capture_output=True)
        kiln_logits = np.load(os.path.join(tmp, "out", "logits.npy"))

        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env["OMP_NUM_THREADS"] = str(args.threads)
        torch_out = os.path.join(tmp, "torch.npy")
        peer = subprocess.run(["/usr/bin/python3", "-c", PEER, os.path.join(HERE, "..", "python"), wpath,
                               os.path.join(tmp, "ids.npy"), config, str(args.threads), str(args.iters), torch_out],
                              env=dict(env, PYTHONPATH=os.path.join(HERE, "..", "test", "e2e")),
                              check=True, capture_output=True, text=True)
        torch_s = float(peer.stdout.strip().splitlines()[-1])
        diff = float(np.abs(kiln_logits - np.load(torch_out)).max())

    flops = manifest["entry_points"][0]["cost"]["flops"]
    tokens = args.batch * args.seq
    print(f"gpt2-small forward, batch {args.batch}, seq {args.seq}, {args.threads} threads; "
          f"max |logit difference| {diff:.2e}")
    print(f"{'':>14} {'latency ms':>11} {'tokens/s':>9} {'GFLOP/s':>8} {'% peak':>7}")
    for name, seconds in (("kiln", kiln_s), ("pytorch eager", torch_s)):
        rate = flops / seconds / 1e9
        print(f"{name:>14} {seconds * 1e3:>11.1f} {tokens / seconds:>9.1f} {rate:>8.2f} {100 * rate / args.peak:>6.2f}%")
    print(f"speed-up of kiln over pytorch eager: {torch_s / kiln_s:.3f}x")


if __name__ == "__main__":
    main()
