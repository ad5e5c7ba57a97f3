#!/usr/bin/env python3
"""GPT-2 small forward: a Kiln artifact against PyTorch eager, ONNX Runtime and
IREE, same weights, same input, same number of threads, in one run.

The Kiln side compiles models/gpt2-small.json for batch x seq with random
weights (written to safetensors by name) and times `kiln bench`. The
PyTorch side is GPT-2 written with torch ops (the reference the e2e tests
use), timed in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from its environment (this machine pins OpenBLAS to slower kernels
through them). ONNX Runtime and IREE run Hugging Face's GPT2LMHeadModel with
the same weights through a torch ONNX export (bench/peers.py; their pinned
versions are installed in build/bench-venv on first use). Every peer's
logits are compared with Kiln's, then the latencies, tokens/s, GFLOP/s, the
ratios and the fraction of the FMA peak are printed.

  bench/gpt2.py [--build build] [--batch 1] [--seq 128] [--threads 2] [--iters 5]
                [--rounds 1] [--statistic p50|min] [--peers pytorch,onnxruntime,iree]
                [--config models/gpt2-small.json] [--compile-flag=--pack-weights ...]

--rounds R times Kiln and every peer R times, alternately (Kiln, then each
peer, R times over), and reports the median of each one's per-round p50,
with the rounds listed: on a machine whose speed drifts (a virtual machine
beside busy neighbours), back-to-back runs compare better than one of
each. The peers' ONNX export and IREE compile happen in the first round.
--statistic min takes each round's fastest call instead of its median (on
such a machine noise only ever adds time).

It exits non-zero when a peer's logits differ from Kiln's by more than
1e-3 of their largest magnitude (the timings would compare different
computations).
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
import peers as peer_runtimes

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
print(sorted(times)[len(times) // 2], min(times))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1,
                        help="time Kiln and the peers this many times, alternately; report medians")
    parser.add_argument("--statistic", default="p50", choices=["p50", "min"],
                        help="per round, the median call (default) or the fastest (noise only adds time)")
    parser.add_argument("--peak", type=float, default=None,
                        help="fp32 FMA peak in GFLOP/s for the %% columns (default: measured, bench/machine.py)")
    parser.add_argument("--attention", default="fused", choices=["fused", "decomposed"],
                        help="kiln-compile --attention (default fused)")
    parser.add_argument("--config", default=os.path.join(HERE, "..", "models", "gpt2-small.json"),
                        help="GPT-2 model config (default models/gpt2-small.json; gpt2-tiny.json for a quick check)")
    parser.add_argument("--peers", default="pytorch,onnxruntime,iree",
                        help="comma-separated peers to run beside Kiln: pytorch, onnxruntime, iree "
                             "(default all three; the last two from build/bench-venv)")
    parser.add_argument("--compile-flag", action="append", default=[],
                        help="an extra kiln-compile flag, such as --pack-weights (repeatable)")
    args = parser.parse_args()
    chosen = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(chosen) - {"pytorch", *peer_runtimes.NAMES})
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}: choose from pytorch, {', '.join(peer_runtimes.NAMES)}")
    machine_line, args.peak = machine.describe(args.threads, args.peak)
    print(machine_line, flush=True)
    args.peak = args.peak or float("nan")
    config = args.config
    with open(config) as f:
        cfg = json.load(f)
    bin_dir = os.path.join(args.build, "bin")
    # The artifact's OpenMP threads, as many as the peers get.
    kiln_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        art = os.path.join(tmp, "gpt2.kiln")
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), config, "--target", "cpu", "-o", art,
                        "--batch", str(args.batch), "--seq", str(args.seq),
                        "--attention", args.attention] + args.compile_flag, check=True)
        manifest = json.load(open(os.path.join(art, "manifest.json")))
        rng = np.random.default_rng(0)
        weights = {}
        for p in manifest["parameters"]:
            scale = 1.0 if p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.02
            base = 1.0 if scale == 1.0 else 0.0
            # In the model's shape (an artifact may store it as panels).
            shape = p.get("packed", {}).get("shape", p["shape"])
            weights[p["name"]] = (base + 0.02 * rng.standard_normal(shape)).astype(np.float32)
        wpath = os.path.join(tmp, "w.safetensors")
        save_safetensors(weights, wpath)
        subprocess.run([os.path.join(bin_dir, "kiln-compile"), config, "--target", "cpu", "-o", art,
                        "--batch", str(args.batch), "--seq", str(args.seq),
                        "--attention", args.attention, "--weights", wpath] + args.compile_flag, check=True)
        ids = rng.integers(0, cfg["vocab_size"], (args.batch, args.seq)).astype(np.int64)
        np.save(os.path.join(tmp, "ids.npy"), ids)

        subprocess.run([os.path.join(bin_dir, "kiln"), "run", art, "--input", f"input_ids={tmp}/ids.npy",
                        "--output-dir", os.path.join(tmp, "out")], env=kiln_env, check=True, capture_output=True)
        kiln_logits = np.load(os.path.join(tmp, "out", "logits.npy"))

        env = machine.peer_env()
        env["OMP_NUM_THREADS"] = str(args.threads)
        others = [p for p in chosen if p in peer_runtimes.NAMES]
        rounds = {}  # name -> seconds per round
        results = {}
        for _ in range(args.rounds):
            out = subprocess.run([os.path.join(bin_dir, "kiln"), "bench", art, "--input", f"input_ids={tmp}/ids.npy",
                                  "--warmup", "1", "--iters", str(args.iters)], env=kiln_env, check=True,
                                 capture_output=True, text=True).stdout
            rounds.setdefault("kiln", []).append(
                float(re.search(args.statistic + r"[^0-9]*([0-9.]+)", out).group(1)) / 1e3)
            if "pytorch" in chosen:
                torch_out = os.path.join(tmp, "torch.npy")
                peer = subprocess.run(["/usr/bin/python3", "-c", PEER, os.path.join(HERE, "..", "python"), wpath,
                                       os.path.join(tmp, "ids.npy"), config, str(args.threads), str(args.iters),
                                       torch_out],
                                      env=dict(env, PYTHONPATH=os.path.join(HERE, "..", "test", "e2e")),
                                      check=True, capture_output=True, text=True)
                results["pytorch eager"] = {"logits": np.load(torch_out)}
                median, fastest = map(float, peer.stdout.strip().splitlines()[-1].split())
                rounds.setdefault("pytorch eager", []).append(fastest if args.statistic == "min" else median)
            if others:
                for name, result in peer_runtimes.run(args.build, os.path.join(HERE, "..", "python"), wpath,
                                                      os.path.join(tmp, "ids.npy"), config, args.threads,
                                                      args.iters, tmp, others, env).items():
                    median, fastest = result.pop("seconds"), result.pop("min_seconds")
                    rounds.setdefault(name, []).append(fastest if args.statistic == "min" else median)
                    results.setdefault(name, result)
        seconds_of = {name: float(np.median(values)) for name, values in rounds.items()}
        kiln_s = seconds_of["kiln"]
        for name, result in results.items():
            result["seconds"] = seconds_of[name]

    flops = manifest["entry_points"][0]["cost"]["flops"]
    tokens = args.batch * args.seq
    print(f"{os.path.basename(config)} forward, batch {args.batch}, seq {args.seq}, {args.threads} threads")
    scale = float(np.abs(kiln_logits).max())
    disagree = []
    for name, result in results.items():
        diff = float(np.abs(kiln_logits - result["logits"]).max())
        if not diff <= 1e-3 * scale:
            disagree.append(name)
        extra = f" {result['version']}" if "version" in result else ""
        compile_note = f", compiled in {result['compile_seconds']:.0f} s" if "compile_seconds" in result else ""
        print(f"  {name}{extra}: max |logit difference| from kiln {diff:.2e}{compile_note}")
    print(f"{'':>14} {'latency ms':>11} {'tokens/s':>9} {'GFLOP/s':>8} {'% peak':>7} {'kiln speed-up':>13}")
    for name, seconds in [("kiln", kiln_s)] + [(n, r["seconds"]) for n, r in results.items()]:
        rate = flops / seconds / 1e9
        print(f"{name:>14} {seconds * 1e3:>11.1f} {tokens / seconds:>9.1f} {rate:>8.2f} "
              f"{100 * rate / args.peak:>6.2f}% {seconds / kiln_s:>12.3f}x")
    if args.rounds > 1:
        print(f"(medians of {args.rounds} alternated rounds; {args.statistic} ms per round:)")
        for name, values in rounds.items():
            print(f"{name:>14} " + " ".join(f"{v * 1e3:.1f}" for v in values))
    if disagree:
        sys.exit(f"error: the logits of {', '.join(disagree)} differ from kiln's by more than 1e-3 of "
                 f"their largest magnitude ({scale:.3g}): the timings compare different computations")


if __name__ == "__main__":
    main()
