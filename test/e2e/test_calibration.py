"""Calibration and static int8 against PyTorch.

- `kiln-compile --mode calibrate` adds calibrate(input_ids) -> the largest
  |input| per channel of every linear layer; `kiln calibrate` runs it over
  the evenly spaced windows of a token file and keeps the maximum. On
  gpt2-tiny the file's vectors equal the float64 torch reference's
  (hooked linear inputs, max over the same windows) within rtol 1e-5 (fp32
  activations against float64; measured below 1e-6), its metadata names
  the statistic, the token count and the model's source.
- `--quantize int8-static --calibration FILE`: gpt2-tiny against the
  float64 W8A8 reference with one static scale per layer (max of the
  file's vector / 127), 99% of the logits within the fp32 tolerances (a
  code can round the other way at a tie) and all within 5e-2.
- GPTQ (`--rounding gptq`, Gram matrices from `--calibration-gram`): the
  calibration file's Σ x xᵀ equals the float64 reference's within rtol
  1e-5 of its largest entry; the stored w4g32 codes equal a numpy float64
  implementation of GPTQ's column-by-column algorithm on that matrix for
  at least 99% of the weights of every layer (both round the same f32
  values; Cholesky and the inverse differ in the last bits), and each
  layer's reconstruction error tr((W - Q) H (W - Q)ᵀ) is below round to
  nearest's.
- SmoothQuant (`--quantize int8-dynamic --smoothquant 0.5`): the stored
  factors are 1 / s with s = max|x_j|^α / max|W_j|^(1-α) from the
  calibration file and the weights (within 1e-6 relative: f32 against
  float64 pow), the codes quantize W · diag(s) by the round-to-nearest
  rule, and the logits follow the float64 W8A8 reference run on x · (1/s)
  the way int8-dynamic's do.
- AWQ (`--rounding awq`): each layer's stored factors are one of the
  searched candidates max|x_j|^α / sqrt(max · min), its codes are round to
  nearest of W · diag(s), its reconstruction error is at most round to
  nearest's, and gpt2-tiny's logits equal the float64 reference of
  (x / s) · dequantized codes within atol 1e-4 + rtol 1e-4.
- Percentile and MSE ranges (`--mode calibrate --calibration-histogram`,
  `kiln calibrate --range percentile|mse`): each layer's input_range
  equals a numpy float64 reference built from the float64 torch
  reference's hooked linear inputs on the same windows (the same 2048-bin
  |x| histogram, grown by whole factors; the percentile interpolated in
  its bin, the MSE threshold the bin edge of least expected error) within
  one bin width (f32 against float64 activations can move a value across
  a bin edge); the percentile is within one bin width of np.percentile
  of the raw |x|, and the MSE threshold's error on the raw |x| is within
  1% of the best threshold's on a grid of 2048 · 8 candidates.
  `--percentile 100` gives the largest input_absmax exactly.
- int8-static with percentile and MSE ranges: gpt2-tiny against the
  float64 W8A8 reference with static scale input_range / 127 (values
  above it saturate), within check_w8a8's tolerances, much closer to it
  than to the min-max static reference.
- Bad input: int8-static without a calibration file, --calibration with a
  scheme that takes none, a file calibrated from another model, a file
  that is not a calibration file, an artifact without the calibrate entry,
  --mode calibrate with --quantize: one clear line each. Ranges: an unknown
  --range, --percentile outside (0, 100] or without --range percentile,
  --range percentile on an artifact without --calibration-histogram,
  --calibration-histogram without --mode calibrate, a file whose
  input_range has the wrong shape, is negative, is missing for a layer, or
  whose range metadata is unknown, and int8-static --smoothquant with a
  percentile file: one clear line each.
"""

import math

import json
import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import (KILN, KILN_COMPILE, MODELS, compile_artifact, load_safetensors, run_artifact,
                            save_safetensors)
from test_eval import windows, write_tokens
from test_models import gpt2_reference
from test_quantization import LINEARS, check_w8a8, gpt2_w8a8_reference, rtn


