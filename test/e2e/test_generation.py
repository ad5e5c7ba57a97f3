"""KV-cache generation: `prefill` and `decode_step` against the models' full
forward.

An artifact compiled with `--kv-cache N` has, besides `forward`,
`prefill(input_ids, lengths, cache...) -> logits` and
`decode_step(input_ids, positions, cache...) -> logits`, whose cache inputs
(`cache.<layer>.key` / `.value`, [batch, kv heads, N, head dim]) are updated
in place. Checked here on gpt2-tiny and llama-tiny (grouped-query, RoPE at
each row's own position), with fused and decomposed attention:

- prefill of a right-padded batch whose rows have different lengths gives
  each row the logits of its last real token, equal to the torch reference
  forward of that row alone;
- the cache then holds every layer's keys and values of the prompt (checked
  against the reference's projections, slot by slot);
- each decode_step appends one token per row at the row's own position and
  gives the logits the reference forward gives for the whole sequence;
- bad input: a cache of the wrong shape, an in-place input passed where it
  cannot be written.

Tolerance: as test_models (float32 against the float64 reference,
RTOL = 1e-4, ATOL = 1e-4), which a wrong position, a missed cache slot or a
key read past a row's length exceeds by orders of magnitude.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import KILN, MODELS, compile_artifact, report, run_artifact, save_safetensors  # noqa: E402
from test_models import gpt2_reference, llama_reference, random_weights, random_weights_by_rule  # noqa: E402

RTOL = 1e-4
ATOL = 1e-4
SLOTS = 24


def load(name):
    path = os.path.join(MODELS, name)
    with open(path) as f:
        return path, json.load(f)


class KVCacheMatchesForward:
    """Mixed into a TestCase with CONFIG, EXTRA, weights(manifest),
    reference(weights, ids, cfg) and kv_heads(cfg), head_dim(cfg)."""

    EXTRA = []
    RTOL, ATOL = RTOL, ATOL

    def compile(self, tmp):
        config_path, cfg = load(self.CONFIG)
        first = compile_artifact(config_path, os.path.join(tmp, "init.kiln"))
        weights = self.weights(first)
        save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
        artifact = os.path.join(tmp, "kv.kiln")
        manifest = compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"),
                                    extra=["--kv-cache", str(SLOTS)] + self.EXTRA)
        self.artifact, self.tmp = artifact, tmp
        return cfg, weights, artifact, manifest

    def test_prefill_and_decode_match_forward(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg, weights, artifact, manifest = self.compile(tmp)
            entries = {e["name"]: e for e in manifest["entry_points"]}
            self.assertEqual(set(entries), {"forward", "prefill", "decode_step"})
            caches = [i for i in entries["decode_step"]["inputs"] if i.get("in_place")]
            layers = cfg.get("n_layer", cfg.get("num_hidden_layers"))
            self.assertEqual(len(caches), 2 * layers)
            self.assertEqual(caches[0]["shape"], [-1, self.kv_heads(cfg), SLOTS, self.head_dim(cfg)])

            rng = np.random.default_rng(7)
            vocab = cfg["vocab_size"]
            # Five rows: a decoding step's dot-product kernels take four
            # rows together on AVX-512 (row-block) and the fifth alone.
            lengths = np.array([5, 11, 1, 7, 3], dtype=np.int64)
            rows = len(lengths)
            prompts = [rng.integers(0, vocab, n) for n in lengths]
            ids = np.zeros((rows, lengths.max()), dtype=np.int64)
            for r, p in enumerate(prompts):
                ids[r, : len(p)] = p
            state = {c["name"]: np.zeros([rows] + c["shape"][1:], dtype=np.float32) for c in caches}
            out_dir = os.path.join(tmp, "step")

            def call(entry, inputs):
                outputs = run_artifact(artifact, dict(inputs, **state), tmp, entry=entry)
                for name in state:
                    state[name] = np.load(os.path.join(tmp, "out", name + ".npy"))
                return outputs["logits"]

            logits = call("prefill", {"input_ids": ids, "lengths": lengths})
            self.assertEqual(logits.shape, (rows, vocab))
            sequences = [list(p) for p in prompts]
            for r in range(rows):
                expected = self.reference(weights, np.array([sequences[r]]), cfg)[0, -1]
                report(f"{self.CONFIG} prefill row {r} (length {lengths[r]})", logits[r], expected)
                np.testing.assert_allclose(logits[r], expected, rtol=self.RTOL, atol=self.ATOL)
            # Slots past a row's prompt were never attended to; its own slots
            # hold keys (the cache is not left zero).
            key0 = state[caches[0]["name"]]
            for r in range(rows):
                self.assertTrue(np.abs(key0[r, :, : lengths[r]]).max() > 0)

            for step in range(4):
                tokens = rng.integers(0, vocab, (rows, 1)).astype(np.int64)
                positions = np.array([len(s) for s in sequences], dtype=np.int64)
                logits = call("decode_step", {"input_ids": tokens, "positions": positions})
                for r in range(rows):
                    sequences[r].append(int(tokens[r, 0]))
                    expected = self.reference(weights, np.array([sequences[r]]), cfg)[0, -1]
                    report(f"{self.CONFIG} decode step {step} row {r} (position {positions[r]})",
                           logits[r], expected)
                    np.testing.assert_allclose(logits[r], expected, rtol=self.RTOL, atol=self.ATOL)

    def test_lengths_are_clamped(self):
        """A prefill length outside [1, S] is clamped into it, as gather
        clamps ids: 0 gives the first token's logits, S + 44 the last's."""
        with tempfile.TemporaryDirectory() as tmp:
            cfg, weights, artifact, manifest = self.compile(tmp)
            caches = [i for e in manifest["entry_points"] if e["name"] == "prefill"
                      for i in e["inputs"] if i.get("in_place")]
            ids = np.random.default_rng(3).integers(0, cfg["vocab_size"], (2, 6)).astype(np.int64)
            inputs = {"input_ids": ids, "lengths": np.array([0, 50], np.int64)}
            for c in caches:
                inputs[c["name"]] = np.zeros([2] + c["shape"][1:], np.float32)
            logits = run_artifact(artifact, inputs, tmp, entry="prefill")["logits"]
            first = self.reference(weights, ids[:1, :1], cfg)[0, -1]
            last = self.reference(weights, ids[1:], cfg)[0, -1]
            np.testing.assert_allclose(logits[0], first, rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(logits[1], last, rtol=RTOL, atol=ATOL)

    def test_bad_cache(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg, _, artifact, manifest = self.compile(tmp)
            entry = next(e for e in manifest["entry_points"] if e["name"] == "decode_step")
            inputs = {"input_ids": np.zeros((1, 1), np.int64), "positions": np.zeros(1, np.int64)}
            for i in entry["inputs"]:
                if i.get("in_place"):
                    inputs[i["name"]] = np.zeros([1] + i["shape"][1:], np.float32)
            first = next(i["name"] for i in entry["inputs"] if i.get("in_place"))
            inputs[first] = np.zeros((1, self.kv_heads(cfg), SLOTS + 1, self.head_dim(cfg)), np.float32)
            with self.assertRaises(RuntimeError) as caught:
                run_artifact(artifact, inputs, tmp, entry="decode_step")
            self.assertIn(f"input '{first}' has shape", str(caught.exception))
            self.assertIn(f"dim 2 must be {SLOTS}", str(caught.exception))


class GPT2(KVCacheMatchesForward, unittest.TestCase):
    CONFIG = "gpt2-tiny.json"

    def weights(self, manifest):
        return random_weights(manifest, seed=3)

    def reference(self, weights, ids, cfg):
        return gpt2_reference(weights, ids, cfg)

    def kv_heads(self, cfg):
        return cfg["n_head"]

    def head_dim(self, cfg):
        return cfg["n_embd"] // cfg["n_head"]


class GPT2DecomposedAttention(GPT2):
    EXTRA = ["--attention", "decomposed"]


class Llama(KVCacheMatchesForward, unittest.TestCase):
    CONFIG = "llama-tiny.json"

    def weights(self, manifest):
        return random_weights_by_rule(manifest, seed=5, is_norm=lambda n: n.endswith("norm.weight"))

    def reference(self, weights, ids, cfg):
        return llama_reference(weights, ids, cfg)

    def kv_heads(self, cfg):
        return cfg["num_key_value_heads"]

    def head_dim(self, cfg):
        return cfg["hidden_size"] // cfg["num_attention_heads"]


class LlamaDecomposedAttention(Llama):
    EXTRA = ["--attention", "decomposed"]


class ArtifactForward:
    """The reference is the artifact's own forward on the whole sequence: a
    quantized model, whose decode steps (one row: kiln-matvec-dot-products's
    dot products over the codes) must give what its forward (the
    register-tiled matmul over panels dequantized from the same codes)
    gives."""

    def reference(self, weights, ids, cfg):
        work = os.path.join(self.tmp, "forward")
        os.makedirs(work, exist_ok=True)
        return run_artifact(self.artifact, {"input_ids": ids}, work)["logits"]


class GPT2W4(ArtifactForward, GPT2):
    EXTRA = ["--quantize", "w4g32"]


class GPT2W4AsymmetricHead(ArtifactForward, GPT2):
    """Unsigned 4-bit codes with zero points, the head too: on AVX-512 the
    decode steps look the codes up in per-group tables of (q - z) · s
    (kiln-matvec-dot-products nibble-table); the forward dequantizes."""
    EXTRA = ["--quantize", "w4g32-asym", "--quantize-lm-head"]


class GPT2W4G64Head(ArtifactForward, GPT2):
    """Groups of 64: two 32-code steps a group, unrolled (the table
    kernel's other shape), the head too."""
    EXTRA = ["--quantize", "w4g64", "--quantize-lm-head"]


class GPT2W8AsymmetricHead(ArtifactForward, GPT2):
    EXTRA = ["--quantize", "w8-asym", "--quantize-lm-head"]


class LlamaW8Asymmetric(ArtifactForward, Llama):
    EXTRA = ["--quantize", "w8-asym"]


class GPT2BF16(ArtifactForward, GPT2):
    """A --dtype bf16 artifact keeps its cache in bf16, which `kiln run`
    reads from f32 .npy files (rounding) and writes back as f32 (exactly):
    the test's chained calls pass the files along. Its decode steps and its
    forward may round on different kernels (one row against the sequence's
    rows), so the bounds allow a few bf16 ulps (RTOL 2^-6, ATOL 2^-9); on
    the Intel Xeon with AMX (2026-12-06) they agreed exactly."""
    EXTRA = ["--dtype", "bf16"]
    RTOL, ATOL = 2 ** -6, 2 ** -9

    def test_cache_files_hold_bf16_values(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg, _, artifact, manifest = self.compile(tmp)
            prefill = next(e for e in manifest["entry_points"] if e["name"] == "prefill")
            caches = [i for i in prefill["inputs"] if i.get("in_place")]
            self.assertEqual({c["dtype"] for c in caches}, {"BF16"})
            # An f32 file for a bf16 input is rounded to nearest even as it
            # is read: 1 + 2^-8 (a tie) rounds down to 1, 1 + 3·2^-8 up to
            # 1 + 2^-6; the prompt's slots are then overwritten.
            inputs = {"input_ids": np.array([[1, 2, 3]], np.int64),
                      "lengths": np.array([3], np.int64)}
            for c in caches:
                inputs[c["name"]] = np.full([1] + c["shape"][1:], 1 + 2 ** -8, np.float32)
            inputs[caches[1]["name"]][...] = 1 + 3 * 2 ** -8
            run_artifact(artifact, inputs, tmp, entry="prefill")
            key = np.load(os.path.join(tmp, "out", caches[0]["name"] + ".npy"))
            value = np.load(os.path.join(tmp, "out", caches[1]["name"] + ".npy"))
            self.assertEqual(key.dtype, np.float32)
            self.assertTrue(np.all(key[:, :, 3:] == 1.0))
            self.assertTrue(np.all(value[:, :, 3:] == 1 + 2 ** -6))
            bits = key.view(np.uint32)
            self.assertTrue(np.all(bits & 0xFFFF == 0))
            self.assertTrue(np.abs(key[:, :, :3] - 1.0).max() > 0)


class Refusals(unittest.TestCase):
    def compile_fails(self, config, *extra):
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([os.environ.get("KILN_COMPILE", "kiln-compile"), os.path.join(MODELS, config),
                                   "--target", "cpu", "-o", os.path.join(tmp, "a.kiln"), *extra],
                                  capture_output=True, text=True)
            self.assertNotEqual(done.returncode, 0)
            return done.stderr

    def test_bad_options(self):
        self.assertIn("a KV cache of 129 slots is longer than the model's 128 positions",
                      self.compile_fails("gpt2-tiny.json", "--kv-cache", "129"))
        self.assertIn("--kv-cache must be a positive number of slots or 'max'",
                      self.compile_fails("gpt2-tiny.json", "--kv-cache", "0"))
        self.assertIn("a KV cache is for the causal LMs",
                      self.compile_fails("bert-tiny.json", "--kv-cache", "16"))


if __name__ == "__main__":
    unittest.main()
