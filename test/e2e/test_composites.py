"""End-to-end numerics of every kiln composite op against PyTorch.

Each composite is decomposed and lowered by `kiln-opt --kiln-cpu-pipeline`,
run with mlir-runner (see kiln_exec.py) and compared with the PyTorch 1.13
function (torch.nn.functional / torch.nn modules) or, where torch 1.13 has
none (scaled_dot_product_attention, rotary embeddings, RMSNorm), a reference
written with torch ops following the Hugging Face implementations.

Tolerances (fp32). kiln_exec returns f32 results bit-exact (it prints their
bit patterns instead of the runner's ~6-digit decimals), so the tolerances
only cover real arithmetic differences:
  * RTOL = 1e-5, ATOL = 1e-5 by default (kiln and torch sum in different
    orders and use different exp/erf/tanh implementations);
  * rope: ROPE_ATOL = 1e-5 (same as the default today; kept separate since
    angles p * theta^(-2i/D) for positions up to ~100 are formed in f32 by
    different formulas, so sin/cos arguments may differ by ulps of ~100);
  * losses and attention use the default; dropout survivors must equal
    x * (1 / (1 - p)) to within 1 ulp (DROPOUT_RTOL = 2.4e-7).

Run with Debian's python (it has torch):
  KILN_OPT=build/bin/kiln-opt /usr/bin/python3 -m unittest discover \
      -s test/e2e -p 'test_*.py'
"""

import math
import unittest
import warnings

import numpy as np

from e2e_util import KilnTestCase, f32, func, i64, run, ty

try:
    import torch
    import torch.nn.functional as F
    from oracle import oracle
except ImportError:  # KilnTestCase skips every test
    torch = F = oracle = None

RTOL, ATOL = 1e-5, 1e-5
ROPE_ATOL = 1e-5
DROPOUT_RTOL = 2.4e-7   # 2**-22: one ulp


def T(a):
    """The reference's view of an input: float64 for floats (oracle.py)."""
    return oracle(a)


def conc(shape, sizes):
    """Concrete shape: the k-th None of `shape` takes sizes[k]."""
    it = iter(sizes)
    return tuple(next(it) if d is None else d for d in shape)


class Softmax(KilnTestCase):
    def check(self, x, sig):
        shape = x.shape
        body, res = [], []
        for op in ["softmax", "log_softmax"]:
            for ax in [-1, 1]:
                name = f"{op}{'m' if ax < 0 else ax}"
                body.append(f"%{name} = kiln.{op} %x axis = {ax} : ({ty(sig)}) -> {ty(sig)}")
                res.append((name, ty(sig)))
        src = func("f", [("x", ty(sig))], body, res)
        outs = run(src, "f", [x], [(shape, np.float32)] * 4)
        refs = [F.softmax(T(x), -1), F.softmax(T(x), 1), F.log_softmax(T(x), -1), F.log_softmax(T(x), 1)]
        for (name, _), o, r in zip(res, outs, refs):
            self.close(o, r, RTOL, ATOL, msg=name)

    def test_static_odd(self):
        self.check(self.randn(2, 3, 17), (2, 3, 17))

    def test_large_logits_stable(self):
        # exp(1000) overflows: only the max-subtracted form survives.
        self.check(f32(self.randn(2, 3, 17, scale=30.0) + 1000.0), (2, 3, 17))

    def test_dynamic(self):
        self.check(self.randn(2, 5, 3), (None, None, 3))

    def test_size_one_axis(self):
        self.check(self.randn(3, 1, 1), (3, 1, 1))


class Norms(KilnTestCase):
    def test_layer_norm_variants(self):
        D = 17
        x = self.randn(2, 3, D)
        w, b = self.randn(D), self.randn(D)
        sx, sw = ty((2, 3, D)), ty((D,))
        src = func("f", [("x", sx), ("w", sw), ("b", sw)],
                   [f"%0 = kiln.layer_norm %x weight %w bias %b eps = 1.000000e-05 : ({sx}, {sw}, {sw}) -> {sx}",
                    f"%1 = kiln.layer_norm %x eps = 1.000000e-05 : ({sx}) -> {sx}",
                    f"%2 = kiln.layer_norm %x weight %w eps = 1.000000e-03 : ({sx}, {sw}) -> {sx}",
                    f"%3 = kiln.layer_norm %x bias %b eps = 1.000000e-01 : ({sx}, {sw}) -> {sx}"],
                   [("0", sx), ("1", sx), ("2", sx), ("3", sx)])
        outs = run(src, "f", [x, w, b], [((2, 3, D), np.float32)] * 4)
        refs = [F.layer_norm(T(x), (D,), T(w), T(b), 1e-5),
                F.layer_norm(T(x), (D,), None, None, 1e-5),
                F.layer_norm(T(x), (D,), T(w), None, 1e-3),
                F.layer_norm(T(x), (D,), None, T(b), 1e-1)]
        for n, (o, r) in enumerate(zip(outs, refs)):
            self.close(o, r, RTOL, ATOL, msg=f"variant {n}")

    def test_layer_norm_dynamic_offset(self):
        # A large common offset: var must be computed as mean((x-mean)^2),
        # not mean(x^2) - mean^2.
        D = 129
        x = f32(self.randn(3, 2, D) + 100.0)
        w, b = self.randn(D), self.randn(D)
        sx, sw = ty((None, None, D)), ty((D,))
        src = func("f", [("x", sx), ("w", sw), ("b", sw)],
                   [f"%0 = kiln.layer_norm %x weight %w bias %b eps = 1.000000e-05 : ({sx}, {sw}, {sw}) -> {sx}"],
                   [("0", sx)])
        (o,) = run(src, "f", [x, w, b], [((3, 2, D), np.float32)])
        # Reference in float64: torch's own f32 layer_norm loses ~1e-5 here.
        ref = F.layer_norm(T(x).double(), (D,), T(w).double(), T(b).double(), 1e-5).float()
        self.close(o, ref, 1e-4, 1e-4)

    def test_all_dynamic(self):
        # The normalized size itself is dynamic: mean divides by it at run time.
        x, w, b = self.randn(3, 13), self.randn(13), self.randn(13)
        sx, sw = ty((None, None)), ty((None,))
        src = func("f", [("x", sx), ("w", sw), ("b", sw)],
                   [f"%0 = kiln.layer_norm %x weight %w bias %b eps = 1.000000e-05 : ({sx}, {sw}, {sw}) -> {sx}",
                    f"%1 = kiln.rms_norm %x, %w eps = 1.000000e-06 : ({sx}, {sw}) -> {sx}",
                    f"%2 = kiln.softmax %x axis = 1 : ({sx}) -> {sx}"],
                   [("0", sx), ("1", sx), ("2", sx)])
        o0, o1, o2 = run(src, "f", [x, w, b], [((3, 13), np.float32)] * 3)
        tx = T(x)
        self.close(o0, F.layer_norm(tx, (13,), T(w), T(b), 1e-5), RTOL, ATOL, msg="layer_norm")
        self.close(o1, tx * torch.rsqrt(tx.pow(2).mean(-1, keepdim=True) + 1e-6) * T(w), RTOL, ATOL,
                   msg="rms_norm")
        self.close(o2, F.softmax(tx, 1), RTOL, ATOL, msg="softmax")

    def test_rms_norm(self):
        for shape, sig, eps in [((2, 3, 17), (2, 3, 17), 1e-6), ((4, 1), (None, 1), 1e-5),
                                ((3, 2, 8), (None, None, 8), 1e-2)]:
            x, w = self.randn(*shape), self.randn(shape[-1])
            sx, sw = ty(sig), ty((shape[-1],))
            src = func("f", [("x", sx), ("w", sw)],
                       [f"%0 = kiln.rms_norm %x, %w eps = {eps:e} : ({sx}, {sw}) -> {sx}"],
                       [("0", sx)])
            (o,) = run(src, "f", [x, w], [(shape, np.float32)])
            # Hugging Face LlamaRMSNorm.
            tx = T(x)
            ref = tx * torch.rsqrt(tx.pow(2).mean(-1, keepdim=True) + eps) * T(w)
            self.close(o, ref, RTOL, ATOL, msg=str(shape))


