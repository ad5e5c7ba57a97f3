"""Whole models, compiled to artifacts and run with `kiln run`, against
PyTorch with the same weights (written to safetensors and loaded by name).

Models: gpt2-tiny, transformer-tiny (against torch.nn.Transformer itself),
bert-tiny (HF BertModel, with padding) and llama-tiny (HF LlamaForCausalLM,
grouped-query attention); plus `kiln run` rejecting inputs of the wrong
dtype or rank with a clear message.

The references compute in float64 (oracle.py) from the same float32
weights, so the verdict does not depend on the BLAS torch links.
Tolerances (fp32): every output within atol 1e-4 + rtol 1e-4 of the
reference (ATOL, RTOL below, the same for all models). Kiln computes in
float32, so bit equality is not expected; 1e-4 is about 1000 ulp at the
outputs' magnitude (they are O(1): LayerNorm/RMSNorm outputs, logits of
weights with std 0.05) and far below any real bug. Measured errors are
~1e-6 (printed by report()).
"""

import copy
import json
import math
import os
import tempfile
import unittest

import numpy as np
import torch

from kiln_artifacts import MODELS, compile_artifact, report, run_artifact, save_safetensors
from oracle import oracle

ATOL = 1e-4
RTOL = 1e-4


def gpt2_reference(w, ids, cfg, linear=None):
    """GPT2LMHeadModel forward written with torch ops (HF layouts).
    `linear(x, prefix)` replaces the Conv1D layers and the tied head
    (prefix "transformer.wte", no bias): a quantized reference."""
    d, heads = cfg["n_embd"], cfg["n_head"]
    hd = d // heads
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    t = lambda name: oracle(w[name])

    def conv1d(x, prefix):
        if prefix == "transformer.wte":
            return x @ t(prefix + ".weight").T
        return x @ t(prefix + ".weight") + t(prefix + ".bias")

    linear = linear or conv1d
    b, s = ids.shape
    x = t("transformer.wte.weight")[torch.from_numpy(ids)] + t("transformer.wpe.weight")[:s]
    mask = torch.tril(torch.ones(s, s, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = torch.nn.functional.layer_norm(x, (d,), t(p + "ln_1.weight"), t(p + "ln_1.bias"), eps)
        qkv = linear(h, p + "attn.c_attn")
        q, k, v = qkv.split(d, dim=-1)
        q, k, v = (z.view(b, s, heads, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, torch.finfo(att.dtype).min).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        x = x + linear(y, p + "attn.c_proj")
        h = torch.nn.functional.layer_norm(x, (d,), t(p + "ln_2.weight"), t(p + "ln_2.bias"), eps)
        h = torch.nn.functional.gelu(linear(h, p + "mlp.c_fc"), approximate="tanh")
        x = x + linear(h, p + "mlp.c_proj")
    x = torch.nn.functional.layer_norm(x, (d,), t("transformer.ln_f.weight"), t("transformer.ln_f.bias"), eps)
    return linear(x, "transformer.wte").numpy()


def random_weights(manifest, seed):
    rng = np.random.default_rng(seed)
    weights = {}
    for p in manifest["parameters"]:
        # A CPU inference artifact stores linear weights as column panels
        # ("packed"); checkpoints give them in the model's shape.
        shape = tuple(p.get("packed", {}).get("shape", p["shape"]))
        if p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            weights[p["name"]] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[p["name"]] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
    return weights


class GPT2Tiny(unittest.TestCase):
    EXTRA = []

    def test_logits_match_torch_reference(self):
        config_path = os.path.join(MODELS, "gpt2-tiny.json")
        with open(config_path) as f:
            cfg = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            # First compile with init rules to learn the parameter table,
            # then with random weights written by name.
            first = compile_artifact(config_path, os.path.join(tmp, "init.kiln"), extra=self.EXTRA)
            weights = random_weights(first, seed=1)
            save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
            artifact = os.path.join(tmp, "gpt2.kiln")
            compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"),
                             extra=self.EXTRA)
            for batch, seq in ((1, 1), (2, 17), (3, 33)):
                ids = np.random.default_rng(batch * 100 + seq).integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
                logits = run_artifact(artifact, {"input_ids": ids}, tmp)["logits"]
                expected = gpt2_reference(weights, ids, cfg)
                self.assertEqual(logits.shape, expected.shape)
                report(f"gpt2-tiny logits [{batch}x{seq}]", logits, expected)
                np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)
            # Static shapes with fewer rows than a register tile (one token
            # per sequence): the matmuls take the widened, unpacked panels.
            for batch, seq in ((1, 1), (2, 1), (1, 3)):
                static = os.path.join(tmp, f"gpt2-{batch}x{seq}.kiln")
                compile_artifact(config_path, static, weights=os.path.join(tmp, "w.safetensors"),
                                 extra=self.EXTRA + ["--batch", str(batch), "--seq", str(seq)])
                ids = np.random.default_rng(batch * 10 + seq).integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
                logits = run_artifact(static, {"input_ids": ids}, tmp)["logits"]
                expected = gpt2_reference(weights, ids, cfg)
                report(f"gpt2-tiny static logits [{batch}x{seq}]", logits, expected)
                np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)


