#!/usr/bin/env python3
"""int8 matmuls against f32, side by side in one run: Kiln's
kiln.integer_matmul (i8 x i8 -> exact i32 sums; the VNNI kernel where the
CPU has it, and the portable one) against Kiln's f32 kiln.matmul of the
same shape, and PyTorch's dynamically quantized Linear (oneDNN's int8
kernels: it quantizes the activations per tensor, multiplies int8 and
dequantizes, so it does a little more than the bare product) against
OpenBLAS's f32 product (numpy) as the peers.

Shapes are M x N x K of GPT-2 small's linears at 128 tokens (the
[N, K] weight read transposed, as kiln-quantize's codes are stored).
Prints GOP/s (2·M·N·K per call, integer or float), the int8 / f32 speed-up
of each side, and the fraction of the fp32 FMA peak.

  bench/int8_matmul.py [--build build] [--shapes 128x2304x768,...]
                       [--iters N] [--threads 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

import machine
from kiln_bench import kiln_time

DEFAULT_SHAPES = ["128x2304x768", "128x768x768", "128x3072x768", "128x768x3072", "1x3072x768"]

PEER = r"""
import sys, time, numpy as np, torch
m, n, k, iters = map(int, sys.argv[1:5])
torch.set_num_threads(int(sys.argv[5]))
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.standard_normal((m, k), dtype=np.float32))
torch.backends.quantized.engine = "onednn"
linear = torch.nn.Linear(k, n, bias=False)
q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear}, dtype=torch.qint8)
a, b = x.numpy(), rng.standard_normal((k, n), dtype=np.float32)
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
    print(timed(lambda: q(x)), timed(lambda: a @ b), blas)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES))
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    line, peak = machine.describe(args.threads, None)
    print(line, flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    # The peer runs OpenBLAS unpinned (this machine pins it to slow kernels
    # through these two variables; Kiln does not read them).
    peer_env = machine.peer_env(env)
    print("| M x N x K | Kiln f32 GFLOP/s | Kiln int8 GOP/s (dot) | Kiln int8 / f32 | Kiln int8 generic GOP/s "
          "| torch int8 dynamic GOP/s | OpenBLAS f32 GFLOP/s | torch int8 / OpenBLAS | Kiln int8 / torch int8 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.shapes.split(","):
            m, n, k = (int(p) for p in text.split("x"))
            ops = 2.0 * m * n * k
            f32 = os.path.join(tmp, f"f32_{text}.mlir")
            with open(f32, "w") as f:
                f.write(f"""func.func @forward(%a: tensor<{m}x{k}xf32> {{kiln.name = "a"}}, %b: tensor<{k}x{n}xf32> {{kiln.name = "b"}}) -> (tensor<{m}x{n}xf32> {{kiln.name = "c"}}) {{
  %c = kiln.matmul %a, %b : (tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32>
  return %c : tensor<{m}x{n}xf32>
}}""")
            i8 = os.path.join(tmp, f"i8_{text}.mlir")
            with open(i8, "w") as f:
                f.write(f"""func.func @forward(%a: tensor<{m}x{k}xi8> {{kiln.name = "a"}}, %b: tensor<{n}x{k}xi8> {{kiln.name = "b"}}) -> (tensor<{m}x{n}xi32> {{kiln.name = "c"}}) {{
  %c = kiln.integer_matmul %a, %b transpose_rhs : (tensor<{m}x{k}xi8>, tensor<{n}x{k}xi8>) -> tensor<{m}x{n}xi32>
  return %c : tensor<{m}x{n}xi32>
}}""")
            paths = {name: os.path.join(tmp, f"{name}.npy") for name in ("af", "bf", "ai", "bi")}
            np.save(paths["af"], rng.standard_normal((m, k), dtype=np.float32))
            np.save(paths["bf"], rng.standard_normal((k, n), dtype=np.float32))
            np.save(paths["ai"], rng.integers(-128, 128, (m, k)).astype(np.int8))
            np.save(paths["bi"], rng.integers(-128, 128, (n, k)).astype(np.int8))
            t_f32 = kiln_time(args.build, f32, {"a": paths["af"], "b": paths["bf"]}, tmp, args.iters, [], env)
            t_i8 = kiln_time(args.build, i8, {"a": paths["ai"], "b": paths["bi"]}, tmp, args.iters, [], env)
            t_gen = kiln_time(args.build, i8, {"a": paths["ai"], "b": paths["bi"]}, tmp, args.iters,
                              ["--int8-dot", "generic"], env)
            out = subprocess.run(["/usr/bin/python3", "-c", PEER, str(m), str(n), str(k), str(args.iters),
                                  str(args.threads)], check=True, capture_output=True, text=True,
                                 env=peer_env).stdout.split()
            t_torch, t_blas = float(out[0]), float(out[1])
            if out[2] != "openblas":
                print("(numpy runs the reference BLAS, not a peer worth comparing with: "
                      "install libopenblas0-pthread)", flush=True)
            rate = lambda t: ops / t / 1e9
            print(f"| {text} | {rate(t_f32):.0f} | {rate(t_i8):.0f} | {t_f32 / t_i8:.2f}x | {rate(t_gen):.0f} "
                  f"| {rate(t_torch):.0f} | {rate(t_blas):.0f} | {t_blas / t_torch:.2f}x | {t_torch / t_i8:.2f}x |",
                  flush=True)
    if peak:
        print(f"(fp32 FMA peak {peak:.0f} GFLOP/s; VNNI's int8 peak is 4x that on cores that run vpdpbusd "
              f"at the FMA's rate)")


if __name__ == "__main__":
    main()
