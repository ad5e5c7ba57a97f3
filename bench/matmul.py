#!/usr/bin/env python3
"""Matmul throughput: Kiln artifacts against OpenBLAS (through numpy), side by
side in one run.

For each shape M x N x K, the benchmark compiles a kiln function
`C = A @ B` (static shapes) with `kiln-compile --target cpu`, times it with
`kiln bench`, and times numpy's `A @ B` in a child process whose
environment has OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (this machine
pins OpenBLAS to slower kernels through them; the peer runs unpinned, Kiln
is not affected by them). It prints GFLOP/s, the ratio Kiln / OpenBLAS, and
the fraction of the fp32 FMA peak (--peak; by default measured on all
cores by bench/machine.py, which also names the CPU).

  bench/matmul.py [--build build] [--shapes 512,1024,128x768x2304 ...]
                  [--iters N] [--min-gflop G] [--max-kiln-seconds S]
                  [--compile-flag=--matmul-tile=8x32 ...]

Both sides get the same warm-up and number of timed calls: at least
--iters, and enough for --min-gflop of work.

Shapes whose estimated Kiln time per call exceeds --max-kiln-seconds
(measured throughput of the previous shapes) are reported as skipped.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

import machine

DEFAULT_SHAPES = ["512", "1024", "2048", "4096", "128x768x2304", "128x768x3072", "128x3072x768"]

PEER = r"""
import sys, time, numpy as np
m, n, k, iters, warmup = map(int, sys.argv[1:6])
rng = np.random.default_rng(0)
a = rng.standard_normal((m, k), dtype=np.float32)
b = rng.standard_normal((k, n), dtype=np.float32)
for _ in range(warmup):
    a @ b
times = []
for _ in range(iters):
    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
# Which BLAS numpy loaded: Debian's numpy falls back to the reference BLAS
# (a few GFLOP/s) when libopenblas0-pthread is not installed.
with open("/proc/self/maps") as f:
    blas = "openblas" if "openblas" in f.read() else "reference"
print(sorted(times)[len(times) // 2], blas)
"""


def parse_shape(text):
    parts = [int(p) for p in text.lower().split("x")]
    return (parts[0],) * 3 if len(parts) == 1 else tuple(parts)


def kiln_matmul(build, m, n, k, tmp, iters, warmup, flags=()):
    src = os.path.join(tmp, f"mm_{m}_{n}_{k}.mlir")
    with open(src, "w") as f:
        f.write(f"""func.func @forward(%a: tensor<{m}x{k}xf32> {{kiln.name = "a"}}, %b: tensor<{k}x{n}xf32> {{kiln.name = "b"}}) -> (tensor<{m}x{n}xf32> {{kiln.name = "c"}}) {{
  %c = kiln.matmul %a, %b : (tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32>
  return %c : tensor<{m}x{n}xf32>
}}
""")
    art = os.path.join(tmp, f"mm_{m}_{n}_{k}.kiln")
    subprocess.run([os.path.join(build, "bin", "kiln-compile"), src, "--target", "cpu", "-o", art, *flags], check=True)
    rng = np.random.default_rng(0)
    np.save(os.path.join(tmp, "a.npy"), rng.standard_normal((m, k), dtype=np.float32))
    np.save(os.path.join(tmp, "b.npy"), rng.standard_normal((k, n), dtype=np.float32))
    out = subprocess.run([os.path.join(build, "bin", "kiln"), "bench", art,
                          "--input", f"a={tmp}/a.npy", "--input", f"b={tmp}/b.npy",
                          "--warmup", str(warmup), "--iters", str(iters)],
                         check=True, capture_output=True, text=True).stdout
    p50 = float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1))
    return p50 / 1e3


_PEER_ENV = None


def peer_matmul(m, n, k, iters, warmup):
    global _PEER_ENV
    if _PEER_ENV is None:
        _PEER_ENV = machine.peer_env()
    env = _PEER_ENV
    out = subprocess.run(["/usr/bin/python3", "-c", PEER, str(m), str(n), str(k), str(iters), str(warmup)],
                         env=env, check=True, capture_output=True, text=True).stdout.split()
    if out[1] != "openblas":
        sys.exit("bench/matmul.py: numpy did not load OpenBLAS (it runs the reference BLAS, "
                 "not a peer worth comparing with): install libopenblas0-pthread")
    return float(out[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES))
    parser.add_argument("--peak", type=float, default=None,
                        help="fp32 FMA peak in GFLOP/s for the %% columns (default: measured, bench/machine.py)")
    parser.add_argument("--iters", type=int, default=5,
                        help="at least this many timed calls per side")
    parser.add_argument("--min-gflop", type=float, default=20.0,
                        help="more timed calls for small shapes, until each side "
                             "does this much work (a 0.6 ms 512^3 product timed 10 "
                             "times measured warm-up, not throughput)")
    parser.add_argument("--max-kiln-seconds", type=float, default=20.0)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--compile-flag", action="append", default=[],
                        help="an extra kiln-compile flag, such as --matmul-tile=6x16 (repeatable)")
    args = parser.parse_args()
    machine_line, args.peak = machine.describe(os.cpu_count(), args.peak)
    print(machine_line, flush=True)
    args.peak = args.peak or float("nan")

    rows = []
    kiln_rate = None
    print(f"{'shape':>16} {'kiln GFLOP/s':>13} {'OpenBLAS GFLOP/s':>17} {'ratio':>7} {'kiln % peak':>12} {'OpenBLAS % peak':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.shapes.split(","):
            m, n, k = parse_shape(text)
            flops = 2.0 * m * n * k
            iters = max(args.iters, 5, math.ceil(args.min_gflop * 1e9 / flops))
            warmup = max(3, iters // 10)
            peer = peer_matmul(m, n, k, iters, warmup)
            peer_rate = flops / peer / 1e9
            if kiln_rate and flops / (kiln_rate * 1e9) > args.max_kiln_seconds:
                kiln = None
            else:
                kiln = kiln_matmul(args.build, m, n, k, tmp, iters, warmup, args.compile_flag)
                kiln_rate = flops / kiln / 1e9
            name = f"{m}x{n}x{k}"
            if kiln is None:
                print(f"{name:>16} {'skipped':>13} {peer_rate:>17.1f} {'-':>7} {'-':>12} {100 * peer_rate / args.peak:>15.1f}%")
            else:
                rate = flops / kiln / 1e9
                print(f"{name:>16} {rate:>13.2f} {peer_rate:>17.1f} {rate / peer_rate:>7.3f} {100 * rate / args.peak:>11.2f}% {100 * peer_rate / args.peak:>15.1f}%")
            rows.append({"shape": [m, n, k], "kiln_s": kiln, "openblas_s": peer})
            sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
