#!/usr/bin/env python3
"""The GPU check: Kiln's CUDA artifacts against PyTorch on the GPU.

Two halves, so that artifacts built on a machine without a GPU (and with
LLVM, MLIR and the CUDA toolkit) run on one with a GPU (and only PyTorch,
numpy and the driver):

  gpu_check.py prepare --bundle DIR [--arch sm_90] [--kiln-compile PATH]
      writes DIR/ops.mlir and compiles DIR/artifacts/*.kiln for --target cuda:
      ops (one entry point per op case), gpt2-tiny (forward), gpt2-tiny-train
      (train_step, AdamW) and gpt2-small (forward; its 498 MB of weights are
      left out and written on the GPU machine).

  gpu_check.py run --bundle DIR [--report FILE] [--kiln PATH]
      on the GPU machine: every op case, gpt2-tiny's logits and three
      train_steps against PyTorch on the same GPU, then the benchmark
      (gpt2-small forward, batch 1 x seq 128, against PyTorch eager);
      writes a short Markdown report and exits non-zero if any check fails.
      Without a GPU it prints "skipped: no GPU" and exits 0.

Numerics are fp32 on both sides with TF32 off in PyTorch (Kiln's cuBLASLt
calls use CUBLAS_COMPUTE_32F unless KILN_CUDA_TF32=1). Tolerances:
elementwise ops and reductions RTOL 2e-5 / ATOL 1e-5 (the CPU suite's);
matmuls and whole models RTOL 1e-4 / ATOL 1e-4 (different summation
orders over up to 3072 products); training as test/e2e/test_training.py
states it, with the parameter tolerance widened to ATOL 1e-5 because the
GPU reduction order differs from torch's too.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "python"))
from kiln.io import load_safetensors, save_safetensors, to_bf16  # noqa: E402

MODELS = os.path.join(ROOT, "models")


def ty(shape, elem="f32"):
    dims = "x".join("?" if d is None else str(d) for d in shape)
    return f"tensor<{dims}x{elem}>" if len(shape) else f"tensor<{elem}>"


#===----------------------------------------------------------------------===#
# Op cases: kiln IR, inputs, and the torch computation they must match
#===----------------------------------------------------------------------===#

ELEMENTWISE = (2e-5, 1e-5)
CONTRACTION = (1e-4, 1e-4)


class Case:
    def __init__(self, name, args, body, results, inputs, reference, tol=ELEMENTWISE):
        self.name, self.args, self.body, self.results = name, args, body, results
        self.inputs, self.reference, self.tol = inputs, reference, tol

    def mlir(self):
        sig = ", ".join(f"%{n}: {t}" for n, t in self.args)
        rtypes = ", ".join(t for _, t in self.results)
        rvals = ", ".join(f"%{v}" for v, _ in self.results)
        body = "\n".join("  " + line for line in self.body)
        return (f"func.func @{self.name}({sig}) -> ({rtypes}) {{\n{body}\n"
                f"  return {rvals} : {rtypes}\n}}\n")


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def attention_reference(q, k, v):
    """Causal grouped-query attention as kiln defines it (hidden keys get the
    lowest float; the last query sees every key)."""
    import torch
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    sq, sk = s.shape[-2], s.shape[-1]
    keep = torch.ones(sq, sk, dtype=torch.bool, device=s.device).tril(diagonal=sk - sq)
    s = s.masked_fill(~keep, torch.finfo(s.dtype).min)
    return torch.softmax(s, -1) @ v


def rope_reference(x, theta=10000.0):
    """Hugging Face LLaMA's rotary embedding (rotate_half form)."""
    import torch
    d, s = x.shape[-1], x.shape[-2]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, device=x.device).float() / d))
    freqs = torch.arange(s, device=x.device).float()[:, None] * inv
    emb = torch.cat((freqs, freqs), -1)
    rotated = torch.cat((-x[..., d // 2:], x[..., : d // 2]), -1)
    return x * emb.cos() + rotated * emb.sin()


def recurrent_reference(x, h, c, gw, gu, gb, gc, lw, lu, lb, lc):
    """torch.nn.GRUCell and LSTMCell with the given weights."""
    import torch
    gru = torch.nn.GRUCell(x.shape[1], h.shape[1]).to(x.device)
    lstm = torch.nn.LSTMCell(x.shape[1], h.shape[1]).to(x.device)
    with torch.no_grad():
        for module, tensors in ((gru, (gw, gu, gb, gc)), (lstm, (lw, lu, lb, lc))):
            for param, value in zip((module.weight_ih, module.weight_hh, module.bias_ih,
                                     module.bias_hh), tensors):
                param.copy_(value)
        h2, c2 = lstm(x, (h, c))
        return [gru(x, h), h2, c2]


def random_reference(seed, x):
    """kiln.random_uniform (element i: the top 24 bits of
    mix64(mix64(seed) + i), scaled to [0, 1)) and dropout p = 0.3 on it
    (kept where u >= p, scaled by 1 / (1 - p)), in numpy uint64."""
    def mix64(z):
        z = z ^ (z >> np.uint64(30))
        z = z * np.uint64(0xbf58476d1ce4e5b9)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(0x94d049bb133111eb)
        return z ^ (z >> np.uint64(31))

    x = x.cpu().numpy()
    with np.errstate(over="ignore"):
        key = mix64(np.array(int(seed.cpu()), np.int64).astype(np.uint64))
        bits = mix64(key + np.arange(x.size, dtype=np.uint64))
    u = ((bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)).reshape(x.shape)
    kept = np.where(u >= np.float32(0.3), x * np.float32(1.0 / 0.7), np.float32(0.0))
    return [u, kept.astype(np.float32)]


def int8_dynamic_linear_reference(x, w, sw, b):
    """kiln-quantize's int8-dynamic linear in torch: per-token scales, codes
    as torch.quantize_per_channel rounds them (half to even), the exact
    integer product, the scales in f32."""
    import torch
    s = torch.clamp(x.abs().amax(dim=1, keepdim=True), min=1e-30) / 127.0
    q = torch.clamp(torch.round(x * (1.0 / s)), -128, 127).to(torch.int64)
    acc = (q @ w.long().T).float()
    return acc * s * sw + b


def to_e4m3(x, scale):
    """kiln's e4m3 encoding in torch: x · (1 / scale) in f32, clamped to
    ±448, cast to torch.float8_e4m3fn (round to nearest even)."""
    import torch
    return (x * (1.0 / scale)).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)


def fp8_linear_reference(x, w, sw, b):
    """kiln-quantize's fp8 linear in torch 2.x: a per-tensor activation
    scale max(max|x|, 1e-30) / 448, e4m3 codes of x and w, the product on
    torch._scaled_mm (cuBLASLt's fp8 gemm, fp32 output) with both scales,
    then the bias."""
    import torch
    sx = torch.clamp(x.abs().amax(), min=1e-30).reshape(1) / 448.0
    xq, wq = to_e4m3(x, sx), to_e4m3(w, sw)
    y = torch._scaled_mm(xq, wq.t(), scale_a=sx.reshape(()), scale_b=sw.reshape(()),
                         out_dtype=torch.float32)
    return y + b


def fp8_cases():
    """fp8 (e4m3) cases: an artifact of their own, compiled for sm_89 and
    later only (cuBLASLt's fp8 gemm), checked against PyTorch's
    float8_e4m3fn and torch._scaled_mm (PyTorch 2.1 and later)."""
    f8 = "f8E4M3FN"
    return [
        # The encoder kernel (kiln.quantize e4m3) bit for bit against
        # torch's cast after the same clamp, read back through the decoder
        # (kiln.dequantize, exact): values over 20 binades, ties, beyond 448.
        Case("fp8_quantize",
             [("x", ty((None, 64))), ("s", ty((1, 1)))],
             [f"%q = kiln.quantize %x, %s e4m3 : ({ty((None, 64))}, {ty((1, 1))}) -> {ty((None, 64), f8)}",
              "%one = kiln.constant dense<1.000000e+00> : tensor<1x1xf32>",
              f"%0 = kiln.dequantize %q, %one : ({ty((None, 64), f8)}, {ty((1, 1))}) -> {ty((None, 64))}"],
             [("0", ty((None, 64)))],
             lambda r: [(r.standard_normal((33, 64)) * np.exp2(r.uniform(-10, 10, (33, 64))))
                        .astype(np.float32) * np.float32(2.0),
                        np.array([[2.0]], np.float32)],
             lambda x, s: [to_e4m3(x, s).float()],
             tol=(0.0, 0.0)),
        # The fp8 linear as kiln-quantize writes it (the weight's codes made
        # on the GPU here with the same encoder), [?, 128] x [64, 128]^T:
        # cuBLASLt's fp8 gemm with the scales as its scale pointers. Codes
        # equal torch's (above); the sums of exact e4m3 products differ in
        # order and in the fp8 tensor cores' accumulation (promoted to f32
        # periodically, not every product): rtol 2e-3, atol 2e-3.
        Case("fp8_linear",
             [("x", ty((None, 128))), ("w", ty((64, 128))), ("sw", ty((1,))), ("b", ty((64,)))],
             ["%eps = kiln.constant dense<1.000000e-30> : tensor<f32>",
              "%fmax = kiln.constant dense<4.480000e+02> : tensor<f32>",
              f"%sw2 = kiln.reshape %sw : {ty((1,))} -> {ty((1, 1))}",
              f"%wq = kiln.quantize %w, %sw2 e4m3 : ({ty((64, 128))}, {ty((1, 1))}) -> {ty((64, 128), f8)}",
              f"%a = kiln.abs %x : {ty((None, 128))}",
              f"%m = kiln.reduce max %a axes = [0, 1] keepdim : ({ty((None, 128))}) -> {ty((1, 1))}",
              f"%mm = kiln.max %m, %eps : ({ty((1, 1))}, tensor<f32>) -> {ty((1, 1))}",
              f"%s = kiln.div %mm, %fmax : ({ty((1, 1))}, tensor<f32>) -> {ty((1, 1))}",
              f"%xq = kiln.quantize %x, %s e4m3 : ({ty((None, 128))}, {ty((1, 1))}) -> {ty((None, 128), f8)}",
              f"%s1 = kiln.reshape %s : {ty((1, 1))} -> {ty((1,))}",
              f"%y = kiln.scaled_fp8_matmul %xq, %wq scales %s1, %sw transpose_rhs : "
              f"({ty((None, 128), f8)}, {ty((64, 128), f8)}, {ty((1,))}, {ty((1,))}) -> {ty((None, 64))}",
              f"%0 = kiln.add %y, %b : ({ty((None, 64))}, {ty((64,))}) -> {ty((None, 64))}"],
             [("0", ty((None, 64)))],
             lambda r: [randn(r, 9, 128),
                        (w := randn(r, 64, 128, scale=0.05)),
                        np.array([np.abs(w).max() / np.float32(448)], np.float32),
                        randn(r, 64)],
             fp8_linear_reference,
             tol=(2e-3, 2e-3)),
        # k = 40 misses cuBLASLt's fp8 rules: the generated kernel (e4m3
        # decoded in registers, f32 sums) against torch on the decoded codes
        # in float64.
        Case("fp8_matmul_kernel",
             [("x", ty((None, 40))), ("w", ty((24, 40))), ("s", ty((1, 1))), ("s1", ty((1,)))],
             [f"%xq = kiln.quantize %x, %s e4m3 : ({ty((None, 40))}, {ty((1, 1))}) -> {ty((None, 40), f8)}",
              f"%wq = kiln.quantize %w, %s e4m3 : ({ty((24, 40))}, {ty((1, 1))}) -> {ty((24, 40), f8)}",
              f"%0 = kiln.scaled_fp8_matmul %xq, %wq scales %s1, %s1 transpose_rhs : "
              f"({ty((None, 40), f8)}, {ty((24, 40), f8)}, {ty((1,))}, {ty((1,))}) -> {ty((None, 24))}"],
             [("0", ty((None, 24)))],
             lambda r: [randn(r, 7, 40), randn(r, 24, 40), np.array([[0.01]], np.float32),
                        np.array([0.01], np.float32)],
             lambda x, w, s, s1: [(to_e4m3(x, s).double() @ to_e4m3(w, s).double().t()
                                   * float(s1) * float(s1)).float()],
             tol=CONTRACTION),
    ]


def attention_gradients(q, k, v, g):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    attention_reference(q, k, v).backward(g)
    return [q.grad, k.grad, v.grad]


def cases():
    import torch
    import torch.nn.functional as F

    t2, t17, t129 = ty((129, 17)), ty((17,)), ty((3, 129))
    dyn = ty((None, 17))
    return [
        Case("add_broadcast", [("a", t2), ("b", t17)],
             [f"%0 = kiln.add %a, %b : ({t2}, {t17}) -> {t2}"], [("0", t2)],
             lambda r: [randn(r, 129, 17), randn(r, 17)], lambda a, b: [a + b]),
        Case("arith_dynamic", [("x", dyn), ("y", dyn)],
             [f"%0 = kiln.sub %x, %y : ({dyn}, {dyn}) -> {dyn}",
              f"%1 = kiln.mul %x, %y : ({dyn}, {dyn}) -> {dyn}",
              f"%2 = kiln.div %x, %y : ({dyn}, {dyn}) -> {dyn}"],
             [("0", dyn), ("1", dyn), ("2", dyn)],
             lambda r: [randn(r, 3, 17), randn(r, 3, 17) + 4.0],
             lambda x, y: [x - y, x * y, x / y]),
        Case("unary", [("x", t129)],
             [f"%0 = kiln.exp %x : {t129}", f"%1 = kiln.tanh %x : {t129}",
              f"%2 = kiln.relu %x : {t129}"],
             [("0", t129), ("1", t129), ("2", t129)],
             lambda r: [randn(r, 3, 129, scale=3.0)],
             lambda x: [torch.exp(x), torch.tanh(x), torch.relu(x)]),
        Case("gelu", [("x", t129)],
             [f"%0 = kiln.gelu %x approximate = tanh : {t129}",
              f"%1 = kiln.gelu %x approximate = erf : {t129}"],
             [("0", t129), ("1", t129)], lambda r: [randn(r, 3, 129, scale=3.0)],
             lambda x: [F.gelu(x, approximate="tanh"), F.gelu(x)]),
        Case("softmax", [("x", ty((2, 3, 129)))],
             [f"%0 = kiln.softmax %x axis = -1 : ({ty((2, 3, 129))}) -> {ty((2, 3, 129))}"],
             [("0", ty((2, 3, 129)))], lambda r: [randn(r, 2, 3, 129, scale=4.0)],
             lambda x: [torch.softmax(x, -1)]),
        Case("layer_norm", [("x", ty((17, 129))), ("w", ty((129,))), ("b", ty((129,)))],
             [f"%0 = kiln.layer_norm %x weight %w bias %b eps = 1.000000e-05 : "
              f"({ty((17, 129))}, {ty((129,))}, {ty((129,))}) -> {ty((17, 129))}"],
             [("0", ty((17, 129)))],
             lambda r: [randn(r, 17, 129, scale=2.0) + 1.0, randn(r, 129), randn(r, 129)],
             lambda x, w, b: [F.layer_norm(x, (129,), w, b, 1e-5)], tol=(1e-4, 2e-5)),
        Case("reductions", [("x", t129)],
             [f"%0 = kiln.reduce sum %x axes = [1] : ({t129}) -> {ty((3,))}",
              f"%1 = kiln.reduce mean %x axes = [0, 1] : ({t129}) -> {ty(())}",
              f"%2 = kiln.reduce max %x axes = [0] : ({t129}) -> {ty((129,))}"],
             [("0", ty((3,))), ("1", ty(())), ("2", ty((129,)))],
             lambda r: [randn(r, 3, 129)],
             lambda x: [x.sum(1), x.mean(), x.amax(0)], tol=(1e-4, 1e-5)),
        Case("matmul", [("a", ty((129, 17))), ("b", ty((17, 33)))],
             [f"%0 = kiln.matmul %a, %b : ({ty((129, 17))}, {ty((17, 33))}) -> {ty((129, 33))}"],
             [("0", ty((129, 33)))], lambda r: [randn(r, 129, 17), randn(r, 17, 33)],
             lambda a, b: [a @ b], tol=CONTRACTION),
        Case("matmul_dynamic", [("a", ty((None, 17))), ("b", ty((17, 33)))],
             [f"%0 = kiln.matmul %a, %b : ({ty((None, 17))}, {ty((17, 33))}) -> {ty((None, 33))}"],
             [("0", ty((None, 33)))], lambda r: [randn(r, 1, 17), randn(r, 17, 33)],
             lambda a, b: [a @ b], tol=CONTRACTION),
        Case("matmul_batched_transposed",
             [("q", ty((2, 3, 17, 16))), ("k", ty((2, 3, 9, 16)))],
             [f"%0 = kiln.matmul %q, %k transpose_rhs : ({ty((2, 3, 17, 16))}, "
              f"{ty((2, 3, 9, 16))}) -> {ty((2, 3, 17, 9))}"],
             [("0", ty((2, 3, 17, 9)))],
             lambda r: [randn(r, 2, 3, 17, 16), randn(r, 2, 3, 9, 16)],
             lambda q, k: [q @ k.transpose(-1, -2)], tol=CONTRACTION),
        Case("matmul_broadcast", [("a", ty((3, 17, 16))), ("b", ty((16, 5)))],
             [f"%0 = kiln.matmul %a, %b : ({ty((3, 17, 16))}, {ty((16, 5))}) -> {ty((3, 17, 5))}"],
             [("0", ty((3, 17, 5)))], lambda r: [randn(r, 3, 17, 16), randn(r, 16, 5)],
             lambda a, b: [a @ b], tol=CONTRACTION),
        Case("matmul_transposed_lhs", [("a", ty((16, 17))), ("b", ty((16, 5)))],
             [f"%0 = kiln.matmul %a, %b transpose_lhs : ({ty((16, 17))}, {ty((16, 5))}) -> {ty((17, 5))}"],
             [("0", ty((17, 5)))], lambda r: [randn(r, 16, 17), randn(r, 16, 5)],
             lambda a, b: [a.T @ b], tol=CONTRACTION),
        Case("embedding", [("t", ty((1000, 64))), ("i", ty((2, 17), "i64"))],
             [f"%0 = kiln.embedding %t, %i : ({ty((1000, 64))}, {ty((2, 17), 'i64')}) -> {ty((2, 17, 64))}"],
             [("0", ty((2, 17, 64)))],
             lambda r: [randn(r, 1000, 64), r.integers(0, 1000, (2, 17)).astype(np.int64)],
             lambda t, i: [t[i]], tol=(0.0, 0.0)),
        Case("shapes", [("x", ty((3, 4, 5))), ("a", ty((2, 3))), ("b", ty((2, 5))),
                        ("y", ty((5, 17)))],
             [f"%0 = kiln.transpose %x permutation = [2, 0, 1] : ({ty((3, 4, 5))}) -> {ty((5, 3, 4))}",
              f"%1 = kiln.concat %a, %b axis = 1 : ({ty((2, 3))}, {ty((2, 5))}) -> {ty((2, 8))}",
              f"%2 = kiln.slice %y axis = 1 [1 : 17 : 3] : ({ty((5, 17))}) -> {ty((5, 6))}"],
             [("0", ty((5, 3, 4))), ("1", ty((2, 8))), ("2", ty((5, 6)))],
             lambda r: [randn(r, 3, 4, 5), randn(r, 2, 3), randn(r, 2, 5), randn(r, 5, 17)],
             lambda x, a, b, y: [x.permute(2, 0, 1), torch.cat([a, b], 1), y[:, 1:17:3]],
             tol=(0.0, 0.0)),
        Case("select_cast", [("x", ty((None, 129))), ("n", ty((7,), "i64"))],
             ["%z = kiln.constant dense<0.000000e+00> : tensor<f32>",
              f"%m = kiln.compare gt, %x, %z : ({ty((None, 129))}, tensor<f32>) -> {ty((None, 129), 'i1')}",
              f"%0 = kiln.select %m, %x, %z : ({ty((None, 129), 'i1')}, {ty((None, 129))}, tensor<f32>) -> {ty((None, 129))}",
              f"%1 = kiln.cast %n : {ty((7,), 'i64')} -> {ty((7,))}"],
             [("0", ty((None, 129))), ("1", ty((7,)))],
             lambda r: [randn(r, 4, 129), r.integers(-50, 50, (7,)).astype(np.int64)],
             lambda x, n: [torch.where(x > 0, x, torch.zeros_like(x)), n.float()], tol=(0.0, 0.0)),
        # bf16 through f32 inputs and outputs (.npy has no bf16): the
        # matmul is a cuBLASLt bf16 product with f32 accumulation, the add
        # a bf16 kernel. Tolerance: a few bf16 ulps (2^-8 relative).
        Case("bf16_matmul", [("a", ty((17, 64))), ("b", ty((64, 33))), ("c", ty((33,)))],
             [f"%ab = kiln.cast %a : {ty((17, 64))} -> {ty((17, 64), 'bf16')}",
              f"%bb = kiln.cast %b : {ty((64, 33))} -> {ty((64, 33), 'bf16')}",
              f"%cb = kiln.cast %c : {ty((33,))} -> {ty((33,), 'bf16')}",
              f"%p = kiln.matmul %ab, %bb : ({ty((17, 64), 'bf16')}, {ty((64, 33), 'bf16')}) -> {ty((17, 33), 'bf16')}",
              f"%s = kiln.add %p, %cb : ({ty((17, 33), 'bf16')}, {ty((33,), 'bf16')}) -> {ty((17, 33), 'bf16')}",
              f"%0 = kiln.cast %s : {ty((17, 33), 'bf16')} -> {ty((17, 33))}"],
             [("0", ty((17, 33)))],
             lambda r: [randn(r, 17, 64), randn(r, 64, 33), randn(r, 33)],
             # The exact product of the bf16 operands, rounded once: torch's
             # own bf16 matmul accumulates in bf16 on CPUs without
             # AVX512-BF16 (error 0.6 here), in f32 elsewhere.
             lambda a, b, c: [((a.bfloat16().double() @ b.bfloat16().double()).bfloat16()
                               + c.bfloat16()).float()],
             tol=(3e-2, 3e-2)),
        # int8 x int8 -> int32 (kiln.integer_matmul, what int8-dynamic and
        # int8-static multiply): bit-exact against torch's integer product.
        # [2, ?, 64] x [96, 64]^T meets cuBLASLt's int8 kernels' layout
        # (KILN_GPU_I8_I32: weight [n, k], n and k multiples of 4); k = 66
        # does not and runs the generated int8 kernel. Codes span all of
        # [-128, 127]; k = 1024 sums reach about 1.6e7, far past int16.
        Case("int8_matmul_cublaslt",
             [("x", ty((2, None, 64), "i8")), ("w", ty((96, 64), "i8")),
              ("y", ty((None, 1024), "i8")), ("v", ty((32, 1024), "i8"))],
             [f"%0 = kiln.integer_matmul %x, %w transpose_rhs : ({ty((2, None, 64), 'i8')}, "
              f"{ty((96, 64), 'i8')}) -> {ty((2, None, 96), 'i32')}",
              f"%1 = kiln.integer_matmul %y, %v transpose_rhs : ({ty((None, 1024), 'i8')}, "
              f"{ty((32, 1024), 'i8')}) -> {ty((None, 32), 'i32')}"],
             [("0", ty((2, None, 96), "i32")), ("1", ty((None, 32), "i32"))],
             lambda r: [r.integers(-128, 128, (2, 17, 64)).astype(np.int8),
                        r.integers(-128, 128, (96, 64)).astype(np.int8),
                        np.full((5, 1024), -128, np.int8),
                        np.full((32, 1024), -128, np.int8)],
             lambda x, w, y, v: [(x.long() @ w.long().T).int(), (y.long() @ v.long().T).int()],
             tol=(0.0, 0.0)),
        Case("int8_matmul_kernel",
             [("x", ty((None, 66), "i8")), ("w", ty((10, 66), "i8"))],
             [f"%0 = kiln.integer_matmul %x, %w transpose_rhs : ({ty((None, 66), 'i8')}, "
              f"{ty((10, 66), 'i8')}) -> {ty((None, 10), 'i32')}"],
             [("0", ty((None, 10), "i32"))],
             lambda r: [r.integers(-128, 128, (7, 66)).astype(np.int8),
                        r.integers(-128, 128, (10, 66)).astype(np.int8)],
             lambda x, w: [(x.long() @ w.long().T).int()],
             tol=(0.0, 0.0)),
        # A W8A8 linear as kiln-quantize's int8-dynamic writes it: per-token
        # scales max|x| / 127, codes round-half-even(x / s) (torch's
        # quantize_per_channel rule), the int8 product on cuBLASLt, then
        # sums * s_x * s_w + b in f32. Against torch doing the same in f32:
        # the sums are exact, so only the f32 scaling can differ (a code
        # that lands on a rounding tie the other way would show as one
        # code step, s_x * s_w * |w|, far above the tolerance).
        Case("int8_dynamic_linear",
             [("x", ty((None, 128))), ("w", ty((64, 128), "i8")), ("sw", ty((64,))),
              ("b", ty((64,)))],
             ["%eps = kiln.constant dense<1.000000e-30> : tensor<f32>",
              "%qmax = kiln.constant dense<1.270000e+02> : tensor<f32>",
              f"%a = kiln.abs %x : {ty((None, 128))}",
              f"%m = kiln.reduce max %a axes = [1] keepdim : ({ty((None, 128))}) -> {ty((None, 1))}",
              f"%mm = kiln.max %m, %eps : ({ty((None, 1))}, tensor<f32>) -> {ty((None, 1))}",
              f"%s = kiln.div %mm, %qmax : ({ty((None, 1))}, tensor<f32>) -> {ty((None, 1))}",
              f"%q = kiln.quantize %x, %s : ({ty((None, 128))}, {ty((None, 1))}) -> {ty((None, 128), 'i8')}",
              f"%acc = kiln.integer_matmul %q, %w transpose_rhs : ({ty((None, 128), 'i8')}, "
              f"{ty((64, 128), 'i8')}) -> {ty((None, 64), 'i32')}",
              f"%f = kiln.cast %acc : {ty((None, 64), 'i32')} -> {ty((None, 64))}",
              f"%t = kiln.mul %f, %s : ({ty((None, 64))}, {ty((None, 1))}) -> {ty((None, 64))}",
              f"%u = kiln.mul %t, %sw : ({ty((None, 64))}, {ty((64,))}) -> {ty((None, 64))}",
              f"%0 = kiln.add %u, %b : ({ty((None, 64))}, {ty((64,))}) -> {ty((None, 64))}"],
             [("0", ty((None, 64)))],
             lambda r: [randn(r, 9, 128),
                        r.integers(-127, 128, (64, 128)).astype(np.int8),
                        (np.abs(randn(r, 64)) * 0.01 + 1e-3).astype(np.float32),
                        randn(r, 64)],
             lambda x, w, sw, b: [int8_dynamic_linear_reference(x, w, sw, b)],
             tol=(1e-5, 1e-5)),
        # Fused (flash-attention style) attention, grouped-query and causal
        # with more keys than queries, and its gradient op.
        Case("attention_fused", [("q", ty((2, 4, 33, 64))), ("k", ty((2, 2, 40, 64))),
                                 ("v", ty((2, 2, 40, 64)))],
             [f"%0 = kiln.attention %q, %k, %v causal : ({ty((2, 4, 33, 64))}, "
              f"{ty((2, 2, 40, 64))}, {ty((2, 2, 40, 64))}) -> {ty((2, 4, 33, 64))}"],
             [("0", ty((2, 4, 33, 64)))],
             lambda r: [randn(r, 2, 4, 33, 64), randn(r, 2, 2, 40, 64), randn(r, 2, 2, 40, 64)],
             lambda q, k, v: [attention_reference(q, k, v)], tol=CONTRACTION),
        # bf16 operands, f32 arithmetic in the kernel, one rounding: within
        # 2 bf16 ulps of the f32 result on the rounded inputs.
        Case("attention_bf16", [("q", ty((2, 2, 33, 64))), ("k", ty((2, 2, 33, 64))),
                                ("v", ty((2, 2, 33, 64)))],
             [f"%{n}b = kiln.cast %{n} : {ty((2, 2, 33, 64))} -> {ty((2, 2, 33, 64), 'bf16')}"
              for n in "qkv"] +
             [f"%a = kiln.attention %qb, %kb, %vb causal : ({ty((2, 2, 33, 64), 'bf16')}, "
              f"{ty((2, 2, 33, 64), 'bf16')}, {ty((2, 2, 33, 64), 'bf16')}) -> {ty((2, 2, 33, 64), 'bf16')}",
              f"%0 = kiln.cast %a : {ty((2, 2, 33, 64), 'bf16')} -> {ty((2, 2, 33, 64))}"],
             [("0", ty((2, 2, 33, 64)))],
             lambda r: [randn(r, 2, 2, 33, 64) for _ in range(3)],
             lambda q, k, v: [attention_reference(*(t.bfloat16().float() for t in (q, k, v)))],
             tol=(2 ** -7, 2 ** -7)),
        Case("attention_grad", [("q", ty((1, 4, 17, 32))), ("k", ty((1, 2, 23, 32))),
                                ("v", ty((1, 2, 23, 32))), ("g", ty((1, 4, 17, 32)))],
             [f"%0:3 = kiln.attention_grad %q, %k, %v, %g causal : ({ty((1, 4, 17, 32))}, "
              f"{ty((1, 2, 23, 32))}, {ty((1, 2, 23, 32))}, {ty((1, 4, 17, 32))}) -> "
              f"({ty((1, 4, 17, 32))}, {ty((1, 2, 23, 32))}, {ty((1, 2, 23, 32))})"],
             [("0#0", ty((1, 4, 17, 32))), ("0#1", ty((1, 2, 23, 32))), ("0#2", ty((1, 2, 23, 32)))],
             lambda r: [randn(r, 1, 4, 17, 32), randn(r, 1, 2, 23, 32), randn(r, 1, 2, 23, 32),
                        randn(r, 1, 4, 17, 32)],
             attention_gradients, tol=CONTRACTION),
        # The remaining primitives and composites, so every op runs once.
        Case("binary_more", [("a", t129), ("b", t129)],
             [f"%0 = kiln.max %a, %b : ({t129}, {t129}) -> {t129}",
              f"%1 = kiln.min %a, %b : ({t129}, {t129}) -> {t129}",
              f"%p = kiln.abs %a : {t129}",
              f"%2 = kiln.pow %p, %b : ({t129}, {t129}) -> {t129}"],
             [("0", t129), ("1", t129), ("2", t129)],
             lambda r: [randn(r, 3, 129), randn(r, 3, 129, scale=0.5)],
             lambda a, b: [torch.maximum(a, b), torch.minimum(a, b), a.abs() ** b],
             tol=(1e-4, 1e-5)),
        Case("unary_more", [("x", t129)],
             [f"%a = kiln.abs %x : {t129}", f"%0 = kiln.neg %x : {t129}",
              f"%1 = kiln.log %a : {t129}", f"%2 = kiln.erf %x : {t129}",
              f"%3 = kiln.sin %x : {t129}", f"%4 = kiln.cos %x : {t129}",
              f"%5 = kiln.sqrt %a : {t129}", f"%6 = kiln.rsqrt %a : {t129}",
              f"%7 = kiln.sigmoid %x : {t129}", f"%8 = kiln.silu %x : {t129}"],
             [(str(i), t129) for i in range(9)],
             lambda r: [randn(r, 3, 129, scale=2.0) + 0.01],
             lambda x: [-x, x.abs().log(), torch.erf(x), x.sin(), x.cos(), x.abs().sqrt(),
                        x.abs().rsqrt(), torch.sigmoid(x), F.silu(x)],
             tol=(1e-4, 1e-5)),
        Case("norms", [("x", ty((4, 96))), ("w", ty((96,)))],
             [f"%0 = kiln.rms_norm %x, %w eps = 1.000000e-06 : ({ty((4, 96))}, {ty((96,))}) -> {ty((4, 96))}",
              f"%1 = kiln.log_softmax %x axis = -1 : ({ty((4, 96))}) -> {ty((4, 96))}"],
             [("0", ty((4, 96))), ("1", ty((4, 96)))],
             lambda r: [randn(r, 4, 96), 1.0 + randn(r, 96, scale=0.1)],
             lambda x, w: [x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w,
                           torch.log_softmax(x, -1)], tol=(1e-4, 1e-5)),
        Case("linear_rope", [("x", ty((2, 7, 16))), ("w", ty((24, 16))), ("b", ty((24,))),
                             ("h", ty((1, 2, 7, 8)))],
             [f"%0 = kiln.linear %x, %w bias %b : ({ty((2, 7, 16))}, {ty((24, 16))}, {ty((24,))}) -> {ty((2, 7, 24))}",
              f"%1 = kiln.rope %h theta = 1.000000e+04 : ({ty((1, 2, 7, 8))}) -> {ty((1, 2, 7, 8))}"],
             [("0", ty((2, 7, 24))), ("1", ty((1, 2, 7, 8)))],
             lambda r: [randn(r, 2, 7, 16), randn(r, 24, 16), randn(r, 24), randn(r, 1, 2, 7, 8)],
             lambda x, w, b, h: [F.linear(x, w, b), rope_reference(h)], tol=CONTRACTION),
        Case("conv_pool", [("x", ty((2, 3, 12, 12))), ("w", ty((5, 3, 3, 3))), ("b", ty((5,)))],
             [f"%c = kiln.conv2d %x, %w bias %b stride = [1, 1] padding = [1, 1] dilation = [1, 1] "
              f"groups = 1 : ({ty((2, 3, 12, 12))}, {ty((5, 3, 3, 3))}, {ty((5,))}) -> {ty((2, 5, 12, 12))}",
              f"%0 = kiln.max_pool2d %c kernel = [2, 2] stride = [2, 2] padding = [0, 0] : "
              f"({ty((2, 5, 12, 12))}) -> {ty((2, 5, 6, 6))}",
              f"%1 = kiln.avg_pool2d %c kernel = [3, 3] stride = [2, 2] padding = [1, 1] : "
              f"({ty((2, 5, 12, 12))}) -> {ty((2, 5, 6, 6))}"],
             [("0", ty((2, 5, 6, 6))), ("1", ty((2, 5, 6, 6)))],
             lambda r: [randn(r, 2, 3, 12, 12), randn(r, 5, 3, 3, 3), randn(r, 5)],
             lambda x, w, b: [F.max_pool2d(F.conv2d(x, w, b, padding=1), 2),
                              F.avg_pool2d(F.conv2d(x, w, b, padding=1), 3, 2, 1)],
             tol=CONTRACTION),
        Case("recurrent", [("x", ty((3, 5))), ("h", ty((3, 4))), ("c", ty((3, 4))),
                           ("gw", ty((12, 5))), ("gu", ty((12, 4))), ("gb", ty((12,))), ("gc", ty((12,))),
                           ("lw", ty((16, 5))), ("lu", ty((16, 4))), ("lb", ty((16,))), ("lc", ty((16,)))],
             [f"%0 = kiln.gru_cell %x, %h, %gw, %gu, %gb, %gc : ({ty((3, 5))}, {ty((3, 4))}, "
              f"{ty((12, 5))}, {ty((12, 4))}, {ty((12,))}, {ty((12,))}) -> {ty((3, 4))}",
              f"%1, %2 = kiln.lstm_cell %x, %h, %c, %lw, %lu, %lb, %lc : ({ty((3, 5))}, {ty((3, 4))}, "
              f"{ty((3, 4))}, {ty((16, 5))}, {ty((16, 4))}, {ty((16,))}, {ty((16,))}) -> "
              f"({ty((3, 4))}, {ty((3, 4))})"],
             [("0", ty((3, 4))), ("1", ty((3, 4))), ("2", ty((3, 4)))],
             lambda r: [randn(r, 3, 5), randn(r, 3, 4), randn(r, 3, 4),
                        randn(r, 12, 5), randn(r, 12, 4), randn(r, 12), randn(r, 12),
                        randn(r, 16, 5), randn(r, 16, 4), randn(r, 16), randn(r, 16)],
             recurrent_reference, tol=CONTRACTION),
        Case("index_ops", [("t", ty((7, 4))), ("i", ty((2, 3), "i64")), ("x", ty((3, 5))),
                           ("u", ty((3, 4))), ("n", ty((4,), "i64"))],
             [f"%0 = kiln.gather %t[%i] axis = 0 : ({ty((7, 4))}, {ty((2, 3), 'i64')}) -> {ty((2, 3, 4))}",
              f"%1 = kiln.scatter_add %x[%n], %u axis = 1 : ({ty((3, 5))}, {ty((4,), 'i64')}, "
              f"{ty((3, 4))}) -> {ty((3, 5))}",
              f"%io = kiln.iota () dim = 1 : {ty((3, 4), 'i64')}",
              f"%ic = kiln.cast %io : {ty((3, 4), 'i64')} -> {ty((3, 4))}",
              f"%2 = kiln.pad %u low = [1, 0] high = [0, 2] value = 1.500000e+00 : ({ty((3, 4))}) -> {ty((4, 6))}",
              f"%r = kiln.reshape %x : {ty((3, 5))} -> {ty((15,))}",
              f"%3 = kiln.broadcast_to %r () : {ty((15,))} -> {ty((2, 15))}"],
             [("0", ty((2, 3, 4))), ("1", ty((3, 5))), ("ic", ty((3, 4))), ("2", ty((4, 6))),
              ("3", ty((2, 15)))],
             lambda r: [randn(r, 7, 4), r.integers(0, 7, (2, 3)).astype(np.int64), randn(r, 3, 5),
                        randn(r, 3, 4), np.array([4, 0, 4, 2], np.int64)],
             lambda t, i, x, u, n: [t[i], x.index_add(1, n, u),
                                    torch.arange(4, device=x.device).float().expand(3, 4),
                                    F.pad(u, (0, 2, 1, 0), value=1.5), x.reshape(15).expand(2, 15)],
             tol=(1e-6, 1e-6)),
        Case("masks", [("ids", ty((2, 5), "i64"))],
             [f"%0 = kiln.padding_mask %ids : {ty((2, 5), 'i64')} -> {ty((2, 1, 1, 5))}",
              f"%m = kiln.causal_mask () : {ty((3, 5), 'i1')}",
              "%z = kiln.constant dense<0.000000e+00> : tensor<f32>",
              "%o = kiln.constant dense<1.000000e+00> : tensor<f32>",
              f"%1 = kiln.select %m, %o, %z : ({ty((3, 5), 'i1')}, tensor<f32>, tensor<f32>) -> {ty((3, 5))}"],
             [("0", ty((2, 1, 1, 5))), ("1", ty((3, 5)))],
             lambda r: [np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]], np.int64)],
             lambda ids: [torch.where(ids != 0, 0.0, torch.finfo(torch.float32).min)
                          .float()[:, None, None, :],
                          torch.ones(3, 5, device=ids.device).tril(diagonal=2)],
             tol=(0.0, 0.0)),
        Case("losses", [("a", ty((4, 9))), ("b", ty((4, 9)))],
             [f"%0 = kiln.mse %a, %b reduction = mean : ({ty((4, 9))}, {ty((4, 9))}) -> tensor<f32>",
              f"%i = kiln.log_softmax %a axis = -1 : ({ty((4, 9))}) -> {ty((4, 9))}",
              f"%t = kiln.softmax %b axis = -1 : ({ty((4, 9))}) -> {ty((4, 9))}",
              f"%1 = kiln.kl_div %i, %t reduction = batchmean : ({ty((4, 9))}, {ty((4, 9))}) -> tensor<f32>"],
             [("0", ty(())), ("1", ty(()))],
             lambda r: [randn(r, 4, 9), randn(r, 4, 9)],
             lambda a, b: [F.mse_loss(a, b),
                           F.kl_div(torch.log_softmax(a, -1), torch.softmax(b, -1),
                                    reduction="batchmean")],
             tol=(1e-5, 1e-6)),
        # The counter-based generator must give the same bits everywhere:
        # against a numpy copy of it (exact), and dropout built on it.
        Case("random", [("s", ty((), "i64")), ("x", ty((33, 65)))],
             [f"%0 = kiln.random_uniform %s () : ({ty((), 'i64')}) -> {ty((33, 65))}",
              f"%1 = kiln.dropout %x, %s p = 3.000000e-01 : ({ty((33, 65))}, {ty((), 'i64')}) -> {ty((33, 65))}"],
             [("0", ty((33, 65))), ("1", ty((33, 65)))],
             lambda r: [np.array(1234567, np.int64), randn(r, 33, 65)],
             random_reference, tol=(2.4e-7, 0.0)),
        Case("cross_entropy", [("l", ty((None, None, 33))), ("t", ty((None, None), "i64"))],
             [f"%0 = kiln.cross_entropy %l, %t reduction = mean : ({ty((None, None, 33))}, "
              f"{ty((None, None), 'i64')}) -> tensor<f32>"],
             [("0", ty(()))],
             lambda r: [randn(r, 2, 17, 33, scale=3.0), r.integers(0, 33, (2, 17)).astype(np.int64)],
             lambda l, t: [F.cross_entropy(l.reshape(-1, 33), t.reshape(-1))], tol=(1e-5, 1e-5)),
    ]