class Activations(KilnTestCase):
    def check(self, shape, sig):
        x = f32(self.rng.uniform(-8, 8, size=shape))
        x.reshape(-1)[:6] = [0.0, -20.0, 20.0, 1e-3, -3.0, 3.0][:x.size]
        t = ty(sig)
        src = func("f", [("x", t)],
                   [f"%e = kiln.gelu %x approximate = erf : {t}",
                    f"%t = kiln.gelu %x approximate = tanh : {t}",
                    f"%s = kiln.silu %x : {t}"],
                   [("e", t), ("t", t), ("s", t)])
        e, th, s = run(src, "f", [x], [(shape, np.float32)] * 3)
        self.close(e, F.gelu(T(x)), RTOL, ATOL, msg="gelu erf")
        self.close(th, F.gelu(T(x), approximate="tanh"), RTOL, ATOL, msg="gelu tanh")
        self.close(s, F.silu(T(x)), RTOL, ATOL, msg="silu")
        # The two GELU forms really differ (the test can tell them apart).
        self.assertGreater(float(np.abs(e - th).max()), 1e-4)

    def test_129(self):
        self.check((129,), (129,))

    def test_dynamic(self):
        self.check((3, 17), (None, 17))


class Linear(KilnTestCase):
    def test_layouts_and_bias(self):
        x = self.randn(2, 3, 17)
        w_oi, w_io, b = self.randn(5, 17), self.randn(17, 5), self.randn(5)
        sx, so = ty((2, 3, 17)), ty((2, 3, 5))
        src = func("f", [("x", sx), ("woi", ty((5, 17))), ("wio", ty((17, 5))), ("b", ty((5,)))],
                   [f"%0 = kiln.linear %x, %woi bias %b : ({sx}, {ty((5, 17))}, {ty((5,))}) -> {so}",
                    f"%1 = kiln.linear %x, %woi : ({sx}, {ty((5, 17))}) -> {so}",
                    f"%2 = kiln.linear %x, %wio bias %b weight_in_out : ({sx}, {ty((17, 5))}, {ty((5,))}) -> {so}",
                    f"%3 = kiln.linear %x, %wio weight_in_out : ({sx}, {ty((17, 5))}) -> {so}"],
                   [("0", so), ("1", so), ("2", so), ("3", so)])
        outs = run(src, "f", [x, w_oi, w_io, b], [((2, 3, 5), np.float32)] * 4)
        refs = [F.linear(T(x), T(w_oi), T(b)), F.linear(T(x), T(w_oi)),
                F.linear(T(x), T(w_io).t(), T(b)), F.linear(T(x), T(w_io).t())]
        for n, (o, r) in enumerate(zip(outs, refs)):
            self.close(o, r, RTOL, ATOL, msg=f"variant {n}")

    def test_rank1_input(self):
        x, w, b = self.randn(17), self.randn(5, 17), self.randn(5)
        src = func("f", [("x", ty((17,))), ("w", ty((5, 17))), ("b", ty((5,)))],
                   [f"%0 = kiln.linear %x, %w bias %b : ({ty((17,))}, {ty((5, 17))}, {ty((5,))}) -> {ty((5,))}"],
                   [("0", ty((5,)))])
        (o,) = run(src, "f", [x, w, b], [((5,), np.float32)])
        self.close(o, F.linear(T(x), T(w), T(b)), RTOL, ATOL)

    def test_dynamic_2d(self):
        x, w, b = self.randn(4, 129), self.randn(3, 129), self.randn(3)
        sx, so = ty((None, 129)), ty((None, 3))
        src = func("f", [("x", sx), ("w", ty((3, 129))), ("b", ty((3,)))],
                   [f"%0 = kiln.linear %x, %w bias %b : ({sx}, {ty((3, 129))}, {ty((3,))}) -> {so}"],
                   [("0", so)])
        (o,) = run(src, "f", [x, w, b], [((4, 3), np.float32)])
        self.close(o, F.linear(T(x), T(w), T(b)), RTOL, ATOL)


