#!/usr/bin/env python3
"""GPT-2 small training step (forward, backward, AdamW): a Kiln training
artifact against PyTorch eager, same weights, same batch, same threads, in
one run.

The Kiln side compiles models/gpt2-small.json with --mode train for batch x
seq with random weights and times `kiln bench --entry train_step` (each
call is a real step: parameters and optimizer state are updated in place).
The PyTorch side is GPT-2 written with torch ops (test_training.gpt2_forward)
with torch.optim.AdamW and clip_grad_norm_, timed in a child process with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment (this
machine pins OpenBLAS to slower kernels through them). The first step's
loss is compared, then step times, tokens/s, GFLOP/s (the manifest's
train_step cost: forward + backward + update), the ratio and the MFU
against the FMA peak are printed.

  bench/train_gpt2.py [--build build] [--batch 4] [--seq 128] [--threads 2] [--iters 5]
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
from kiln.io import save_safetensors  # noqa: E402

PEER = r"""
import json, sys, time
import numpy as np, torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from kiln.io import load_safetensors
from test_training import gpt2_forward
weights_path, ids_path, targets_path, cfg_path, threads, iters = sys.argv[2:8]
torch.set_num_threads(int(threads))
w = load_safetensors(weights_path)
params = {k: torch.tensor(v, requires_grad=True) for k, v in w.items()}
decay = [p for p in params.values() if p.dim() >= 2]
rest = [p for p in params.values() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-4)
ids = torch.from_numpy(np.load(ids_path))
targets = torch.from_numpy(np.load(targets_path))
cfg = json.load(open(cfg_path))
def step():
    opt.zero_grad(set_to_none=True)
    logits = gpt2_forward(params, ids, cfg)
    loss = F.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), targets.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
    opt.step()
    return float(loss)
first = step()
times = []
for _ in range(int(iters)):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(first)
print(sorted(times)[len(times) // 2])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--peak", type=float, default=None,
                        help="fp32 FMA peak in GFLOP/s for the %% columns (default: measured, bench/machine.py)")
    args = parser.parse_args()
    machine_line, args.peak = machine.describe(args.threads, args.peak)
    print(machine_line, flush=True)
    args.peak = args.peak or float("nan")
    config = os.path.join(HERE, "..", "models", "gpt2-small.json")
    with open(config) as f:
        cfg = json.load(f)
    bin_dir = os.path.join(args.build, "bin")
    # The artifact's OpenMP threads, as many as the peers get.
    kiln_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    shape = ["--batch", str(args.batch), "--seq", str(args.seq)]
    with tempfile.TemporaryDirectory() as tmp:
        art = os.path.join(tmp, "train.kiln")
        compile_cmd = [os.path.join(bin_dir, "kiln-compile"), config, "--mode", "train", "--target", "cpu",
                       "-o", art, *shape]
        subprocess.run(compile_cmd, check=True)
        manifest = json.load(open(os.path.join(art, "manifest.json")))
        rng = np.random.default_rng(0)
        weights = {}
        for p in manifest["parameters"]:
            if p.get("state"):
                continue
            norm = p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
            weights[p["name"]] = ((1.0 if norm else 0.0) + 0.02 * rng.standard_normal(p["shape"])).astype(np.float32)
        wpath = os.path.join(tmp, "w.safetensors")
        save_safetensors(weights, wpath)
        subprocess.run(compile_cmd + ["--weights", wpath], check=True)
        tokens = rng.integers(0, cfg["vocab_size"], (args.batch, args.seq + 1)).astype(np.int64)
        np.save(os.path.join(tmp, "ids.npy"), tokens[:, :-1])
        np.save(os.path.join(tmp, "targets.npy"), tokens[:, 1:])
        np.save(os.path.join(tmp, "lr.npy"), np.array(1e-4, dtype=np.float32))
        inputs = ["--input", f"input_ids={tmp}/ids.npy", "--input", f"targets={tmp}/targets.npy",
                  "--input", f"lr={tmp}/lr.npy"]

        first = subprocess.run([os.path.join(bin_dir, "kiln"), "run", art, "--entry", "train_step", *inputs], env=kiln_env,
                               check=True, capture_output=True, text=True).stdout
        kiln_loss = float(re.search(r"loss: F32 \[\] = (\S+)", first).group(1))
        out = subprocess.run([os.path.join(bin_dir, "kiln"), "bench", art, "--entry", "train_step", *inputs,
                              "--warmup", "1", "--iters", str(args.iters)], env=kiln_env,
                             check=True, capture_output=True, text=True).stdout
        kiln_s = float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1)) / 1e3

        env = machine.peer_env()
        env["OMP_NUM_THREADS"] = str(args.threads)
        peer = subprocess.run(["/usr/bin/python3", "-c", PEER, os.path.join(HERE, "..", "python"), wpath,
                               os.path.join(tmp, "ids.npy"), os.path.join(tmp, "targets.npy"), config,
                               str(args.threads), str(args.iters)],
                              env=dict(env, PYTHONPATH=os.path.join(HERE, "..", "test", "e2e")),
                              check=True, capture_output=True, text=True)
        torch_loss, torch_s = (float(v) for v in peer.stdout.strip().splitlines()[-2:])

    entry = next(e for e in manifest["entry_points"] if e["name"] == "train_step")
    flops = entry["cost"]["flops"]
    tokens = args.batch * args.seq
    print(f"gpt2-small train_step (forward, backward, clip, AdamW), batch {args.batch}, seq {args.seq}, "
          f"{args.threads} threads; first-step loss kiln {kiln_loss:.6f} torch {torch_loss:.6f}; "
          f"{flops / 1e9:.1f} GFLOP per step")
    print(f"{'':>14} {'step ms':>9} {'tokens/s':>9} {'GFLOP/s':>8} {'MFU':>7}")
    for name, seconds in (("kiln", kiln_s), ("pytorch eager", torch_s)):
        rate = flops / seconds / 1e9
        print(f"{name:>14} {seconds * 1e3:>9.1f} {tokens / seconds:>9.1f} {rate:>8.2f} {100 * rate / args.peak:>6.2f}%")
    print(f"speed-up of kiln over pytorch eager: {torch_s / kiln_s:.3f}x")


if __name__ == "__main__":
    main()