#===----------------------------------------------------------------------===#
# Prepare (on the machine with the compiler)
#===----------------------------------------------------------------------===#

def compile_artifact(kiln_compile, source, out, arch, extra=()):
    """arch "cpu" compiles for the CPU instead: the harness check (below),
    with the weights row-major (write_weights writes them in the model's
    layout, not the CPU matmul's panels)."""
    target = (["--target", "cpu", "--pack-weights=none"] if arch == "cpu"
              else ["--target", "cuda", "--cuda-arch", arch])
    args = [kiln_compile, source, "-o", out] + target + list(extra)
    started = time.time()
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"gpu-check: compiling {source} failed:\n{done.stderr}")
    print(f"  {os.path.basename(out)}: {time.time() - started:.1f} s")


def prepare(args):
    bundle = os.path.abspath(args.bundle)
    artifacts = os.path.join(bundle, "artifacts")
    os.makedirs(artifacts, exist_ok=True)
    ops = os.path.join(bundle, "ops.mlir")
    with open(ops, "w") as f:
        f.write("// Generated by test/gpu/gpu_check.py prepare: one entry point per op case.\n")
        for case in cases():
            f.write(case.mlir())
    print(f"compiling for {args.arch} into {artifacts}")
    compile_artifact(args.kiln_compile, ops, os.path.join(artifacts, "ops.kiln"), args.arch)
    # fp8: cuBLASLt's fp8 gemm needs sm_89 or later.
    if re.fullmatch(r"sm_(\d+)a?", args.arch) and int(re.findall(r"\d+", args.arch)[0]) >= 89:
        fp8 = os.path.join(bundle, "fp8-ops.mlir")
        with open(fp8, "w") as f:
            f.write("// Generated by test/gpu/gpu_check.py prepare: the fp8 op cases.\n")
            for case in fp8_cases():
                f.write(case.mlir())
        compile_artifact(args.kiln_compile, fp8, os.path.join(artifacts, "fp8-ops.kiln"), args.arch)
    compile_artifact(args.kiln_compile, os.path.join(MODELS, "gpt2-tiny.json"),
                     os.path.join(artifacts, "gpt2-tiny.kiln"), args.arch)
    compile_artifact(args.kiln_compile, os.path.join(MODELS, "gpt2-tiny.json"),
                     os.path.join(artifacts, "gpt2-tiny-train.kiln"), args.arch,
                     ["--mode", "train", "--batch", str(TRAIN_BATCH), "--seq", str(TRAIN_SEQ),
                      "--weight-decay", "0.1"])
    # Mixed precision (f32 masters, bf16 compute), fused attention (the
    # default): test_mixed_precision's gpt2_mixed with attention="fused"
    # rounds where it does.
    bf16 = ["--dtype", "bf16"]
    compile_artifact(args.kiln_compile, os.path.join(MODELS, "gpt2-tiny.json"),
                     os.path.join(artifacts, "gpt2-tiny-bf16.kiln"), args.arch, bf16)
    compile_artifact(args.kiln_compile, os.path.join(MODELS, "gpt2-tiny.json"),
                     os.path.join(artifacts, "gpt2-tiny-bf16-train.kiln"), args.arch,
                     bf16 + ["--mode", "train", "--batch", str(TRAIN_BATCH), "--seq", str(TRAIN_SEQ),
                             "--weight-decay", "0.1"])
    if args.no_bench:
        return
    # The attention goal's shape: bf16, sequence 4096, head dim 128 (inputs
    # and output f32 in the signature, since .npy has no bf16).
    attention = os.path.join(bundle, "attention-bench.mlir")
    with open(attention, "w") as f:
        f.write(attention_bench_mlir())
    compile_artifact(args.kiln_compile, attention, os.path.join(artifacts, "attention-4096.kiln"),
                     args.arch)
    small = os.path.join(artifacts, "gpt2-small.kiln")
    compile_artifact(args.kiln_compile, os.path.join(MODELS, "gpt2-small.json"), small, args.arch)
    # 498 MB of weights do not travel: the run writes random ones.
    os.remove(os.path.join(small, "weights.safetensors"))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(bundle) for f in fs)
    print(f"bundle {bundle}: {total / 2**20:.1f} MiB")