def load_config(name):
    path = os.path.join(MODELS, name)
    with open(path) as f:
        return path, json.load(f)


def parameter_names(manifest):
    return {p["name"] for p in manifest["parameters"]}


# --------------------------------------------------------------------------
# transformer-tiny against torch.nn.Transformer itself.


def sinusoidal_encoding(length, d):
    """pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(...) (the paper)."""
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def transformer_module(cfg, seed):
    """torch.nn.Transformer with the config's sizes and random weights: its
    own init, then norms perturbed around 1 and every bias made nonzero
    (nn.Transformer zeroes the attention biases) so that no term is trivial."""
    torch.manual_seed(seed)
    model = torch.nn.Transformer(
        d_model=cfg["d_model"], nhead=cfg["nhead"],
        num_encoder_layers=cfg["num_encoder_layers"], num_decoder_layers=cfg["num_decoder_layers"],
        dim_feedforward=cfg["dim_feedforward"], dropout=0.0,
        activation=cfg.get("activation", "relu"), layer_norm_eps=cfg.get("layer_norm_eps", 1e-5),
        batch_first=True, norm_first=cfg.get("norm_first", False))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    return model.eval()


def transformer_weights(model, cfg, seed):
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(seed)
    d = cfg["d_model"]
    normal = lambda *shape: (0.1 * rng.standard_normal(shape)).astype(np.float32)
    weights["src_embed.weight"] = normal(cfg["src_vocab_size"], d)
    weights["tgt_embed.weight"] = normal(cfg["tgt_vocab_size"], d)
    weights["generator.weight"] = normal(cfg["tgt_vocab_size"], d)
    weights["generator.bias"] = normal(cfg["tgt_vocab_size"])
    return weights


def transformer_reference(model, w, src_ids, tgt_ids, cfg):
    """The translation model around nn.Transformer: scaled embeddings plus
    sinusoidal encoding, causal target self-attention (no padding masks),
    then the generator."""
    d = cfg["d_model"]
    t = lambda name: oracle(w[name])

    def embed(table, ids):
        s = ids.shape[1]
        return t(table)[torch.from_numpy(ids)] * math.sqrt(d) + sinusoidal_encoding(s, d)

    model = copy.deepcopy(model).double()
    tgt_mask = model.generate_square_subsequent_mask(tgt_ids.shape[1]).double()
    with torch.no_grad():
        out = model(embed("src_embed.weight", src_ids), embed("tgt_embed.weight", tgt_ids), tgt_mask=tgt_mask)
        return torch.nn.functional.linear(out, t("generator.weight"), t("generator.bias")).numpy()


