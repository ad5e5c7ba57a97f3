#!/usr/bin/env python3
"""Decoding speed: one new token with a KV cache against rerunning the
context, and against PyTorch with Hugging Face's past_key_values, same
weights, in one run.

Compiles models/gpt2-small.json (or --config) with `kiln-compile --kv-cache
SLOTS` for each scheme (f32, `--quantize` and `--prune` ones, as
bench/schemes.py names them) from one set of random
weights, checks that decode_step's logits equal forward's at the same
position (so the timed step computes the right thing), then times, for each
batch size and context length P (tokens already in the cache):

  - Kiln decode_step: one token per row at position P (`kiln bench`; every
    call rewrites slot P, so the cache stays at P tokens);
  - Kiln without a cache: forward on the P + 1 tokens, what `kiln generate
    --no-cache` pays per token;
  - PyTorch eager (Debian's torch, transformers' GPT2LMHeadModel loaded with
    the same weights, `torch.set_num_threads(--threads)`): model(token,
    past_key_values=P cached tokens), and the full forward on P + 1 tokens.

Prints tokens/s (batch / p50 latency) and the ratios; rounds are interleaved
and the median of their p50s kept.

  bench/decode.py [--build build] [--schemes w8,w4g128] [--batches 1,8]
                  [--contexts 128,480] [--slots 512] [--threads 2]
                  [--iters 10] [--rounds 3] [--no-torch]
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
import peers
from gpt2_weights import random_gpt2_weights
from schemes import compile_flags

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
from kiln.io import save_safetensors  # noqa: E402

# Runs in the transformers venv: argv = weights config threads iters batches contexts out.json
TORCH = r"""
import json, statistics, sys, time
import numpy as np, torch, transformers
sys.path.insert(0, sys.argv[1])
from kiln.io import load_safetensors
weights, cfg_path, threads, iters, batches, contexts, out = sys.argv[2:9]
threads, iters = int(threads), int(iters)
batches = [int(b) for b in batches.split(",")]
contexts = [int(c) for c in contexts.split(",")]
cfg = json.load(open(cfg_path))
torch.set_num_threads(threads)
""" + peers.HF_GPT2 + r"""
model.load_state_dict({k: torch.from_numpy(v) for k, v in load_safetensors(weights).items()}, strict=False)
model.tie_weights()
heads, hd = cfg["n_head"], cfg["n_embd"] // cfg["n_head"]

def median(call):
    call()
    times = []
    for _ in range(iters):
        t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
    return statistics.median(times)

results = {}
with torch.no_grad():
    for b in batches:
        for p in contexts:
            pkv = tuple((torch.randn(b, heads, p, hd), torch.randn(b, heads, p, hd)) for _ in range(cfg["n_layer"]))
            token = torch.randint(0, cfg["vocab_size"], (b, 1))
            full = torch.randint(0, cfg["vocab_size"], (b, p + 1))
            results[f"{b},{p}"] = {
                "cached": median(lambda: model(input_ids=token, past_key_values=pkv, use_cache=True)),
                "full": median(lambda: model(input_ids=full, use_cache=False)),
            }