#===----------------------------------------------------------------------===#
# Run (on the GPU machine)
#===----------------------------------------------------------------------===#

TRAIN_BATCH, TRAIN_SEQ, TRAIN_LR, TRAIN_STEPS = 2, 16, 1e-3, 3


class Checker:
    def __init__(self, kiln, work):
        self.kiln, self.work = kiln, work
        self.lines, self.failures = [], 0

    def record(self, ok, line):
        self.failures += 0 if ok else 1
        mark = "ok  " if ok else "FAIL"
        print(f"[{mark}] {line}", flush=True)
        self.lines.append(f"| {'ok' if ok else '**FAIL**'} | {line} |")

    def run(self, artifact, entry, inputs, extra=()):
        """Runs `entry` with [(name, array)]; returns the output arrays in
        manifest order and the tool's stdout."""
        out = tempfile.mkdtemp(dir=self.work)
        argv = [self.kiln, "run", artifact, "--entry", entry, "--output-dir", out] + list(extra)
        for name, array in inputs:
            path = os.path.join(out, f"in-{name}.npy")
            np.save(path, array)
            argv += ["--input", f"{name}={path}"]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        with open(os.path.join(artifact, "manifest.json")) as f:
            manifest = json.load(f)
        spec = next(e for e in manifest["entry_points"] if e["name"] == entry)
        if "--repeat" in extra:
            return [], done.stdout
        return [np.load(os.path.join(out, o["name"] + ".npy")) for o in spec["outputs"]], done.stdout