class TransformerTiny(unittest.TestCase):
    def test_logits_match_torch_nn_transformer(self):
        config_path, cfg = load_config("transformer-tiny.json")
        model = transformer_module(cfg, seed=2)
        weights = transformer_weights(model, cfg, seed=2)
        with tempfile.TemporaryDirectory() as tmp:
            save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
            artifact = os.path.join(tmp, "transformer.kiln")
            manifest = compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"))
            # The builder's names are exactly the torch state-dict names plus
            # the embeddings and the generator.
            self.assertEqual(parameter_names(manifest), set(weights))
            # Dynamic dims: the source and target lengths are independent.
            for batch, src_len, tgt_len in ((1, 1, 1), (2, 7, 7), (2, 9, 4), (3, 3, 11)):
                rng = np.random.default_rng(batch * 1000 + src_len * 10 + tgt_len)
                src = rng.integers(0, cfg["src_vocab_size"], (batch, src_len)).astype(np.int64)
                tgt = rng.integers(0, cfg["tgt_vocab_size"], (batch, tgt_len)).astype(np.int64)
                logits = run_artifact(artifact, {"src_ids": src, "tgt_ids": tgt}, tmp)["logits"]
                expected = transformer_reference(model, weights, src, tgt, cfg)
                self.assertEqual(logits.shape, expected.shape)
                report(f"transformer-tiny logits [{batch}x{src_len} -> {batch}x{tgt_len}]", logits, expected)
                np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)


class TransformerBase(unittest.TestCase):
    """The original encoder-decoder at its defaults (d_model 512, 8 heads,
    6+6 layers, ff 2048, 32000-token vocabularies) against
    torch.nn.Transformer itself: one compile (about half a minute) and one
    small batch."""

    def test_logits_match_torch_nn_transformer(self):
        config_path, cfg = load_config("transformer-base.json")
        model = transformer_module(cfg, seed=3)
        weights = transformer_weights(model, cfg, seed=3)
        with tempfile.TemporaryDirectory() as tmp:
            save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
            artifact = os.path.join(tmp, "transformer-base.kiln")
            manifest = compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"))
            self.assertEqual(parameter_names(manifest), set(weights))
            torch_part = sum(p.numel() for p in model.parameters())
            self.assertEqual(torch_part, 44140544)
            rng = np.random.default_rng(7)
            src = rng.integers(0, cfg["src_vocab_size"], (2, 9)).astype(np.int64)
            tgt = rng.integers(0, cfg["tgt_vocab_size"], (2, 5)).astype(np.int64)
            logits = run_artifact(artifact, {"src_ids": src, "tgt_ids": tgt}, tmp)["logits"]
            expected = transformer_reference(model, weights, src, tgt, cfg)
            self.assertEqual(logits.shape, expected.shape)
            report("transformer-base logits [2x9 -> 2x5]", logits, expected)
            np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# bert-tiny against HF BertModel (written with torch ops).


