"""fp8 (e4m3) quantization: the encoding against a numpy reference, the
weights `kiln-compile --quantize fp8` writes, and bad input.

Debian's torch (1.13) has no float8 types, so the reference is numpy: the
e4m3 format (torch.float8_e4m3fn) built from its definition (1 sign, 4
exponent bits of bias 7, 3 mantissa bits, no infinities, S.1111.111 NaN),
checked against the format's known values (largest 448, smallest normal
2^-6, subnormals in steps of 2^-9), and the encoding as the nearest finite
value with ties to the even code, after clamping to [-448, 448] (NaN stays
NaN). That is torch's float -> float8_e4m3fn cast for |x| <= 448 and
`x.clamp(-448, 448).to(torch.float8_e4m3fn)` everywhere.

- kiln.quantize e4m3 (the arith-level encoder every kernel uses) run on
  the CPU through a hand-written graph, its codes read back through
  kiln.dequantize with scale 1 (the decoder, exact in f32): the f32 bits
  equal the reference's decoded codes bit for bit, on every e4m3 value,
  every midpoint between neighbours (ties), the f32 neighbours of each
  midpoint, values beyond 448, infinities, NaNs, signed zeros, f32
  subnormals and random values over 30 binades; and with a scale, x ·
  (1 / s) in f32 first.
- kiln-quantize's fp8 linear (per-tensor amax scale, both encodings,
  kiln.scaled_fp8_matmul as the generated kernel, bias) on the CPU against
  a float64 numpy reference of the same rule: rtol 1e-5 + atol 1e-5 (the
  codes are the reference's; only f32 sums differ; measured 2e-6).
- `kiln-compile --quantize fp8 --target cuda` on gpt2-tiny with given
  weights: each quantized weight's codes (F8_E4M3 in weights.safetensors)
  and its per-tensor scale equal the reference (scale = max|w| / 448 in
  f32, codes = e4m3(w · (1 / scale))) bit for bit; the manifest records
  the scheme and the F8_E4M3 dtype, and `kiln info` prints both.
  A weight whose largest magnitude is tiny (~1e-43, where max|w| / 448
  is 0 in f32) gets the scale floor 1e-30 and finite (zero) codes; an
  all-zero weight scale 1 and zero codes.
- Bad input: --quantize fp8 with --target cpu, with --cuda-arch sm_80,
  with --rounding gptq, each refused with one clear line; a weights file
  whose F8_E4M3 tensor has fewer bytes than its shape needs is refused.
  (The other refusals, --emit=llvm, --emit=ptx with an old or unknown
  --cuda-arch, --dtype bf16 and no weight quantized, are lit's:
  test/Target/CUDA/fp8-gemm.test.)

No GPU has run these artifacts: the matmul's numbers on cuBLASLt's fp8
gemm are checked by test/gpu/gpu_check.py (fp8 case) on a GPU machine,
against torch._scaled_mm, and on the CPU against the runtime tests' fake
cuBLASLt (CudaArtifactTest.Fp8Gemms...).
"""

import json
import os
import struct
import subprocess
import tempfile
import textwrap
import unittest

import numpy as np

from kiln_artifacts import (KILN, KILN_COMPILE, MODELS, compile_artifact, load_safetensors, report,
                            run_artifact, save_safetensors)
from test_models import random_weights_by_rule


def e4m3_decode(codes):
    """float32 values of e4m3 codes (uint8), NaN as 0x7FC00000 with the
    code's sign (the bits kiln's decoder gives)."""
    codes = np.asarray(codes, dtype=np.uint8).astype(np.uint32)
    sign = (codes >> 7) & 1
    exponent = (codes >> 3) & 0xF
    mantissa = codes & 7
    magnitude = np.where(exponent == 0, mantissa.astype(np.float64) * 2.0 ** -9,
                         (1 + mantissa / 8.0) * 2.0 ** (exponent.astype(np.float64) - 7))
    values = np.where(sign == 1, -magnitude, magnitude).astype(np.float32)
    bits = values.view(np.uint32).copy()
    nan = (codes & 0x7F) == 0x7F
    bits[nan] = np.uint32(0x7FC00000) | (sign[nan].astype(np.uint32) << 31)
    return bits.view(np.float32)


# The 127 finite non-negative e4m3 values, by code (increasing).
POSITIVE = e4m3_decode(np.arange(127, dtype=np.uint8)).astype(np.float64)