def compare(actual, expected, rtol, atol):
    expected = expected.detach().cpu().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    if actual.shape != expected.shape:
        return False, f"shape {actual.shape} != {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    worst = float(diff.max()) if diff.size else 0.0
    ok = bool(np.all(diff <= atol + rtol * np.abs(expected.astype(np.float64))))
    return ok, f"max abs error {worst:.2e}"


def check_ops(checker, bundle, device, name="ops", case_list=None):
    import torch
    artifact = os.path.join(bundle, "artifacts", name + ".kiln")
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    for case in (case_list if case_list is not None else cases()):
        spec = next((e for e in manifest["entry_points"] if e["name"] == case.name), None)
        if spec is None:
            checker.record(False, f"op {case.name}: not in {artifact} (a bundle older than this "
                                  "script: run prepare again)")
            continue
        rng = np.random.default_rng(zlib.crc32(case.name.encode()))
        arrays = case.inputs(rng)
        try:
            outputs, _ = checker.run(artifact, case.name,
                                     [(i["name"], a) for i, a in zip(spec["inputs"], arrays)])
        except RuntimeError as error:
            checker.record(False, f"op {case.name}: kiln run failed: {error}")
            continue
        expected = case.reference(*[torch.from_numpy(a).to(device) for a in arrays])
        notes, ok = [], True
        for index, (actual, reference) in enumerate(zip(outputs, expected)):
            good, note = compare(actual, reference, *case.tol)
            ok &= good
            notes.append(f"#{index} {note}")
        checker.record(ok, f"op {case.name} ({', '.join(notes)}; rtol {case.tol[0]}, atol {case.tol[1]})")


