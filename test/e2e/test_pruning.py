"""Pruning (kiln-compile --prune) against PyTorch references.

- magnitude: each linear weight of gpt2-tiny keeps its largest |w|; the
  stored weights equal a torch reference's masking exactly (per layer:
  the floor(s * numel) smallest |w| zeroed, ties by position; global: one
  threshold over every pruned layer; 2:4: the two smallest of every four
  consecutive inputs of a row), the rest of the model is untouched, and
  the manifest records the method and sparsity.
- A pruned artifact equals the dense artifact compiled from the same
  weights masked: gpt2-tiny's logits bit for bit; llama-tiny and
  bert-tiny (2:4) against the torch references on the masked weights
  within the models' tolerances.
- Wanda (Sun et al., 2023): the zeros are those of a torch reference of
  the paper's rule, |W_ij| * ||x_j|| ranked per output row (unstructured
  0.5 and 2:4), ||x_j||^2 the diagonal of kiln calibrate's Gram matrix;
  the surviving weights are unchanged.
- SparseGPT (Frantar & Alistarh, 2023): against a float64 torch
  implementation of the paper's reference code (blocks of 128 columns,
  masks from w^2 / [H^-1]_jj^2, lazy error updates through the upper
  Cholesky factor of the damped H^-1): at least 99% of the masks agree
  and the updated weights within atol 1e-4 (f32 against float64; the
  eager and the lazy update round differently); each layer's
  reconstruction error tr(dW H dW^T) is below Wanda's and magnitude's at
  the same sparsity.
- --prune 2:4 --quantize w8: the codes are round to nearest of the pruned
  weights (zeros stay exact zeros).
- --sparse-format compressed: each 2:4 weight is stored as its two values
  and their positions per four inputs (9/16 of the bytes), which expand
  (numpy) to exactly the dense 2:4 weight; gpt2-tiny, llama-tiny and
  bert-tiny compute bit for bit what the dense 2:4 artifacts do where the
  weight is expanded in the packing (BERT's 2-row pooler takes the gather
  kernel: within rtol 1e-5, measured 1.2e-7 absolute); a
  compressed linear (K = 320) against float64 numpy within atol 1e-4 at
  1, 3 and 4 rows (the gather-and-FMA kernel) and 5 and 20 (the
  packing).
- Training (--mode train --prune): kiln pretrain keeps every pruned
  weight at zero while the others move, and --resume keeps them too;
  --init (other weights, no zeros to keep) is refused.
- Bad input: a sparsity outside [0, 1), N:M whose M does not divide a
  layer, wanda without calibration, --prune-global with wanda, --rounding
  gptq with --prune: one clear line each.
- Structured (--prune heads|ffn|heads+ffn): on gpt2-tiny, llama-tiny
  (grouped-query: whole key/value groups go) and bert-tiny, the heads and
  channels removed are the least important by a numpy reference of the
  weight-norm rule, the written config lists them, the artifact's weights
  are the checkpoint's with exactly those rows and columns cut out, and
  its outputs equal the dense artifact's with the removed units' output
  weights zeroed (the same function, summed in another order: within
  1e-5). With --calibration (gpt2, llama) the units removed are those
  of least output energy, sum of G_ii |W_o[i]|^2, by the same numpy
  reference on the calibration file's Gram matrices. A config that
  removes every head of a layer, --prune heads without --weights or on
  IR: one clear line each.
"""

import json
import os
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import (KILN, KILN_COMPILE, MODELS, compile_artifact, fortunes_corpus,
                            load_safetensors, report, run_artifact, save_safetensors)
from test_calibration import read_metadata
from test_eval import write_tokens
from test_models import ATOL, RTOL, bert_reference, llama_reference, load_config, random_weights_by_rule
from test_quantization import LINEARS, rtn


def smallest(scores, k):
    """A bool mask of the k smallest entries of a 1-D tensor, ties by
    position (a stable sort)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool)
    if k > 0:
        mask[torch.sort(scores, stable=True)[1][:k]] = True
    return mask


def nm_mask(scores, n, m):
    """N:M: in every m consecutive entries of each row, the m - n of
    smallest score."""
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // m, m)
    order = torch.sort(groups, dim=-1, stable=True)[1][..., :m - n]
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, order, True)
    return mask.reshape(rows, cols)


def magnitude_mask(w, sparsity):
    w = torch.from_numpy(w)
    if isinstance(sparsity, tuple):
        return nm_mask(w.abs().double(), *sparsity).numpy()
    k = int(np.floor(sparsity * w.numel()))
    return smallest(w.abs().flatten().double(), k).reshape(w.shape).numpy()


def wanda_mask(w, h, sparsity):
    """Wanda's metric |W_ij| * sqrt(H_jj), pruned per output row."""
    metric = torch.from_numpy(np.abs(w).astype(np.float64)) * torch.sqrt(
        torch.from_numpy(np.diag(h).astype(np.float64)).clamp(min=0))[None, :]
    if isinstance(sparsity, tuple):
        return nm_mask(metric, *sparsity).numpy()
    k = int(np.floor(sparsity * w.shape[1]))
    return torch.stack([smallest(row, k) for row in metric]).numpy()