class Embedding(KilnTestCase):
    def test_embedding(self):
        table = self.randn(11, 7)
        ids = i64(self.rng.integers(0, 11, (2, 3)))
        ids32 = self.rng.integers(0, 11, (5,)).astype(np.int32)
        idd = i64([[10, 0], [3, 3], [1, 9]])
        st = ty((11, 7))
        src = func("f", [("t", st), ("a", ty((2, 3), "i64")), ("b", ty((5,), "i32")),
                         ("c", ty((None, None), "i64"))],
                   [f"%0 = kiln.embedding %t, %a : ({st}, {ty((2, 3), 'i64')}) -> {ty((2, 3, 7))}",
                    f"%1 = kiln.embedding %t, %b : ({st}, {ty((5,), 'i32')}) -> {ty((5, 7))}",
                    f"%2 = kiln.embedding %t, %c : ({st}, {ty((None, None), 'i64')}) -> {ty((None, None, 7))}"],
                   [("0", ty((2, 3, 7))), ("1", ty((5, 7))), ("2", ty((None, None, 7)))])
        o0, o1, o2 = run(src, "f", [table, ids, ids32, idd],
                         [((2, 3, 7), np.float32), ((5, 7), np.float32), ((3, 2, 7), np.float32)])
        self.equal(o0, F.embedding(T(ids), T(table)))
        self.equal(o1, F.embedding(T(ids32).long(), T(table)))
        self.equal(o2, F.embedding(T(idd), T(table)))