def check_fp8_ops(checker, bundle, device):
    """The fp8 cases, where the bundle has them (prepared for sm_89+) and
    the device can run them (compute capability 8.9+)."""
    import torch
    if not os.path.isdir(os.path.join(bundle, "artifacts", "fp8-ops.kiln")):
        print("fp8: not in this bundle (prepared for an arch before sm_89, or older)")
        return
    if device.type != "cuda" or torch.cuda.get_device_capability(0) < (8, 9):
        print("fp8: this device has no fp8 tensor cores (compute capability < 8.9)")
        return
    check_ops(checker, bundle, device, "fp8-ops", fp8_cases())


def write_weights(artifact, weights):
    """Replaces the artifact's weights with `weights`, in manifest order, so
    the offsets in manifest.json still hold."""
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    params = [p for p in manifest["parameters"] if not p.get("state")]
    # An inference artifact of a bf16 model stores its weights in bf16
    # (kiln-narrow-parameters), rounded as the graph's casts round.
    bf16 = {p["name"] for p in params if p["dtype"] == "BF16"}
    ordered = {p["name"]: to_bf16(weights[p["name"]]) if p["name"] in bf16 else weights[p["name"]]
               for p in params}
    save_safetensors(ordered, os.path.join(artifact, "weights.safetensors"), bf16=bf16)


