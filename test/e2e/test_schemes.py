"""Every quantization scheme on every model family, for the CPU and CUDA.

gpt2, llama and bert configs 128 wide (so groups of 32, 64 and 128 divide
every quantized layer), one set of random weights each, compiled with each
`kiln-compile --quantize` scheme:

- CPU, run with `kiln run`:
  - weight-only (w8, w8-asym, w4g32, w4g64, w4g128, w4g128-asym): the
    stored codes, scales and zero points equal the round-to-nearest rule
    (test_quantization.fake_quantized, bit-exact), and the outputs equal
    the float64 reference of the family (test_models) on the dequantized
    weights within the fp32 tolerances (atol 1e-4 + rtol 1e-4);
  - int8-dynamic and int8-static (from a `kiln calibrate` file of the same
    model): the outputs against the float64 reference with each quantized
    layer's input fake-quantized per token (max|x| / 127) or with the
    static scale (the layer's largest calibrated |x| / 127), by
    test_quantization.check_w8a8 (99% within the fp32 tolerances, all
    within 5e-2, and much closer to it than the weight-only model).
  The manifest records each scheme and the weights file holds no float
  copy of a quantized layer.
- `kiln calibrate` on bert (an encoder: token_type_ids given as zeros,
  attention_mask as ones) against the float64 reference's largest |input|
  per channel over the same windows (rtol 1e-5), and a model whose forward
  takes an input it cannot fill (position_ids) refused with one line.
- CUDA: the same schemes and fp8 compiled with `--target cuda` for sm_90,
  which assembles every kernel with the toolkit's ptxas (skipped where the
  toolkit is missing); the manifest records the scheme and the weights
  file the codes. Their numerics on a GPU are scripts/gpu-check's.

The single-family checks with more detail (ragged layers, padding, the
LM head, GPTQ, AWQ, SmoothQuant, calibration ranges) are in
test_quantization.py and test_calibration.py.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import (KILN, KILN_COMPILE, compile_artifact, load_safetensors, report, run_artifact,
                            save_safetensors)
from test_eval import windows, write_tokens
from test_models import ATOL, RTOL, bert_reference, gpt2_reference, llama_reference, random_weights_by_rule
from test_quantization import check_w8a8, fake_quantized

PTXAS = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "ptxas")

FAMILIES = {
    "gpt2": {
        "config": {"model_type": "gpt2", "vocab_size": 256, "n_positions": 64, "n_embd": 128, "n_layer": 2,
                   "n_head": 2, "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
                   "activation_function": "gelu_new"},
        "is_norm": lambda n: ".ln_" in n and n.endswith(".weight"),
        "linears": 4,  # per layer: c_attn, attn.c_proj, c_fc, mlp.c_proj
    },
    "llama": {
        "config": {"model_type": "llama", "vocab_size": 256, "hidden_size": 128, "intermediate_size": 384,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                   "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                   "hidden_act": "silu", "initializer_range": 0.02, "tie_word_embeddings": False},
        "is_norm": lambda n: n.endswith("norm.weight"),
        "linears": 7,  # q, k, v, o, gate, up, down
    },
    "bert": {
        "config": {"model_type": "bert", "vocab_size": 256, "hidden_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 2, "intermediate_size": 256, "hidden_act": "gelu",
                   "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
                   "initializer_range": 0.02, "position_embedding_type": "absolute"},
        "is_norm": lambda n: n.endswith("LayerNorm.weight"),
        "linears": 6,  # query, key, value, attention output, intermediate, output
        "other": 1,  # pooler.dense
    },
}

# scheme: (bits, group, symmetric)
WEIGHT_ONLY = {
    "w8": (8, 0, True),
    "w8-asym": (8, 0, False),
    "w4g32": (4, 32, True),
    "w4g64": (4, 64, True),
    "w4g128": (4, 128, True),
    "w4g128-asym": (4, 128, False),
}
ACTIVATIONS = ("int8-dynamic", "int8-static")
SEQ = 9


def layer_prefix(family, name):
    """The prefix a family's reference `linear` hook names a layer by: llama
    passes the weight's name, gpt2 and bert its prefix."""
    return name[:-len(".weight")] if family == "llama" else name


def w8a8_linear(family, fake, prefixes, static=None):
    """A float64 `linear` hook for the references: each quantized layer's
    input fake-quantized per token (max|x| / 127, round half to even) or
    with its static scale, times the dequantized weight (exact: w8 codes
    times their scales); the others float."""
    def linear(x, name):
        prefix = layer_prefix(family, name)
        w = torch.from_numpy(fake[prefix + ".weight"].astype(np.float64))
        if family == "gpt2" and prefix != "transformer.wte":
            w = w.T  # Conv1D stores [in, out]
        if prefix in prefixes:
            if static is not None:
                sx = torch.tensor(float(static[prefix]), dtype=torch.float64)
            else:
                sx = torch.clamp(x.abs().amax(-1, keepdim=True), min=1e-30) / 127
            x = torch.clamp(torch.round(x / sx), -128, 127) * sx
        y = x @ w.T
        bias = fake.get(prefix + ".bias")
        return y if bias is None else y + torch.from_numpy(bias.astype(np.float64))
    return linear


