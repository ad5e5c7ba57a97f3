"""Quantization against PyTorch: the ops, the weights kiln-compile writes,
and whole quantized models.

- kiln.quantize (per-token and per-channel, signed and unsigned with zero
  points) against torch.quantize_per_channel: codes bit-exact.
- kiln.dequantize (int8 per channel, int4 in groups, signed and unsigned
  with zero points) against torch.fake_quantize_per_channel_affine of the
  same codes: bit-exact (one subtract and one multiply per element).
- `kiln-compile --quantize` on gpt2-tiny with given weights: the codes,
  scales and zero points in the artifact equal a numpy implementation of
  the documented round-to-nearest rule (bit-exact), its dequantized weights
  equal torch.fake_quantize_per_channel_affine of the float weights with
  those scales, and the forward matches the float64 reference run on the
  fake-quantized weights within the fp32 tolerances of test_models.py
  (atol 1e-4 + rtol 1e-4).
- llama-tiny (w8 with the LM head, w4g4) and bert-tiny (w4g16-asym, with
  padding) against their float64 references on fake-quantized weights, the
  same way.
- kiln.integer_matmul (i8 x i8 -> i32) against numpy's exact integer
  product: bit-exact with the VNNI kernel (where the CPU has it) and the
  generic one, at ragged M, K and N, a dynamic M, and a K long enough that
  the kernel's shifted (unsigned) sums wrap around 2^32 on the way.
- int8-dynamic (W8A8): one linear against a float32 numpy implementation
  of the same per-token rule, op for op (within 1 ulp-scale tolerance
  1e-6); gpt2-tiny against a float64 torch W8A8 fake-quant reference
  (99% of the logits within atol 1e-4 + rtol 1e-4 and all within 5e-2: a
  token's code can round the other way where float32 and float64
  activations straddle a rounding tie; measured: all within 2.3e-7) and
  much closer to it than to the weight-only w8 model.
- Bad input: an unknown scheme, a group that does not divide a layer, a
  quantized training artifact, each refused with one clear line.
"""

import math
import os
import subprocess
import tempfile
import textwrap
import unittest

import numpy as np
import torch

from kiln_artifacts import (KILN_COMPILE, MODELS, compile_artifact, load_safetensors, report,
                            run_artifact, save_safetensors)
from test_models import (ATOL, RTOL, bert_reference, gpt2_reference, llama_reference, load_config,
                         random_weights_by_rule)
import json


