"""Whole models, compiled to artifacts and run with `kiln run`, against
PyTorch with the same weights (written to safetensors and loaded by name).

Tolerances (fp32): logits within atol 1e-4 + rtol 1e-4 of the reference.
The kiln CPU backend accumulates matmuls in a different order from
OpenBLAS, so bit equality is not expected; 1e-4 is about 1000 ulp at the
logits' magnitude and far below any real bug.
"""

import json
import math
import os
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import MODELS, compile_artifact, report, run_artifact, save_safetensors

ATOL = 1e-4
RTOL = 1e-4


def gpt2_reference(w, ids, cfg):
    """GPT2LMHeadModel forward written with torch ops (HF layouts)."""
    d, heads = cfg["n_embd"], cfg["n_head"]
    hd = d // heads
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    t = lambda name: torch.from_numpy(w[name])
    b, s = ids.shape
    x = t("transformer.wte.weight")[torch.from_numpy(ids)] + t("transformer.wpe.weight")[:s]
    mask = torch.tril(torch.ones(s, s, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = torch.nn.functional.layer_norm(x, (d,), t(p + "ln_1.weight"), t(p + "ln_1.bias"), eps)
        qkv = h @ t(p + "attn.c_attn.weight") + t(p + "attn.c_attn.bias")
        q, k, v = qkv.split(d, dim=-1)
        q, k, v = (z.view(b, s, heads, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, torch.finfo(att.dtype).min).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        x = x + y @ t(p + "attn.c_proj.weight") + t(p + "attn.c_proj.bias")
        h = torch.nn.functional.layer_norm(x, (d,), t(p + "ln_2.weight"), t(p + "ln_2.bias"), eps)
        h = torch.nn.functional.gelu(h @ t(p + "mlp.c_fc.weight") + t(p + "mlp.c_fc.bias"), approximate="tanh")
        x = x + h @ t(p + "mlp.c_proj.weight") + t(p + "mlp.c_proj.bias")
    x = torch.nn.functional.layer_norm(x, (d,), t("transformer.ln_f.weight"), t("transformer.ln_f.bias"), eps)
    return (x @ t("transformer.wte.weight").T).numpy()


def random_weights(manifest, seed):
    rng = np.random.default_rng(seed)
    weights = {}
    for p in manifest["parameters"]:
        shape = tuple(p["shape"])
        if p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            weights[p["name"]] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[p["name"]] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
    return weights


class GPT2Tiny(unittest.TestCase):
    def test_logits_match_torch_reference(self):
        config_path = os.path.join(MODELS, "gpt2-tiny.json")
        with open(config_path) as f:
            cfg = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            # First compile with init rules to learn the parameter table,
            # then with random weights written by name.
            first = compile_artifact(config_path, os.path.join(tmp, "init.kiln"))
            weights = random_weights(first, seed=1)
            save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
            artifact = os.path.join(tmp, "gpt2.kiln")
            compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"))
            for batch, seq in ((1, 1), (2, 17), (3, 33)):
                ids = np.random.default_rng(batch * 100 + seq).integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
                logits = run_artifact(artifact, {"input_ids": ids}, tmp)["logits"]
                expected = gpt2_reference(weights, ids, cfg)
                self.assertEqual(logits.shape, expected.shape)
                report(f"gpt2-tiny logits [{batch}x{seq}]", logits, expected)
                np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)


if __name__ == "__main__":
    unittest.main()
