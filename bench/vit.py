#!/usr/bin/env python3
"""ViT image tower forward: a Kiln artifact against PyTorch eager, same
weights, same images, same number of threads, in one run.

Compiles models/vit-base.json (ViT-B/16, 224x224, HF ViTModel with the
pooler) for each --batches size with random weights (written to
safetensors by name), times `kiln bench`, and runs the same forward
written with torch ops (conv2d patch embedding, the pre-norm layers, the
pooler) in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from its environment (this machine pins OpenBLAS to slower kernels
through them), timed as the median of --iters calls after one warm-up.
Both last_hidden_state outputs are compared first, then latencies,
images/s, GFLOP/s, the fraction of the FMA peak and Kiln's speed-up are
printed.

  bench/vit.py [--build build] [--batches 1,8] [--threads 2] [--iters 5]
               [--config models/vit-base.json]

It exits non-zero when the outputs differ by more than 1e-3 of their
largest magnitude (the timings would compare different computations).
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
import json, math, sys, time
import numpy as np, torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from kiln.io import load_safetensors
weights_path, pixels_path, cfg_path, threads, iters, out_path = sys.argv[2:8]
torch.set_num_threads(int(threads))
w = {k: torch.from_numpy(v) for k, v in load_safetensors(weights_path).items()}
x = torch.from_numpy(np.load(pixels_path))
cfg = json.load(open(cfg_path))
E, H, P = cfg["hidden_size"], cfg["num_attention_heads"], cfg["patch_size"]
eps, D = cfg.get("layer_norm_eps", 1e-12), cfg["hidden_size"] // cfg["num_attention_heads"]

def forward(x):
    p = "embeddings.patch_embeddings.projection."
    h = F.conv2d(x, w[p + "weight"], w[p + "bias"], stride=P).flatten(2).transpose(1, 2)
    h = torch.cat([w["embeddings.cls_token"].expand(h.shape[0], -1, -1), h], 1)
    h = h + w["embeddings.position_embeddings"]
    B, S, _ = h.shape
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, name: F.linear(t, w[p + name + ".weight"], w[p + name + ".bias"])
        n = F.layer_norm(h, (E,), w[p + "layernorm_before.weight"], w[p + "layernorm_before.bias"], eps)
        q, k, v = (lin(n, "attention.attention." + m).view(B, S, H, D).transpose(1, 2)
                   for m in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D), -1) @ v
        h = h + lin(a.transpose(1, 2).reshape(B, S, E), "attention.output.dense")
        n = F.layer_norm(h, (E,), w[p + "layernorm_after.weight"], w[p + "layernorm_after.bias"], eps)
        h = h + lin(F.gelu(lin(n, "intermediate.dense")), "output.dense")
    h = F.layer_norm(h, (E,), w["layernorm.weight"], w["layernorm.bias"], eps)
    return h, torch.tanh(F.linear(h[:, 0], w["pooler.dense.weight"], w["pooler.dense.bias"]))

with torch.no_grad():
    out, _ = forward(x)
    times = []
    for _ in range(int(iters)):
        t = time.perf_counter(); forward(x); times.append(time.perf_counter() - t)
np.save(out_path, out.numpy())
print(sorted(times)[len(times) // 2])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--peak", type=float, default=None,
                        help="fp32 FMA peak in GFLOP/s for the %% columns (default: measured)")
    parser.add_argument("--config", default=os.path.join(HERE, "..", "models", "vit-base.json"))
    args = parser.parse_args()
    machine_line, args.peak = machine.describe(args.threads, args.peak)
    print(machine_line, flush=True)
    args.peak = args.peak or float("nan")
    with open(args.config) as f:
        cfg = json.load(f)
    bin_dir = os.path.join(args.build, "bin")
    kiln_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    peer_env = machine.peer_env()
    peer_env["OMP_NUM_THREADS"] = str(args.threads)
    rows = []
    disagree = []
    with tempfile.TemporaryDirectory() as tmp:
        wpath = os.path.join(tmp, "w.safetensors")
        for batch in [int(b) for b in args.batches.split(",") if b]:
            art = os.path.join(tmp, f"vit-{batch}.kiln")
            compile_cmd = [os.path.join(bin_dir, "kiln-compile"), args.config, "--target", "cpu",
                           "-o", art, "--batch", str(batch)]
            if not os.path.exists(wpath):
                subprocess.run(compile_cmd, check=True, capture_output=True)
                manifest = json.load(open(os.path.join(art, "manifest.json")))
                rng = np.random.default_rng(0)
                weights = {}
                for p in manifest["parameters"]:
                    norm = p["name"].endswith(("layernorm_before.weight", "layernorm_after.weight",
                                               "layernorm.weight"))
                    scale = 1.0 if "embeddings" in p["name"] and "projection" not in p["name"] else 0.02
                    # In the model's shape (an artifact may store it as panels).
                    shape = p.get("packed", {}).get("shape", p["shape"])
                    weights[p["name"]] = ((1.0 if norm else 0.0) + scale *
                                          rng.standard_normal(shape)).astype(np.float32)
                save_safetensors(weights, wpath)
            subprocess.run(compile_cmd + ["--weights", wpath], check=True, capture_output=True)
            manifest = json.load(open(os.path.join(art, "manifest.json")))
            flops = manifest["entry_points"][0]["cost"]["flops"]
            pixels = np.random.default_rng(batch).standard_normal(
                (batch, cfg.get("num_channels", 3), cfg["image_size"], cfg["image_size"])).astype(np.float32)
            xpath = os.path.join(tmp, "x.npy")
            np.save(xpath, pixels)
            out = subprocess.run([os.path.join(bin_dir, "kiln"), "bench", art, "--input", f"pixel_values={xpath}",
                                  "--warmup", "1", "--iters", str(args.iters)], env=kiln_env, check=True,
                                 capture_output=True, text=True).stdout
            kiln_s = float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1)) / 1e3
            subprocess.run([os.path.join(bin_dir, "kiln"), "run", art, "--input", f"pixel_values={xpath}",
                            "--output-dir", os.path.join(tmp, "out")], env=kiln_env, check=True,
                           capture_output=True)
            kiln_out = np.load(os.path.join(tmp, "out", "last_hidden_state.npy"))
            torch_out = os.path.join(tmp, "torch.npy")
            peer = subprocess.run(["/usr/bin/python3", "-c", PEER, os.path.join(HERE, "..", "python"), wpath,
                                   xpath, args.config, str(args.threads), str(args.iters), torch_out],
                                  env=peer_env, check=True, capture_output=True, text=True)
            torch_s = float(peer.stdout.strip().splitlines()[-1])
            reference = np.load(torch_out)
            scale = float(np.abs(reference).max())
            diff = float(np.abs(kiln_out - reference).max())
            if not diff <= 1e-3 * scale:
                disagree.append(batch)
            rows.append((batch, flops, kiln_s, torch_s, diff))
    print(f"{os.path.basename(args.config)} forward, {args.threads} threads")
    print(f"{'batch':>5} {'':>8} {'latency ms':>11} {'images/s':>9} {'GFLOP/s':>8} {'% peak':>7} "
          f"{'kiln speed-up':>13} {'max |diff|':>10}")
    for batch, flops, kiln_s, torch_s, diff in rows:
        for name, seconds in (("kiln", kiln_s), ("pytorch", torch_s)):
            rate = flops / seconds / 1e9
            print(f"{batch:>5} {name:>8} {seconds * 1e3:>11.1f} {batch / seconds:>9.2f} {rate:>8.2f} "
                  f"{100 * rate / args.peak:>6.2f}% {seconds / kiln_s:>12.3f}x"
                  f"{'' if name == 'kiln' else f' {diff:>10.2e}'}")
    if disagree:
        sys.exit(f"error: the outputs at batch {disagree} differ from PyTorch's by more than 1e-3 of "
                 "their largest magnitude: the timings compare different computations")


if __name__ == "__main__":
    main()