def rtn(w, bits, group, symmetric):
    """The round-to-nearest rule of docs/quantization.md on [out, in] f32
    weights: returns (codes [out, in] int, scales [out, groups] f32, zero
    points [out, groups] int or None)."""
    out, inn = w.shape
    group = group or inn
    g = w.reshape(out, inn // group, group).astype(np.float32)
    lo = np.minimum(g.min(-1), np.float32(0))
    hi = np.maximum(g.max(-1), np.float32(0))
    if symmetric:
        qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        scale = np.maximum(-lo, hi) / np.float32(qmax)
    else:
        qmin, qmax = 0, (1 << bits) - 1
        scale = (hi - lo) / np.float32(qmax)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    zero = None
    if not symmetric:
        zero = np.clip(np.rint(-lo / scale), qmin, qmax).astype(np.int64)
    inverse = (np.float32(1) / scale).astype(np.float32)
    codes = np.rint(g * inverse[..., None]).astype(np.float32)
    if zero is not None:
        codes = codes + zero[..., None]
    codes = np.clip(codes, qmin, qmax).astype(np.int64).reshape(out, inn)
    return codes, scale, zero


def pack4(codes):
    """Two 4-bit codes per byte, element 2k in the low nibble."""
    c = (codes & 0xF).astype(np.uint8)
    return (c[:, 0::2] | (c[:, 1::2] << 4)).view(np.int8)


def torch_fake_quant(w, scale, zero, bits, group, symmetric):
    """torch.fake_quantize_per_channel_affine over every (row, group)."""
    out, inn = w.shape
    group = group or inn
    rows = torch.from_numpy(w.reshape(-1, group).copy())
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if symmetric else (0, (1 << bits) - 1)
    zp = torch.zeros(rows.shape[0], dtype=torch.int32) if zero is None else \
        torch.from_numpy(zero.reshape(-1).astype(np.int32))
    fq = torch.fake_quantize_per_channel_affine(rows, torch.from_numpy(scale.reshape(-1)), zp, 0, qmin, qmax)
    return fq.numpy().reshape(out, inn)


def run_kiln(test, source, inputs, outputs):
    """Compiles kiln IR `source` to an artifact and runs forward."""
    work = test.tmp.name
    path = os.path.join(work, "q.mlir")
    with open(path, "w") as f:
        f.write(textwrap.dedent(source))
    art = os.path.join(work, "q.kiln")
    compile_artifact(path, art)
    result = run_artifact(art, inputs, work)
    return [result[name] for name in outputs]


class QuantizeOps(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(0)

    def tearDown(self):
        self.tmp.cleanup()

    def test_quantize_matches_torch(self):
        x = (self.rng.standard_normal((6, 40)) * 3).astype(np.float32)
        # Some exact ties (x / scale = k + 0.5) to check half-to-even.
        x[0, :8] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.5, 300.0, -300.0], np.float32)
        scale = (self.rng.uniform(0.01, 0.05, (6, 1))).astype(np.float32)
        scale[0, 0] = 1.0
        zero = self.rng.integers(100, 150, (6, 1)).astype(np.int8).view(np.uint8).astype(np.int8)
        signed, unsigned = run_kiln(self, """
            func.func @forward(%x: tensor<6x40xf32> {kiln.name = "x"}, %s: tensor<6x1xf32> {kiln.name = "s"},
                               %z: tensor<6x1xi8> {kiln.name = "z"})
                -> (tensor<6x40xi8> {kiln.name = "signed"}, tensor<6x40xi8> {kiln.name = "unsigned"}) {
              %0 = kiln.quantize %x, %s : (tensor<6x40xf32>, tensor<6x1xf32>) -> tensor<6x40xi8>
              %1 = kiln.quantize %x, %s zero_point %z unsigned : (tensor<6x40xf32>, tensor<6x1xf32>, tensor<6x1xi8>) -> tensor<6x40xi8>
              return %0, %1 : tensor<6x40xi8>, tensor<6x40xi8>
            }""", {"x": x, "s": scale, "z": zero}, ["signed", "unsigned"])
        xt, st = torch.from_numpy(x), torch.from_numpy(scale[:, 0].astype(np.float64))
        expected = torch.quantize_per_channel(xt, st, torch.zeros(6, dtype=torch.int64), 0, torch.qint8)
        np.testing.assert_array_equal(signed, expected.int_repr().numpy())
        zt = torch.from_numpy(zero[:, 0].view(np.uint8).astype(np.int64))
        expected = torch.quantize_per_channel(xt, st, zt, 0, torch.quint8)
        np.testing.assert_array_equal(unsigned.view(np.uint8), expected.int_repr().numpy())

    def test_dequantize_matches_torch(self):
        out, inn, group = 8, 64, 16
        w = self.rng.standard_normal((out, inn)).astype(np.float32)
        c8, s8, _ = rtn(w, 8, 0, True)
        c4, s4, _ = rtn(w, 4, group, True)
        c4a, s4a, z4a = rtn(w, 4, group, False)
        d8, d4, d4a = run_kiln(self, """
            func.func @forward(%c8: tensor<8x64xi8> {kiln.name = "c8"}, %s8: tensor<8x1xf32> {kiln.name = "s8"},
                               %c4: tensor<8x32xi8> {kiln.name = "c4"}, %s4: tensor<8x4xf32> {kiln.name = "s4"},
                               %c4a: tensor<8x32xi8> {kiln.name = "c4a"}, %s4a: tensor<8x4xf32> {kiln.name = "s4a"},
                               %z4a: tensor<8x4xi8> {kiln.name = "z4a"})
                -> (tensor<8x64xf32> {kiln.name = "d8"}, tensor<8x64xf32> {kiln.name = "d4"},
                    tensor<8x64xf32> {kiln.name = "d4a"}) {
              %0 = kiln.dequantize %c8, %s8 : (tensor<8x64xi8>, tensor<8x1xf32>) -> tensor<8x64xf32>
              %1 = kiln.dequantize %c4, %s4 bits = 4 : (tensor<8x32xi8>, tensor<8x4xf32>) -> tensor<8x64xf32>
              %2 = kiln.dequantize %c4a, %s4a zero_point %z4a bits = 4 unsigned : (tensor<8x32xi8>, tensor<8x4xf32>, tensor<8x4xi8>) -> tensor<8x64xf32>
              return %0, %1, %2 : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
            }""", {"c8": c8.astype(np.int8), "s8": s8, "c4": pack4(c4), "s4": s4,
                   "c4a": pack4(c4a), "s4a": s4a, "z4a": z4a.astype(np.int8)}, ["d8", "d4", "d4a"])
        np.testing.assert_array_equal(d8, torch_fake_quant(w, s8, None, 8, 0, True))
        np.testing.assert_array_equal(d4, torch_fake_quant(w, s4, None, 4, group, True))
        np.testing.assert_array_equal(d4a, torch_fake_quant(w, s4a, z4a, 4, group, False))