def attention_ref(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q k^T * scale + mask) v with grouped-query heads (manual:
    torch 1.13 has no F.scaled_dot_product_attention). Arrays or tensors
    (which autograd follows)."""
    q, k, v = (x if torch.is_tensor(x) else T(x) for x in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        s = s + T(mask)
    if causal:
        sq, sk = s.shape[-2], s.shape[-1]
        keep = torch.ones(sq, sk, dtype=torch.bool).tril(diagonal=sk - sq)
        # The lowest float, as kiln (and Hugging Face) mask: a row that sees
        # no key averages them all instead of becoming NaN.
        s = s.masked_fill(~keep, torch.finfo(torch.float32).min)
    return torch.softmax(s, -1) @ v


class Attention(KilnTestCase):
    PIPELINE = "--kiln-cpu-pipeline"

    def operands(self, named, mask_shape, mask, causal, scale):
        """(arguments, operand types, attribute text, mask) of an attention
        op over the `named` [(ssa name, signature shape)] operands, then
        the optional mask (random unless given) and the attributes."""
        args = [(n, ty(sig)) for n, sig in named]
        types = ", ".join(t for _, t in args)
        attrs = ""
        if mask_shape is not None:
            if mask is None:
                mask = self.randn(*mask_shape)
            args.append(("m", ty(mask_shape)))
            types += f", {ty(mask_shape)}"
            attrs += " mask %m"
        if causal:
            attrs += " causal"
        if scale is not None:
            attrs += f" scale = {scale:e}"
        return args, types, attrs, mask

    def check(self, qs, ks, vs, sig_q=None, sig_k=None, sig_v=None, mask_shape=None, causal=False,
              scale=None, mask=None):
        q, k, v = self.randn(*qs), self.randn(*ks), self.randn(*vs)
        sig_q, sig_k, sig_v = sig_q or qs, sig_k or ks, sig_v or vs
        rs = qs[:3] + (vs[3],)
        sig_r = sig_q[:3] + (sig_v[3],)
        args, types, attrs, mask = self.operands(
            [("q", sig_q), ("k", sig_k), ("v", sig_v)], mask_shape, mask, causal, scale)
        inputs = [q, k, v] + ([mask] if mask is not None else [])
        src = func("f", args, [f"%0 = kiln.attention %q, %k, %v{attrs} : ({types}) -> {ty(sig_r)}"],
                   [("0", ty(sig_r))])
        (o,) = run(src, "f", inputs, [(rs, np.float32)], self.PIPELINE)
        self.close(o, attention_ref(q, k, v, mask, causal, scale), RTOL, ATOL)

    def test_plain(self):
        self.check((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8))

    def test_value_dim_differs(self):
        self.check((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 6))

    def test_causal_square(self):
        self.check((2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 8), causal=True)

    def test_causal_more_keys(self):
        # Keys > queries (a KV cache): the last query sees every key.
        self.check((1, 2, 3, 4), (1, 2, 7, 4), (1, 2, 7, 4), causal=True)

    def test_additive_mask(self):
        self.check((2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8), mask_shape=(2, 2, 4, 6))

    def test_padding_mask_broadcast(self):
        # A [B,1,1,Sk] mask as kiln.padding_mask makes (finfo.min = padding).
        m = np.zeros((2, 1, 1, 6), np.float32)
        m[0, ..., 4:] = np.finfo(np.float32).min
        m[1, ..., 1] = np.finfo(np.float32).min
        self.check((2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8), mask_shape=(2, 1, 1, 6), mask=m)

    def test_mask_and_causal(self):
        self.check((1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 5, 4), mask_shape=(1, 1, 5, 5), causal=True)

    def test_grouped_query(self):
        self.check((2, 4, 3, 8), (2, 2, 3, 8), (2, 2, 3, 8))

    def test_grouped_query_single_kv_causal(self):
        self.check((1, 6, 4, 4), (1, 1, 6, 4), (1, 1, 6, 4), causal=True)

    def test_custom_scale(self):
        self.check((1, 2, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8), scale=0.3)

    def test_dynamic(self):
        self.check((2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8),
                   sig_q=(None, 4, None, 8), sig_k=(None, 2, None, 8), sig_v=(None, 2, None, 8),
                   causal=True)


class FusedAttention(Attention):
    """The same cases through the fused (flash-attention style) lowering,
    kept whole by the pipeline and lowered by convert-kiln-attention; plus
    its gradient op, kiln.attention_grad, against torch.autograd, and bf16.
    Same tolerances: the fused loop sums in another order (online softmax)
    but in f32."""
    PIPELINE = "--kiln-cpu-pipeline=keep=kiln.attention"

    def test_causal_more_queries(self):
        # Queries > keys: the first rows see no key; the decomposition (and
        # so the fused lowering) averages every key for them.
        self.check((1, 2, 6, 4), (1, 2, 3, 4), (1, 2, 3, 4), causal=True)

    def test_key_blocks(self):
        # 37 keys: two blocks of 16 and a tail of 5 per row (causal rows
        # stop anywhere in between), with a mask read per key.
        self.check((1, 2, 37, 8), (1, 2, 37, 8), (1, 2, 37, 8), mask_shape=(1, 1, 37, 37),
                   causal=True)

    def test_key_blocks_grouped_padding(self):
        m = np.zeros((2, 1, 1, 40), np.float32)
        m[0, ..., 33:] = np.finfo(np.float32).min
        self.check((2, 4, 5, 16), (2, 2, 40, 16), (2, 2, 40, 24), mask_shape=(2, 1, 1, 40), mask=m)

    def check_grad(self, qs, ks, vs, mask_shape=None, causal=False, scale=None, mask=None,
                   sig=None):
        q, k, v = self.randn(*qs), self.randn(*ks), self.randn(*vs)
        rs = qs[:3] + (vs[3],)
        g = self.randn(*rs)
        sig = sig or (qs, ks, vs, rs)
        args, types, attrs, mask = self.operands(list(zip("qkvg", sig)), mask_shape, mask,
                                                 causal, scale)
        inputs = [q, k, v, g] + ([mask] if mask is not None else [])
        results = f"{ty(sig[0])}, {ty(sig[1])}, {ty(sig[2])}"
        src = func("f", args,
                   [f"%0:3 = kiln.attention_grad %q, %k, %v, %g{attrs} : ({types}) -> ({results})"],
                   [("0#0", ty(sig[0])), ("0#1", ty(sig[1])), ("0#2", ty(sig[2]))])
        dq, dk, dv = run(src, "f", inputs, [(qs, np.float32), (ks, np.float32), (vs, np.float32)],
                         self.PIPELINE)
        tq, tk, tv = (T(a).clone().requires_grad_() for a in (q, k, v))
        attention_ref(tq, tk, tv, mask, causal, scale).backward(T(g))
        for name, got, want in (("dq", dq, tq.grad), ("dk", dk, tk.grad), ("dv", dv, tv.grad)):
            self.close(got, want, 1e-4, 1e-5, msg=name)

    def test_grad_plain(self):
        self.check_grad((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 8))

    def test_grad_value_dim_differs(self):
        self.check_grad((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 6))

    def test_grad_causal(self):
        self.check_grad((2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 8), causal=True)

    def test_grad_causal_more_keys(self):
        self.check_grad((1, 2, 3, 4), (1, 2, 7, 4), (1, 2, 7, 4), causal=True)

    def test_grad_causal_more_queries(self):
        self.check_grad((1, 2, 6, 4), (1, 2, 3, 4), (1, 2, 3, 4), causal=True)

    def test_grad_mask_grouped_query(self):
        self.check_grad((2, 4, 3, 8), (2, 2, 6, 8), (2, 2, 6, 8), mask_shape=(2, 1, 1, 6))

    def test_grad_single_kv_head_scale(self):
        self.check_grad((1, 6, 4, 4), (1, 1, 6, 4), (1, 1, 6, 4), causal=True, scale=0.3)

    def test_grad_blocks(self):
        # 37 query rows and keys: blocks of 16 and tails in both the
        # query-row and the key-row loops, causal with a mask.
        self.check_grad((1, 2, 37, 8), (1, 2, 37, 8), (1, 2, 37, 8), mask_shape=(1, 1, 37, 37),
                        causal=True)

    def test_grad_blocks_grouped_more_queries(self):
        self.check_grad((2, 4, 40, 16), (2, 2, 21, 16), (2, 2, 21, 8), causal=True)

    def test_grad_dynamic(self):
        self.check_grad((2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8), causal=True,
                        sig=((None, 4, None, 8), (None, 2, None, 8), (None, 2, None, 8),
                             (None, 4, None, 8)))

    def test_bf16(self):
        # f32 inputs rounded to bf16 in the function; the reference sees the
        # same rounded inputs in f32. The fused loop computes in f32 and
        # rounds the result once: within 2 bf16 ulps (2**-7 relative).
        qs, ks = (2, 2, 5, 16), (2, 2, 9, 16)
        q, k, v = self.randn(*qs), self.randn(*ks), self.randn(*ks)
        bf = lambda a: T(a).to(torch.bfloat16).to(torch.float32).numpy()
        f, b = ty(qs), ty(qs, "bf16")
        fk, bk = ty(ks), ty(ks, "bf16")
        body = [f"%q16 = kiln.cast %q : {f} -> {b}",
                f"%k16 = kiln.cast %k : {fk} -> {bk}",
                f"%v16 = kiln.cast %v : {fk} -> {bk}",
                f"%a = kiln.attention %q16, %k16, %v16 causal : ({b}, {bk}, {bk}) -> {b}",
                f"%0 = kiln.cast %a : {b} -> {f}"]
        src = func("f", [("q", f), ("k", fk), ("v", fk)], body, [("0", f)])
        (o,) = run(src, "f", [q, k, v], [(qs, np.float32)], self.PIPELINE)
        self.close(o, attention_ref(bf(q), bf(k), bf(v), causal=True), 2 ** -7, 2 ** -7)


def rope_ref(x, positions=None, theta=10000.0, inv_freq=None):
    """Hugging Face LLaMA: rotary embedding with rotate_half."""
    x = T(x)
    B, H, S, D = x.shape
    if inv_freq is None:
        inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2).float() / D))
    else:
        inv_freq = torch.tensor(inv_freq, dtype=torch.float32)
    pos = torch.arange(S) if positions is None else T(positions)
    freqs = pos[..., None].float() * inv_freq          # [S, D/2] or [B, S, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    if cos.dim() == 2:
        cos, sin = cos[None, None], sin[None, None]
    else:
        cos, sin = cos[:, None], sin[:, None]

    def rotate_half(t):
        t1, t2 = t[..., : t.shape[-1] // 2], t[..., t.shape[-1] // 2:]
        return torch.cat((-t2, t1), dim=-1)

    return x * cos + rotate_half(x) * sin


class Rope(KilnTestCase):
    def test_default_positions(self):
        x = self.randn(2, 3, 6, 8)
        for sig in [(2, 3, 6, 8), (None, 3, None, 8)]:
            src = func("f", [("x", ty(sig))],
                       [f"%0 = kiln.rope %x theta = 1.000000e+04 : ({ty(sig)}) -> {ty(sig)}"],
                       [("0", ty(sig))])
            (o,) = run(src, "f", [x], [((2, 3, 6, 8), np.float32)])
            self.close(o, rope_ref(x), RTOL, ROPE_ATOL, msg=str(sig))

    def test_explicit_positions(self):
        x = self.randn(2, 2, 4, 16)
        p1 = i64([5, 17, 3, 100])
        p2 = self.rng.integers(0, 64, (2, 4)).astype(np.int32)
        sx = ty((2, 2, 4, 16))
        src = func("f", [("x", sx), ("p", ty((4,), "i64")), ("q", ty((2, 4), "i32"))],
                   [f"%0 = kiln.rope %x positions %p theta = 1.000000e+04 : ({sx}, {ty((4,), 'i64')}) -> {sx}",
                    f"%1 = kiln.rope %x positions %q theta = 5.000000e+05 : ({sx}, {ty((2, 4), 'i32')}) -> {sx}"],
                   [("0", sx), ("1", sx)])
        o0, o1 = run(src, "f", [x, p1, p2], [((2, 2, 4, 16), np.float32)] * 2)
        self.close(o0, rope_ref(x, p1, 1e4), RTOL, ROPE_ATOL, msg="[S] positions")
        self.close(o1, rope_ref(x, p2.astype(np.int64), 5e5), RTOL, ROPE_ATOL, msg="[B,S] positions")

    def test_given_frequencies(self):
        """inv_freq replaces theta's frequencies (scaled RoPE)."""
        x = self.randn(2, 2, 5, 8)
        freqs = [0.7, 0.05, 0.003, 0.0001]
        sx = ty((2, 2, 5, 8))
        src = func("f", [("x", sx), ("p", ty((5,), "i64"))],
                   [f"%0 = kiln.rope %x positions %p theta = 1.000000e+04 inv_freq = "
                    f"[{', '.join(repr(f) for f in freqs)}] : ({sx}, {ty((5,), 'i64')}) -> {sx}"],
                   [("0", sx)])
        p = i64([0, 3, 9, 40, 200])
        (o,) = run(src, "f", [x, p], [((2, 2, 5, 8), np.float32)])
        self.close(o, rope_ref(x, p, inv_freq=freqs), RTOL, ROPE_ATOL)