def gpt2_tiny_artifact(bundle, name, seed):
    """The bundle's artifact `name` with test_training's random weights
    (`seed`) written into it; returns (artifact, config, weights)."""
    from test_training import model_weights
    artifact = os.path.join(bundle, "artifacts", name)
    with open(os.path.join(MODELS, "gpt2-tiny.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(artifact, "manifest.json")) as f:
        weights = model_weights(json.load(f), seed=seed)
    write_weights(artifact, weights)
    return artifact, cfg, weights


def run_logits(checker, artifact, cfg, label):
    """Yields (batch, seq, ids, logits) of `artifact`'s forward at the three
    checked shapes; a failed run is recorded and skipped."""
    for batch, seq in ((1, 1), (2, 17), (3, 64)):
        ids = np.random.default_rng(batch * 100 + seq).integers(0, cfg["vocab_size"], (batch, seq))
        ids = ids.astype(np.int64)
        try:
            (logits,), _ = checker.run(artifact, "forward", [("input_ids", ids)])
        except RuntimeError as error:
            checker.record(False, f"{label} [{batch}x{seq}]: kiln run failed: {error}")
            continue
        yield batch, seq, ids, logits


def check_gpt2_tiny(checker, bundle, device):
    import torch
    from test_training import gpt2_forward
    artifact, cfg, weights = gpt2_tiny_artifact(bundle, "gpt2-tiny.kiln", seed=1)
    t = {k: torch.from_numpy(v).to(device) for k, v in weights.items()}
    for batch, seq, ids, logits in run_logits(checker, artifact, cfg, "gpt2-tiny logits"):
        with torch.no_grad():
            expected = gpt2_forward(t, torch.from_numpy(ids).to(device), cfg)
        ok, note = compare(logits, expected, *CONTRACTION)
        checker.record(ok, f"gpt2-tiny logits [{batch}x{seq}] ({note})")


def train_both(checker, bundle, device, name, forward):
    """TRAIN_STEPS AdamW train_steps of the bundle's artifact `name` (with
    test_training's seed-3 weights) and of torch, `forward(params, ids,
    cfg)` giving the logits, on the same batch. Returns (weights, kiln's
    losses and norms, kiln's saved state, torch's params, optimizer, losses
    and norms), or None after recording a failed run."""
    import torch
    import torch.nn.functional as F
    artifact, cfg, weights = gpt2_tiny_artifact(bundle, name, seed=3)
    label = os.path.splitext(name)[0].replace("-train", "") + " train_step"
    tokens = np.random.default_rng(7).integers(0, cfg["vocab_size"], (TRAIN_BATCH, TRAIN_SEQ + 1))
    inputs = [("input_ids", tokens[:, :-1].astype(np.int64)),
              ("targets", tokens[:, 1:].astype(np.int64)),
              ("lr", np.array(TRAIN_LR, dtype=np.float32))]
    checkpoint = os.path.join(checker.work, f"after-{name}.safetensors")
    try:
        _, stdout = checker.run(artifact, "train_step", inputs,
                                ["--repeat", str(TRAIN_STEPS), "--save-parameters", checkpoint])
    except RuntimeError as error:
        checker.record(False, f"{label}: kiln run failed: {error}")
        return None
    got = {"loss": [], "grad_norm": []}
    for key, value in re.findall(r"\] (loss|grad_norm): F32 \[\] = (\S+)", stdout):
        got[key].append(float(value))
    params = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in weights.items()}
    opt = torch.optim.AdamW([{"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0}],
                            lr=TRAIN_LR, betas=(0.9, 0.999), eps=1e-8)
    ids = torch.from_numpy(inputs[0][1]).to(device)
    targets = torch.from_numpy(inputs[1][1]).to(device)
    losses, norms = [], []
    # How far float32 rounding in each gradient can move Adam's updates
    # (test_training.py's bound, with both sides in float32 here: twice its
    # GRAD_ULPS): where a gradient is near its rounding noise, Adam turns
    # that noise into updates of up to lr.
    sensitivity = {k: np.zeros(p.shape) for k, p in params.items()}
    for step in range(1, TRAIN_STEPS + 1):
        opt.zero_grad()
        loss = F.cross_entropy(forward(params, ids, cfg).reshape(-1, cfg["vocab_size"]),
                               targets.reshape(-1))
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)))
        noise = {k: 64 * 2.0 ** -24 * float(p.grad.abs().max()) for k, p in params.items()}
        opt.step()
        losses.append(float(loss))
        for k, p in params.items():
            v = opt.state[p]["exp_avg_sq"].detach().cpu().numpy().astype(np.float64)
            sqrt_v_hat = np.sqrt(v / (1 - 0.999 ** step))
            bound = np.minimum(2 * TRAIN_LR * noise[k] / (sqrt_v_hat + 1e-8), 2 * TRAIN_LR)
            sensitivity[k] += np.where(v > 0, bound, 0)
    opt.sensitivity = sensitivity
    return weights, got, load_safetensors(checkpoint), params, opt, losses, norms