json.dump({"version": torch.__version__, "results": results}, open(out, "w"))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--config", default=os.path.join(ROOT, "models", "gpt2-small.json"))
    parser.add_argument("--schemes", default="w8,w4g128,w8+head,w4g128+head",
                        help="kiln-compile --quantize schemes besides f32; SCHEME+head also quantizes "
                             "the (tied) LM head, --quantize-lm-head")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--contexts", default="128,480")
    parser.add_argument("--slots", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    args = parser.parse_args()
    schemes = ["f32"] + [s for s in args.schemes.split(",") if s]
    batches = [int(b) for b in args.batches.split(",")]
    contexts = [int(c) for c in args.contexts.split(",")]
    if max(contexts) >= args.slots:
        sys.exit("every context must be shorter than --slots")
    line, _ = machine.describe(args.threads, None)
    print(line, flush=True)
    bin_dir = os.path.join(args.build, "bin")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cfg = json.load(open(args.config))

    def kiln(*argv):
        done = subprocess.run([os.path.join(bin_dir, argv[0])] + list(argv[1:]), env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv[:2])} failed:\n{done.stderr}")
        return done.stdout

    def compile_one(tmp, scheme, weights=None):
        art = os.path.join(tmp, f"{scheme}.kiln")
        cmd = ["kiln-compile", args.config, "--target", "cpu", "-o", art, "--kv-cache", str(args.slots)]
        if weights:
            cmd += ["--weights", weights]
        cmd += compile_flags(scheme)
        kiln(*cmd)
        return art

    with tempfile.TemporaryDirectory() as tmp:
        first = compile_one(tmp, "init")
        manifest = json.load(open(os.path.join(first, "manifest.json")))
        weights = random_gpt2_weights(manifest, seed=0)
        rng = np.random.default_rng(1)
        wpath = os.path.join(tmp, "w.safetensors")
        save_safetensors(weights, wpath)
        arts = {}
        for s in schemes:
            print(f"compiling {s}", flush=True)
            arts[s] = compile_one(tmp, s, wpath)
        decode = next(e for e in manifest["entry_points"] if e["name"] == "decode_step")
        caches = [i for i in decode["inputs"] if i.get("in_place")]

        # Inputs per (batch, context): a token per row, its position, caches.
        files = {}
        for b in batches:
            cache_args = []
            for c in caches:
                path = os.path.join(tmp, f"{c['name']}-{b}.npy")
                np.save(path, (0.1 * rng.standard_normal([b] + c["shape"][1:])).astype(np.float32))
                cache_args += ["--input", f"{c['name']}={path}"]
            token = os.path.join(tmp, f"token-{b}.npy")
            np.save(token, rng.integers(0, cfg["vocab_size"], (b, 1)).astype(np.int64))
            for p in contexts:
                pos = os.path.join(tmp, f"pos-{b}-{p}.npy")
                np.save(pos, np.full(b, p, np.int64))
                ids = os.path.join(tmp, f"ids-{b}-{p}.npy")
                np.save(ids, rng.integers(0, cfg["vocab_size"], (b, p + 1)).astype(np.int64))
                files[b, p] = (["--entry", "decode_step", "--input", f"input_ids={token}", "--input",
                                f"positions={pos}"] + cache_args,
                               ["--entry", "forward", "--input", f"input_ids={ids}"])

        # decode_step after a prefill equals forward at the same position.
        for scheme in schemes:
            seq = rng.integers(0, cfg["vocab_size"], (1, 9)).astype(np.int64)
            np.save(os.path.join(tmp, "seq.npy"), seq)
            np.save(os.path.join(tmp, "prompt.npy"), seq[:, :8])
            np.save(os.path.join(tmp, "len.npy"), np.array([8], np.int64))
            np.save(os.path.join(tmp, "last.npy"), seq[:, 8:])
            np.save(os.path.join(tmp, "at.npy"), np.array([8], np.int64))
            state = []
            for c in caches:
                path = os.path.join(tmp, "check-" + c["name"] + ".npy")
                np.save(path, np.zeros([1] + c["shape"][1:], np.float32))
                state += ["--input", f"{c['name']}={path}"]
            out = os.path.join(tmp, "check")
            kiln("kiln", "run", arts[scheme], "--entry", "prefill", "--input", f"input_ids={tmp}/prompt.npy",
                 "--input", f"lengths={tmp}/len.npy", *state, "--output-dir", out)
            state = [a.replace(tmp + "/check-", out + "/") for a in state]
            kiln("kiln", "run", arts[scheme], "--entry", "decode_step", "--input", f"input_ids={tmp}/last.npy",
                 "--input", f"positions={tmp}/at.npy", *state, "--output-dir", out)
            step = np.load(os.path.join(out, "logits.npy"))[0]
            kiln("kiln", "run", arts[scheme], "--input", f"input_ids={tmp}/seq.npy", "--output-dir", out)
            full = np.load(os.path.join(out, "logits.npy"))[0, -1]
            diff = float(np.abs(step - full).max())
            print(f"{scheme}: decode_step logits within {diff:.2g} of forward's", flush=True)
            # bf16: the two entry points round on different kernels (one row
            # against the prompt's rows): a few bf16 ulps of the largest logit.
            tolerance = 2 ** -4 if scheme.startswith("bf16") else 1e-3
            if not diff < tolerance * max(1.0, float(np.abs(full).max())):
                sys.exit(f"{scheme}: decode_step does not match forward")

        torch_results = None
        if not args.no_torch:
            python = os.path.join(args.build, "hf-venv", "bin", "python3")
            if not os.path.exists(python):
                subprocess.run(["bash", "-c", f"source {ROOT}/scripts/lib/common.sh && kiln_install_hf_python"],
                               check=True)
            out = os.path.join(tmp, "torch.json")
            subprocess.run([python, "-c", TORCH, os.path.join(ROOT, "python"), wpath, args.config,
                            str(args.threads), str(args.iters), args.batches, args.contexts, out],
                           env=env, check=True)
            torch_results = json.load(open(out))

        latency = {}
        for _ in range(args.rounds):
            for (b, p), (step_args, full_args) in files.items():
                for scheme in schemes:
                    for kind, extra in (("cached", step_args), ("full", full_args)):
                        if kind == "full" and scheme != "f32":
                            continue
                        text = kiln("kiln", "bench", arts[scheme], *extra, "--warmup", "2",
                                    "--iters", str(args.iters))
                        ms = float(re.search(r"p50[^0-9]*([0-9.]+)", text).group(1))
                        latency.setdefault((scheme, kind, b, p), []).append(ms)

    med = {k: sorted(v)[len(v) // 2] for k, v in latency.items()}
    print(f"\n{os.path.basename(args.config)}, {args.threads} threads, cache of {args.slots} slots, "
          f"median of {args.rounds} rounds of {args.iters} calls (p50 each); tokens/s = batch / latency")
    head = "| batch | context | Kiln no cache | " + " | ".join(f"Kiln {s} cached" for s in schemes)
    head += " | cached f32 vs no cache |"
    if torch_results:
        head += f" torch {torch_results['version']} no cache | torch cached | Kiln f32 vs torch cached |"
    print(head)
    print("|" + " ---: |" * (head.count("|") - 1))
    for b in batches:
        for p in contexts:
            tps = lambda ms: b / (ms / 1e3)
            row = [str(b), str(p), f"{tps(med['f32', 'full', b, p]):.1f}"]
            for s in schemes:
                cell = f"{tps(med[s, 'cached', b, p]):.1f}"
                if s != "f32":
                    cell += f" ({med['f32', 'cached', b, p] / med[s, 'cached', b, p]:.2f}x f32)"
                row.append(cell)
            row.append(f"{med['f32', 'full', b, p] / med['f32', 'cached', b, p]:.1f}x")
            if torch_results:
                t = torch_results["results"][f"{b},{p}"]
                row += [f"{b / t['full']:.1f}", f"{b / t['cached']:.1f}",
                        f"{t['cached'] / (med['f32', 'cached', b, p] / 1e3):.2f}x"]
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
