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
- Bad input: int8-static without a calibration file, --calibration with a
  scheme that takes none, a file calibrated from another model, a file
  that is not a calibration file, an artifact without the calibrate entry,
  --mode calibrate with --quantize: one clear line each.
"""

import json
import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import KILN, KILN_COMPILE, MODELS, compile_artifact, load_safetensors, save_safetensors
from test_eval import windows, write_tokens
from test_models import ATOL, RTOL
from test_quantization import LINEARS, gpt2_reference_with, gpt2_w8a8_reference, rtn


def read_metadata(path):
    """The __metadata__ strings of a safetensors file."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(size)).get("__metadata__", {})


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
        out = self.path("calib.safetensors")
        result = subprocess.run([KILN, "calibrate", art, "--tokens", self.tokens, "--batches", str(batches),
                                 "--batch", str(batch), "--seq", str(seq), "--out", out],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"9 layers over {batches * batch * seq} tokens", result.stdout)
        return out, manifest

    def reference_absmax(self, batches, batch, seq):
        """The largest |input| per channel of each linear over the windows,
        by the float64 reference with its linears hooked."""
        largest = {}
        t = lambda name: torch.from_numpy(self.weights[name].astype(np.float64))

        def linear(x, prefix):
            m = x.abs().reshape(-1, x.shape[-1]).amax(0).numpy()
            largest[prefix] = np.maximum(largest.get(prefix, m), m)
            if prefix == "transformer.wte":
                return x @ t(prefix + ".weight").T
            return x @ t(prefix + ".weight") + t(prefix + ".bias")

        starts = windows(self.ids, batches, batch, seq)
        for i in range(batches):
            ids = np.stack([w[0] for w in starts[i * batch:(i + 1) * batch]]).astype(np.int64)
            gpt2_reference_with(self.weights, ids, self.cfg, linear)
        return largest

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
        result = subprocess.run([KILN, "run", art, "--input", "input_ids=" + self.save("ids.npy", ids),
                                 "--output-dir", self.path("out")], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        logits = np.load(self.path("out/logits.npy"))
        expected = gpt2_w8a8_reference(self.weights, codes, ids, self.cfg, static=static)
        dynamic = gpt2_w8a8_reference(self.weights, codes, ids, self.cfg)
        diff = np.abs(logits - expected)
        print(f"gpt2-tiny int8-static: max abs error {diff.max():.3e}, mean {diff.mean():.3e}")
        close = np.isclose(logits, expected, rtol=RTOL, atol=ATOL)
        self.assertGreaterEqual(close.mean(), 0.99)
        np.testing.assert_allclose(logits, expected, rtol=0, atol=5e-2)
        # Static scales are not the per-token ones: the test can tell.
        self.assertLess(diff.mean() * 20, np.abs(dynamic - expected).mean())

    def save(self, name, array):
        np.save(self.path(name), array)
        return self.path(name)

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
        self.assertIn("--calibration is for --quantize int8-static (w8 needs no calibration)",
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
        # An artifact without the calibrate entry point.
        plain = self.path("plain.kiln")
        compile_artifact(self.model, plain)
        self.assertIn("compile it with kiln-compile --mode calibrate",
                      refused([KILN, "calibrate", plain, "--tokens", self.tokens, "--out", self.path("x.st")]))


if __name__ == "__main__":
    unittest.main()