def check_gpt2_tiny_train(checker, bundle, device):
    from test_training import gpt2_forward
    trained = train_both(checker, bundle, device, "gpt2-tiny-train.kiln", gpt2_forward)
    if trained is None:
        return
    weights, got, state, params, opt, losses, norms = trained
    ok = (len(got["loss"]) == TRAIN_STEPS and np.allclose(got["loss"], losses, rtol=1e-5)
          and np.allclose(got["grad_norm"], norms, rtol=1e-4))
    checker.record(ok, f"gpt2-tiny train_step x{TRAIN_STEPS}: losses kiln {got['loss']} torch "
                       f"{[round(x, 6) for x in losses]}, grad norms kiln {got['grad_norm']} "
                       f"torch {[round(x, 6) for x in norms]} (rtol 1e-5, 1e-4)")
    worst, bad = 0.0, []
    for name, p in params.items():
        # Zero-gradient elements (the key bias) hold rounding noise that
        # Adam amplifies up to lr * 0.1 per step (test_training.py).
        v = opt.state[p]["exp_avg_sq"].detach().cpu().numpy()
        noise = (np.sqrt(v) < 1e-8) & (v > 0)
        expected = p.detach().cpu().numpy()
        diff = np.abs(state[name] - expected)
        limit = np.where(noise, TRAIN_STEPS * TRAIN_LR * 0.1,
                         1e-5 + 1e-4 * np.abs(expected) + opt.sensitivity[name])
        worst = max(worst, float(np.where(noise, 0, diff).max()))
        if np.any(diff > limit):
            bad.append(name)
    checker.record(not bad, f"gpt2-tiny parameters after {TRAIN_STEPS} AdamW steps (largest "
                            f"difference {worst:.2e}; atol 1e-5 + rtol 1e-4 + Adam's "
                            f"sensitivity to float32 gradient rounding)"
                            + (f": differ in {', '.join(bad[:5])}" if bad else ""))


def check_gpt2_tiny_bf16(checker, bundle, device):
    """bf16 logits against torch doing the same mixed precision on the
    device, with test_mixed_precision's tolerances (max abs 2^-7 = one
    bf16 ulp in [1, 2), mean abs 1e-4)."""
    import torch
    from test_mixed_precision import LOGITS_ATOL, LOGITS_MEAN_ATOL, gpt2_mixed
    artifact, cfg, weights = gpt2_tiny_artifact(bundle, "gpt2-tiny-bf16.kiln", seed=1)
    t = {k: torch.from_numpy(v).to(device) for k, v in weights.items()}
    for batch, seq, ids, logits in run_logits(checker, artifact, cfg, "gpt2-tiny bf16 logits"):
        with torch.no_grad():
            expected = gpt2_mixed(t, torch.from_numpy(ids).to(device), cfg, torch.bfloat16,
                                  attention="fused")
        expected = expected.cpu().numpy()
        mean = float(np.abs(logits - expected).mean()) if logits.shape == expected.shape else float("inf")
        ok, note = compare(logits, expected, 0.0, LOGITS_ATOL)
        checker.record(ok and mean < LOGITS_MEAN_ATOL,
                       f"gpt2-tiny bf16 logits [{batch}x{seq}] ({note}, mean {mean:.2e}; "
                       f"atol {LOGITS_ATOL}, mean {LOGITS_MEAN_ATOL})")


def check_gpt2_tiny_bf16_train(checker, bundle, device):
    """3 mixed-precision AdamW steps against torch's (f32 masters, bf16
    forward and backward, f32 update) with test_mixed_precision's
    tolerances: losses rtol 1e-4, grad norms 3e-3, at most 2% of the update
    elements off by more than 1e-4."""
    import torch
    from test_mixed_precision import (LOSS_RTOL, NORM_RTOL, UPDATE_ATOL, UPDATE_OUTLIERS,
                                      gpt2_mixed)
    trained = train_both(checker, bundle, device, "gpt2-tiny-bf16-train.kiln",
                         lambda p, i, c: gpt2_mixed(p, i, c, torch.bfloat16, attention="fused"))
    if trained is None:
        return
    weights, got, state, params, _, losses, norms = trained
    ok = (len(got["loss"]) == TRAIN_STEPS and np.allclose(got["loss"], losses, rtol=LOSS_RTOL, atol=0)
          and np.allclose(got["grad_norm"], norms, rtol=NORM_RTOL, atol=0))
    checker.record(ok, f"gpt2-tiny bf16 train_step x{TRAIN_STEPS}: losses kiln {got['loss']} torch "
                       f"{[round(x, 6) for x in losses]}, grad norms kiln {got['grad_norm']} "
                       f"torch {[round(x, 6) for x in norms]} (rtol {LOSS_RTOL}, {NORM_RTOL})")
    names = sorted(weights)
    kiln_update = np.concatenate([(state[n] - weights[n]).ravel() for n in names])
    torch_update = np.concatenate([(params[n].detach().cpu().numpy() - weights[n]).ravel()
                                   for n in names])
    outliers = float(np.mean(np.abs(kiln_update - torch_update) > UPDATE_ATOL))
    f32 = all(state[n].dtype == np.float32 and state[n + "/adam_m"].dtype == np.float32 for n in names)
    checker.record(outliers < UPDATE_OUTLIERS and f32,
                   f"gpt2-tiny bf16 update after {TRAIN_STEPS} steps: {outliers:.2%} of elements off "
                   f"by more than {UPDATE_ATOL} (at most {UPDATE_OUTLIERS:.0%}); f32 masters and "
                   f"state: {f32}")


ATTENTION_BENCH = (1, 16, 4096, 128)   # batch, heads, sequence, head dim


def attention_bench_mlir():
    f, b = ty(ATTENTION_BENCH), ty(ATTENTION_BENCH, "bf16")
    names = ", ".join(f'%{n}: {f} {{kiln.name = "{n}"}}' for n in "qkv")
    return (f"func.func @forward({names}) -> ({f} {{kiln.name = \"o\"}}) {{\n"
            + "".join(f"  %{n}b = kiln.cast %{n} : {f} -> {b}\n" for n in "qkv")
            + f"  %a = kiln.attention %qb, %kb, %vb : ({b}, {b}, {b}) -> {b}\n"
            + f"  %o = kiln.cast %a : {b} -> {f}\n  return %o : {f}\n}}\n")


