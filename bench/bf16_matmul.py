#!/usr/bin/env python3
"""bf16 matmuls against f32, side by side in one run: Kiln's bf16
kiln.matmul (bf16 operands, f32 sums rounded once) on the kernel
kiln-compile picks for this CPU (AMX tiles, `--bf16-dot amx`, where it has
AMX-BF16; vdpbf16ps register tiles, `--bf16-dot avx512`, on AMD cores with
AVX512-BF16; the operands widened for the f32 tiles, `--bf16-dot f32`,
elsewhere), or the one --bf16-dot names, and on the plain loops
(`--bf16-dot none`), against Kiln's f32 kiln.matmul of the same shape; as
peers, PyTorch's bf16 matmul (oneDNN) and OpenBLAS's f32 product (numpy).

Each Kiln function multiplies an f32 input [M, K], cast to bf16 inside
the function, by a weight parameter (bf16 or f32, in the artifact like a
model's weights; [N, K] read transposed with --transposed, else [K, N]) and
returns the product cast to f32, so a call also converts M x K inputs and
M x N outputs, as a model's linear does around it.

Shapes are M x N x K; the defaults are GPT-2 small's linears at 128 tokens
and at 4 x 512. Prints GFLOP/s (2·M·N·K per call), the speed-ups, and the
fraction of the fp32 FMA peak.

  bench/bf16_matmul.py [--build build] [--shapes 128x2304x768,...]
                       [--iters N] [--threads 2] [--transposed]
                       [--plain-loops]
"""

import argparse
import json
import os
import subprocess
import tempfile

import numpy as np

import machine
from kiln_bench import artifact_path, kiln_time

DEFAULT_SHAPES = ["128x2304x768", "128x768x768", "128x3072x768", "128x768x3072", "2048x3072x768",
                  "1x3072x768", "1024x1024x1024"]

PEER = r"""
import sys, time, numpy as np, torch
m, n, k, iters = map(int, sys.argv[1:5])
torch.set_num_threads(int(sys.argv[5]))
rng = np.random.default_rng(0)
a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
ta, tb = torch.from_numpy(a).to(torch.bfloat16), torch.from_numpy(b).to(torch.bfloat16)
def timed(f):
    for _ in range(3):
        f()
    times = []
    for _ in range(iters):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
# Which BLAS numpy loaded: Debian's numpy falls back to the reference BLAS
# (a few GFLOP/s) when libopenblas0-pthread is not installed.
with open("/proc/self/maps") as f:
    blas = "openblas" if "openblas" in f.read() else "reference"
with torch.no_grad():
    print(timed(lambda: ta @ tb), timed(lambda: a @ b), blas)
"""