class Family:
    """One family's config, random weights, inputs and calibration file."""

    def __init__(self, name, tmp, seed):
        self.name, self.tmp = name, tmp
        spec = FAMILIES[name]
        self.cfg = spec["config"]
        self.model = os.path.join(tmp, name + ".json")
        with open(self.model, "w") as f:
            json.dump(self.cfg, f)
        init = compile_artifact(self.model, os.path.join(tmp, name + "-init.kiln"))
        self.weights = random_weights_by_rule(init, seed=seed, is_norm=spec["is_norm"])
        self.wpath = os.path.join(tmp, name + ".safetensors")
        save_safetensors(self.weights, self.wpath)
        self.layers = (spec["linears"] * (self.cfg.get("n_layer") or self.cfg["num_hidden_layers"])
                       + spec.get("other", 0))
        rng = np.random.default_rng(seed)
        vocab = self.cfg["vocab_size"]
        self.inputs = {"input_ids": rng.integers(0, vocab, (2, SEQ)).astype(np.int64)}
        if name == "bert":
            self.inputs["token_type_ids"] = rng.integers(0, 2, (2, SEQ)).astype(np.int64)
            self.inputs["attention_mask"] = (np.arange(SEQ)[None, :] < np.array([[SEQ], [5]])).astype(np.int64)
        self.calibration = self.calibrate(rng)

    def calibrate(self, rng):
        art = os.path.join(self.tmp, self.name + "-cal.kiln")
        compile_artifact(self.model, art, weights=self.wpath, extra=["--mode", "calibrate"])
        tokens = os.path.join(self.tmp, self.name + ".tokens")
        self.calibration_ids = rng.integers(0, self.cfg["vocab_size"], 400)
        write_tokens(tokens, self.calibration_ids, self.cfg["vocab_size"])
        out = os.path.join(self.tmp, self.name + "-calibration.safetensors")
        result = subprocess.run([KILN, "calibrate", art, "--tokens", tokens, "--batches", "3", "--batch", "2",
                                 "--seq", "16", "--out", out], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("kiln calibrate failed:\n" + result.stderr)
        return out

    def flags(self, scheme):
        flags = ["--quantize", scheme]
        if scheme == "int8-static":
            flags += ["--calibration", self.calibration]
        return flags

    def reference(self, weights, linear=None):
        """{output name: float64 reference} of the family's forward."""
        ids = self.inputs["input_ids"]
        if self.name == "gpt2":
            return {"logits": gpt2_reference(weights, ids, self.cfg, linear)}
        if self.name == "llama":
            return {"logits": llama_reference(weights, ids, self.cfg, linear)}
        hidden, pooled = bert_reference(weights, ids, self.inputs["token_type_ids"],
                                        self.inputs["attention_mask"], self.cfg, linear)
        return {"last_hidden_state": hidden, "pooler_output": pooled}


class SchemesOnEveryFamily(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.families = {name: Family(name, cls.tmp.name, seed) for seed, name in enumerate(FAMILIES, 20)}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compile(self, family, scheme, target="cpu"):
        """Compiles `scheme`, checks what the manifest and weights file say,
        returns (artifact, stored weights)."""
        art = os.path.join(self.tmp.name, f"{family.name}-{scheme}-{target}.kiln")
        args = [KILN_COMPILE, family.model, "--weights", family.wpath, "--target", target, "-o", art,
                *family.flags(scheme)]
        result = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, f"{family.name} {scheme} {target}: {result.stderr}")
        with open(os.path.join(art, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["compile_options"]["quantize"], scheme)
        self.assertEqual(manifest["target"], target)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        quantized = [n[:-len(".qweight")] for n in stored if n.endswith(".qweight")]
        self.assertEqual(len(quantized), family.layers, f"{family.name} {scheme}: {sorted(quantized)}")
        for prefix in quantized:
            self.assertNotIn(prefix + ".weight", stored, f"{family.name} {scheme}")
        return art, stored, quantized

    def run_cpu(self, family, art):
        work = os.path.join(self.tmp.name, "run")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        return run_artifact(art, family.inputs, work)

    def test_weight_only_on_cpu(self):
        for family in self.families.values():
            for scheme, (bits, group, symmetric) in WEIGHT_ONLY.items():
                with self.subTest(family=family.name, scheme=scheme):
                    art, stored, _ = self.compile(family, scheme)
                    fake, _ = fake_quantized(self, family.weights, stored, bits, group, symmetric,
                                             family.name == "gpt2")
                    out = self.run_cpu(family, art)
                    expected = family.reference(fake)
                    floats = family.reference(family.weights)
                    for name, value in expected.items():
                        report(f"{family.name} {scheme} {name}", out[name], value)
                        np.testing.assert_allclose(out[name], value, rtol=RTOL, atol=ATOL,
                                                   err_msg=f"{family.name} {scheme} {name}")
                    # The codes changed the outputs: the test can tell.
                    name = next(iter(expected))
                    self.assertGreater(np.abs(floats[name] - expected[name]).max(), 10 * ATOL)

    def test_int8_on_cpu(self):
        for family in self.families.values():
            stats = load_safetensors(family.calibration)
            for scheme in ACTIVATIONS:
                with self.subTest(family=family.name, scheme=scheme):
                    art, stored, quantized = self.compile(family, scheme)
                    fake, prefixes = fake_quantized(self, family.weights, stored, 8, 0, True,
                                                    family.name == "gpt2")
                    static = None
                    if scheme == "int8-static":
                        static = {p: np.float32(max(stats[p + ".weight.input_absmax"].max(), np.float32(1e-30)))
                                  / np.float32(127) for p in prefixes}
                    expected = family.reference(fake, w8a8_linear(family.name, fake, set(prefixes), static))
                    weight_only = family.reference(fake)
                    out = self.run_cpu(family, art)
                    for name, value in expected.items():
                        check_w8a8(self, f"{family.name} {scheme} {name}", out[name], value, weight_only[name])

    def test_bert_calibration_matches_torch(self):
        # kiln calibrate on an encoder: each window's token_type_ids all
        # zero and attention_mask all one, so each layer's largest |input|
        # per channel is the float64 reference's over the same windows
        # (3 calls of 2 x 16, as Family.calibrate runs it).
        family = self.families["bert"]
        stats = load_safetensors(family.calibration)
        expected = {}
        t = lambda name: torch.from_numpy(family.weights[name].astype(np.float64))

        def linear(x, prefix):
            top = x.abs().reshape(-1, x.shape[-1]).amax(0).numpy()
            expected[prefix] = np.maximum(expected.get(prefix, top), top)
            return torch.nn.functional.linear(x, t(prefix + ".weight"), t(prefix + ".bias"))

        starts = windows(family.calibration_ids, 3, 2, 16)
        for i in range(3):
            ids = np.stack([w[0] for w in starts[2 * i:2 * i + 2]]).astype(np.int64)
            bert_reference(family.weights, ids, np.zeros_like(ids), np.ones_like(ids), family.cfg, linear)
        self.assertEqual(sorted(stats), sorted(p + ".weight.input_absmax" for p in expected))
        for prefix, values in expected.items():
            report(f"bert calibration {prefix}", stats[prefix + ".weight.input_absmax"], values)
            np.testing.assert_allclose(stats[prefix + ".weight.input_absmax"], values, rtol=1e-5, atol=0,
                                       err_msg=prefix)
        # Another fill gives other statistics, so the test can tell a wrong
        # one: token_type_ids of ones, or a mask that hides half the window.
        ids = np.stack([w[0] for w in starts[:2]]).astype(np.int64)
        half = (np.arange(ids.shape[1])[None, :] < ids.shape[1] // 2).repeat(2, 0).astype(np.int64)

        def first_call(types, mask):
            seen = {}

            def hooked(x, prefix):
                seen[prefix] = x.abs().reshape(-1, x.shape[-1]).amax(0).numpy()
                return torch.nn.functional.linear(x, t(prefix + ".weight"), t(prefix + ".bias"))

            bert_reference(family.weights, ids, types, mask, family.cfg, hooked)
            return seen["encoder.layer.1.attention.self.query"]

        right = first_call(np.zeros_like(ids), np.ones_like(ids))
        for types, mask in ((np.ones_like(ids), np.ones_like(ids)), (np.zeros_like(ids), half)):
            self.assertFalse(np.allclose(first_call(types, mask), right, rtol=1e-3))

    def test_calibrate_refuses_other_inputs(self):
        # A model whose forward takes an input kiln calibrate cannot fill.
        family = self.families["llama"]
        art = os.path.join(self.tmp.name, "positions-cal.kiln")
        compile_artifact(family.model, art, weights=family.wpath, extra=["--mode", "calibrate", "--position-ids"])
        tokens = os.path.join(self.tmp.name, "llama.tokens")
        result = subprocess.run([KILN, "calibrate", art, "--tokens", tokens, "--batches", "1", "--batch", "1",
                                 "--seq", "8", "--out", os.path.join(self.tmp.name, "x.safetensors")],
                                capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("needs a language model whose forward takes only input_ids", result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)

    @unittest.skipUnless(os.access(PTXAS, os.X_OK), "no CUDA toolkit (ptxas)")
    def test_every_scheme_for_cuda(self):
        for family in self.families.values():
            for scheme in (*WEIGHT_ONLY, *ACTIVATIONS, "fp8"):
                with self.subTest(family=family.name, scheme=scheme):
                    art, stored, quantized = self.compile(family, scheme, target="cuda")
                    self.assertTrue(os.path.getsize(os.path.join(art, "module.so")) > 0)
                    code = stored[quantized[0] + ".qweight"]
                    self.assertIn(code.dtype, (np.int8, np.uint8), f"{family.name} {scheme}")


if __name__ == "__main__":
    unittest.main()