def bert_reference(w, ids, token_types, attention_mask, cfg, linear=None):
    """BertModel forward with the pooler (HF layouts, eval mode). `linear(x,
    prefix)` replaces the encoder's dense layers (a quantized reference)."""
    d, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // heads
    eps = cfg["layer_norm_eps"]
    t = lambda name: oracle(w[name])
    linear = linear or (lambda x, p: torch.nn.functional.linear(x, t(p + ".weight"), t(p + ".bias")))
    norm = lambda x, p: torch.nn.functional.layer_norm(x, (d,), t(p + ".weight"), t(p + ".bias"), eps)
    b, s = ids.shape
    x = (t("embeddings.word_embeddings.weight")[torch.from_numpy(ids)]
         + t("embeddings.token_type_embeddings.weight")[torch.from_numpy(token_types)]
         + t("embeddings.position_embeddings.weight")[:s])
    x = norm(x, "embeddings.LayerNorm")
    # get_extended_attention_mask: [B, 1, 1, S], (1 - mask) * finfo.min.
    mask = (1.0 - oracle(attention_mask.astype(np.float32))[:, None, None, :]) * torch.finfo(torch.float32).min
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        split = lambda z: z.view(b, s, heads, hd).transpose(1, 2)
        q = split(linear(x, p + "attention.self.query"))
        k = split(linear(x, p + "attention.self.key"))
        v = split(linear(x, p + "attention.self.value"))
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        x = norm(linear(y, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = torch.nn.functional.gelu(linear(x, p + "intermediate.dense"))  # erf GELU
        x = norm(linear(h, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = torch.tanh(linear(x[:, 0], "pooler.dense"))
    return x.numpy(), pooled.numpy()


def random_weights_by_rule(manifest, seed, is_norm, std=0.05):
    """N(0, std²) for every parameter, 1 + 0.1·N(0, 1) for norm gains."""
    rng = np.random.default_rng(seed)
    weights = {}
    for p in manifest["parameters"]:
        # A CPU inference artifact stores linear weights as column panels
        # ("packed"); checkpoints give them in the model's shape.
        shape = tuple(p.get("packed", {}).get("shape", p["shape"]))
        if is_norm(p["name"]):
            weights[p["name"]] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[p["name"]] = (std * rng.standard_normal(shape)).astype(np.float32)
    return weights


class BertTiny(unittest.TestCase):
    def test_outputs_match_torch_reference_with_padding(self):
        config_path, cfg = load_config("bert-tiny.json")
        with tempfile.TemporaryDirectory() as tmp:
            first = compile_artifact(config_path, os.path.join(tmp, "init.kiln"))
            # std 0.1 makes erf and tanh GELU differ by ~8e-4 here (0.05: 1e-4).
            weights = random_weights_by_rule(first, seed=3, is_norm=lambda n: n.endswith("LayerNorm.weight"), std=0.1)
            save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
            artifact = os.path.join(tmp, "bert.kiln")
            compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"))
            # Lengths per row: full rows, and rows padded at the end.
            for lengths, seq in (((1,), 1), ((5, 3), 5), ((13, 1, 8), 13)):
                batch = len(lengths)
                rng = np.random.default_rng(batch * 100 + seq)
                ids = rng.integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
                token_types = rng.integers(0, cfg["type_vocab_size"], (batch, seq)).astype(np.int64)
                attention_mask = (np.arange(seq)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
                ids[attention_mask == 0] = 0  # [PAD]
                out = run_artifact(artifact, {"input_ids": ids, "token_type_ids": token_types,
                                              "attention_mask": attention_mask}, tmp)
                hidden, pooled = bert_reference(weights, ids, token_types, attention_mask, cfg)
                for name, expected in (("last_hidden_state", hidden), ("pooler_output", pooled)):
                    self.assertEqual(out[name].shape, expected.shape)
                    report(f"bert-tiny {name} [{batch}x{seq}, lengths {lengths}]", out[name], expected)
                    np.testing.assert_allclose(out[name], expected, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# llama-tiny against HF LlamaForCausalLM (written with torch ops).


def llama_reference(w, ids, cfg, linear=None):
    """LlamaForCausalLM forward: RMSNorm, rotate-half RoPE, grouped-query
    causal attention (repeat_kv), SwiGLU, final norm, lm_head. `linear(x,
    weight name)` replaces the projections (a quantized reference)."""
    d, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    hd = cfg.get("head_dim") or d // heads
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    t = lambda name: oracle(w[name])
    linear = linear or (lambda x, name: x @ t(name).T)

    def rms_norm(x, name):
        return t(name) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    b, s = ids.shape
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(s, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.tril(torch.ones(s, s, dtype=torch.bool))
    x = t("model.embed_tokens.weight")[torch.from_numpy(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, p + "input_layernorm.weight")
        q = linear(h, p + "self_attn.q_proj.weight").view(b, s, heads, hd).transpose(1, 2)
        k = linear(h, p + "self_attn.k_proj.weight").view(b, s, kv_heads, hd).transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj.weight").view(b, s, kv_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j reads kv head j // (heads / kv_heads).
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, torch.finfo(att.dtype).min).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, heads * hd)
        x = x + linear(y, p + "self_attn.o_proj.weight")
        h = rms_norm(x, p + "post_attention_layernorm.weight")
        gate = torch.nn.functional.silu(linear(h, p + "mlp.gate_proj.weight"))
        x = x + linear(gate * linear(h, p + "mlp.up_proj.weight"), p + "mlp.down_proj.weight")
    x = rms_norm(x, "model.norm.weight")
    head = "model.embed_tokens.weight" if cfg.get("tie_word_embeddings", False) else "lm_head.weight"
    return linear(x, head).numpy()


class GPT2TinyDecomposedAttention(GPT2Tiny):
    """The same check with attention decomposed (matmuls and a softmax)
    instead of the default fused lowering."""
    EXTRA = ["--attention", "decomposed"]


class LlamaTiny(unittest.TestCase):
    EXTRA = []

    def test_logits_match_torch_reference(self):
        config_path, cfg = load_config("llama-tiny.json")
        # The config is grouped-query (2 kv heads for 4 query heads), untied.
        self.assertLess(cfg["num_key_value_heads"], cfg["num_attention_heads"])
        with tempfile.TemporaryDirectory() as tmp:
            first = compile_artifact(config_path, os.path.join(tmp, "init.kiln"), extra=self.EXTRA)
            self.assertEqual("lm_head.weight" in parameter_names(first), not cfg.get("tie_word_embeddings", False))
            weights = random_weights_by_rule(first, seed=4, is_norm=lambda n: n.endswith("norm.weight"))
            save_safetensors(weights, os.path.join(tmp, "w.safetensors"))
            artifact = os.path.join(tmp, "llama.kiln")
            compile_artifact(config_path, artifact, weights=os.path.join(tmp, "w.safetensors"),
                             extra=self.EXTRA)
            for batch, seq in ((1, 1), (2, 9), (3, 24)):
                ids = np.random.default_rng(batch * 100 + seq).integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
                logits = run_artifact(artifact, {"input_ids": ids}, tmp)["logits"]
                expected = llama_reference(weights, ids, cfg)
                self.assertEqual(logits.shape, expected.shape)
                report(f"llama-tiny logits [{batch}x{seq}]", logits, expected)
                np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL)


class LlamaTinyDecomposedAttention(LlamaTiny):
    """Grouped-query attention through the decomposition (repeated kv
    heads) instead of the default fused lowering."""
    EXTRA = ["--attention", "decomposed"]


# --------------------------------------------------------------------------
# Linear weights stored as the CPU matmul's column panels (kiln-compile
# --pack-weights) against the same artifact with row-major weights (the
# default): the kernels read the same values in the same order, so the
# outputs are bit-identical.


def cpu_has_bf16_pairs():
    """Whether kiln-compile picks a bf16 kernel that reads weights in pairs
    for this CPU: AMX tiles (AMX-BF16), or vdpbf16ps register tiles (an AMD
    core with AVX512-BF16; Intel ones without AMX widen bf16 for the f32
    tiles, which read no pairs)."""
    with open("/proc/cpuinfo") as f:
        info = f.read()
    return " amx_bf16" in info or (" avx512_bf16" in info and "AuthenticAMD" in info)


class PackedWeights(unittest.TestCase):
    def check(self, config, seed, is_norm, extra=(), expect_packed=True,
              rows=((1, 1), (2, 9), (3, 24))):
        config_path, cfg = load_config(config)
        with tempfile.TemporaryDirectory() as tmp:
            first = compile_artifact(config_path, os.path.join(tmp, "init.kiln"),
                                     extra=list(extra) + ["--pack-weights"])
            weights = random_weights_by_rule(first, seed=seed, is_norm=is_norm)
            wpath = os.path.join(tmp, "w.safetensors")
            save_safetensors(weights, wpath)
            packed = os.path.join(tmp, "packed.kiln")
            plain = os.path.join(tmp, "plain.kiln")
            at_load = os.path.join(tmp, "load.kiln")
            manifest = compile_artifact(config_path, packed, weights=wpath,
                                        extra=list(extra) + ["--pack-weights"])
            # none keeps them row-major.
            plain_manifest = compile_artifact(config_path, plain, weights=wpath,
                                              extra=list(extra) + ["--pack-weights=none"])
            self.assertEqual(plain_manifest["target_options"]["packed_weights"], "none")
            self.assertFalse(any("packed" in p for p in plain_manifest["parameters"]))
            # The default packs the same weights when the artifact is
            # loaded: the same parameters and layouts, its weights file the
            # row-major one's (a checkpoint).
            load_manifest = compile_artifact(config_path, at_load, weights=wpath, extra=extra)
            self.assertEqual(load_manifest["target_options"]["packed_weights"],
                             manifest["target_options"]["packed_weights"])
            for p, q in zip(load_manifest["parameters"], manifest["parameters"]):
                self.assertEqual(p["shape"], q["shape"], p["name"])
                if "packed" in q:
                    self.assertEqual(p["packed"], dict(q["packed"], at_load=True), p["name"])
                else:
                    self.assertNotIn("packed", p)
            with open(os.path.join(plain, "weights.safetensors"), "rb") as x, \
                    open(os.path.join(at_load, "weights.safetensors"), "rb") as y:
                self.assertEqual(x.read(), y.read())
            # Every packed parameter is a 2-D weight of the checkpoint, stored
            # as [ceil(out / w), in, w] (f32) or [ceil(out / w), in / 2, w, 2]
            # (bf16 pairs for AMX).
            packed_params = [p for p in manifest["parameters"] if "packed" in p]
            self.assertEqual(bool(packed_params), expect_packed)
            if not expect_packed:
                self.assertEqual(manifest["target_options"]["packed_weights"], "none")
                return manifest
            for p in packed_params:
                layout = p["packed"]
                rows_in, out = layout["shape"] if layout["in_out"] else layout["shape"][::-1]
                panels = -(-out // layout["width"])
                expected = ([panels, rows_in, layout["width"]] if layout["pairs"] == 1 else
                            [panels, rows_in // 2, layout["width"], 2])
                self.assertEqual(p["shape"], expected, p["name"])
                self.assertEqual(list(weights[p["name"]].shape), layout["shape"], p["name"])
            kinds = manifest["target_options"]["packed_weights"].split(",")
            self.assertTrue(all(k.startswith(("f32:", "bf16:")) for k in kinds), kinds)
            for batch, seq in rows:
                ids = np.random.default_rng(batch * 100 + seq).integers(
                    0, cfg["vocab_size"], (batch, seq)).astype(np.int64)
                a = run_artifact(packed, {"input_ids": ids}, tmp)["logits"]
                b = run_artifact(plain, {"input_ids": ids}, tmp)["logits"]
                c = run_artifact(at_load, {"input_ids": ids}, tmp)["logits"]
                report(f"{config} packed vs row-major [{batch}x{seq}]", a, b)
                np.testing.assert_array_equal(a, b)
                np.testing.assert_array_equal(c, b)
            # The packed artifact's own weights file compiles the same
            # artifact again (its panels taken as they are) ...
            again = os.path.join(tmp, "again.kiln")
            compile_artifact(config_path, again, weights=os.path.join(packed, "weights.safetensors"),
                             extra=list(extra) + ["--pack-weights"])
            with open(os.path.join(packed, "weights.safetensors"), "rb") as x, \
                    open(os.path.join(again, "weights.safetensors"), "rb") as y:
                self.assertEqual(x.read(), y.read())
            # ... but is no checkpoint (for row-major weights, or packed
            # when loaded): one clear error.
            with self.assertRaises(RuntimeError) as raised:
                compile_artifact(config_path, os.path.join(tmp, "bad.kiln"),
                                 weights=os.path.join(packed, "weights.safetensors"),
                                 extra=extra)
            self.assertIn("stores linear weights as the matmul's column panels", str(raised.exception))
            return manifest

    def test_gpt2_in_out_weights(self):
        # GPT-2's Conv1D weights ([in, out]), and the token embedding the
        # tied LM head reads [out, in] (the embedding gathers its rows from
        # the panels: the logits of the first token's position too).
        manifest = self.check("gpt2-tiny.json", 11, lambda n: n.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")))
        wte = next(p for p in manifest["parameters"] if p["name"] == "transformer.wte.weight")
        self.assertFalse(wte["packed"]["in_out"])
        self.assertEqual(wte["packed"]["shape"], [1000, 64])
        # A one-token artifact keeps the head row-major: its step takes dot
        # products over the table's rows.
        config_path, _ = load_config("gpt2-tiny.json")
        with tempfile.TemporaryDirectory() as tmp:
            one = compile_artifact(config_path, os.path.join(tmp, "one.kiln"),
                                   extra=["--batch", "1", "--seq", "1"])
            wte = next(p for p in one["parameters"] if p["name"] == "transformer.wte.weight")
            self.assertNotIn("packed", wte)
            self.assertTrue(any("packed" in p for p in one["parameters"]))

    def test_llama_out_in_weights(self):
        # nn.Linear weights ([out, in]): f32 ones as panels of their
        # transpose (the untied LM head over 1000 columns with a partial
        # last panel); bf16 ones for the AMX or vdpbf16ps kernel
        # are stored in pairs, the
        # down projection (in = 172, not a multiple of 32) as it is.
        manifest = self.check("llama-tiny.json", 12, lambda n: n.endswith("norm.weight"))
        packed = {p["name"]: p for p in manifest["parameters"] if "packed" in p}
        self.assertTrue(all(not p["packed"]["in_out"] for p in packed.values()))
        self.assertIn("lm_head.weight", packed)
        self.assertTrue(any("down_proj" in name for name in packed))
        manifest = self.check("llama-tiny.json", 12, lambda n: n.endswith("norm.weight"),
                              extra=["--dtype", "bf16"], expect_packed=cpu_has_bf16_pairs())
        packed = {p["name"]: p for p in manifest["parameters"] if "packed" in p}
        if packed:
            self.assertFalse(packed["lm_head.weight"]["packed"]["in_out"])
            self.assertEqual(packed["lm_head.weight"]["shape"], [8, 32, 128, 2])
            self.assertFalse(any("down_proj" in name for name in packed))

    def test_kv_cache_entries(self):
        # prefill and decode_step (a KV cache updated in place is no
        # parameter write): packed too, the same logits and caches.
        config_path, cfg = load_config("gpt2-tiny.json")
        slots = 16
        with tempfile.TemporaryDirectory() as tmp:
            arts = {}
            # (With --kv-cache the default keeps the weights row-major:
            # faster for one-row decoding steps.)
            for name, extra in (("packed", ["--pack-weights"]), ("plain", []),
                                ("load", ["--pack-weights=load"])):
                art = os.path.join(tmp, name + ".kiln")
                arts[name] = (art, compile_artifact(config_path, art,
                                                    extra=["--kv-cache", str(slots)] + extra))
            manifest = arts["packed"][1]
            self.assertTrue(any("packed" in p for p in manifest["parameters"]))
            self.assertFalse(any("packed" in p for p in arts["plain"][1]["parameters"]))
            self.assertTrue(all(p["packed"]["at_load"] for p in arts["load"][1]["parameters"]
                                if "packed" in p))
            self.assertNotEqual(manifest["target_options"]["packed_weights"], "none")
            rng = np.random.default_rng(7)
            ids = rng.integers(0, cfg["vocab_size"], (2, 5)).astype(np.int64)
            outputs = {}
            for name, (art, m) in arts.items():
                prefill = next(e for e in m["entry_points"] if e["name"] == "prefill")
                caches = [i for i in prefill["inputs"] if i.get("in_place")]
                inputs = {"input_ids": ids, "lengths": np.array([5, 3], np.int64)}
                for c in caches:
                    inputs[c["name"]] = np.zeros([2] + c["shape"][1:], np.float32)
                work = os.path.join(tmp, name)
                os.makedirs(work)
                first = run_artifact(art, inputs, work, entry="prefill")["logits"]
                # One decode step from the caches prefill wrote (kiln run
                # writes in-place inputs back to the output directory).
                step = {"input_ids": ids[:, :1], "positions": np.array([5, 3], np.int64)}
                for c in caches:
                    step[c["name"]] = np.load(os.path.join(work, "out", c["name"] + ".npy"))
                second = run_artifact(art, step, work, entry="decode_step")["logits"]
                outputs[name] = (first, second)
            for a, b, c in zip(outputs["packed"], outputs["plain"], outputs["load"]):
                report("gpt2-tiny kv-cache packed vs row-major", a, b)
                np.testing.assert_array_equal(a, b)
                np.testing.assert_array_equal(c, b)

    def test_bf16(self):
        # --dtype bf16: where the bf16 kernel is AMX's or vdpbf16ps's, the
        # weights are stored in its pairs; where bf16 is widened for the f32
        # tiles, they stay bf16 row-major.
        manifest = self.check("gpt2-tiny.json", 13, lambda n: n.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")),
                              extra=["--dtype", "bf16"], expect_packed=cpu_has_bf16_pairs())
        pairs = [p for p in manifest["parameters"] if p.get("packed", {}).get("pairs") == 2]
        self.assertEqual(bool(pairs), manifest["target_options"]["bf16_dot"] in ("amx", "avx512"))
        self.assertEqual(bool(pairs), cpu_has_bf16_pairs())


# --------------------------------------------------------------------------
# `kiln run` rejects inputs that do not match the entry point.


class RunRejectsBadInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.artifact = os.path.join(cls.tmp.name, "gpt2.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), cls.artifact)
        cls.static = os.path.join(cls.tmp.name, "gpt2-static.kiln")
        compile_artifact(os.path.join(MODELS, "gpt2-tiny.json"), cls.static, extra=["--batch", "1", "--seq", "4"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_fails(self, artifact, array, *needles):
        with self.assertRaises(RuntimeError) as caught:
            run_artifact(artifact, {"input_ids": array}, self.tmp.name)
        message = str(caught.exception)
        self.assertIn("kiln: error:", message)
        self.assertIn("input 'input_ids'", message)
        for needle in needles:
            self.assertIn(needle, message)
        # One line, no crash dump.
        self.assertEqual(len(message.strip().splitlines()), 2, message)

    def test_wrong_dtype(self):
        self.run_fails(self.artifact, np.zeros((1, 4), np.float32), "is F32, expected I64")
        self.run_fails(self.artifact, np.zeros((1, 4), np.int32), "is I32, expected I64")

    def test_wrong_rank(self):
        self.run_fails(self.artifact, np.zeros((4,), np.int64), "has rank 1", "expected rank 2")
        self.run_fails(self.artifact, np.zeros((1, 4, 1), np.int64), "has rank 3", "expected rank 2")

    def test_wrong_static_size(self):
        self.run_fails(self.static, np.zeros((1, 5), np.int64), "[1, 5]", "[1, 4]")

    def test_good_input_still_runs(self):
        out = run_artifact(self.static, {"input_ids": np.zeros((1, 4), np.int64)}, self.tmp.name)
        self.assertEqual(out["logits"].shape, (1, 4, 1000))


if __name__ == "__main__":
    unittest.main()