def bench_attention(checker, bundle, device, iters, peak_bf16_tflops, synchronize):
    """The issue's attention goal: bf16 forward at sequence 4096, head dim
    128 (16 heads, no mask), kiln bench (which also counts the four f32<->bf16
    casts the signature needs, ~0.1% of the work) against PyTorch's
    scaled_dot_product_attention in bf16, as a fraction of the dense bf16
    peak. 4·B·H·S²·D FLOPs per call."""
    import torch
    import torch.nn.functional as F
    artifact = os.path.join(bundle, "artifacts", "attention-4096.kiln")
    rng = np.random.default_rng(11)
    arrays = [randn(rng, *ATTENTION_BENCH) for _ in range(3)]
    argv = [checker.kiln, "bench", artifact, "--iters", str(iters)]
    for name, array in zip("qkv", arrays):
        path = os.path.join(checker.work, f"attention-{name}.npy")
        np.save(path, array)
        argv += ["--input", f"{name}={path}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        checker.record(False, f"attention bench: kiln bench failed: {done.stderr.strip()}")
        return
    match = re.search(r"p50[ =:]+([0-9.]+)", done.stdout)
    kiln_ms = float(match.group(1)) if match else float("nan")
    q, k, v = (torch.from_numpy(a).to(device).to(torch.bfloat16) for a in arrays)
    times = []
    with torch.no_grad():
        for i in range(iters + 3):
            synchronize()
            started = time.perf_counter()
            F.scaled_dot_product_attention(q, k, v)
            synchronize()
            if i >= 3:
                times.append((time.perf_counter() - started) * 1e3)
    torch_ms = float(np.median(times))
    b, h, s, d = ATTENTION_BENCH
    flops = 4 * b * h * s * s * d
    kiln_tflops = flops / (kiln_ms * 1e-3) / 1e12
    torch_tflops = flops / (torch_ms * 1e-3) / 1e12
    checker.record(True, f"attention bf16 {b}x{h}x{s}x{d}: Kiln {kiln_ms:.2f} ms "
                         f"({kiln_tflops:.1f} TFLOP/s, {100 * kiln_tflops / peak_bf16_tflops:.1f}% "
                         f"of the {peak_bf16_tflops:g} TFLOP/s bf16 peak; goal 50%), PyTorch SDPA "
                         f"{torch_ms:.2f} ms ({torch_tflops:.1f} TFLOP/s), Kiln/PyTorch "
                         f"{torch_ms / kiln_ms:.2f}x")


def bench_gpt2_small(checker, bundle, device, iters, peak_tflops, synchronize):
    """gpt2-small forward at batch 1 x seq 128: kiln bench against PyTorch
    eager (fp32, TF32 off) with the same random weights."""
    import torch
    from test_training import gpt2_forward
    artifact = os.path.join(bundle, "artifacts", "gpt2-small.kiln")
    with open(os.path.join(MODELS, "gpt2-small.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    rng = np.random.default_rng(5)
    weights = {}
    for p in manifest["parameters"]:
        shape = tuple(p["shape"])
        scale = 0.02 if len(shape) > 1 else 0.0
        base = 1.0 if p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0
        weights[p["name"]] = (base + scale * rng.standard_normal(shape)).astype(np.float32)
    write_weights(artifact, weights)
    batch, seq = 1, 128
    ids = rng.integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
    ids_path = os.path.join(checker.work, "small-ids.npy")
    np.save(ids_path, ids)
    done = subprocess.run([checker.kiln, "bench", artifact, "--input", f"input_ids={ids_path}",
                           "--iters", str(iters)], capture_output=True, text=True)
    if done.returncode != 0:
        checker.record(False, f"gpt2-small forward bench: kiln bench failed: {done.stderr.strip()}")
        return None
    match = re.search(r"p50[ =:]+([0-9.]+)", done.stdout)
    kiln_ms = float(match.group(1)) if match else float("nan")

    t = {k: torch.from_numpy(v).to(device) for k, v in weights.items()}
    x = torch.from_numpy(ids).to(device)
    times = []
    with torch.no_grad():
        for i in range(iters + 3):
            synchronize()
            started = time.perf_counter()
            gpt2_forward(t, x, cfg)
            synchronize()
            if i >= 3:
                times.append((time.perf_counter() - started) * 1e3)
    torch_ms = float(np.median(times))
    # The manifest's cost is for dynamic shapes; count the forward directly
    # (matmuls: 2 flops per multiply-add).
    n, d, v, layers = seq, cfg["n_embd"], cfg["vocab_size"], cfg["n_layer"]
    flops = 2 * n * (layers * (12 * d * d) + d * v) + layers * 4 * n * n * d
    kiln_tflops = flops / (kiln_ms * 1e-3) / 1e12
    torch_tflops = flops / (torch_ms * 1e-3) / 1e12
    line = (f"gpt2-small forward 1x128: Kiln {kiln_ms:.2f} ms, PyTorch eager {torch_ms:.2f} ms, "
            f"Kiln/PyTorch speed-up {torch_ms / kiln_ms:.2f}x; {flops / 1e9:.1f} GFLOP per call: "
            f"Kiln {kiln_tflops:.2f} TFLOP/s ({100 * kiln_tflops / peak_tflops:.1f}% of the "
            f"{peak_tflops:g} TFLOP/s fp32 peak), PyTorch {torch_tflops:.2f} TFLOP/s "
            f"({100 * torch_tflops / peak_tflops:.1f}%)")
    checker.record(True, line)
    return kiln_ms, torch_ms


def find_cublaslt():
    """PyTorch's own cuBLASLt (pip wheels keep it in nvidia/cublas/lib, some
    builds in torch/lib), for machines where it is not on the loader's
    path; None when there is none to find."""
    import glob
    import site
    import torch
    roots = [os.path.dirname(torch.__file__)] + site.getsitepackages()
    patterns = ["lib/libcublasLt.so*", "nvidia/cublas/lib/libcublasLt.so*",
                "nvidia/cu*/lib/libcublasLt.so*"]
    for root in roots:
        for pattern in patterns:
            found = sorted(glob.glob(os.path.join(root, pattern)))
            if found:
                return found[-1]
    return None


def gpu_available():
    try:
        import torch
    except ImportError:
        return False, "torch is not importable"
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    return True, torch.cuda.get_device_name(0)


def run(args):
    if args.device == "cpu":
        # The harness itself, on CPU artifacts (prepare --arch cpu) against
        # torch on the CPU: how this script is tested without a GPU.
        what = "CPU (harness check)"
    else:
        ok, what = gpu_available()
        if not ok:
            print(f"skipped: no GPU ({what})")
            return 0
    import torch
    if args.device == "cuda" and not os.environ.get("KILN_CUBLASLT"):
        cublaslt = find_cublaslt()
        if cublaslt:
            os.environ["KILN_CUBLASLT"] = cublaslt
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    bundle = os.path.abspath(args.bundle)
    started = time.time()
    work = tempfile.mkdtemp(prefix="kiln-gpu-check-")
    checker = Checker(args.kiln, work)
    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        what += (f" (compute capability {props.major}.{props.minor}, "
                 f"{props.total_memory / 2**30:.0f} GiB)")
    header = [
        "# Kiln GPU check",
        "",
        f"- device: {what}",
        f"- PyTorch {torch.__version__} (CUDA {torch.version.cuda}), numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"- bundle: {bundle}",
        f"- cuBLASLt: {os.environ.get('KILN_CUBLASLT') or 'the loader path (libcublasLt.so.13/.12)'}",
        "",
        "| result | check |",
        "| --- | --- |",
    ]
    for step in (check_ops, check_fp8_ops, check_gpt2_tiny, check_gpt2_tiny_train, check_gpt2_tiny_bf16,
                 check_gpt2_tiny_bf16_train):
        try:
            step(checker, bundle, device)
        except Exception as error:  # a broken step must not hide the others
            checker.record(False, f"{step.__name__}: {type(error).__name__}: {error}")
    if not args.no_bench:
        try:
            bench_gpt2_small(checker, bundle, device, args.iters, args.peak_tflops, synchronize)
        except Exception as error:
            checker.record(False, f"bench_gpt2_small: {type(error).__name__}: {error}")
        try:
            bench_attention(checker, bundle, device, args.iters, args.peak_bf16_tflops,
                            synchronize)
        except Exception as error:
            checker.record(False, f"bench_attention: {type(error).__name__}: {error}")
    summary = (f"{len(checker.lines) - checker.failures} passed, {checker.failures} failed "
               f"in {time.time() - started:.0f} s")
    report = "\n".join(header + checker.lines + ["", summary, ""])
    if args.report:
        with open(args.report, "w") as f:
            f.write(report)
        print(f"report: {args.report}")
    print(summary)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if checker.failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="compile the artifacts (needs kiln-compile)")
    p.add_argument("--bundle", required=True)
    p.add_argument("--arch", default="sm_90",
                   help="sm_80, sm_90, ...; cpu compiles CPU artifacts for the harness check")
    p.add_argument("--kiln-compile", default=os.environ.get("KILN_COMPILE", "kiln-compile"))
    p.add_argument("--no-bench", action="store_true", help="leave out the benchmark's artifact")
    r = sub.add_parser("run", help="check the artifacts on the GPU (needs torch with CUDA)")
    r.add_argument("--bundle", required=True)
    r.add_argument("--kiln", default=os.environ.get("KILN", "kiln"))
    r.add_argument("--report", default="")
    r.add_argument("--iters", type=int, default=20)
    r.add_argument("--peak-tflops", type=float, default=67.0,
                   help="fp32 (non-tensor-core) peak of the GPU for the MFU column (H200: 67)")
    r.add_argument("--peak-bf16-tflops", type=float, default=989.0,
                   help="dense bf16 tensor-core peak for the attention goal (H200: 989)")
    r.add_argument("--no-bench", action="store_true")
    r.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: check the harness on artifacts prepared with --arch cpu")
    args = parser.parse_args()
    return prepare(args) if args.command == "prepare" else run(args)


if __name__ == "__main__":
    sys.exit(main())