def sparsegpt_reference(w, h, sparsity, blocksize=128, percdamp=0.01):
    """SparseGPT's fasterprune in float64 torch: returns the pruned weight
    and its mask."""
    W = torch.from_numpy(w.astype(np.float64)).clone()
    H = torch.from_numpy(h.astype(np.float64)).clone()
    rows, columns = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(columns, dtype=torch.float64)
    H = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Hinv = H
    nm = sparsity if isinstance(sparsity, tuple) else None
    full_mask = torch.zeros_like(W, dtype=torch.bool)
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        if nm is None:
            tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            k = int(np.floor(tmp.numel() * sparsity))
            mask1 = smallest(tmp.flatten(), k).reshape(tmp.shape)
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(count):
            w_col = W1[:, i]
            d = Hinv1[i, i]
            if nm is not None and i % nm[1] == 0:
                tmp = W1[:, i:i + nm[1]] ** 2 / (torch.diag(Hinv1)[i:i + nm[1]].reshape((1, -1))) ** 2
                mask1[:, i:i + nm[1]] = nm_mask(tmp, *nm)
            q = w_col.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w_col - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        full_mask[:, i1:i2] = mask1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W.numpy(), full_mask.numpy()


def reconstruction_error(w, pruned, h):
    d = w.astype(np.float64) - pruned.astype(np.float64)
    return float(np.einsum("oi,ij,oj->", d, h.astype(np.float64), d))


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