def conv_out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


class Conv2d(KilnTestCase):
    CASES = [  # x shape, w shape, bias, stride, padding, dilation, groups
        ((1, 3, 7, 7), (4, 3, 3, 3), False, (1, 1), (0, 0), (1, 1), 1),
        ((2, 4, 9, 9), (6, 2, 3, 3), True, (2, 2), (1, 1), (2, 2), 2),
        ((1, 2, 8, 5), (3, 2, 2, 3), True, (2, 1), (1, 0), (1, 2), 1),
        ((1, 3, 5, 5), (3, 1, 3, 3), True, (1, 1), (1, 1), (1, 1), 3),   # depthwise
        ((1, 1, 1, 1), (2, 1, 1, 1), True, (1, 1), (0, 0), (1, 1), 1),
        # Windows that tile the input (patch embeddings): im2col by reshape
        # and transpose; rows and columns past the last window dropped.
        ((2, 3, 8, 8), (5, 3, 4, 4), True, (4, 4), (0, 0), (1, 1), 1),
        ((1, 2, 9, 11), (3, 2, 2, 3), False, (2, 3), (0, 0), (1, 1), 1),
        ((1, 4, 6, 6), (4, 2, 3, 3), True, (3, 3), (0, 0), (1, 1), 2),
    ]

    def run_case(self, xs, ws, bias, stride, pad, dil, groups, dynamic_batch=False):
        x, w = self.randn(*xs), self.randn(*ws)
        b = self.randn(ws[0])
        oh = conv_out(xs[2], ws[2], stride[0], pad[0], dil[0])
        ow = conv_out(xs[3], ws[3], stride[1], pad[1], dil[1])
        rs = (xs[0], ws[0], oh, ow)
        sx = ty(((None,) if dynamic_batch else xs[:1]) + xs[1:])
        sr = ty(((None,) if dynamic_batch else rs[:1]) + rs[1:])
        args = [("x", sx), ("w", ty(ws))] + ([("b", ty((ws[0],)))] if bias else [])
        operands = "%x, %w" + (" bias %b" if bias else "")
        types = f"{sx}, {ty(ws)}" + (f", {ty((ws[0],))}" if bias else "")
        # The result is negated in kiln: without a bias the conv ends in a
        # reshape (a view), and returning a view hits the pipeline bug
        # documented in test_primitives.ReturnAliases.
        src = func("f", args,
                   [f"%c = kiln.conv2d {operands} stride = {list(stride)} padding = {list(pad)} "
                    f"dilation = {list(dil)} groups = {groups} : ({types}) -> {sr}",
                    f"%0 = kiln.neg %c : {sr}"],
                   [("0", sr)])
        (o,) = run(src, "f", [x, w] + ([b] if bias else []), [(rs, np.float32)])
        ref = -F.conv2d(T(x), T(w), T(b) if bias else None, stride, pad, dil, groups)
        self.close(o, ref, RTOL, ATOL, msg=f"{xs} {ws} s={stride} p={pad} d={dil} g={groups}")

    def test_cases(self):
        for case in self.CASES:
            with self.subTest(case=case):
                self.run_case(*case)

    def test_dynamic_batch(self):
        self.run_case((3, 4, 6, 6), (4, 2, 3, 3), True, (1, 2), (1, 1), (1, 1), 2, dynamic_batch=True)
        self.run_case((3, 3, 8, 8), (6, 3, 4, 4), True, (4, 4), (0, 0), (1, 1), 1, dynamic_batch=True)

    def test_no_bias_as_result(self):
        # A bias-free conv2d ends in a reshape of the matmul result;
        # returning that view makes buffer deallocation return a clone
        # (regression test: the pipeline once left bufferization.clone
        # unlowered).
        x, w = self.randn(1, 3, 7, 7), self.randn(4, 3, 3, 3)
        src = func("f", [("x", ty((1, 3, 7, 7))), ("w", ty((4, 3, 3, 3)))],
                   [f"%0 = kiln.conv2d %x, %w stride = [1, 1] padding = [0, 0] dilation = [1, 1] groups = 1"
                    f" : ({ty((1, 3, 7, 7))}, {ty((4, 3, 3, 3))}) -> {ty((1, 4, 5, 5))}"],
                   [("0", ty((1, 4, 5, 5)))])
        (o,) = run(src, "f", [x, w], [((1, 4, 5, 5), np.float32)])
        self.close(o, F.conv2d(T(x), T(w)), RTOL, ATOL)


