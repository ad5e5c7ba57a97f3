"""`kiln eval` against PyTorch: the held-out loss of gpt2-tiny (f32 and
`--quantize w8`) on a token file equals torch's cross_entropy of the
float64 reference logits on the same windows (BatchSampler::evalBatches'
evenly spaced starts), within 1e-5 relative: Kiln's logits are fp32, within
1e-4 of the reference (test_models.py), and the loss averages them. Bad
input (ids beyond the artifact's vocabulary, a window longer than the
model's maximum, no held-out data) is refused with one clear line.
"""

import json
import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import KILN, MODELS, compile_artifact, load_safetensors
from test_models import gpt2_reference
from test_quantization import fake_quantized


def write_tokens(path, ids, vocab):
    with open(path, "wb") as f:
        f.write(b"KILNTOK1" + struct.pack("<IIQQ", 1, 2, len(ids), vocab))
        f.write(np.asarray(ids, np.uint16).tobytes())


def windows(ids, batches, batch, seq):
    """The windows of BatchSampler::evalBatches."""
    count = batches * batch
    last = len(ids) - seq - 1
    starts = [0] if count == 1 else [last * w // (count - 1) for w in range(count)]
    return [(ids[s:s + seq], ids[s + 1:s + seq + 1]) for s in starts]


class KilnEval(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model = os.path.join(MODELS, "gpt2-tiny.json")
        with open(self.model) as f:
            self.cfg = json.load(f)
        rng = np.random.default_rng(7)
        self.ids = rng.integers(0, self.cfg["vocab_size"], 700)
        self.tokens = os.path.join(self.tmp.name, "val.tokens")
        write_tokens(self.tokens, self.ids, self.cfg["vocab_size"])

    def tearDown(self):
        self.tmp.cleanup()

    def kiln_eval(self, art, *extra):
        return subprocess.run([KILN, "eval", art, *extra], capture_output=True, text=True)

    def reference_loss(self, weights, batches, batch, seq):
        losses = []
        for inputs, targets in windows(self.ids, batches, batch, seq):
            logits = torch.from_numpy(gpt2_reference(weights, inputs[None, :].astype(np.int64), self.cfg))
            losses.append(torch.nn.functional.cross_entropy(
                logits[0], torch.from_numpy(targets.astype(np.int64)), reduction="none"))
        return float(torch.cat(losses).mean())

    def check(self, extra, fake):
        art = os.path.join(self.tmp.name, "a.kiln")
        compile_artifact(self.model, art, extra=extra)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        weights = fake(stored)
        result = self.kiln_eval(art, "--tokens", self.tokens, "--batches", "3", "--batch", "2",
                                "--seq", "16", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        got = json.loads(result.stdout)
        expected = self.reference_loss(weights, 3, 2, 16)
        print(f"kiln eval {extra}: loss {got['loss']:.7f}, reference {expected:.7f}")
        self.assertEqual(got["tokens"], 3 * 2 * 16)
        self.assertAlmostEqual(got["perplexity"], np.exp(got["loss"]), delta=1e-9 * got["perplexity"])
        self.assertLess(abs(got["loss"] - expected), 1e-5 * expected)
        return got["loss"]

    def test_f32_and_w8_against_torch(self):
        f32 = self.check([], lambda stored: stored)
        # The w8 artifact quantizes the same init weights (same seed).
        init = load_safetensors(os.path.join(self.tmp.name, "a.kiln", "weights.safetensors"))
        w8 = self.check(["--quantize", "w8"],
                        lambda stored: fake_quantized(self, init, stored, 8, 0, True, True)[0])
        self.assertNotEqual(f32, w8)

    def test_bad_input(self):
        art = os.path.join(self.tmp.name, "a.kiln")
        compile_artifact(self.model, art)
        big = os.path.join(self.tmp.name, "big.tokens")
        write_tokens(big, [1, 2, 3] * 100, 5000)
        r = self.kiln_eval(art, "--tokens", big)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("has token ids up to 4999, but the artifact's vocabulary has 1000 tokens",
                      r.stderr)
        r = self.kiln_eval(art, "--tokens", self.tokens, "--seq", "500")
        self.assertIn("seq 500 is longer than the artifact's maximum 128", r.stderr)
        r = self.kiln_eval(art)
        self.assertIn("'kiln eval' needs held-out tokens", r.stderr)


if __name__ == "__main__":
    unittest.main()