def read_metadata(path):
    """The __metadata__ strings of a safetensors file."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(size)).get("__metadata__", {})


def unpack4(packed):
    """Signed 4-bit codes [out, in] from their bytes (low nibble first)."""
    b = packed.view(np.uint8).astype(np.int64)
    low, high = b & 0xF, b >> 4
    codes = np.stack([low, high], -1).reshape(packed.shape[0], -1)
    return np.where(codes >= 8, codes - 16, codes)


def gptq_reference(w, h, bits, group, damp=0.01):
    """GPTQ (Frantar et al. 2022, Algorithm 1 without lazy batching) in
    float64 numpy, symmetric: returns codes [out, in] and scales [out,
    groups]. Scales by the round-to-nearest rule on the f32 values of each
    group as updated when it starts; codes round f32 values as kiln does."""
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    out, n = w.shape
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h[np.diag_indices(n)] += damp * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # H^-1 = U^T U
    qmax = np.float32((1 << (bits - 1)) - 1)
    codes = np.zeros((out, n), np.int64)
    scales = np.zeros((out, n // group), np.float32)
    for i in range(n):
        if i % group == 0:
            block = w[:, i:i + group].astype(np.float32)
            lo = np.minimum(block.min(1), np.float32(0))
            hi = np.maximum(block.max(1), np.float32(0))
            scale = (np.maximum(-lo, hi) / qmax).astype(np.float32)
            scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
            scales[:, i // group] = scale
        value = w[:, i].astype(np.float32)
        code = np.clip(np.rint(value * (np.float32(1) / scale)), -qmax - 1, qmax).astype(np.float32)
        codes[:, i] = code.astype(np.int64)
        dequantized = (code * scale).astype(np.float32).astype(np.float64)
        err = (w[:, i] - dequantized) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return codes, scales


HISTOGRAM_BINS = 2048


def histogram_reference(calls, bins=HISTOGRAM_BINS):
    """kiln calibrate's |x| histogram of the values of each call, in float64
    numpy: [0, upper] in `bins` bins, upper set by the first call's largest
    |x| and grown by the smallest whole factor that covers a later call's.
    Merging k bins into one equals binning into the k times wider range
    (floor(floor(y) / k) = floor(y / k)), so the counts are those of every
    value binned into the final range. Returns (counts, upper, max)."""
    upper = largest = 0.0
    for values in calls:
        m = float(np.abs(values).max())
        largest = max(largest, m)
        if m > upper:
            if upper == 0:
                upper = m
            else:
                k = math.ceil(m / upper)
                while k * upper < m:
                    k += 1
                upper *= k
    a = np.concatenate([np.abs(v).ravel() for v in calls])
    counts = np.bincount(np.minimum((a * (bins / upper)).astype(np.int64), bins - 1), minlength=bins)
    return counts.astype(np.float64), upper, largest


def percentile_reference(counts, upper, largest, percent):
    """The |x| where the cumulative count reaches percent / 100 of the total,
    linear inside its bin, at most the maximum."""
    width = upper / counts.size
    target = percent / 100 * counts.sum()
    cumulative = np.cumsum(counts)
    b = int(np.argmax((cumulative >= target) & (counts > 0)))
    before = cumulative[b] - counts[b]
    return min((b + min(max((target - before) / counts[b], 0.0), 1.0)) * width, largest)


def mse_errors(counts, upper):
    """The expected squared error of int8 quantization with scale t / 127
    for t at every bin's upper edge: clipped bins (c - t)^2 at their centers
    c, the others (t / 127)^2 / 12; by suffix sums (kiln loops)."""
    n = counts.size
    width = upper / n
    t = (np.arange(n) + 1) * width
    c = (np.arange(n) + 0.5) * width
    above = lambda v: np.concatenate([np.cumsum(v[::-1])[::-1][1:], [0.0]])  # sum over bins > j
    s0, s1, s2 = above(counts), above(counts * c), above(counts * c * c)
    inside = np.cumsum(counts)
    return t, s2 - 2 * t * s1 + t * t * s0 + inside * (t / 127) ** 2 / 12


def mse_reference(counts, upper, largest):
    """The bin edge of least expected error (up to the edge that holds the
    maximum; the first on ties), at most the maximum."""
    t, errors = mse_errors(counts, upper)
    last = int(np.argmax(t >= largest))
    return min(float(t[int(np.argmin(errors[:last + 1]))]), largest)


def raw_quantization_error(a, t):
    """mse_errors' model on the values themselves."""
    clipped = a > t
    return float(((a[clipped] - t) ** 2).sum() + (~clipped).sum() * (t / 127) ** 2 / 12)


def reconstruction_error(w, codes, scales, group, h):
    """tr((W - Q) H (W - Q)^T): the layer's output error on the
    calibration inputs."""
    q = codes * np.repeat(scales.astype(np.float64), group, axis=1)
    d = w.astype(np.float64) - q
    return float(np.einsum("oi,ij,oj->", d, h, d))