class Pool2d(KilnTestCase):
    CASES = [  # x shape, kernel, stride, padding
        ((1, 2, 7, 7), (2, 2), (2, 2), (0, 0)),
        ((2, 3, 8, 8), (3, 3), (2, 2), (1, 1)),
        ((1, 2, 5, 6), (3, 2), (1, 2), (1, 0)),
        ((1, 1, 3, 3), (3, 3), (1, 1), (1, 1)),
    ]

    def test_cases(self):
        for xs, k, s, p in self.CASES:
            with self.subTest(x=xs, kernel=k, stride=s, padding=p):
                # All negative: a max pool that pads with 0 instead of -inf
                # would show up at the borders.
                x = f32(-np.abs(self.randn(*xs)) - 0.1)
                y = self.randn(*xs)
                rs = xs[:2] + (conv_out(xs[2], k[0], s[0], p[0], 1), conv_out(xs[3], k[1], s[1], p[1], 1))
                attrs = f"kernel = {list(k)} stride = {list(s)} padding = {list(p)}"
                src = func("f", [("x", ty(xs)), ("y", ty(xs))],
                           [f"%mx = kiln.max_pool2d %x {attrs} : ({ty(xs)}) -> {ty(rs)}",
                            f"%my = kiln.max_pool2d %y {attrs} : ({ty(xs)}) -> {ty(rs)}",
                            f"%ay = kiln.avg_pool2d %y {attrs} : ({ty(xs)}) -> {ty(rs)}"],
                           [("mx", ty(rs)), ("my", ty(rs)), ("ay", ty(rs))])
                mx, my, ay = run(src, "f", [x, y], [(rs, np.float32)] * 3)
                self.equal(mx, F.max_pool2d(T(x), k, s, p))
                self.equal(my, F.max_pool2d(T(y), k, s, p))
                self.close(ay, F.avg_pool2d(T(y), k, s, p, count_include_pad=True), RTOL, ATOL)

    def test_dynamic_batch_channels(self):
        x = self.randn(2, 3, 6, 6)
        sx, sr = ty((None, None, 6, 6)), ty((None, None, 3, 3))
        attrs = "kernel = [3, 3] stride = [2, 2] padding = [1, 1]"
        src = func("f", [("x", sx)],
                   [f"%m = kiln.max_pool2d %x {attrs} : ({sx}) -> {sr}",
                    f"%a = kiln.avg_pool2d %x {attrs} : ({sx}) -> {sr}"],
                   [("m", sr), ("a", sr)])
        m, a = run(src, "f", [x], [((2, 3, 3, 3), np.float32)] * 2)
        self.equal(m, F.max_pool2d(T(x), 3, 2, 1))
        self.close(a, F.avg_pool2d(T(x), 3, 2, 1), RTOL, ATOL)