def e4m3_encode(x):
    """The reference encoder: float32 -> uint8 codes."""
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    sign = ((bits >> 31) & 1).astype(np.uint8)
    with np.errstate(invalid="ignore"):
        a = np.minimum(np.abs(x.astype(np.float64)), 448.0)  # inf saturates too
    hi = np.clip(np.searchsorted(POSITIVE, a), 0, 126)
    lo = np.clip(hi - 1, 0, 126)
    # f64 differences are exact here (both values have few significant bits
    # within 2^9 .. 2^-33, and tiny values are far from any tie).
    dlo, dhi = a - POSITIVE[lo], POSITIVE[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    code = code.astype(np.uint8) | (sign << 7)
    return np.where(np.isnan(x), np.uint8(0x7F) | (sign << 7), code).astype(np.uint8)


def probe_values(rng):
    """f32 values that exercise every rounding case of the encoder."""
    v = POSITIVE.astype(np.float32)
    mids = ((POSITIVE[:-1] + POSITIVE[1:]) / 2).astype(np.float32)  # exact ties
    up = np.nextafter(mids, np.float32(np.inf))
    down = np.nextafter(mids, np.float32(0))
    beyond = np.array([448.0, 449.0, 463.9, 464.0, 464.1, 479.9, 480.0, 500.0, 1e6, 3e38,
                       np.inf], np.float32)
    tiny = np.array([0.0, 1e-45, 1e-40, 2.0 ** -126, 2.0 ** -10, np.nextafter(2.0 ** -10, 1),
                     2.0 ** -9 * 1.5, 2.0 ** -6 * (1 - 2.0 ** -5)], np.float32)
    spread = (rng.standard_normal(4000) * np.exp2(rng.uniform(-15, 15, 4000))).astype(np.float32)
    positive = np.concatenate([v, mids, up, down, beyond, tiny, np.abs(spread)])
    values = np.concatenate([positive, -positive, [np.nan, -np.nan], spread])
    return values.astype(np.float32)


class E4M3Reference(unittest.TestCase):
    def test_known_values(self):
        # The format's table (OCP FP8 / torch.float8_e4m3fn).
        self.assertEqual(POSITIVE[126], 448.0)          # 0x7E: 1.75 · 2^8
        self.assertEqual(POSITIVE[8], 2.0 ** -6)         # smallest normal
        np.testing.assert_array_equal(POSITIVE[:8], np.arange(8) * 2.0 ** -9)  # subnormals
        self.assertEqual(POSITIVE[0x38], 1.0)
        self.assertEqual(POSITIVE[0x3C], 1.5)
        self.assertTrue(np.isnan(e4m3_decode([0x7F, 0xFF])).all())
        self.assertEqual(e4m3_decode([0xFE])[0], -448.0)
        self.assertTrue(np.all(np.diff(POSITIVE) > 0))
        # Encoding: ties to even, saturation, NaN.
        enc = lambda v: int(e4m3_encode(np.array([v], np.float32))[0])
        self.assertEqual(enc(1.0625), 0x38)   # 1 + 1/16: tie between 1 and 1.125, even 1
        self.assertEqual(enc(1.1875), 0x3A)   # tie between 1.125 and 1.25, even 1.25
        self.assertEqual(enc(464.0), 0x7E)    # tie between 448 and (NaN) 480: 448
        self.assertEqual(enc(1e9), 0x7E)
        self.assertEqual(enc(-np.inf), 0xFE)
        self.assertEqual(enc(2.0 ** -10), 0x00)  # tie between 0 and 2^-9: even 0
        self.assertEqual(enc(3 * 2.0 ** -10), 0x02)  # tie between 2^-9 and 2^-8: even 2^-8
        self.assertEqual(enc(-0.0), 0x80)
        self.assertEqual(enc(np.nan), 0x7F)


class E4M3Kernels(unittest.TestCase):
    """kiln.quantize e4m3 and kiln.dequantize of e4m3 codes, generated
    kernels on the CPU (the same arith lowering as the CUDA kernels)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def run_graph(self, x, scale):
        n = x.shape[0]
        path = os.path.join(self.tmp.name, "e4m3.mlir")
        with open(path, "w") as f:
            f.write(textwrap.dedent(f"""
                func.func @forward(%x: tensor<{n}xf32> {{kiln.name = "x"}}, %s: tensor<1xf32> {{kiln.name = "s"}})
                    -> (tensor<{n}xf32> {{kiln.name = "y"}}) {{
                  %q = kiln.quantize %x, %s e4m3 : (tensor<{n}xf32>, tensor<1xf32>) -> tensor<{n}xf8E4M3FN>
                  %one = kiln.constant dense<1.000000e+00> : tensor<1xf32>
                  %y = kiln.dequantize %q, %one : (tensor<{n}xf8E4M3FN>, tensor<1xf32>) -> tensor<{n}xf32>
                  return %y : tensor<{n}xf32>
                }}"""))
        art = os.path.join(self.tmp.name, "e4m3.kiln")
        compile_artifact(path, art)
        return run_artifact(art, {"x": x, "s": np.array([scale], np.float32)}, self.tmp.name)["y"]

    def test_encoder_bit_exact(self):
        x = probe_values(np.random.default_rng(0))
        y = self.run_graph(x, 1.0)
        expected = e4m3_decode(e4m3_encode(x))
        mismatch = np.nonzero(y.view(np.uint32) != expected.view(np.uint32))[0]
        self.assertEqual(len(mismatch), 0,
                         f"{len(mismatch)} of {len(x)} codes differ, first at x = "
                         f"{x[mismatch[:5]]!r}: kiln {y[mismatch[:5]]!r}, "
                         f"reference {expected[mismatch[:5]]!r}")

    def test_scaled(self):
        rng = np.random.default_rng(1)
        x = (rng.standard_normal(3000) * 7).astype(np.float32)
        scale = np.float32(np.abs(x).max() / np.float32(448))
        y = self.run_graph(x, scale)
        inverse = np.float32(1) / scale
        expected = e4m3_decode(e4m3_encode((x * inverse).astype(np.float32)))
        np.testing.assert_array_equal(y.view(np.uint32), expected.view(np.uint32))


    def test_parameter_init(self):
        # An f8E4M3FN parameter's init rule is written as e4m3 codes: `init
        # ones` is 1.0 (0x38), not the integer 1 (0x01, 2^-9).
        path = os.path.join(self.tmp.name, "param.mlir")
        with open(path, "w") as f:
            f.write(textwrap.dedent("""
                kiln.parameter @w : tensor<16xf8E4M3FN> init ones
                func.func @forward(%x: tensor<16xf32> {kiln.name = "x"}) -> (tensor<16xf32> {kiln.name = "y"}) {
                  %w = kiln.read_param @w : tensor<16xf8E4M3FN>
                  %one = kiln.constant dense<1.000000e+00> : tensor<1xf32>
                  %d = kiln.dequantize %w, %one : (tensor<16xf8E4M3FN>, tensor<1xf32>) -> tensor<16xf32>
                  %y = kiln.add %x, %d : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
                  return %y : tensor<16xf32>
                }"""))
        art = os.path.join(self.tmp.name, "param.kiln")
        compile_artifact(path, art)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        np.testing.assert_array_equal(stored["w"], np.full(16, 0x38, np.uint8))
        y = run_artifact(art, {"x": np.zeros(16, np.float32)}, self.tmp.name)["y"]
        np.testing.assert_array_equal(y, np.ones(16, np.float32))

    def test_linear_matches_reference(self):
        # kiln-quantize's fp8 linear (as its lit test shows it), run on the
        # CPU: the activations' per-tensor amax and scale, both encodings,
        # kiln.scaled_fp8_matmul (here the generated kernel: cuBLASLt's fp8
        # gemm has no CPU counterpart), the bias. Against a float64 numpy
        # reference of the same rule: the codes are the reference's
        # (bit-exact above), so only the f32 sums and scaling differ.
        rng = np.random.default_rng(2)
        x = rng.standard_normal((2, 7, 128)).astype(np.float32)
        x[0, 3, 5] = 40.0  # an outlier sets the per-tensor scale
        w = (rng.standard_normal((64, 128)) * 0.05).astype(np.float32)
        b = rng.standard_normal(64).astype(np.float32)
        sw = np.float32(np.abs(w).max()) / np.float32(448)
        path = os.path.join(self.tmp.name, "linear.mlir")
        with open(path, "w") as f:
            f.write(textwrap.dedent("""
                func.func @forward(%x: tensor<?x7x128xf32> {kiln.name = "x"}, %w: tensor<64x128xf32> {kiln.name = "w"},
                                   %sw: tensor<1xf32> {kiln.name = "sw"}, %b: tensor<64xf32> {kiln.name = "b"})
                    -> (tensor<?x7x64xf32> {kiln.name = "y"}) {
                  %sw2 = kiln.reshape %sw : tensor<1xf32> -> tensor<1x1xf32>
                  %wq = kiln.quantize %w, %sw2 e4m3 : (tensor<64x128xf32>, tensor<1x1xf32>) -> tensor<64x128xf8E4M3FN>
                  %eps = kiln.constant dense<1.000000e-30> : tensor<f32>
                  %fmax = kiln.constant dense<4.480000e+02> : tensor<f32>
                  %a = kiln.abs %x : tensor<?x7x128xf32>
                  %m = kiln.reduce max %a axes = [0, 1, 2] keepdim : (tensor<?x7x128xf32>) -> tensor<1x1x1xf32>
                  %mm = kiln.max %m, %eps : (tensor<1x1x1xf32>, tensor<f32>) -> tensor<1x1x1xf32>
                  %s = kiln.div %mm, %fmax : (tensor<1x1x1xf32>, tensor<f32>) -> tensor<1x1x1xf32>
                  %xq = kiln.quantize %x, %s e4m3 : (tensor<?x7x128xf32>, tensor<1x1x1xf32>) -> tensor<?x7x128xf8E4M3FN>
                  %s1 = kiln.reshape %s : tensor<1x1x1xf32> -> tensor<1xf32>
                  %y = kiln.scaled_fp8_matmul %xq, %wq scales %s1, %sw transpose_rhs : (tensor<?x7x128xf8E4M3FN>, tensor<64x128xf8E4M3FN>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x7x64xf32>
                  %0 = kiln.add %y, %b : (tensor<?x7x64xf32>, tensor<64xf32>) -> tensor<?x7x64xf32>
                  return %0 : tensor<?x7x64xf32>
                }"""))
        art = os.path.join(self.tmp.name, "linear.kiln")
        compile_artifact(path, art)
        y = run_artifact(art, {"x": x, "w": w, "sw": np.array([sw], np.float32), "b": b},
                         self.tmp.name)["y"]
        sx = np.float32(max(np.abs(x).max(), np.float32(1e-30))) / np.float32(448)
        xq = e4m3_decode(e4m3_encode((x * (np.float32(1) / sx)).astype(np.float32)))
        wq = e4m3_decode(e4m3_encode((w * (np.float32(1) / sw)).astype(np.float32)))
        expected = (xq.astype(np.float64) @ wq.astype(np.float64).T) * float(sx) * float(sw) + b
        report("fp8 linear (CPU kernel) vs float64 reference of the rule", y, expected)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        # And fp8's error against the float product is an e4m3 step's, not
        # more: within 10% of the output's range here.
        exact = x.astype(np.float64) @ w.astype(np.float64).T + b
        self.assertLess(np.abs(y - exact).max(), 0.1 * np.abs(exact).max())


def compile_cuda(model, out, extra=()):
    args = [KILN_COMPILE, model, "--target", "cuda", "-o", out, *extra]
    return subprocess.run(args, capture_output=True, text=True)


class Fp8Weights(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_gpt2_codes_and_scales(self):
        model = os.path.join(MODELS, "gpt2-tiny.json")
        first = compile_artifact(model, os.path.join(self.tmp.name, "init.kiln"))
        weights = random_weights_by_rule(first, seed=3, is_norm=lambda n: ".ln_" in n)
        wpath = os.path.join(self.tmp.name, "w.safetensors")
        save_safetensors(weights, wpath)
        art = os.path.join(self.tmp.name, "fp8.kiln")
        result = compile_cuda(model, art, ["--weights", wpath, "--quantize", "fp8"])
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(art, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["compile_options"]["quantize"], "fp8")
        dtypes = {p["name"]: p["dtype"] for p in manifest["parameters"]}
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        prefixes = sorted(name[:-len(".qweight")] for name in stored if name.endswith(".qweight"))
        # gpt2-tiny's four linears per block (in and out multiples of 16).
        self.assertEqual(len(prefixes), 4 * 2, prefixes)
        for prefix in prefixes:
            w = weights[prefix + ".weight"].T  # Conv1D [in, out] -> [out, in]
            self.assertEqual(dtypes[prefix + ".qweight"], "F8_E4M3")
            self.assertEqual(dtypes[prefix + ".scales"], "F32")
            scale = np.float32(np.abs(w).max()) / np.float32(448)
            np.testing.assert_array_equal(stored[prefix + ".scales"], np.array([scale], np.float32))
            codes = e4m3_encode((w * (np.float32(1) / scale)).astype(np.float32))
            np.testing.assert_array_equal(stored[prefix + ".qweight"], codes, prefix)
            self.assertNotIn(prefix + ".weight", stored)
            # What the model multiplies with is within half an e4m3 step.
            dequant = e4m3_decode(codes).astype(np.float64) * scale
            self.assertLessEqual(np.abs(dequant - w).max(), np.abs(w).max() / 16 + 1e-12)
        info = subprocess.run([KILN, "info", art], capture_output=True, text=True)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn("quantize=fp8", info.stdout)
        self.assertIn(prefixes[0] + ".qweight F8_E4M3", info.stdout)

    def test_tiny_and_zero_weights(self):
        # max|w| / 448 of a weight whose largest magnitude is below ~6e-43
        # is 0 in f32: the scale has a floor of 1e-30 (as the activations'),
        # so its codes are finite (all +-0 here), not NaN and 448. An
        # all-zero weight keeps scale 1 and zero codes.
        model = os.path.join(MODELS, "gpt2-tiny.json")
        first = compile_artifact(model, os.path.join(self.tmp.name, "init.kiln"))
        weights = random_weights_by_rule(first, seed=5, is_norm=lambda n: ".ln_" in n)
        tiny, zero = "transformer.h.0.mlp.c_fc", "transformer.h.1.attn.c_proj"
        rng = np.random.default_rng(0)
        shape = weights[tiny + ".weight"].shape
        weights[tiny + ".weight"] = (rng.uniform(-1, 1, shape) * 1e-43).astype(np.float32)
        self.assertGreater(np.abs(weights[tiny + ".weight"]).max(), 0)
        weights[zero + ".weight"] = np.zeros_like(weights[zero + ".weight"])
        wpath = os.path.join(self.tmp.name, "w.safetensors")
        save_safetensors(weights, wpath)
        art = os.path.join(self.tmp.name, "fp8.kiln")
        result = compile_cuda(model, art, ["--weights", wpath, "--quantize", "fp8"])
        self.assertEqual(result.returncode, 0, result.stderr)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        for prefix, scale in ((tiny, np.float32(1e-30)), (zero, np.float32(1))):
            w = weights[prefix + ".weight"].T
            np.testing.assert_array_equal(stored[prefix + ".scales"], np.array([scale], np.float32))
            codes = stored[prefix + ".qweight"]
            self.assertFalse(np.any((codes & 0x7F) == 0x7F), prefix + ": NaN codes")
            np.testing.assert_array_equal(codes & 0x7F, np.zeros_like(codes), prefix)
            np.testing.assert_array_equal(
                codes, e4m3_encode((w * (np.float32(1) / scale)).astype(np.float32)), prefix)


class Fp8BadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = os.path.join(MODELS, "gpt2-tiny.json")

    def tearDown(self):
        self.tmp.cleanup()

    def refused(self, args, message):
        result = subprocess.run([KILN_COMPILE, self.model, *args], capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(message, result.stderr)
        return result.stderr

    def test_cpu_target(self):
        self.refused(["--quantize", "fp8", "--target", "cpu", "-o", os.path.join(self.tmp.name, "a.kiln")],
                     "--quantize fp8 needs --target cuda")

    def test_old_arch(self):
        self.refused(["--quantize", "fp8", "--target", "cuda", "--cuda-arch", "sm_80",
                      "-o", os.path.join(self.tmp.name, "a.kiln")],
                     "--quantize fp8 needs --cuda-arch sm_89 or later")

    def test_rounding(self):
        self.refused(["--quantize", "fp8", "--rounding", "gptq", "--target", "cuda",
                      "-o", os.path.join(self.tmp.name, "a.kiln")],
                     "--quantize fp8 rounds to nearest")

    def test_truncated_f8_tensor(self):
        # An F8_E4M3 tensor of shape [4, 16] needs 64 bytes; give it 60.
        header = {"t": {"dtype": "F8_E4M3", "shape": [4, 16], "data_offsets": [0, 60]}}
        text = json.dumps(header).encode()
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
        path = os.path.join(self.tmp.name, "bad.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + bytes(60))
        self.refused(["--weights", path, "--quantize", "fp8", "--target", "cuda",
                      "-o", os.path.join(self.tmp.name, "a.kiln")],
                     "shape [4, 16] of F8_E4M3 needs 64 bytes, found 60")

    def test_f8_shape_overflow(self):
        header = {"t": {"dtype": "F8_E4M3", "shape": [2 ** 62, 4], "data_offsets": [0, 8]}}
        text = json.dumps(header).encode()
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
        path = os.path.join(self.tmp.name, "huge.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + bytes(8))
        self.refused(["--weights", path, "--quantize", "fp8", "--target", "cuda",
                      "-o", os.path.join(self.tmp.name, "a.kiln")], "overflows")


if __name__ == "__main__":
    unittest.main()