def int8_dot_options():
    """The int8 kernels to check: the one kiln-compile picks for this CPU
    (AMX tiles where it has AMX-INT8), VNNI where it has AVX-512 VNNI and
    AMX too (the default there is amx), vpmaddwd where the CPU has AVX2,
    and the portable one."""
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    vnni = " amx_int8" in flags and " avx512_vnni" in flags
    return ([[]] + ([["--int8-dot", "vnni"]] if vnni else []) +
            ([["--int8-dot", "avx2"]] if " avx2" in flags else []) + [["--int8-dot", "generic"]])


class IntegerMatmul(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(2)

    def tearDown(self):
        self.tmp.cleanup()

    def run_matmul(self, x, w, extra, dynamic=False):
        m, k = x.shape[-2:] if not dynamic else ("?", x.shape[-1])
        lead = "x".join(str(d) for d in x.shape[:-2])
        lead = (lead + "x") if lead else ""
        xt = f"tensor<{lead}{m}x{k}xi8>"
        yt = f"tensor<{lead}{m}x{w.shape[0]}xi32>"
        wt = f"tensor<{w.shape[0]}x{w.shape[1]}xi8>"
        path = os.path.join(self.tmp.name, "mm.mlir")
        with open(path, "w") as f:
            f.write(f"""
            func.func @forward(%x: {xt} {{kiln.name = "x"}}, %w: {wt} {{kiln.name = "w"}})
                -> ({yt} {{kiln.name = "y"}}) {{
              %0 = kiln.integer_matmul %x, %w transpose_rhs : ({xt}, {wt}) -> {yt}
              return %0 : {yt}
            }}""")
        art = os.path.join(self.tmp.name, "mm.kiln")
        manifest = compile_artifact(path, art, extra=extra)
        dot = manifest["target_options"]["int8_dot"]
        return run_artifact(art, {"x": x, "w": w}, self.tmp.name)["y"], dot

    def test_matches_integer_reference(self):
        # Ragged everywhere: M = 39 (tiles of 8 or 4 and single rows), K =
        # 70 (not whole 4-byte words), N = 40 (a ragged panel); the whole
        # int8 range, -128 included.
        x = self.rng.integers(-128, 128, (3, 13, 70)).astype(np.int8)
        w = self.rng.integers(-128, 128, (40, 70)).astype(np.int8)
        expected = x.astype(np.int64) @ w.astype(np.int64).T
        seen = set()
        for extra in int8_dot_options():
            y, dot = self.run_matmul(x, w, extra)
            seen.add(dot)
            np.testing.assert_array_equal(y, expected, f"int8 dot {dot}")
        self.assertIn("generic", seen)

    def test_dynamic_rows(self):
        x = self.rng.integers(-128, 128, (11, 64)).astype(np.int8)
        w = self.rng.integers(-128, 128, (48, 64)).astype(np.int8)
        for extra in int8_dot_options():
            y, dot = self.run_matmul(x, w, extra, dynamic=True)
            np.testing.assert_array_equal(y, x.astype(np.int64) @ w.astype(np.int64).T, dot)

    def test_long_k_wraps_exactly(self):
        # 70000 x 255 x 127 overflows 32 bits in the VNNI kernel's unsigned
        # sums; the true sums (70000 x 127 x 127 and x -128) fit and come out.
        k = 70000
        x = np.full((2, k), 127, np.int8)
        x[1, :] = -128
        w = np.full((16, k), 127, np.int8)
        w[3:5] = -128
        expected = x.astype(np.int64) @ w.astype(np.int64).T
        self.assertGreater(np.abs(expected).max(), 2**30)
        for extra in int8_dot_options():
            y, dot = self.run_matmul(x, w, extra)
            np.testing.assert_array_equal(y, expected, dot)


def w8a8_linear(x, codes, scale, bias):
    """The int8-dynamic linear of docs/quantization.md in float32 numpy, op
    for op as kiln computes it: x [..., in] f32, codes [out, in], scale
    [out, 1]."""
    largest = np.maximum(np.abs(x).max(-1, keepdims=True), np.float32(1e-30))
    sx = (largest / np.float32(127)).astype(np.float32)
    q = np.clip(np.rint(x * (np.float32(1) / sx)), -128, 127).astype(np.int64)
    acc = q @ codes.astype(np.int64).T
    y = acc.astype(np.float32) * sx * scale[:, 0]
    return y + bias if bias is not None else y


class Int8Dynamic(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rng = np.random.default_rng(3)

    def tearDown(self):
        self.tmp.cleanup()

    def test_linear_matches_numpy(self):
        path = os.path.join(self.tmp.name, "fc.mlir")
        with open(path, "w") as f:
            f.write("""
            kiln.parameter @"fc.weight" : tensor<48x70xf32> init normal std = 2.000000e-02 trainable
            kiln.parameter @"fc.bias" : tensor<48xf32> init zeros trainable
            func.func @forward(%x: tensor<?x5x70xf32> {kiln.name = "x"}) -> (tensor<?x5x48xf32> {kiln.name = "y"}) {
              %w = kiln.read_param @"fc.weight" : tensor<48x70xf32>
              %b = kiln.read_param @"fc.bias" : tensor<48xf32>
              %y = kiln.linear %x, %w bias %b : (tensor<?x5x70xf32>, tensor<48x70xf32>, tensor<48xf32>) -> tensor<?x5x48xf32>
              return %y : tensor<?x5x48xf32>
            }""")
        weights = {"fc.weight": (self.rng.standard_normal((48, 70)) * 0.1).astype(np.float32),
                   "fc.bias": self.rng.standard_normal(48).astype(np.float32)}
        wpath = os.path.join(self.tmp.name, "fc.safetensors")
        save_safetensors(weights, wpath)
        x = (self.rng.standard_normal((3, 5, 70)) * 2).astype(np.float32)
        x[1, 2] = 0  # an all-zero token
        x[2, 0, 7] = 40  # an outlier
        codes, scale, _ = rtn(weights["fc.weight"], 8, 0, True)
        expected = w8a8_linear(x, codes, scale, weights["fc.bias"])
        for extra in int8_dot_options():
            art = os.path.join(self.tmp.name, "fc.kiln")
            manifest = compile_artifact(path, art, weights=wpath,
                                        extra=["--quantize", "int8-dynamic", *extra])
            self.assertEqual(manifest["compile_options"]["quantize"], "int8-dynamic")
            stored = load_safetensors(os.path.join(art, "weights.safetensors"))
            np.testing.assert_array_equal(stored["fc.qweight"], codes.astype(np.int8))
            y = run_artifact(art, {"x": x}, self.tmp.name)["y"]
            report("int8-dynamic linear " + manifest["target_options"]["int8_dot"], y, expected)
            np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(y[1, 2], weights["fc.bias"])


def gpt2_w8a8_reference(w, codes, ids, cfg, static=None, smooth=None):
    """gpt2_reference with every linear in `codes` ({prefix: (codes [out,
    in], scales [out, 1])}) computed W8A8 in float64: its input fake-
    quantized per token (scale max|x| / 127, round half to even), or with
    the scale static[prefix] for every token, times the fake-quantized
    weight, its input first multiplied by smooth[prefix] (SmoothQuant's
    1 / s) where given; the others (the tied head unless in codes) in
    float."""
    t = lambda name: torch.from_numpy(w[name].astype(np.float64))

    def linear(x, prefix):
        if prefix not in codes:
            if prefix == "transformer.wte":
                return x @ t(prefix + ".weight").T
            return x @ t(prefix + ".weight") + t(prefix + ".bias")
        c, s = codes[prefix]
        if smooth is not None:
            x = x * torch.from_numpy(smooth[prefix])
        if static is not None:
            sx = torch.tensor(float(static[prefix]), dtype=torch.float64)
        else:
            sx = torch.clamp(x.abs().amax(-1, keepdim=True), min=1e-30) / 127
        q = torch.clamp(torch.round(x / sx), -128, 127)
        wq = torch.from_numpy((c * s).astype(np.float64))  # [out, in]
        y = (q @ wq.T) * sx
        return y + t(prefix + ".bias") if prefix + ".bias" in w else y

    return gpt2_reference(w, ids, cfg, linear)


LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def fake_quantized(test, weights, stored, bits, group, symmetric, transposed):
    """Checks the stored parts of every quantized weight against rtn() and
    returns the weights with each quantized one replaced by its
    dequantization (torch's fake quantization of it, checked equal)."""
    fake = dict(weights)
    prefixes = [name[:-len(".qweight")] for name in stored if name.endswith(".qweight")]
    test.assertTrue(prefixes)
    for prefix in prefixes:
        w = weights[prefix + ".weight"]
        w = w.T if transposed else w
        codes, scale, zero = rtn(w, bits, group, symmetric)
        packed = pack4(codes) if bits == 4 else codes.astype(np.int8)
        np.testing.assert_array_equal(stored[prefix + ".qweight"], packed, prefix)
        np.testing.assert_array_equal(stored[prefix + ".scales"], scale, prefix)
        if not symmetric:
            np.testing.assert_array_equal(stored[prefix + ".qzeros"], zero.astype(np.int8), prefix)
        else:
            test.assertNotIn(prefix + ".qzeros", stored)
        test.assertNotIn(prefix + ".weight", stored)
        width = group or w.shape[1]
        zp = 0 if zero is None else np.repeat(zero, width, axis=1)
        dequant = ((codes - zp) * np.repeat(scale, width, axis=1)).astype(np.float32)
        np.testing.assert_array_equal(dequant, torch_fake_quant(w, scale, zero, bits, group, symmetric))
        fake[prefix + ".weight"] = (dequant.T if transposed else dequant).copy()
    return fake, prefixes


class QuantizedLlamaBert(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def compile_pair(self, config, seed, is_norm, extra):
        path, cfg = load_config(config)
        first = compile_artifact(path, os.path.join(self.tmp.name, "init.kiln"))
        weights = random_weights_by_rule(first, seed=seed, is_norm=is_norm)
        wpath = os.path.join(self.tmp.name, "w.safetensors")
        save_safetensors(weights, wpath)
        art = os.path.join(self.tmp.name, "q.kiln")
        compile_artifact(path, art, weights=wpath, extra=extra)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        return cfg, weights, stored, art

    def check_llama(self, scheme, bits, group, extra=()):
        cfg, weights, stored, art = self.compile_pair(
            "llama-tiny.json", 4, lambda n: n.endswith("norm.weight"), ["--quantize", scheme, *extra])
        fake, prefixes = fake_quantized(self, weights, stored, bits, group, True, False)
        self.assertEqual(len(prefixes), 7 * cfg["num_hidden_layers"] + ("--quantize-lm-head" in extra))
        ids = np.random.default_rng(5).integers(0, cfg["vocab_size"], (2, 7)).astype(np.int64)
        logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
        expected = llama_reference(fake, ids, cfg)
        report(f"llama-tiny {scheme}", logits, expected)
        np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)

    def test_llama_w8_with_lm_head(self):
        self.check_llama("w8", 8, 0, ["--quantize-lm-head"])

    def test_llama_w4g4(self):
        # intermediate_size 172 = 4 * 43: groups of 4 divide every layer.
        self.check_llama("w4g4", 4, 4)

    def test_bert_w4g16_asym_with_padding(self):
        cfg, weights, stored, art = self.compile_pair(
            "bert-tiny.json", 3, lambda n: n.endswith("LayerNorm.weight"), ["--quantize", "w4g16-asym"])
        fake, _ = fake_quantized(self, weights, stored, 4, 16, False, False)
        rng = np.random.default_rng(6)
        lengths, seq = (6, 3), 6
        ids = rng.integers(0, cfg["vocab_size"], (2, seq)).astype(np.int64)
        types = rng.integers(0, cfg["type_vocab_size"], (2, seq)).astype(np.int64)
        mask = (np.arange(seq)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
        out = run_artifact(art, {"input_ids": ids, "token_type_ids": types, "attention_mask": mask},
                           self.tmp.name)
        hidden, pooled = bert_reference(fake, ids, types, mask, cfg)
        for name, expected in (("last_hidden_state", hidden), ("pooler_output", pooled)):
            report(f"bert-tiny w4g16-asym {name}", out[name], expected)
            np.testing.assert_allclose(out[name], expected, rtol=RTOL, atol=ATOL)

    def test_llama_and_bert_int8_dynamic(self):
        # W8A8 against the float64 references with each quantized
        # projection computed as the per-token W8A8 rule (w8a8_reference).
        cfg, weights, stored, art = self.compile_pair(
            "llama-tiny.json", 4, lambda n: n.endswith("norm.weight"), ["--quantize", "int8-dynamic"])
        fake, prefixes = fake_quantized(self, weights, stored, 8, 0, True, False)
        ids = np.random.default_rng(5).integers(0, cfg["vocab_size"], (2, 7)).astype(np.int64)
        logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
        expected = llama_reference(fake, ids, cfg, linear=w8a8_reference(fake, stored, prefixes, "weight"))
        check_w8a8(self, "llama-tiny int8-dynamic", logits, expected, llama_reference(fake, ids, cfg))

        cfg, weights, stored, art = self.compile_pair(
            "bert-tiny.json", 3, lambda n: n.endswith("LayerNorm.weight"), ["--quantize", "int8-dynamic"])
        fake, prefixes = fake_quantized(self, weights, stored, 8, 0, True, False)
        rng = np.random.default_rng(6)
        ids = rng.integers(0, cfg["vocab_size"], (2, 6)).astype(np.int64)
        types = rng.integers(0, cfg["type_vocab_size"], (2, 6)).astype(np.int64)
        mask = (np.arange(6)[None, :] < np.array((6, 3))[:, None]).astype(np.int64)
        out = run_artifact(art, {"input_ids": ids, "token_type_ids": types, "attention_mask": mask},
                           self.tmp.name)
        expected = bert_reference(fake, ids, types, mask, cfg, linear=w8a8_reference(fake, stored, prefixes, "prefix"))
        weight_only = bert_reference(fake, ids, types, mask, cfg)
        check_w8a8(self, "bert-tiny int8-dynamic last_hidden_state", out["last_hidden_state"], expected[0], weight_only[0])
        check_w8a8(self, "bert-tiny int8-dynamic pooler_output", out["pooler_output"], expected[1], weight_only[1])


def w8a8_reference(w, stored, prefixes, key):
    """A float64 `linear` for the torch references: the per-token W8A8 rule
    for each quantized layer (its stored codes and scales), plain float for
    the others. `key` says how the reference names a layer: by its weight
    ("weight": llama) or its prefix, with a bias ("prefix": bert)."""
    def linear(x, name):
        prefix = name[:-len(".weight")] if key == "weight" else name
        bias = None if key == "weight" else torch.from_numpy(w[prefix + ".bias"].astype(np.float64))
        if prefix not in prefixes:
            y = x @ torch.from_numpy(w[prefix + ".weight"].astype(np.float64)).T
        else:
            sx = torch.clamp(x.abs().amax(-1, keepdim=True), min=1e-30) / 127
            q = torch.clamp(torch.round(x / sx), -128, 127)
            wq = torch.from_numpy(stored[prefix + ".qweight"].astype(np.float64) *
                                  stored[prefix + ".scales"].astype(np.float64))
            y = (q @ wq.T) * sx
        return y if bias is None else y + bias
    return linear


def check_w8a8(test, name, actual, expected, weight_only):
    """W8A8 outputs against their float64 reference: 99% of the values
    within the fp32 tolerances, or 99% of each token's but for one token in
    ten (a code can round the other way where float32 and float64
    activations straddle a tie, and a flipped code moves every later value
    of its token, more than 1% of a short output); all within 5e-2; and
    much closer to it than the weight-only model is (the activations'
    quantization is what is being checked)."""
    report(name, actual, expected)
    close = np.isclose(actual, expected, rtol=RTOL, atol=ATOL)
    close_tokens = close.reshape(-1, close.shape[-1]).mean(-1) >= 0.99
    flipped = int((~close_tokens).sum())
    test.assertTrue(close.mean() >= 0.99 or flipped <= close_tokens.size // 10,
                    f"{name}: {close.mean():.4f} of the values, {flipped} of {close_tokens.size} "
                    "tokens off the fp32 tolerances")
    np.testing.assert_allclose(actual, expected, rtol=0, atol=5e-2, err_msg=name)
    test.assertLess(np.abs(actual - expected).mean() * 20, np.abs(weight_only - expected).mean(), name)


class QuantizedGpt2(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = os.path.join(MODELS, "gpt2-tiny.json")
        with open(self.model) as f:
            self.cfg = json.load(f)
        rng = np.random.default_rng(1)
        art = os.path.join(self.tmp.name, "init.kiln")
        compile_artifact(self.model, art)
        self.weights = load_safetensors(os.path.join(art, "weights.safetensors"))
        # Trained-looking weights: wider than the init, with outliers.
        for name, w in self.weights.items():
            if w.ndim == 2 and any(l in name for l in LINEARS):
                w = rng.standard_normal(w.shape).astype(np.float32) * 0.08
                w[rng.random(w.shape) < 0.01] *= 8
                self.weights[name] = w.astype(np.float32)
        self.path = os.path.join(self.tmp.name, "w.safetensors")
        save_safetensors(self.weights, self.path)
        self.ids = rng.integers(0, self.cfg["vocab_size"], (2, 9)).astype(np.int64)

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, scheme, bits, group, symmetric):
        art = os.path.join(self.tmp.name, scheme + ".kiln")
        manifest = compile_artifact(self.model, art, weights=self.path, extra=["--quantize", scheme])
        self.assertEqual(manifest["compile_options"]["quantize"], scheme)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        fake, prefixes = fake_quantized(self, self.weights, stored, bits, group, symmetric, True)
        self.assertEqual(sorted(prefixes), sorted(f"transformer.h.{layer}.{linear}"
                                                  for layer in range(self.cfg["n_layer"])
                                                  for linear in LINEARS))
        logits = run_artifact(art, {"input_ids": self.ids}, self.tmp.name)["logits"]
        expected = gpt2_reference(fake, self.ids, self.cfg)
        report(f"gpt2-tiny {scheme}", logits, expected)
        np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)
        # The quantization changed the logits (the test can fail).
        float_logits = gpt2_reference(self.weights, self.ids, self.cfg)
        self.assertGreater(np.abs(float_logits - expected).max(), 10 * ATOL)
        return manifest

    def test_w8(self):
        self.check("w8", 8, 0, True)

    def test_w4g32(self):
        self.check("w4g32", 4, 32, True)

    def test_w4g16_asym(self):
        self.check("w4g16-asym", 4, 16, False)

    def test_int8_dynamic(self):
        # W8A8: the w8 weights, activations quantized per token at run time.
        manifest = self.check_int8_dynamic([])
        self.assertEqual(manifest["compile_options"]["quantize"], "int8-dynamic")
        self.check_int8_dynamic(["--int8-dot", "generic"])

    def test_int8_dynamic_tied_lm_head(self):
        # --quantize-lm-head on a tied head: the head multiplies int8 codes
        # of the embedding, which the lookup still reads in f32.
        self.check_int8_dynamic(["--quantize-lm-head"])

    def check_int8_dynamic(self, extra):
        art = os.path.join(self.tmp.name, "int8-dynamic.kiln")
        manifest = compile_artifact(self.model, art, weights=self.path,
                                    extra=["--quantize", "int8-dynamic", *extra])
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        head = "--quantize-lm-head" in extra
        if head:
            # The tied table: codes [vocab, d] as rtn() makes them, and the
            # float table kept for the lookup.
            codes, scale, _ = rtn(self.weights["transformer.wte.weight"], 8, 0, True)
            np.testing.assert_array_equal(stored["transformer.wte.qweight"], codes.astype(np.int8))
            np.testing.assert_array_equal(stored["transformer.wte.scales"], scale)
            np.testing.assert_array_equal(stored["transformer.wte.weight"], self.weights["transformer.wte.weight"])
            stored = {k: v for k, v in stored.items() if not k.startswith("transformer.wte.q")}
        fake, prefixes = fake_quantized(self, self.weights, stored, 8, 0, True, True)
        self.assertEqual(len(prefixes), 4 * self.cfg["n_layer"])
        codes = {p: (stored[p + ".qweight"].astype(np.float64), stored[p + ".scales"].astype(np.float64))
                 for p in prefixes}
        if head:
            codes["transformer.wte"] = (codes_and_scale := rtn(self.weights["transformer.wte.weight"], 8, 0, True))[0].astype(np.float64), \
                codes_and_scale[1].astype(np.float64)
        logits = run_artifact(art, {"input_ids": self.ids}, self.tmp.name)["logits"]
        expected = gpt2_w8a8_reference(self.weights, codes, self.ids, self.cfg)
        dot = manifest["target_options"]["int8_dot"]
        report(f"gpt2-tiny int8-dynamic ({dot})", logits, expected)
        # Where float32 and float64 activations straddle a rounding tie a
        # code can differ by one, moving a few logits by up to ~1e-2; the
        # rest match to fp32 accuracy (measured: all, within 2.3e-7).
        close = np.isclose(logits, expected, rtol=RTOL, atol=ATOL)
        self.assertGreaterEqual(close.mean(), 0.99)
        np.testing.assert_allclose(logits, expected, rtol=0, atol=5e-2)
        # The activations' quantization is what the reference models: the
        # weight-only model is much further away.
        weight_only = gpt2_reference(fake, self.ids, self.cfg)
        self.assertLess(np.abs(logits - expected).mean() * 20, np.abs(weight_only - expected).mean())
        return manifest

    def test_init_rules_quantize_the_float_init(self):
        # Without --weights the codes quantize exactly what the float model
        # would have been initialized with.
        art = os.path.join(self.tmp.name, "w8-init.kiln")
        compile_artifact(self.model, art, extra=["--quantize", "w8"])
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        init = load_safetensors(os.path.join(self.tmp.name, "init.kiln", "weights.safetensors"))
        prefix = "transformer.h.1.mlp.c_fc"
        codes, scale, _ = rtn(init[prefix + ".weight"].T, 8, 0, True)
        np.testing.assert_array_equal(stored[prefix + ".qweight"], codes.astype(np.int8))
        np.testing.assert_array_equal(stored[prefix + ".scales"], scale)

    def test_bad_input(self):
        def refused(extra):
            result = subprocess.run([KILN_COMPILE, self.model, "--target", "cpu", "-o",
                                     os.path.join(self.tmp.name, "bad.kiln")] + extra,
                                    capture_output=True, text=True)
            self.assertNotEqual(result.returncode, 0)
            return result.stderr
        self.assertIn("unknown quantization scheme 'w5'", refused(["--quantize", "w5"]))
        self.assertIn("--quantize int8-static needs --calibration FILE",
                      refused(["--quantize", "int8-static"]))
        self.assertIn("--int8-dot 'avx'", refused(["--quantize", "int8-dynamic", "--int8-dot", "avx"]))
        self.assertIn("its input dim 64 is not a multiple of the group size 48",
                      refused(["--quantize", "w4g48"]))
        self.assertIn("quantized weights are not trainable",
                      refused(["--quantize", "w8", "--mode", "train"]))
        self.assertIn("--quantize-skip needs --quantize", refused(["--quantize-skip", "x"]))
        # A corrupt checkpoint: a NaN in a weight to quantize.
        bad = dict(self.weights)
        name = "transformer.h.0.mlp.c_fc.weight"
        bad[name] = bad[name].copy()
        bad[name][3, 5] = np.nan
        path = os.path.join(self.tmp.name, "nan.safetensors")
        save_safetensors(bad, path)
        self.assertIn(f"cannot quantize '{name}': element [3, 5] is nan",
                      refused(["--quantize", "w8", "--weights", path]))


if __name__ == "__main__":
    unittest.main()