class RNNCells(KilnTestCase):
    def test_gru_cell(self):
        torch.manual_seed(0)
        I, H = 5, 7
        cell = torch.nn.GRUCell(I, H).double()   # the oracle runs in float64
        for n, sig_n in [(3, 3), (1, None)]:
            x, h = self.randn(n, I), self.randn(n, H)
            w = [p.detach().numpy().astype(np.float32) for p in
                 (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
            sx, sh = ty((sig_n, I)), ty((sig_n, H))
            tw = [ty((3 * H, I)), ty((3 * H, H)), ty((3 * H,)), ty((3 * H,))]
            src = func("f", [("x", sx), ("h", sh), ("wih", tw[0]), ("whh", tw[1]), ("bih", tw[2]), ("bhh", tw[3])],
                       [f"%0 = kiln.gru_cell %x, %h, %wih, %whh, %bih, %bhh : ({sx}, {sh}, {', '.join(tw)}) -> {sh}"],
                       [("0", sh)])
            (o,) = run(src, "f", [x, h] + w, [((n, H), np.float32)])
            with torch.no_grad():
                self.close(o, cell(T(x), T(h)), RTOL, ATOL, msg=f"batch {n}")

    def test_lstm_cell(self):
        torch.manual_seed(1)
        I, H = 6, 4
        cell = torch.nn.LSTMCell(I, H).double()
        for n, sig_n in [(3, 3), (2, None)]:
            x, h, c = self.randn(n, I), self.randn(n, H), self.randn(n, H)
            w = [p.detach().numpy().astype(np.float32) for p in
                 (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
            sx, sh = ty((sig_n, I)), ty((sig_n, H))
            tw = [ty((4 * H, I)), ty((4 * H, H)), ty((4 * H,)), ty((4 * H,))]
            src = func("f", [("x", sx), ("h", sh), ("c", sh), ("wih", tw[0]), ("whh", tw[1]),
                             ("bih", tw[2]), ("bhh", tw[3])],
                       [f"%h2, %c2 = kiln.lstm_cell %x, %h, %c, %wih, %whh, %bih, %bhh : "
                        f"({sx}, {sh}, {sh}, {', '.join(tw)}) -> ({sh}, {sh})"],
                       [("h2", sh), ("c2", sh)])
            h2, c2 = run(src, "f", [x, h, c] + w, [((n, H), np.float32)] * 2)
            with torch.no_grad():
                rh, rc = cell(T(x), (T(h), T(c)))
            self.close(h2, rh, RTOL, ATOL, msg=f"h' batch {n}")
            self.close(c2, rc, RTOL, ATOL, msg=f"c' batch {n}")


class Dropout(KilnTestCase):
    def test_p_zero_is_identity(self):
        x = self.randn(3, 17)
        t = ty((None, 17))
        # neg after dropout: a result that is the argument itself hits the
        # pipeline bug documented in test_primitives.ReturnAliases.
        src = func("f", [("x", t), ("s", "tensor<i64>")],
                   [f"%d = kiln.dropout %x, %s p = 0.000000e+00 : ({t}, tensor<i64>) -> {t}",
                    f"%0 = kiln.neg %d : {t}"],
                   [("0", t)])
        (o,) = run(src, "f", [x, i64(3)], [((3, 17), np.float32)])
        self.equal(o, -T(x))

    def test_fraction_and_scale(self):
        shape = (64, 64)
        x = f32(self.rng.uniform(0.5, 2.0, size=shape) * self.rng.choice([-1, 1], size=shape))
        t = ty(shape)
        body, res = [], []
        for n, (p, seed) in enumerate([(0.3, "s"), (0.3, "s2"), (0.75, "s"), (0.1, "s")]):
            body.append(f"%d{n} = kiln.dropout %x, %{seed} p = {p:e} : ({t}, tensor<i64>) -> {t}")
            res.append((f"d{n}", t))
        body.append(f"%u = kiln.random_uniform %s () : (tensor<i64>) -> {t}")
        res.append(("u", t))
        src = func("f", [("x", t), ("s", "tensor<i64>"), ("s2", "tensor<i64>")], body, res)
        d0, d1, d2, d3, u = run(src, "f", [x, i64(42), i64(43)], [(shape, np.float32)] * 5)
        for d, p in [(d0, 0.3), (d1, 0.3), (d2, 0.75), (d3, 0.1)]:
            kept = d != 0
            self.assertAlmostEqual(1.0 - kept.mean(), p, delta=0.03, msg=f"p={p}")
            scale = np.float32(1.0 / (1.0 - p))
            np.testing.assert_allclose(d[kept], x[kept] * scale, rtol=DROPOUT_RTOL, atol=0,
                                       err_msg=f"survivors of p={p}")
        # The mask is random_uniform(seed) >= p, as documented.
        self.equal(d0 != 0, u >= np.float32(0.3))
        self.equal(d2 != 0, u >= np.float32(0.75))
        # Another seed: another mask.
        self.assertLess(np.mean((d0 != 0) == (d1 != 0)), 0.7)


class CrossEntropy(KilnTestCase):
    def test_reductions_ignore_index(self):
        C = 5
        logits = self.randn(6, C, scale=3.0)
        target = i64([0, 4, -100, 2, 1, -100])
        sl, st = ty((6, C)), ty((6,), "i64")
        body, res = [], []
        for red in ["mean", "sum", "none"]:
            rt = ty((6,)) if red == "none" else ty(())
            body.append(f"%{red} = kiln.cross_entropy %l, %t reduction = {red} : ({sl}, {st}) -> {rt}")
            res.append((red, rt))
        body.append(f"%ii = kiln.cross_entropy %l, %t ignore_index = 2 reduction = mean : ({sl}, {st}) -> tensor<f32>")
        res.append(("ii", "tensor<f32>"))
        src = func("f", [("l", sl), ("t", st)], body, res)
        # ignore_index = 2 run: -100 is then a regular (invalid) class, so
        # use a target without -100 for it.
        mean, total, none, _ = run(src, "f", [logits, target], [((), np.float32), ((), np.float32),
                                                                ((6,), np.float32), ((), np.float32)])
        tl, tt = T(logits), T(target)
        self.close(mean, F.cross_entropy(tl, tt, reduction="mean"), RTOL, ATOL, msg="mean")
        self.close(total, F.cross_entropy(tl, tt, reduction="sum"), RTOL, ATOL, msg="sum")
        self.close(none, F.cross_entropy(tl, tt, reduction="none"), RTOL, ATOL, msg="none")
        target2 = i64([0, 4, 2, 2, 1, 3])
        _, _, _, ii = run(src, "f", [logits, target2], [((), np.float32), ((), np.float32),
                                                        ((6,), np.float32), ((), np.float32)])
        self.close(ii, F.cross_entropy(tl, T(target2), ignore_index=2), RTOL, ATOL, msg="ignore_index=2")

    def test_3d_dynamic_i32_large_logits(self):
        C = 7
        logits = f32(self.randn(2, 3, C, scale=5.0) + 500.0)
        target = np.array([[1, -100, 6], [0, 3, -100]], np.int32)
        sl, st = ty((None, None, C)), ty((None, None), "i32")
        src = func("f", [("l", sl), ("t", st)],
                   [f"%m = kiln.cross_entropy %l, %t reduction = mean : ({sl}, {st}) -> tensor<f32>",
                    f"%n = kiln.cross_entropy %l, %t reduction = none : ({sl}, {st}) -> {ty((None, None))}"],
                   [("m", "tensor<f32>"), ("n", ty((None, None)))])
        m, n = run(src, "f", [logits, target], [((), np.float32), ((2, 3), np.float32)])
        tl, tt = T(logits).reshape(-1, C), T(target).long().reshape(-1)
        self.close(m, F.cross_entropy(tl, tt), RTOL, ATOL, msg="mean")
        self.close(n, F.cross_entropy(tl, tt, reduction="none").reshape(2, 3), RTOL, ATOL, msg="none")


    def test_out_of_range_targets_give_nan(self):
        """A target outside [0, C) that is not ignore_index (torch raises):
        its element's loss is NaN, so mean and sum are too; the other
        elements and ignored ones are unaffected. Static and dynamic C."""
        C = 5
        logits = self.randn(4, C)
        target = i64([1, C, -100, -3])
        for sig in [(4, C), (None, None)]:
            sl, st = ty(sig), ty(sig[:1], "i64")
            src = func("f", [("l", sl), ("t", st)],
                       [f"%m = kiln.cross_entropy %l, %t reduction = mean : ({sl}, {st}) -> tensor<f32>",
                        f"%n = kiln.cross_entropy %l, %t reduction = none : ({sl}, {st}) -> {ty(sig[:1])}"],
                       [("m", "tensor<f32>"), ("n", ty(sig[:1]))])
            m, n = run(src, "f", [logits, target], [((), np.float32), ((4,), np.float32)])
            self.assertTrue(np.isnan(m), f"{sig}: mean {m}")
            self.assertEqual(list(np.isnan(n)), [False, True, False, True], f"{sig}: {n}")
            self.close(n[0], F.cross_entropy(T(logits)[:1], T(target)[:1]), RTOL, ATOL)
            self.assertEqual(n[2], 0.0)

    def test_unbatched(self):
        # logits [C], target [] (a scalar class index).
        logits = self.randn(7)
        src = func("f", [("l", ty((7,))), ("t", "tensor<i64>")],
                   [f"%0 = kiln.cross_entropy %l, %t reduction = mean : ({ty((7,))}, tensor<i64>) -> tensor<f32>",
                    f"%1 = kiln.cross_entropy %l, %t reduction = none : ({ty((7,))}, tensor<i64>) -> tensor<f32>"],
                   [("0", "tensor<f32>"), ("1", "tensor<f32>")])
        o0, o1 = run(src, "f", [logits, i64(4)], [((), np.float32)] * 2)
        ref = F.cross_entropy(T(logits)[None], torch.tensor([4]))
        self.close(o0, ref, RTOL, ATOL)
        self.close(o1, ref, RTOL, ATOL)


class Regression(KilnTestCase):
    def test_mse(self):
        a, b = self.randn(3, 17), self.randn(3, 17)
        for sig in [(3, 17), (None, 17)]:
            s = ty(sig)
            src = func("f", [("a", s), ("b", s)],
                       [f"%m = kiln.mse %a, %b reduction = mean : ({s}, {s}) -> tensor<f32>",
                        f"%s = kiln.mse %a, %b reduction = sum : ({s}, {s}) -> tensor<f32>",
                        f"%n = kiln.mse %a, %b reduction = none : ({s}, {s}) -> {s}"],
                       [("m", "tensor<f32>"), ("s", "tensor<f32>"), ("n", s)])
            m, sm, n = run(src, "f", [a, b], [((), np.float32), ((), np.float32), ((3, 17), np.float32)])
            self.close(m, F.mse_loss(T(a), T(b)), RTOL, ATOL, msg=f"mean {sig}")
            self.close(sm, F.mse_loss(T(a), T(b), reduction="sum"), RTOL, ATOL, msg=f"sum {sig}")
            self.close(n, F.mse_loss(T(a), T(b), reduction="none"), RTOL, ATOL, msg=f"none {sig}")

    def test_kl_div(self):
        warnings.filterwarnings("ignore", message=".*reduction: 'mean'.*")
        shape = (4, 9)
        inp = f32(F.log_softmax(torch.from_numpy(self.randn(*shape)), -1).numpy())
        tgt = F.softmax(torch.from_numpy(self.randn(*shape)), -1).numpy()
        tgt[0, 2] = tgt[3, 0] = tgt[1, 8] = 0.0       # target 0 contributes 0
        tgt = f32(tgt)
        ltgt = f32(F.log_softmax(torch.from_numpy(self.randn(*shape)), -1).numpy())
        for sig in [shape, (None, 9)]:
            s = ty(sig)
            body, res, outs = [], [], []
            for log_target in [False, True]:
                for red in ["mean", "sum", "batchmean", "none"]:
                    name = f"{red}{'_lt' if log_target else ''}"
                    rt = s if red == "none" else "tensor<f32>"
                    body.append(f"%{name} = kiln.kl_div %i, %{'l' if log_target else 't'} reduction = {red}"
                                f"{' log_target' if log_target else ''} : ({s}, {s}) -> {rt}")
                    res.append((name, rt))
                    outs.append((red, log_target))
            src = func("f", [("i", s), ("t", s), ("l", s)], body, res)
            got = run(src, "f", [inp, tgt, ltgt],
                      [(shape if red == "none" else (), np.float32) for red, _ in outs])
            for (red, lt), g in zip(outs, got):
                ref = F.kl_div(T(inp), T(ltgt if lt else tgt), reduction=red, log_target=lt)
                self.close(g, ref, RTOL, ATOL, msg=f"{red} log_target={lt} {sig}")


if __name__ == "__main__":
    unittest.main()