def source(m, n, k, dtype, transposed):
    w = f"tensor<{n}x{k}x{dtype}>" if transposed else f"tensor<{k}x{n}x{dtype}>"
    a, c = f"tensor<{m}x{k}x{dtype}>", f"tensor<{m}x{n}x{dtype}>"
    cast_in = f"%a16 = kiln.cast %a : tensor<{m}x{k}xf32> -> {a}" if dtype != "f32" else ""
    cast_out = f"%r = kiln.cast %c : {c} -> tensor<{m}x{n}xf32>" if dtype != "f32" else ""
    return f"""kiln.parameter @"w" : {w} init normal std = 1.000000e+00
func.func @forward(%a: tensor<{m}x{k}xf32> {{kiln.name = "a"}}) -> (tensor<{m}x{n}xf32> {{kiln.name = "c"}}) {{
  {cast_in}
  %w = kiln.read_param @"w" : {w}
  %c = kiln.matmul {"%a16" if dtype != "f32" else "%a"}, %w {"transpose_rhs" if transposed else ""} : ({a}, {w}) -> {c}
  {cast_out}
  return {"%r" if dtype != "f32" else "%c"} : tensor<{m}x{n}xf32>
}}"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES))
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--transposed", action="store_true", help="weights [N, K] read transposed")
    parser.add_argument("--bf16-dot", default=None, choices=["amx", "avx512", "f32", "none"],
                        help="the kernel of the Kiln bf16 column (default: kiln-compile's choice)")
    parser.add_argument("--plain-loops", action="store_true",
                        help="also time the bf16 plain loops (--bf16-dot none; slow)")
    args = parser.parse_args()
    line, peak = machine.describe(args.threads, None)
    print(line, flush=True)
    dot_flags = ["--bf16-dot", args.bf16_dot] if args.bf16_dot else []
    bf16_dot = None
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    # The peer runs OpenBLAS unpinned (this machine pins it to slow kernels
    # through these two variables; Kiln does not read them).
    peer_env = machine.peer_env(env)
    layout = "[N, K] read transposed" if args.transposed else "[K, N]"
    print(f"weights {layout}")
    print("| M x N x K | Kiln f32 GFLOP/s | Kiln bf16 GFLOP/s | Kiln bf16 / f32 | "
          + ("Kiln bf16 plain loops | " if args.plain_loops else "")
          + "torch bf16 GFLOP/s | OpenBLAS f32 GFLOP/s | Kiln bf16 / torch bf16 | Kiln bf16 % of fp32 peak |")
    print("| --- | ---: | ---: | ---: | " + ("---: | " if args.plain_loops else "") + "---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.shapes.split(","):
            m, n, k = (int(p) for p in text.split("x"))
            ops = 2.0 * m * n * k
            srcs = {}
            for dtype in ("f32", "bf16"):
                srcs[dtype] = os.path.join(tmp, f"{dtype}_{text}.mlir")
                with open(srcs[dtype], "w") as f:
                    f.write(source(m, n, k, dtype, args.transposed))
            a = os.path.join(tmp, "a.npy")
            np.save(a, rng.standard_normal((m, k), dtype=np.float32))
            t_f32 = kiln_time(args.build, srcs["f32"], {"a": a}, tmp, args.iters, [], env)
            t_bf16 = kiln_time(args.build, srcs["bf16"], {"a": a}, tmp, args.iters, dot_flags, env)
            if bf16_dot is None:
                with open(os.path.join(artifact_path(srcs["bf16"], tmp, dot_flags), "manifest.json")) as f:
                    bf16_dot = json.load(f)["target_options"]["bf16_dot"]
            t_plain = (kiln_time(args.build, srcs["bf16"], {"a": a}, tmp, max(3, args.iters // 10),
                                 ["--bf16-dot", "none"], env) if args.plain_loops else None)
            out = subprocess.run(["/usr/bin/python3", "-c", PEER, str(m), str(n), str(k), str(args.iters),
                                  str(args.threads)], check=True, capture_output=True, text=True,
                                 env=peer_env).stdout.split()
            t_torch, t_blas = float(out[0]), float(out[1])
            if out[2] != "openblas":
                print("(numpy runs the reference BLAS, not a peer worth comparing with: "
                      "install libopenblas0-pthread)", flush=True)
            rate = lambda t: ops / t / 1e9
            plain = f"{rate(t_plain):.0f} | " if args.plain_loops else ""
            share = f"{100 * rate(t_bf16) / peak:.0f}%" if peak else "-"
            print(f"| {text} | {rate(t_f32):.0f} | {rate(t_bf16):.0f} | {t_f32 / t_bf16:.2f}x | {plain}"
                  f"{rate(t_torch):.0f} | {rate(t_blas):.0f} | {t_torch / t_bf16:.2f}x | {share} |", flush=True)
    print(f"(the Kiln bf16 column: bf16_dot={bf16_dot}, see kiln-compile --bf16-dot)")
    if peak:
        print(f"(fp32 FMA peak {peak:.0f} GFLOP/s; AMX-BF16's tile peak is 1024 FLOP per cycle per core, "
              f"about 16x the AVX-512 fp32 FMA's 64)")


if __name__ == "__main__":
    main()