class Calibration(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = os.path.join(MODELS, "gpt2-tiny.json")
        with open(self.model) as f:
            self.cfg = json.load(f)
        rng = np.random.default_rng(11)
        init = compile_artifact(self.model, self.path("init.kiln"))
        self.weights = load_safetensors(os.path.join(self.path("init.kiln"), "weights.safetensors"))
        for name, w in self.weights.items():
            if w.ndim == 2 and any(l in name for l in LINEARS):
                w = rng.standard_normal(w.shape).astype(np.float32) * 0.08
                w[rng.random(w.shape) < 0.01] *= 8
                self.weights[name] = w
        self.assertTrue(init["parameters"])
        self.wpath = self.path("w.safetensors")
        save_safetensors(self.weights, self.wpath)
        self.ids = rng.integers(0, self.cfg["vocab_size"], 600)
        self.tokens = self.path("calib.tokens")
        write_tokens(self.tokens, self.ids, self.cfg["vocab_size"])

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def calibrate(self, batches=3, batch=2, seq=16):
        art = self.path("cal.kiln")
        manifest = compile_artifact(self.model, art, weights=self.wpath, extra=["--mode", "calibrate"])
        self.assertEqual(manifest["compile_options"]["mode"], "calibrate")
        self.assertNotIn("calibration_gram", manifest["compile_options"])
        out = self.path("calib.safetensors")
        result = subprocess.run([KILN, "calibrate", art, "--tokens", self.tokens, "--batches", str(batches),
                                 "--batch", str(batch), "--seq", str(seq), "--out", out],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"9 layers over {batches * batch * seq} tokens", result.stdout)
        return out, manifest

    def calibrate_gram(self):
        """A calibration file with Gram matrices: 4 calls of 2 x 32 tokens."""
        art = self.path("calg.kiln")
        manifest = compile_artifact(self.model, art, weights=self.wpath,
                                    extra=["--mode", "calibrate", "--calibration-gram"])
        self.assertTrue(manifest["compile_options"]["calibration_gram"])
        out = self.path("calg.safetensors")
        subprocess.run([KILN, "calibrate", art, "--tokens", self.tokens, "--batches", "4", "--batch", "2",
                        "--seq", "32", "--out", out], check=True, capture_output=True)
        return out

    def calibrate_ranges(self, args, batches=4, batch=2, seq=32):
        """kiln calibrate ARGS (--range ...) on an artifact compiled with
        --calibration-histogram (compiled once per test)."""
        art = self.path("calh.kiln")
        if not os.path.exists(art):
            manifest = compile_artifact(self.model, art, weights=self.wpath,
                                        extra=["--mode", "calibrate", "--calibration-histogram"])
            self.assertTrue(manifest["compile_options"]["calibration_histogram"])
        out = self.path("calh-" + "-".join(a.strip("-") for a in args) + ".safetensors")
        result = subprocess.run([KILN, "calibrate", art, "--tokens", self.tokens, "--batches", str(batches),
                                 "--batch", str(batch), "--seq", str(seq), "--out", out] + list(args),
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def reference_inputs(self, batches, batch, seq):
        """Each linear's inputs (float64 numpy), one array per call, from
        the float64 reference over the windows kiln calibrate reads."""
        inputs = {}
        t = lambda name: torch.from_numpy(self.weights[name].astype(np.float64))

        def linear(x, prefix):
            inputs.setdefault(prefix, []).append(x.numpy().copy())
            if prefix == "transformer.wte":
                return x @ t(prefix + ".weight").T
            return x @ t(prefix + ".weight") + t(prefix + ".bias")

        starts = windows(self.ids, batches, batch, seq)
        for i in range(batches):
            ids = np.stack([w[0] for w in starts[i * batch:(i + 1) * batch]]).astype(np.int64)
            gpt2_reference(self.weights, ids, self.cfg, linear)
        return inputs

    def reference_absmax(self, batches, batch, seq):
        """The largest |input| per channel of each linear over the windows,
        by the float64 reference with its linears hooked."""
        return {prefix: np.max([np.abs(x).reshape(-1, x.shape[-1]).max(0) for x in calls], axis=0)
                for prefix, calls in self.reference_inputs(batches, batch, seq).items()}

    def test_calibrate_matches_torch(self):
        out, manifest = self.calibrate()
        stats = load_safetensors(out)
        expected = self.reference_absmax(3, 2, 16)
        self.assertEqual(sorted(stats), sorted(p + ".weight.input_absmax" for p in expected))
        for prefix, values in expected.items():
            got = stats[prefix + ".weight.input_absmax"]
            err = float(np.abs(got - values).max() / values.max())
            print(f"calibration {prefix}: max rel error {err:.2e} over {values.size} channels")
            np.testing.assert_allclose(got, values, rtol=1e-5, atol=0, err_msg=prefix)
        meta = read_metadata(out)
        self.assertEqual(meta["kiln"], "calibration")
        self.assertEqual(meta["statistic"], "input_absmax")
        self.assertEqual(meta["tokens"], str(3 * 2 * 16))
        self.assertEqual(meta["source_sha256"], manifest["source"]["sha256"])

    def test_int8_static_matches_torch(self):
        out, _ = self.calibrate(batches=4)
        stats = load_safetensors(out)
        art = self.path("static.kiln")
        manifest = compile_artifact(self.model, art, weights=self.wpath,
                                    extra=["--quantize", "int8-static", "--calibration", out])
        self.assertEqual(manifest["compile_options"]["quantize"], "int8-static")
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        codes, static = {}, {}
        for layer in range(self.cfg["n_layer"]):
            for linear in LINEARS:
                prefix = f"transformer.h.{layer}.{linear}"
                c, s, _ = rtn(self.weights[prefix + ".weight"].T, 8, 0, True)
                np.testing.assert_array_equal(stored[prefix + ".qweight"], c.astype(np.int8))
                codes[prefix] = (c.astype(np.float64), s.astype(np.float64))
                # The scale kiln-quantize computes, in f32.
                static[prefix] = np.float32(max(stats[prefix + ".weight.input_absmax"].max(),
                                                np.float32(1e-30))) / np.float32(127)
        ids = np.random.default_rng(12).integers(0, self.cfg["vocab_size"], (2, 9)).astype(np.int64)
        logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
        # Static scales are not the per-token ones: the test can tell.
        check_w8a8(self, "gpt2-tiny int8-static", logits,
                   gpt2_w8a8_reference(self.weights, codes, ids, self.cfg, static=static),
                   gpt2_w8a8_reference(self.weights, codes, ids, self.cfg))

    def test_gptq_matches_reference(self):
        out = self.calibrate_gram()
        stats = load_safetensors(out)
        self.assertEqual(read_metadata(out)["statistic"], "input_absmax,input_gram")
        # The Gram matrices against the float64 reference's hooked inputs.
        grams = {}
        t = lambda name: torch.from_numpy(self.weights[name].astype(np.float64))

        def linear(x, prefix):
            flat = x.reshape(-1, x.shape[-1])
            grams[prefix] = grams.get(prefix, 0) + (flat.T @ flat).numpy()
            if prefix == "transformer.wte":
                return x @ t(prefix + ".weight").T
            return x @ t(prefix + ".weight") + t(prefix + ".bias")

        starts = windows(self.ids, 4, 2, 32)
        for i in range(4):
            ids = np.stack([w[0] for w in starts[i * 2:(i + 1) * 2]]).astype(np.int64)
            gpt2_reference(self.weights, ids, self.cfg, linear)
        for prefix, expected in grams.items():
            got = stats[prefix + ".weight.input_gram"]
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max(), err_msg=prefix)

        art = self.path("gptq.kiln")
        manifest = compile_artifact(self.model, art, weights=self.wpath,
                                    extra=["--quantize", "w4g32", "--rounding", "gptq", "--calibration", out])
        self.assertEqual(manifest["compile_options"]["rounding"], "gptq")
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        for layer in range(self.cfg["n_layer"]):
            for name in LINEARS:
                prefix = f"transformer.h.{layer}.{name}"
                w = self.weights[prefix + ".weight"].T  # [out, in]
                h = stats[prefix + ".weight.input_gram"].astype(np.float64)
                codes, scales = gptq_reference(w, h, 4, 32)
                got = unpack4(stored[prefix + ".qweight"])
                same = float((got == codes).mean())
                rtn_codes, rtn_scales, _ = rtn(w, 4, 32, True)
                err_gptq = reconstruction_error(w, got, stored[prefix + ".scales"], 32, h)
                err_rtn = reconstruction_error(w, rtn_codes, rtn_scales, 32, h)
                print(f"gptq {prefix}: {same:.4f} of codes as the reference, error {err_gptq:.4g} "
                      f"against rtn {err_rtn:.4g}")
                self.assertGreaterEqual(same, 0.99, prefix)
                self.assertLess(err_gptq, err_rtn, prefix)

    def test_smoothquant_matches_torch(self):
        self.check_smoothquant("int8-dynamic")

    def test_smoothquant_static_matches_torch(self):
        self.check_smoothquant("int8-static")

    def test_awq_matches_reference(self):
        out = self.calibrate_gram()
        stats = load_safetensors(out)
        art = self.path("awq.kiln")
        manifest = compile_artifact(self.model, art, weights=self.wpath,
                                    extra=["--quantize", "w4g32", "--rounding", "awq", "--calibration", out])
        self.assertEqual(manifest["compile_options"]["rounding"], "awq")
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        alphas, dequantized = set(), {}
        for layer in range(self.cfg["n_layer"]):
            for name in LINEARS:
                prefix = f"transformer.h.{layer}.{name}"
                w = self.weights[prefix + ".weight"].T  # [out, in]
                h = stats[prefix + ".weight.input_gram"].astype(np.float64)
                act = np.maximum(stats[prefix + ".weight.input_absmax"].astype(np.float64), 1e-5)
                s = 1 / stored[prefix + ".smooth"].astype(np.float64)
                # s is one of the searched candidates act^a / sqrt(max * min).
                match = [a for a in np.linspace(0, 1, 21)
                         if np.allclose(s, act ** a / np.sqrt((act ** a).max() * (act ** a).min()), rtol=1e-5)]
                self.assertTrue(match, prefix)
                alphas.add(round(match[0], 2))
                codes, scales, _ = rtn((w * s.astype(np.float32)).astype(np.float32), 4, 32, True)
                got = unpack4(stored[prefix + ".qweight"])
                self.assertGreaterEqual(float((got == codes).mean()), 0.999, prefix)
                deq = got * np.repeat(stored[prefix + ".scales"].astype(np.float64), 32, axis=1)
                d = w.astype(np.float64) - deq / s
                err_awq = float(np.einsum("oi,ij,oj->", d, h, d))
                rtn_codes, rtn_scales, _ = rtn(w, 4, 32, True)
                err_rtn = reconstruction_error(w, rtn_codes, rtn_scales, 32, h)
                print(f"awq {prefix}: alpha {match[0]:.2f}, error {err_awq:.4g} against rtn {err_rtn:.4g}")
                self.assertLessEqual(err_awq, err_rtn * (1 + 1e-6), prefix)
                dequantized[prefix] = (deq, stored[prefix + ".smooth"].astype(np.float64))
        self.assertNotEqual(alphas, {0.0})  # the search moved somewhere
        t = lambda name: torch.from_numpy(self.weights[name].astype(np.float64))

        def linear(x, prefix):
            if prefix not in dequantized:
                return x @ t(prefix + ".weight").T
            deq, smooth = dequantized[prefix]
            return (x * torch.from_numpy(smooth)) @ torch.from_numpy(deq).T + t(prefix + ".bias")

        ids = np.random.default_rng(14).integers(0, self.cfg["vocab_size"], (2, 9)).astype(np.int64)
        logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
        expected = gpt2_reference(self.weights, ids, self.cfg, linear)
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)

    def check_smoothquant(self, scheme):
        out, _ = self.calibrate(batches=4)
        stats = load_safetensors(out)
        art = self.path("sq.kiln")
        manifest = compile_artifact(self.model, art, weights=self.wpath,
                                    extra=["--quantize", scheme, "--smoothquant", "0.5",
                                           "--calibration", out])
        self.assertEqual(manifest["compile_options"]["smoothquant"], 0.5)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        codes, smooth, static = {}, {}, {}
        for layer in range(self.cfg["n_layer"]):
            for linear in LINEARS:
                prefix = f"transformer.h.{layer}.{linear}"
                w = self.weights[prefix + ".weight"].T.astype(np.float64)  # [out, in]
                act = np.maximum(stats[prefix + ".weight.input_absmax"].astype(np.float64), 1e-5)
                s = act ** 0.5 / np.maximum(np.abs(w).max(0), 1e-5) ** 0.5
                np.testing.assert_allclose(stored[prefix + ".smooth"], 1 / s, rtol=1e-6, err_msg=prefix)
                factors = (1 / stored[prefix + ".smooth"].astype(np.float32)).astype(np.float32)
                # The codes of W · diag(s) (s as the compiler rounded it).
                c, sc, _ = rtn((self.weights[prefix + ".weight"].T * s.astype(np.float32)).astype(np.float32),
                               8, 0, True)
                agree = float((stored[prefix + ".qweight"] == c.astype(np.int8)).mean())
                self.assertGreaterEqual(agree, 0.999, prefix)
                codes[prefix] = (stored[prefix + ".qweight"].astype(np.float64),
                                 stored[prefix + ".scales"].astype(np.float64))
                smooth[prefix] = stored[prefix + ".smooth"].astype(np.float64)
                if scheme == "int8-static":
                    # The scale of the smoothed input: max |x_j| / s_j.
                    expected = max((stats[prefix + ".weight.input_absmax"] / factors).max(), 1e-30) / 127
                    np.testing.assert_allclose(stored[prefix + ".input_scale"], [expected], rtol=1e-6,
                                               err_msg=prefix)
                    static[prefix] = stored[prefix + ".input_scale"][0]
                self.assertTrue(np.isfinite(factors).all())
        ids = np.random.default_rng(13).integers(0, self.cfg["vocab_size"], (2, 9)).astype(np.int64)
        logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
        check_w8a8(self, f"gpt2-tiny {scheme} smoothquant 0.5", logits,
                   gpt2_w8a8_reference(self.weights, codes, ids, self.cfg, smooth=smooth,
                                       static=static or None),
                   gpt2_w8a8_reference(self.weights, codes, ids, self.cfg,
                                       static=static or None))

    def test_ranges_match_numpy(self):
        percentile = self.calibrate_ranges(["--range", "percentile", "--percentile", "99.9"])
        mse = self.calibrate_ranges(["--range", "mse"])
        top = self.calibrate_ranges(["--range", "percentile", "--percentile", "100"])
        meta = read_metadata(percentile)
        self.assertEqual(meta["statistic"], "input_absmax,input_range")
        self.assertEqual((meta["range"], meta["percentile"], meta["histogram_bins"]), ("percentile", "99.9", "2048"))
        meta = read_metadata(mse)
        self.assertEqual((meta["range"], meta["histogram_bins"]), ("mse", "2048"))
        self.assertNotIn("percentile", meta)
        got_p, got_m, got_top = load_safetensors(percentile), load_safetensors(mse), load_safetensors(top)
        inputs = self.reference_inputs(4, 2, 32)
        self.assertEqual(sorted(k for k in got_p if k.endswith(".input_range")),
                         sorted(p + ".weight.input_range" for p in inputs))
        clipped = 0
        for prefix, calls in inputs.items():
            name = prefix + ".weight.input_range"
            self.assertEqual(got_p[name].shape, (1,))
            counts, upper, largest = histogram_reference(calls)
            width = upper / HISTOGRAM_BINS
            a = np.concatenate([np.abs(c).ravel() for c in calls])
            # Percentile: the histogram reference, and the raw values.
            p, p_ref = float(got_p[name][0]), percentile_reference(counts, upper, largest, 99.9)
            p_raw = float(np.percentile(a, 99.9, method="inverted_cdf"))
            # MSE: the histogram reference; on the raw values against a grid.
            m, m_ref = float(got_m[name][0]), mse_reference(counts, upper, largest)
            grid = np.linspace(0, largest, HISTOGRAM_BINS * 8 + 1)[1:]
            best_raw = min(raw_quantization_error(a, t) for t in grid)
            m_raw_ratio = raw_quantization_error(a, m) / best_raw
            print(f"ranges {prefix}: max {largest:.4g}, bin {width:.3g}; p99.9 {p:.5g} (reference {p_ref:.5g}, "
                  f"raw {p_raw:.5g}); mse {m:.5g} (reference {m_ref:.5g}, raw error {m_raw_ratio:.5f} of the best)")
            self.assertLessEqual(abs(p - p_ref), width, prefix)
            self.assertLessEqual(abs(p - p_raw), width, prefix)
            self.assertLessEqual(abs(m - m_ref), width, prefix)
            self.assertLessEqual(m_raw_ratio, 1.01, prefix)
            # 100% is min-max: the largest absmax, exactly.
            self.assertEqual(got_top[name][0], got_top[prefix + ".weight.input_absmax"].max(), prefix)
            clipped += p < 0.99 * largest and m < 0.99 * largest
        # The thresholds clip somewhere (the weights have outliers).
        self.assertGreater(clipped, 0)

    def test_int8_static_ranges_match_torch(self):
        for args, recorded in ((["--range", "percentile", "--percentile", "99.9"], ("percentile", 99.9)),
                               (["--range", "mse"], ("mse", None))):
            out = self.calibrate_ranges(args)
            stats = load_safetensors(out)
            art = self.path(f"static-{recorded[0]}.kiln")
            manifest = compile_artifact(self.model, art, weights=self.wpath,
                                        extra=["--quantize", "int8-static", "--calibration", out])
            self.assertEqual(manifest["compile_options"]["calibration_range"], recorded[0])
            self.assertEqual(manifest["compile_options"].get("calibration_percentile"), recorded[1])
            codes, static, minmax = {}, {}, {}
            for layer in range(self.cfg["n_layer"]):
                for linear in LINEARS:
                    prefix = f"transformer.h.{layer}.{linear}"
                    c, s, _ = rtn(self.weights[prefix + ".weight"].T, 8, 0, True)
                    codes[prefix] = (c.astype(np.float64), s.astype(np.float64))
                    # The scale kiln-quantize computes, in f32.
                    static[prefix] = np.float32(max(stats[prefix + ".weight.input_range"][0],
                                                    np.float32(1e-30))) / np.float32(127)
                    minmax[prefix] = np.float32(stats[prefix + ".weight.input_absmax"].max()) / np.float32(127)
            ids = np.random.default_rng(15).integers(0, self.cfg["vocab_size"], (2, 9)).astype(np.int64)
            logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
            check_w8a8(self, f"gpt2-tiny int8-static {recorded[0]}", logits,
                       gpt2_w8a8_reference(self.weights, codes, ids, self.cfg, static=static),
                       gpt2_w8a8_reference(self.weights, codes, ids, self.cfg, static=minmax))

    def test_bad_ranges(self):
        def refused(args):
            result = subprocess.run(args, capture_output=True, text=True)
            self.assertNotEqual(result.returncode, 0)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            return result.stderr

        good = self.calibrate_ranges(["--range", "percentile", "--percentile", "99.9"])
        art = self.path("calh.kiln")
        calibrate = [KILN, "calibrate", art, "--tokens", self.tokens, "--batches", "1", "--out", self.path("x.st")]
        self.assertIn("--range 'entropy': expected minmax, percentile or mse",
                      refused(calibrate + ["--range", "entropy"]))
        for bad in ("0", "100.5", "-3"):
            self.assertIn(f"--percentile {bad}: expected a percentage in (0, 100]",
                          refused(calibrate + ["--range", "percentile", "--percentile", bad]))
        self.assertIn("--percentile needs --range percentile", refused(calibrate + ["--percentile", "99"]))
        plain = self.path("cal-plain.kiln")
        compile_artifact(self.model, plain, weights=self.wpath, extra=["--mode", "calibrate"])
        self.assertIn("compile it with kiln-compile --mode calibrate --calibration-histogram",
                      refused([KILN, "calibrate", plain, "--tokens", self.tokens, "--out", self.path("x.st"),
                               "--range", "mse"]))
        compile_cmd = [KILN_COMPILE, self.model, "--target", "cpu", "-o", self.path("bad.kiln")]
        self.assertIn("--calibration-histogram needs --mode calibrate",
                      refused(compile_cmd + ["--calibration-histogram"]))

        # Files edited from a good one: each is refused naming the problem.
        stats, meta = load_safetensors(good), read_metadata(good)
        name = "transformer.h.1.mlp.c_fc.weight.input_range"

        def edited(tag, tensors, metadata):
            path = self.path(f"bad-{tag}.safetensors")
            save_safetensors(tensors, path, metadata=metadata)
            return compile_cmd + ["--weights", self.wpath, "--quantize", "int8-static", "--calibration", path]

        self.assertIn(f"'{name}' is F32 [2], not one f32 threshold [1] of 'transformer.h.1.mlp.c_fc.weight's input",
                      refused(edited("shape", {**stats, name: np.full(2, stats[name][0])}, meta)))
        self.assertIn(f"'{name}' is -1.000000 (expected a finite |input| threshold)",
                      refused(edited("negative", {**stats, name: np.float32([-1])}, meta)))
        self.assertIn(f"its metadata says range=percentile, but it has no '{name[:-len('.input_range')]}.input_range'",
                      refused(edited("missing", {k: v for k, v in stats.items() if k != name}, meta)))
        self.assertIn("unknown range 'entropy' in its metadata (expected percentile or mse)",
                      refused(edited("method", stats, {**meta, "range": "entropy"})))
        # SmoothQuant's static scale is of the smoothed input.
        self.assertIn("--smoothquant with --quantize int8-static needs a min-max calibration file",
                      refused(compile_cmd + ["--weights", self.wpath, "--quantize", "int8-static",
                                             "--smoothquant", "0.5", "--calibration", good]))

    def test_bad_input(self):
        def refused(args):
            result = subprocess.run(args, capture_output=True, text=True)
            self.assertNotEqual(result.returncode, 0)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            return result.stderr

        compile_cmd = [KILN_COMPILE, self.model, "--target", "cpu", "-o", self.path("bad.kiln")]
        self.assertIn("--quantize int8-static needs --calibration FILE",
                      refused(compile_cmd + ["--quantize", "int8-static"]))
        out, _ = self.calibrate()
        self.assertIn("--calibration is for --quantize int8-static, --rounding gptq or --smoothquant (w8 with rtn needs no calibration)",
                      refused(compile_cmd + ["--quantize", "w8", "--calibration", out]))
        self.assertIn("--mode calibrate measures the float model",
                      refused(compile_cmd + ["--mode", "calibrate", "--quantize", "w8"]))
        # A weights file is not a calibration file.
        self.assertIn("not a calibration file of kiln calibrate",
                      refused(compile_cmd + ["--quantize", "int8-static", "--calibration", self.wpath]))
        # A file calibrated from another model (llama-tiny).
        llama = os.path.join(MODELS, "llama-tiny.json")
        other = self.path("llama-cal.kiln")
        compile_artifact(llama, other, extra=["--mode", "calibrate"])
        with open(llama) as f:
            vocab = json.load(f)["vocab_size"]
        tokens = self.path("llama.tokens")
        write_tokens(tokens, self.ids % vocab, vocab)
        other_out = self.path("llama-calib.safetensors")
        subprocess.run([KILN, "calibrate", other, "--tokens", tokens, "--batches", "1", "--batch", "1",
                        "--seq", "8", "--out", other_out], check=True, capture_output=True)
        self.assertIn("it was made from another model",
                      refused(compile_cmd + ["--quantize", "int8-static", "--calibration", other_out]))
        # GPTQ needs a calibration file, with Gram matrices.
        self.assertIn("--rounding awq needs --calibration FILE",
                      refused(compile_cmd + ["--quantize", "w4g32", "--rounding", "awq"]))
        self.assertIn("--rounding gptq needs --calibration FILE",
                      refused(compile_cmd + ["--quantize", "w4g32", "--rounding", "gptq"]))
        self.assertIn("has no 'transformer.h.0.attn.c_attn.weight.input_gram'",
                      refused(compile_cmd + ["--quantize", "w4g32", "--rounding", "gptq", "--calibration", out]))
        self.assertIn("--rounding 'best': expected rtn, gptq or awq",
                      refused(compile_cmd + ["--quantize", "w4g32", "--rounding", "best"]))
        self.assertIn("--calibration-gram needs --mode calibrate",
                      refused(compile_cmd + ["--calibration-gram"]))
        # SmoothQuant needs an int8 scheme, an alpha in [0, 1] and a file.
        self.assertIn("--smoothquant takes an alpha in [0, 1] and --quantize int8-dynamic or int8-static",
                      refused(compile_cmd + ["--quantize", "w8", "--smoothquant", "0.5", "--calibration", out]))
        self.assertIn("--smoothquant takes an alpha in [0, 1]",
                      refused(compile_cmd + ["--quantize", "int8-dynamic", "--smoothquant", "1.5",
                                             "--calibration", out]))
        self.assertIn("--smoothquant needs --calibration FILE",
                      refused(compile_cmd + ["--quantize", "int8-dynamic", "--smoothquant", "0.5"]))
        # An artifact without the calibrate entry point.
        plain = self.path("plain.kiln")
        compile_artifact(self.model, plain)
        self.assertIn("compile it with kiln-compile --mode calibrate",
                      refused([KILN, "calibrate", plain, "--tokens", self.tokens, "--out", self.path("x.st")]))


if __name__ == "__main__":
    unittest.main()