class Gpt2Pruning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(MODELS, "gpt2-tiny.json")
        with open(cls.model) as f:
            cls.cfg = json.load(f)
        rng = np.random.default_rng(17)
        compile_artifact(cls.model, cls.path("init.kiln"))
        cls.weights = load_safetensors(os.path.join(cls.path("init.kiln"), "weights.safetensors"))
        for name, w in cls.weights.items():
            if w.ndim == 2 and any(l in name for l in LINEARS):
                cls.weights[name] = (rng.standard_normal(w.shape) * 0.08).astype(np.float32)
        cls.wpath = cls.path("w.safetensors")
        save_safetensors(cls.weights, cls.wpath)
        ids = rng.integers(0, cls.cfg["vocab_size"], 600)
        tokens = cls.path("calib.tokens")
        write_tokens(tokens, ids, cls.cfg["vocab_size"])
        art = cls.path("calg.kiln")
        compile_artifact(cls.model, art, weights=cls.wpath, extra=["--mode", "calibrate", "--calibration-gram"])
        cls.calibration = cls.path("calg.safetensors")
        subprocess.run([KILN, "calibrate", art, "--tokens", tokens, "--batches", "4", "--batch", "2",
                        "--seq", "32", "--out", cls.calibration], check=True, capture_output=True)
        cls.grams = load_safetensors(cls.calibration)
        cls.ids = rng.integers(0, cls.cfg["vocab_size"], (2, 9)).astype(np.int64)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp.name, name)

    def linears(self):
        """(name, [out, in] weight, [in, in] Gram) of every pruned layer."""
        for layer in range(self.cfg["n_layer"]):
            for linear in LINEARS:
                name = f"transformer.h.{layer}.{linear}.weight"
                yield name, self.weights[name].T, self.grams[name + ".input_gram"]

    def compile_pruned(self, name, *extra):
        art = self.path(name)
        manifest = compile_artifact(self.model, art, weights=self.wpath, extra=list(extra))
        return manifest, load_safetensors(os.path.join(art, "weights.safetensors")), art

    def check_zeros(self, stored, masks, label):
        """The stored weights are the originals with exactly `masks` zeroed;
        every other parameter is unchanged."""
        for name, w in self.weights.items():
            if name in masks:
                mask = masks[name]
                expected = np.where(mask, np.float32(0), w.T).T
                self.assertEqual(int((stored[name] == 0).sum()), int(mask.sum()), f"{label} {name}")
                np.testing.assert_array_equal(stored[name], expected, err_msg=f"{label} {name}")
            else:
                np.testing.assert_array_equal(stored[name], w, err_msg=name)

    def test_magnitude_per_layer_global_and_2_4(self):
        manifest, stored, _ = self.compile_pruned("mag.kiln", "--prune", "magnitude", "--sparsity", "0.5")
        self.assertEqual(manifest["compile_options"]["prune"], "magnitude")
        self.assertEqual(manifest["compile_options"]["sparsity"], "0.5")
        masks = {name: magnitude_mask(w, 0.5) for name, w, _ in self.linears()}
        self.check_zeros(stored, masks, "magnitude 0.5")
        for name, mask in masks.items():
            self.assertEqual(mask.sum(), mask.size // 2, name)

        _, stored, _ = self.compile_pruned("global.kiln", "--prune", "magnitude", "--sparsity", "0.3",
                                           "--prune-global")
        everything = np.concatenate([np.abs(w).ravel() for _, w, _ in self.linears()])
        threshold = np.sort(everything)[int(np.floor(0.3 * everything.size)) - 1]
        masks = {name: np.abs(w) <= threshold for name, w, _ in self.linears()}
        self.check_zeros(stored, masks, "global 0.3")
        fractions = [mask.mean() for mask in masks.values()]
        print(f"global magnitude 0.3: per-layer sparsity {min(fractions):.3f}..{max(fractions):.3f}")
        self.assertGreater(max(fractions) - min(fractions), 0.01)

        manifest, stored, _ = self.compile_pruned("nm.kiln", "--prune", "2:4")
        self.assertEqual(manifest["compile_options"]["sparsity"], "2:4")
        masks = {name: magnitude_mask(w, (2, 4)) for name, w, _ in self.linears()}
        self.check_zeros(stored, masks, "2:4")
        for name, mask in masks.items():
            self.assertTrue((mask.reshape(mask.shape[0], -1, 4).sum(-1) == 2).all(), name)

    def test_pruned_equals_masked_dense(self):
        _, stored, art = self.compile_pruned("eq.kiln", "--prune", "magnitude", "--sparsity", "0.6")
        masked = self.path("masked.safetensors")
        save_safetensors(stored, masked)
        dense = self.path("dense.kiln")
        compile_artifact(self.model, dense, weights=masked)
        pruned_logits = run_artifact(art, {"input_ids": self.ids}, self.tmp.name)["logits"]
        dense_logits = run_artifact(dense, {"input_ids": self.ids}, self.tmp.name)["logits"]
        np.testing.assert_array_equal(pruned_logits, dense_logits)
        original = run_artifact(self.path("init.kiln"), {"input_ids": self.ids}, self.tmp.name)["logits"]
        self.assertFalse(np.array_equal(original, pruned_logits))

    def test_wanda_matches_reference(self):
        self.assertEqual(read_metadata(self.calibration)["statistic"], "input_absmax,input_gram")
        for sparsity, flag in ((0.5, "0.5"), ((2, 4), "2:4")):
            manifest, stored, _ = self.compile_pruned("wanda.kiln", "--prune", "wanda", "--sparsity", flag,
                                                      "--calibration", self.calibration)
            self.assertEqual(manifest["compile_options"]["prune"], "wanda")
            masks = {name: wanda_mask(w, h, sparsity) for name, w, h in self.linears()}
            self.check_zeros(stored, masks, f"wanda {flag}")
            # The activation-aware mask is not the magnitude one.
            differs = np.mean([(masks[n] != magnitude_mask(w, sparsity)).mean() for n, w, _ in self.linears()])
            print(f"wanda {flag}: {differs:.3f} of the mask differs from magnitude's")
            self.assertGreater(differs, 0.01)

    def test_sparsegpt_matches_reference(self):
        for sparsity, flag in ((0.5, "0.5"), ((2, 4), "2:4")):
            _, stored, _ = self.compile_pruned("sgpt.kiln", "--prune", "sparsegpt", "--sparsity", flag,
                                               "--calibration", self.calibration)
            for name, w, h in self.linears():
                expected, mask = sparsegpt_reference(w, h, sparsity)
                got = stored[name].T
                agree = float(((got == 0) == mask).mean())
                report(f"sparsegpt {flag} {name} ({agree:.4f} of the mask agrees)", got, expected)
                self.assertGreaterEqual(agree, 0.99, name)
                np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4, err_msg=name)
                self.assertEqual(int((got == 0).sum()), int(mask.sum()), name)
                err_sparsegpt = reconstruction_error(w, got, h)
                err_wanda = reconstruction_error(w, np.where(wanda_mask(w, h, sparsity), 0, w), h)
                err_magnitude = reconstruction_error(w, np.where(magnitude_mask(w, sparsity), 0, w), h)
                print(f"  error: sparsegpt {err_sparsegpt:.4g}, wanda {err_wanda:.4g}, "
                      f"magnitude {err_magnitude:.4g}")
                self.assertLess(err_sparsegpt, err_wanda, name)
                self.assertLess(err_sparsegpt, err_magnitude, name)

    def test_2_4_composes_with_w8(self):
        manifest, stored, _ = self.compile_pruned("nmq.kiln", "--prune", "2:4", "--quantize", "w8")
        self.assertEqual(manifest["compile_options"]["quantize"], "w8")
        for name, w, _ in self.linears():
            pruned = np.where(magnitude_mask(w, (2, 4)), np.float32(0), w)
            codes, scales, _ = rtn(pruned, 8, 0, True)
            prefix = name[:-len(".weight")]
            np.testing.assert_array_equal(stored[prefix + ".qweight"], codes, err_msg=name)
            np.testing.assert_array_equal(stored[prefix + ".scales"], scales, err_msg=name)
            self.assertTrue((stored[prefix + ".qweight"].reshape(-1, 4) == 0).sum(-1).min() >= 2)

    def test_2_4_compressed(self):
        _, dense_stored, dense = self.compile_pruned("d24.kiln", "--prune", "2:4")
        manifest, stored, compressed = self.compile_pruned("c24.kiln", "--prune", "2:4",
                                                           "--sparse-format", "compressed")
        self.assertEqual(manifest["compile_options"]["sparse_format"], "compressed")
        dense_bytes = compressed_bytes = 0
        for name, w, _ in self.linears():
            prefix = name[:-len(".weight")]
            self.assertNotIn(name, stored)
            first, second = stored[prefix + ".sparse_first"], stored[prefix + ".sparse_second"]
            positions = stored[prefix + ".sparse_positions"].view(np.uint8)
            out, groups = first.shape
            at_first, at_second = positions & 3, (positions >> 2) & 3
            self.assertTrue((at_first < at_second).all(), name)
            self.assertTrue((positions >> 4 == 0).all(), name)
            expanded = np.zeros((out, groups, 4), np.float32)
            np.put_along_axis(expanded, at_second[..., None].astype(np.int64), second[..., None], -1)
            np.put_along_axis(expanded, at_first[..., None].astype(np.int64), first[..., None], -1)
            np.testing.assert_array_equal(expanded.reshape(out, -1), dense_stored[name].T, err_msg=name)
            dense_bytes += dense_stored[name].nbytes
            compressed_bytes += first.nbytes + second.nbytes + positions.nbytes
        print(f"2:4 compressed linear weights: {compressed_bytes / dense_bytes:.4f} of dense")
        self.assertAlmostEqual(compressed_bytes / dense_bytes, 9 / 16)
        np.testing.assert_array_equal(run_artifact(compressed, {"input_ids": self.ids}, self.tmp.name)["logits"],
                                      run_artifact(dense, {"input_ids": self.ids}, self.tmp.name)["logits"])
        # SparseGPT's 2:4 weights compress too.
        _, sgpt, _ = self.compile_pruned("cs24.kiln", "--prune", "sparsegpt", "--sparsity", "2:4",
                                         "--calibration", self.calibration, "--sparse-format", "compressed")
        self.assertIn("transformer.h.0.mlp.c_fc.sparse_positions", sgpt)

    def linear_artifact(self, name, inputs, *extra):
        """A lone 96-output linear of `inputs` inputs compiled with `extra`;
        returns the artifact and its stored weights."""
        source = self.path(name + ".mlir")
        with open(source, "w") as f:
            f.write(f"""
kiln.parameter @"fc.weight" : tensor<96x{inputs}xf32> init normal std = 1.0 trainable
kiln.parameter @"fc.bias" : tensor<96xf32> init normal std = 1.0 trainable
func.func @forward(%x: tensor<?x{inputs}xf32> {{kiln.name = "x"}}) -> (tensor<?x96xf32> {{kiln.name = "y"}}) {{
  %w = kiln.read_param @"fc.weight" : tensor<96x{inputs}xf32>
  %b = kiln.read_param @"fc.bias" : tensor<96xf32>
  %y = kiln.linear %x, %w bias %b : (tensor<?x{inputs}xf32>, tensor<96x{inputs}xf32>, tensor<96xf32>) -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}}
""")
        art = self.path(name + ".kiln")
        compile_artifact(source, art, extra=list(extra))
        return art, load_safetensors(os.path.join(art, "weights.safetensors"))

    def check_rows(self, art, w, bias, label, seed):
        """The artifact's y for 1 to 20 rows against float64 numpy."""
        rng = np.random.default_rng(seed)
        for rows in (1, 3, 4, 5, 20):
            x = rng.standard_normal((rows, w.shape[1])).astype(np.float32)
            y = run_artifact(art, {"x": x}, self.tmp.name)["y"]
            expected = x.astype(np.float64) @ w.T + bias
            report(f"{label}, {rows} rows", y, expected)
            np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-4)

    def test_2_4_sparse_kernel(self):
        """Up to 4 rows (a decoding step) of a compressed 2:4 linear take
        the gather-and-FMA kernel; more rows expand the weight in the
        packing. Both against float64 numpy, 1 to 20 rows."""
        art, stored = self.linear_artifact("linear24", 320, "--prune", "2:4", "--sparse-format", "compressed")
        first, second = stored["fc.sparse_first"].astype(np.float64), stored["fc.sparse_second"].astype(np.float64)
        positions = stored["fc.sparse_positions"].view(np.uint8).astype(np.int64)
        w = np.zeros((96, 80, 4))
        np.put_along_axis(w, ((positions >> 2) & 3)[..., None], second[..., None], -1)
        np.put_along_axis(w, (positions & 3)[..., None], first[..., None], -1)
        w = w.reshape(96, 320)
        self.assertEqual(int((w == 0).sum()), 96 * 160)
        self.check_rows(art, w, stored["fc.bias"], "2:4 compressed linear", 4)

    def decode_csr(self, stored, prefix, out, inputs):
        """The dense [out, in] weight a CSR-compressed one holds, after
        checking the parts' invariants."""
        offsets = stored[prefix + ".sparse_offsets"].astype(np.int64)
        indices = stored[prefix + ".sparse_indices"].view(np.uint16).astype(np.int64)
        values = stored[prefix + ".sparse_values"]
        self.assertEqual(offsets.shape, (out + 1,), prefix)
        self.assertEqual(offsets[0], 0, prefix)
        self.assertEqual(offsets[-1], values.size, prefix)
        self.assertTrue((np.diff(offsets) >= 0).all(), prefix)
        self.assertTrue((indices < inputs).all(), prefix)
        w = np.zeros((out, inputs), np.float32)
        rows = np.repeat(np.arange(out), np.diff(offsets))
        np.add.at(w, (rows, indices), values)
        return w

    def test_unstructured_compressed(self):
        """Magnitude (per layer), Wanda (per row) and SparseGPT (per block)
        at 0.75 are stored as compressed sparse rows holding exactly the
        dense-format artifact's pruned weights; the logits match it (the
        prompt's 9 rows expand the weight and are bit for bit; the CSR
        kernel's one-row decoding sums in another order). Below
        --csr-min-sparsity the weights stay dense and kiln-compile says so."""
        for method in ("magnitude", "wanda", "sparsegpt"):
            extra = ["--prune", method, "--sparsity", "0.75"]
            if method != "magnitude":
                extra += ["--calibration", self.calibration]
            _, dense_stored, dense = self.compile_pruned(f"d{method}.kiln", *extra)
            _, stored, compressed = self.compile_pruned(f"c{method}.kiln", *extra,
                                                        "--sparse-format", "compressed")
            dense_bytes = compressed_bytes = 0
            for name, w, _ in self.linears():
                prefix = name[:-len(".weight")]
                self.assertNotIn(name, stored)
                out, inputs = w.shape
                expected = dense_stored[name].T
                np.testing.assert_array_equal(self.decode_csr(stored, prefix, out, inputs), expected,
                                              err_msg=f"{method} {name}")
                dense_bytes += expected.nbytes
                compressed_bytes += sum(stored[prefix + part].nbytes
                                        for part in (".sparse_offsets", ".sparse_indices", ".sparse_values"))
            print(f"{method} 0.75 as CSR: {compressed_bytes / dense_bytes:.4f} of the dense bytes")
            self.assertLess(compressed_bytes / dense_bytes, 0.4)
            np.testing.assert_array_equal(run_artifact(compressed, {"input_ids": self.ids}, self.tmp.name)["logits"],
                                          run_artifact(dense, {"input_ids": self.ids}, self.tmp.name)["logits"])
            one = {"input_ids": self.ids[:1, :1]}
            np.testing.assert_allclose(run_artifact(compressed, one, self.tmp.name)["logits"],
                                       run_artifact(dense, one, self.tmp.name)["logits"], rtol=1e-5, atol=1e-5)
        art = self.path("below.kiln")
        done = subprocess.run([KILN_COMPILE, self.model, "--target", "cpu", "-o", art, "--weights", self.wpath, "--prune", "magnitude",
                               "--sparsity", "0.4", "--sparse-format", "compressed"],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("weight(s) kept dense: sparsity 0.4 is below the break-even for compressed sparse rows",
                      done.stderr)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        self.assertIn("transformer.h.0.mlp.c_fc.weight", stored)
        _, stored, _ = self.compile_pruned("forced.kiln", "--prune", "magnitude", "--sparsity", "0.4",
                                           "--sparse-format", "compressed", "--csr-min-sparsity", "0.3")
        self.assertIn("transformer.h.0.mlp.c_fc.sparse_values", stored)

    def test_csr_sparse_kernel(self):
        """Up to 4 rows of a CSR-compressed linear (sparsity 0.7) take the
        gather-and-FMA kernel (rows of 64 to 128 entries, not multiples of
        16: masked tails); more rows the many-row kernel over x transposed
        (padded to 16 rows). Both against float64 numpy."""
        art, stored = self.linear_artifact("linear_csr", 330, "--prune", "magnitude", "--sparsity", "0.7",
                                           "--sparse-format", "compressed")
        w = self.decode_csr(stored, "fc", 96, 330).astype(np.float64)
        self.assertEqual(int((w != 0).sum()), 96 * 330 - int(np.floor(0.7 * (96 * 330))))
        self.check_rows(art, w, stored["fc.bias"], "CSR compressed linear", 5)

    def test_training_keeps_the_zeros(self):
        train = self.path("train.kiln")
        compile_artifact(self.model, train, weights=self.wpath,
                         extra=["--mode", "train", "--batch", "2", "--seq", "16",
                                "--prune", "magnitude", "--sparsity", "0.5"])
        start = load_safetensors(os.path.join(train, "weights.safetensors"))
        corpus = fortunes_corpus(self.path("corpus.txt"), 100_000)
        run = self.path("run")
        args = ["pretrain", train, "--out", run, "--data", corpus, "--lr", "1e-2", "--eval-every", "0",
                "--eval-batches", "1", "--checkpoint-every", "1", "--seed", "3"]
        done = kiln(*args, "--steps", "3")
        self.assertEqual(done.returncode, 0, done.stderr)
        resumed = kiln(*args, "--steps", "5", "--resume")
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        final = load_safetensors(os.path.join(run, "checkpoint.safetensors"))
        for name, _, _ in self.linears():
            zeros = start[name] == 0
            self.assertAlmostEqual(zeros.mean(), 0.5, delta=1e-3, msg=name)
            self.assertTrue((final[name][zeros] == 0).all(), name)
            moved = (final[name] != start[name])[~zeros].mean()
            self.assertGreater(moved, 0.9, name)
        # A dense parameter trains as before.
        self.assertFalse(np.array_equal(final["transformer.wte.weight"], start["transformer.wte.weight"]))
        # --init would bring other weights, with no zeros to keep: refused.
        data = self.path("sft.jsonl")
        with open(data, "w") as f:
            for i in range(8):
                f.write(json.dumps({"prompt": f"say {i}", "response": f" {i} {i}"}) + "\n")
        refused = kiln("sft", train, "--out", self.path("run2"), "--data", data, "--steps", "1",
                       "--init", run)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("--init on an artifact compiled with --prune magnitude: training keeps the zeros",
                      refused.stderr)

    def test_bad_input(self):
        def refused(*extra):
            result = subprocess.run([KILN_COMPILE, self.model, "--target", "cpu", "-o", self.path("bad.kiln"),
                                     *extra], capture_output=True, text=True)
            self.assertNotEqual(result.returncode, 0, extra)
            # One line, or the pass's diagnostic and kiln-compile's summary.
            lines = result.stderr.strip().splitlines()
            self.assertLessEqual(len(lines), 2, result.stderr)
            return lines[0]

        self.assertIn("sparsity 1.5 is outside [0, 1)", refused("--prune", "magnitude", "--sparsity", "1.5"))
        self.assertIn("sparsity -0.2 is outside [0, 1)", refused("--prune", "magnitude", "--sparsity", "-0.2"))
        # gpt2-tiny's inputs are 64 (attention, c_fc) and 256 (mlp.c_proj).
        self.assertIn("N:M needs integers 0 < N < M <= 64", refused("--prune", "magnitude", "--sparsity", "2:128"))
        self.assertIn("2:48 sparsity needs an input dim divisible by 48; "
                      "'transformer.h.0.attn.c_attn.weight' has 64 inputs",
                      refused("--prune", "magnitude", "--sparsity", "2:48"))
        self.assertIn("--prune wanda needs --calibration FILE", refused("--prune", "wanda"))
        self.assertIn("unknown pruning method 'random'", refused("--prune", "random"))
        self.assertIn("--prune-global takes --prune magnitude",
                      refused("--prune", "wanda", "--prune-global", "--calibration", self.calibration))
        self.assertIn("GPTQ and AWQ move every weight",
                      refused("--prune", "2:4", "--quantize", "w4g32", "--rounding", "gptq",
                              "--calibration", self.calibration))
        self.assertIn("--sparsity needs --prune", refused("--sparsity", "0.5"))
        self.assertIn("--sparse-format compressed stores 2:4 or unstructured sparsity; --sparsity 1:4 "
                      "is neither", refused("--prune", "magnitude", "--sparsity", "1:4",
                                            "--sparse-format", "compressed"))
        self.assertIn("--csr-min-sparsity is for --sparse-format compressed",
                      refused("--prune", "magnitude", "--csr-min-sparsity", "0.3"))
        self.assertIn("--csr-min-sparsity '2': expected a fraction in [0, 1]",
                      refused("--prune", "magnitude", "--sparse-format", "compressed",
                              "--csr-min-sparsity", "2"))
        self.assertIn("--sparse-format compressed builds inference artifacts",
                      refused("--prune", "2:4", "--sparse-format", "compressed", "--mode", "train"))
        self.assertIn("--sparse-format compressed does not combine with --quantize",
                      refused("--prune", "2:4", "--sparse-format", "compressed", "--quantize", "w8"))


class LlamaBertPruning(unittest.TestCase):
    """Every family's linears prune: the pruned artifact against the torch
    reference on the masked weights."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def compile_pruned(self, config, seed, is_norm, extra):
        path, cfg = load_config(config)
        first = compile_artifact(path, os.path.join(self.tmp.name, "init.kiln"))
        weights = random_weights_by_rule(first, seed=seed, is_norm=is_norm)
        wpath = os.path.join(self.tmp.name, "w.safetensors")
        save_safetensors(weights, wpath)
        art = os.path.join(self.tmp.name, "p.kiln")
        compile_artifact(path, art, weights=wpath, extra=extra)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        pruned = [n for n in weights if not np.array_equal(stored[n], weights[n])]
        for name in pruned:
            w = weights[name]
            np.testing.assert_array_equal(stored[name], np.where(magnitude_mask(w, (2, 4)), 0, w), name)
        return cfg, stored, art, pruned

    def test_llama_2_4(self):
        cfg, stored, art, pruned = self.compile_pruned(
            "llama-tiny.json", 4, lambda n: n.endswith("norm.weight"), ["--prune", "2:4"])
        self.assertEqual(len(pruned), 7 * cfg["num_hidden_layers"])
        ids = np.random.default_rng(5).integers(0, cfg["vocab_size"], (2, 7)).astype(np.int64)
        logits = run_artifact(art, {"input_ids": ids}, self.tmp.name)["logits"]
        expected = llama_reference(stored, ids, cfg)
        report("llama-tiny 2:4", logits, expected)
        np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)

    def test_llama_and_bert_2_4_compressed(self):
        """The compressed storage computes what the dense 2:4 one does."""
        rng = np.random.default_rng(7)
        for config, inputs, outputs in (
                ("llama-tiny.json", {"input_ids": rng.integers(0, 1000, (2, 5)).astype(np.int64)}, ["logits"]),
                ("bert-tiny.json", {"input_ids": rng.integers(0, 1000, (2, 5)).astype(np.int64),
                                    "token_type_ids": np.zeros((2, 5), np.int64),
                                    "attention_mask": np.ones((2, 5), np.int64)},
                 ["last_hidden_state", "pooler_output"])):
            path, _ = load_config(config)
            first = compile_artifact(path, os.path.join(self.tmp.name, "init.kiln"))
            weights = random_weights_by_rule(first, seed=2, is_norm=lambda n: "norm" in n.lower())
            wpath = os.path.join(self.tmp.name, "w.safetensors")
            save_safetensors(weights, wpath)
            results = []
            for fmt in ("dense", "compressed"):
                art = os.path.join(self.tmp.name, fmt + ".kiln")
                compile_artifact(path, art, weights=wpath, extra=["--prune", "2:4", "--sparse-format", fmt])
                results.append(run_artifact(art, inputs, self.tmp.name))
            for name in outputs:
                # Bit for bit where the compressed weight is expanded in the
                # packing; BERT's pooler (2 rows) takes the gather kernel,
                # which sums in another order.
                report(f"{config} 2:4 compressed {name}", results[1][name], results[0][name])
                np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{config} {name}")
                if name != "pooler_output":
                    np.testing.assert_array_equal(results[1][name], results[0][name], f"{config} {name}")

    def test_bert_2_4(self):
        cfg, stored, art, pruned = self.compile_pruned(
            "bert-tiny.json", 3, lambda n: n.endswith("LayerNorm.weight"), ["--prune", "2:4"])
        self.assertGreaterEqual(len(pruned), 6 * cfg["num_hidden_layers"])
        rng = np.random.default_rng(6)
        seq = 6
        ids = rng.integers(0, cfg["vocab_size"], (2, seq)).astype(np.int64)
        types = rng.integers(0, cfg["type_vocab_size"], (2, seq)).astype(np.int64)
        mask = (np.arange(seq)[None, :] < np.array((6, 3))[:, None]).astype(np.int64)
        out = run_artifact(art, {"input_ids": ids, "token_type_ids": types, "attention_mask": mask},
                           self.tmp.name)
        hidden, pooled = bert_reference(stored, ids, types, mask, cfg)
        for name, expected in (("last_hidden_state", hidden), ("pooler_output", pooled)):
            report(f"bert-tiny 2:4 {name}", out[name], expected)
            np.testing.assert_allclose(out[name], expected, rtol=RTOL, atol=ATOL)


# Per family: (units of heads, of channels), and for a layer the tensors a
# unit owns: (name, axis, parts, width, ranks) as the compiler's rule.
def gpt2_units(cfg, i):
    d = cfg["n_embd"] // cfg["n_head"]
    p = f"transformer.h.{i}."
    heads = [(p + "attn.c_attn.weight", 1, 3, d, True), (p + "attn.c_attn.bias", 0, 3, d, False),
             (p + "attn.c_proj.weight", 0, 1, d, True)]
    channels = [(p + "mlp.c_fc.weight", 1, 1, 1, True), (p + "mlp.c_fc.bias", 0, 1, 1, False),
                (p + "mlp.c_proj.weight", 0, 1, 1, True)]
    return (cfg["n_head"], heads, 1), (cfg.get("n_inner") or 4 * cfg["n_embd"], channels)


def llama_units(cfg, i):
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    group = cfg["num_attention_heads"] // cfg["num_key_value_heads"]
    p = f"model.layers.{i}."
    heads = [(p + "self_attn.q_proj.weight", 0, 1, group * d, True),
             (p + "self_attn.k_proj.weight", 0, 1, d, True),
             (p + "self_attn.v_proj.weight", 0, 1, d, True),
             (p + "self_attn.o_proj.weight", 1, 1, group * d, True)]
    channels = [(p + "mlp.gate_proj.weight", 0, 1, 1, True), (p + "mlp.up_proj.weight", 0, 1, 1, True),
                (p + "mlp.down_proj.weight", 1, 1, 1, True)]
    return (cfg["num_key_value_heads"], heads, group), (cfg["intermediate_size"], channels)


def bert_units(cfg, i):
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    p = f"encoder.layer.{i}."
    heads = []
    for proj in ("query", "key", "value"):
        heads += [(p + f"attention.self.{proj}.weight", 0, 1, d, True),
                  (p + f"attention.self.{proj}.bias", 0, 1, d, False)]
    heads.append((p + "attention.output.dense.weight", 1, 1, d, True))
    channels = [(p + "intermediate.dense.weight", 0, 1, 1, True), (p + "intermediate.dense.bias", 0, 1, 1, False),
                (p + "output.dense.weight", 1, 1, 1, True)]
    return (cfg["num_attention_heads"], heads, 1), (cfg["intermediate_size"], channels)


def unit_index(units, parts, width, extent):
    """For each index along an axis of `extent`: its unit."""
    along = np.arange(extent)
    return (along % (units * width)) // width


def removed_units(weights, units, tensors, fraction, grams=None):
    """Weight norm; with calibration Gram matrices, the output projection's
    (the last tensor) sum of G_ii * |W_o[i]|^2 over the unit's inputs i."""
    importance = np.zeros(units)
    for name, axis, parts, width, ranks in tensors:
        if not ranks or (grams is not None and name != tensors[-1][0]):
            continue
        w = weights[name].astype(np.float64) ** 2
        per_index = w.sum(axis=1 - axis)
        if grams is not None:
            per_index = per_index * np.diag(grams[name + ".input_gram"]).astype(np.float64)
        np.add.at(importance, unit_index(units, parts, width, per_index.size), per_index)
    count = int(np.floor(fraction * units))
    return sorted(np.argsort(importance, kind="stable")[:count].tolist())


def kept_slices(w, axis, parts, width, units, removed):
    keep = [i for i in range(w.shape[axis]) if unit_index(units, parts, width, w.shape[axis])[i] not in removed]
    return np.take(w, keep, axis=axis)


class StructuredPruning(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def check(self, config, units_of, is_norm, inputs, outputs, prune="heads+ffn", fraction=0.5,
              calibrated=False):
        path, cfg = load_config(config)
        first = compile_artifact(path, self.path("init.kiln"))
        weights = random_weights_by_rule(first, seed=8, is_norm=is_norm)
        wpath = self.path("w.safetensors")
        save_safetensors(weights, wpath)
        extra = []
        grams = None
        if calibrated:
            cal = self.path("cal.kiln")
            compile_artifact(path, cal, weights=wpath, extra=["--mode", "calibrate", "--calibration-gram"])
            tokens = self.path("calib.tokens")
            write_tokens(tokens, np.random.default_rng(9).integers(0, cfg["vocab_size"], 400), cfg["vocab_size"])
            calibration = self.path("calibration.safetensors")
            subprocess.run([KILN, "calibrate", cal, "--tokens", tokens, "--batches", "3", "--batch", "2",
                            "--seq", "16", "--out", calibration], check=True, capture_output=True)
            grams = load_safetensors(calibration)
            extra = ["--calibration", calibration]
        art = self.path("pruned.kiln")
        manifest = compile_artifact(path, art, weights=wpath,
                                    extra=["--prune", prune, "--sparsity", str(fraction),
                                           "--pruned-config", self.path("pruned.json")] + extra)
        self.assertEqual(manifest["compile_options"]["prune"], prune)
        self.assertEqual(manifest["compile_options"]["weights"], wpath)
        with open(self.path("pruned.json")) as f:
            pruned_cfg = json.load(f)
        stored = load_safetensors(os.path.join(art, "weights.safetensors"))
        zeroed = dict(weights)
        differs = 0
        layers = cfg.get("n_layer", cfg.get("num_hidden_layers"))
        for i in range(layers):
            (heads, head_tensors, group), (channels, channel_tensors) = units_of(cfg, i)
            for kind, units, tensors, key, per in (("heads", heads, head_tensors, "pruned_heads", group),
                                                   ("ffn", channels, channel_tensors, "pruned_ffn_channels", 1)):
                if kind not in prune:
                    self.assertNotIn(key, pruned_cfg)
                    continue
                removed = removed_units(weights, units, tensors, fraction, grams)
                if grams is not None:
                    differs += removed != removed_units(weights, units, tensors, fraction)
                listed = pruned_cfg[key].get(str(i), [])
                self.assertEqual(listed, [u * per + h for u in removed for h in range(per)], f"{key} {i}")
                for name, axis, parts, width, ranks in tensors:
                    if name not in weights:
                        continue
                    np.testing.assert_array_equal(
                        stored[name], kept_slices(weights[name], axis, parts, width, units, removed), name)
                # The same function: the removed units' outputs zeroed.
                name, axis, parts, width, _ = tensors[-1]
                w = zeroed[name].copy()
                index = unit_index(units, parts, width, w.shape[axis])
                mask = np.isin(index, removed)
                if axis == 0:
                    w[mask, :] = 0
                else:
                    w[:, mask] = 0
                zeroed[name] = w
        if calibrated:
            # The activations choose other units than the norms somewhere.
            self.assertGreater(differs, 0)
        self.assertLess(os.path.getsize(os.path.join(art, "weights.safetensors")),
                        os.path.getsize(os.path.join(self.path("init.kiln"), "weights.safetensors")))
        zpath = self.path("zeroed.safetensors")
        save_safetensors(zeroed, zpath)
        dense = self.path("dense.kiln")
        compile_artifact(path, dense, weights=zpath)
        got = run_artifact(art, inputs, self.tmp.name)
        expected = run_artifact(dense, inputs, self.tmp.name)
        for name in outputs:
            report(f"{config} {prune} {name}", got[name], expected[name])
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5)
        return pruned_cfg

    def test_gpt2_heads_and_ffn(self):
        ids = np.random.default_rng(1).integers(0, 1000, (2, 9)).astype(np.int64)
        self.check("gpt2-tiny.json", gpt2_units, lambda n: ".ln_" in n and n.endswith("weight"),
                   {"input_ids": ids}, ["logits"])

    def test_gpt2_activation_aware(self):
        """With --calibration, heads and channels are ranked by their
        output's energy on the calibration text."""
        ids = np.random.default_rng(5).integers(0, 1000, (2, 9)).astype(np.int64)
        self.check("gpt2-tiny.json", gpt2_units, lambda n: ".ln_" in n and n.endswith("weight"),
                   {"input_ids": ids}, ["logits"], calibrated=True)

    def test_llama_activation_aware(self):
        ids = np.random.default_rng(6).integers(0, 1000, (2, 7)).astype(np.int64)
        self.check("llama-tiny.json", llama_units, lambda n: n.endswith("norm.weight"),
                   {"input_ids": ids}, ["logits"], calibrated=True)

    def test_gpt2_heads_only_and_kv_cache(self):
        ids = np.random.default_rng(2).integers(0, 1000, (1, 6)).astype(np.int64)
        self.check("gpt2-tiny.json", gpt2_units, lambda n: ".ln_" in n and n.endswith("weight"),
                   {"input_ids": ids}, ["logits"], prune="heads", fraction=0.25)
        # The KV-cache entry points take each layer's own head count.
        path, _ = load_config("gpt2-tiny.json")
        art = self.path("cache.kiln")
        manifest = compile_artifact(self.path("pruned.json"), art, weights=os.path.join(
            self.path("pruned.kiln"), "weights.safetensors"), extra=["--kv-cache", "16"])
        prefill = next(e for e in manifest["entry_points"] if e["name"] == "prefill")
        caches = [i["shape"][1] for i in prefill["inputs"] if i["name"].startswith("cache.")]
        self.assertEqual(caches, [3, 3, 3, 3])

    def test_llama_groups_and_ffn(self):
        ids = np.random.default_rng(3).integers(0, 1000, (2, 7)).astype(np.int64)
        cfg = self.check("llama-tiny.json", llama_units, lambda n: n.endswith("norm.weight"),
                         {"input_ids": ids}, ["logits"])
        # Two query heads share a key/value head: they go together.
        for layer, heads in cfg["pruned_heads"].items():
            self.assertEqual(len(heads), 2)
            self.assertEqual(heads[0] // 2, heads[1] // 2)

    def test_bert_heads_and_ffn(self):
        rng = np.random.default_rng(4)
        ids = rng.integers(0, 1000, (2, 6)).astype(np.int64)
        types = rng.integers(0, 2, (2, 6)).astype(np.int64)
        mask = (np.arange(6)[None, :] < np.array((6, 4))[:, None]).astype(np.int64)
        self.check("bert-tiny.json", bert_units, lambda n: n.endswith("LayerNorm.weight"),
                   {"input_ids": ids, "token_type_ids": types, "attention_mask": mask},
                   ["last_hidden_state", "pooler_output"])

    def test_bad_input(self):
        path, cfg = load_config("gpt2-tiny.json")

        def refused(model, *extra):
            result = subprocess.run([KILN_COMPILE, model, "--target", "cpu", "-o", self.path("bad.kiln"), *extra],
                                    capture_output=True, text=True)
            self.assertNotEqual(result.returncode, 0, extra)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            return result.stderr

        self.assertIn("ranks heads and channels by their weights: give --weights", refused(path, "--prune", "heads"))
        self.assertIn("takes a fraction of each layer's heads or channels, not N:M",
                      refused(path, "--prune", "ffn", "--sparsity", "2:4", "--weights", "x.safetensors"))
        cfg["pruned_heads"] = {"1": [0, 1, 2, 3]}
        bad = self.path("all-heads.json")
        with open(bad, "w") as f:
            json.dump(cfg, f)
        self.assertIn("key 'pruned_heads' removes all 4 heads of layer 1: a layer keeps at least one",
                      refused(bad))
        cfg["pruned_heads"] = {"2": [0]}
        with open(bad, "w") as f:
            json.dump(cfg, f)
        self.assertIn("'2' is not a layer index in [0, 2)", refused(bad))
        self.assertIn("builds a smaller model from its config: give a model config",
                      refused(os.path.join(MODELS, "mlp.mlir"), "--prune", "heads", "--weights", "x.safetensors"))


if __name__ == "__main__":
    unittest.main()
