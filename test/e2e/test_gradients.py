"""Gradients of kiln ops against torch.autograd.

Each case wraps one op (or a few) in a scalar loss, `sum(op(inputs) * W)`
with a random weight W, runs `kiln-opt --kiln-autodiff='wrt-inputs=true'` to
build `loss_grad`, lowers and runs it like the other e2e tests (kiln_exec)
and compares the loss and the gradient of every float input (W's included)
with torch.autograd on the same inputs. Composites without their own rule
(gelu, attention, conv2d, ...) are checked through their decompositions.

torch.autograd computes in float64 (oracle.py) from the same float32
inputs, so the verdict does not depend on torch's BLAS or SIMD kernels.
Tolerances (fp32): RTOL = 1e-4, ATOL = 2e-5. Kiln sums in float32, and
kiln's exp/tanh/erf are polynomial approximations (~1e-7 relative), so
gradients that are sums of many terms are off by a few ulps of their
largest term.

Run with Debian's python (it has torch):
  KILN_OPT=build/bin/kiln-opt /usr/bin/python3 -m unittest \
      discover -s test/e2e -p 'test_gradients.py'
"""

import math
import os
import subprocess
import unittest

import numpy as np

from e2e_util import KilnTestCase, f32, i64, run, ty

try:
    import torch
    import torch.nn.functional as F
    from oracle import oracle
except ImportError:  # KilnTestCase skips every test
    torch = F = oracle = None

RTOL, ATOL = 1e-4, 2e-5
KILN_OPT = os.environ.get("KILN_OPT", "kiln-opt")


def _elem(array):
    return {np.dtype("float32"): "f32", np.dtype("int64"): "i64",
            np.dtype("int32"): "i32", np.dtype("bool"): "i1"}[array.dtype]


class GradientCase(KilnTestCase):
    def differentiate(self, src):
        """`src` through kiln-autodiff (wrt inputs), as text kiln_exec.run
        takes (without the module around it)."""
        differentiated = subprocess.run(
            [KILN_OPT, "--kiln-autodiff=wrt-inputs=true"], input=src,
            capture_output=True, text=True)
        if differentiated.returncode != 0:
            raise AssertionError("kiln-autodiff failed:\n" + differentiated.stderr + "\n" + src)
        # kiln_exec appends a main next to the functions: unwrap the module.
        text = differentiated.stdout.strip()
        if text.startswith("module {"):
            text = text[len("module {"):text.rindex("}")]
        return text

    def check(self, inputs, body, out_shape, ref, sigs=None, out_sig=None,
              rtol=RTOL, atol=ATOL):
        """inputs: list of (name, array); body: op lines defining %out from
        %<name>s; ref(*torch_tensors) -> the torch output. sigs: optional
        signature shapes per input (None dims dynamic); out_sig likewise for
        %out's declared type."""
        names = [n for n, _ in inputs]
        arrays = [a for _, a in inputs]
        sigs = sigs or [a.shape for a in arrays]
        out_sig = out_sig or out_shape
        out_ty = ty(out_sig)
        weight = self.randn(*out_shape)
        args = [f"%{n}: {ty(s, _elem(a))}" for n, a, s in zip(names, arrays, sigs)]
        args.append(f"%weight: {out_ty}")
        lines = list(body)
        lines.append(f"%prod = kiln.mul %out, %weight : ({out_ty}, {out_ty}) -> {out_ty}")
        if len(out_shape):
            axes = ", ".join(str(i) for i in range(len(out_shape)))
            lines.append(f"%loss = kiln.reduce sum %prod axes = [{axes}] : ({out_ty}) -> tensor<f32>")
        else:
            lines.append("%loss = kiln.add %prod, %prod : (tensor<f32>, tensor<f32>) -> tensor<f32>")
        src = (f"func.func @loss({', '.join(args)}) -> tensor<f32> {{\n"
               + "\n".join("  " + l for l in lines)
               + "\n  return %loss : tensor<f32>\n}\n")
        text = self.differentiate(src)
        floats = [a for a in arrays if a.dtype == np.float32] + [weight]
        outs = run(text, "loss_grad", arrays + [weight],
                   [((), np.float32)] + [(a.shape, np.float32) for a in floats])

        tensors = []
        for a in arrays:
            t = oracle(a.copy())
            if t.is_floating_point():
                t.requires_grad_(True)
            tensors.append(t)
        w = oracle(weight).requires_grad_(True)
        out = ref(*tensors)
        loss = (out * w).sum()
        if not len(out_shape):
            loss = loss * 2
        loss.backward()
        expected = [t.grad for t in tensors if t.is_floating_point()] + [w.grad]
        self.close(outs[0], loss, rtol, atol, msg="loss")
        float_names = [n for n, a in inputs if a.dtype == np.float32] + ["weight"]
        for name, got, want in zip(float_names, outs[1:], expected):
            if want is None:
                want = torch.zeros(got.shape)
            self.close(got, want, rtol, atol, msg=f"d loss / d {name}")


def unary_line(op, t):
    return [f"%out = kiln.{op} %x : {t}"]


class Elementwise(GradientCase):
    def test_unary(self):
        shape = (3, 17)
        t = ty(shape)
        positive = f32(np.abs(self.randn(*shape)) + 0.5)
        cases = {
            "neg": (torch.neg, None), "abs": (torch.abs, None), "exp": (torch.exp, None),
            "log": (torch.log, positive), "tanh": (torch.tanh, None),
            "erf": (torch.erf, None), "sin": (torch.sin, None), "cos": (torch.cos, None),
            "sqrt": (torch.sqrt, positive), "rsqrt": (torch.rsqrt, positive),
            "sigmoid": (torch.sigmoid, None), "relu": (torch.relu, None),
        }
        for op, (fn, x) in cases.items():
            with self.subTest(op=op):
                x = self.randn(*shape) if x is None else x
                self.check([("x", x)], unary_line(op, t), shape, fn)

    def test_binary_broadcasting(self):
        ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul,
               "div": torch.div, "max": torch.maximum, "min": torch.minimum}
        for op, fn in ops.items():
            for xs, ys in [((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((5,), (1,)), ((2, 3), ())]:
                with self.subTest(op=op, x=xs, y=ys):
                    x, y = self.randn(*xs), self.randn(*ys)
                    if op == "div":
                        y = f32(np.sign(y) * (np.abs(y) + 0.5))
                    out = np.broadcast_shapes(xs, ys)
                    body = [f"%out = kiln.{op} %x, %y : ({ty(xs)}, {ty(ys)}) -> {ty(out)}"]
                    self.check([("x", x), ("y", y)], body, out, fn)

    def test_max_min_ties_split_evenly(self):
        x = f32([[1.0, 2.0, 3.0], [4.0, 4.0, -1.0]])
        y = f32([[1.0, 0.0, 5.0], [4.0, 3.0, -1.0]])
        for op, fn in {"max": torch.maximum, "min": torch.minimum}.items():
            with self.subTest(op=op):
                body = [f"%out = kiln.{op} %x, %y : ({ty((2, 3))}, {ty((2, 3))}) -> {ty((2, 3))}"]
                self.check([("x", x), ("y", y)], body, (2, 3), fn)

    def test_pow(self):
        x = f32(np.abs(self.randn(3, 5)) + 0.5)
        y = self.randn(5)
        body = [f"%out = kiln.pow %x, %y : ({ty((3, 5))}, {ty((5,))}) -> {ty((3, 5))}"]
        self.check([("x", x), ("y", y)], body, (3, 5), torch.pow)

    def test_select_and_dynamic(self):
        c = self.rng.random((4, 6)) > 0.5
        x, y = self.randn(4, 6), self.randn(6)
        sig = [(None, 6), (None, 6), (6,)]
        body = [f"%out = kiln.select %c, %x, %y : ({ty((None, 6), 'i1')}, {ty((None, 6))}, {ty((6,))}) -> {ty((None, 6))}"]
        self.check([("c", c), ("x", x), ("y", y)], body, (4, 6),
                   lambda c, x, y: torch.where(c, x, y), sigs=sig, out_sig=(None, 6))

    def test_dynamic_broadcast_add(self):
        x, b = self.randn(3, 5, 7), self.randn(7)
        sig = [(None, None, 7), (7,)]
        body = [f"%out = kiln.add %x, %b : ({ty(sig[0])}, {ty(sig[1])}) -> {ty(sig[0])}"]
        self.check([("x", x), ("b", b)], body, (3, 5, 7), torch.add, sigs=sig, out_sig=(None, None, 7))


class Matmul(GradientCase):
    def test_layouts(self):
        M, K, N = 5, 7, 3
        for tl in (False, True):
            for tr in (False, True):
                with self.subTest(tl=tl, tr=tr):
                    a = self.randn(2, *((K, M) if tl else (M, K)))
                    b = self.randn(*((N, K) if tr else (K, N)))
                    flags = (" transpose_lhs" if tl else "") + (" transpose_rhs" if tr else "")
                    body = [f"%out = kiln.matmul %a, %b{flags} : ({ty(a.shape)}, {ty(b.shape)}) -> {ty((2, M, N))}"]

                    def ref(a, b, tl=tl, tr=tr):
                        return (a.transpose(-1, -2) if tl else a) @ (b.transpose(-1, -2) if tr else b)
                    self.check([("a", a), ("b", b)], body, (2, M, N), ref)

    def test_batch_broadcast(self):
        a, b = self.randn(3, 1, 4, 5), self.randn(2, 5, 6)
        body = [f"%out = kiln.matmul %a, %b : ({ty(a.shape)}, {ty(b.shape)}) -> {ty((3, 2, 4, 6))}"]
        self.check([("a", a), ("b", b)], body, (3, 2, 4, 6), torch.matmul)

    def test_dynamic_rows(self):
        a, b = self.randn(2, 9, 5), self.randn(5, 4)
        sig = [(None, None, 5), (5, 4)]
        body = [f"%out = kiln.matmul %a, %b : ({ty(sig[0])}, {ty(sig[1])}) -> {ty((None, None, 4))}"]
        self.check([("a", a), ("b", b)], body, (2, 9, 4), torch.matmul, sigs=sig,
                   out_sig=(None, None, 4))


class Reductions(GradientCase):
    def test_kinds(self):
        x = self.randn(3, 4, 5)
        ops = {"sum": lambda x, a, k: x.sum(a, keepdim=k),
               "mean": lambda x, a, k: x.mean(a, keepdim=k),
               "max": lambda x, a, k: x.amax(a, keepdim=k),
               "min": lambda x, a, k: x.amin(a, keepdim=k)}
        for kind, fn in ops.items():
            for axes, keep in [((1,), False), ((0, 2), True), ((0, 1, 2), False)]:
                with self.subTest(kind=kind, axes=axes, keepdim=keep):
                    out = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else \
                        tuple(d for i, d in enumerate(x.shape) if i not in axes)
                    keep_txt = " keepdim" if keep else ""
                    body = [f"%out = kiln.reduce {kind} %x axes = {list(axes)}{keep_txt} : ({ty(x.shape)}) -> {ty(out)}"]
                    self.check([("x", x)], body, out, lambda x: fn(x, axes, keep))

    def test_max_ties(self):
        x = f32([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
        body = [f"%out = kiln.reduce max %x axes = [1] : ({ty((2, 4))}) -> {ty((2,))}"]
        self.check([("x", x)], body, (2,), lambda x: x.amax(1))

    def test_dynamic_mean(self):
        x = self.randn(4, 6)
        body = [f"%out = kiln.reduce mean %x axes = [0] : ({ty((None, None))}) -> {ty((None,))}"]
        self.check([("x", x)], body, (6,), lambda x: x.mean(0), sigs=[(None, None)], out_sig=(None,))


class ShapeOps(GradientCase):
    def test_reshape_transpose(self):
        x = self.randn(2, 3, 4)
        body = [f"%r = kiln.reshape %x : {ty((2, 3, 4))} -> {ty((6, 4))}",
                f"%out = kiln.transpose %r permutation = [1, 0] : ({ty((6, 4))}) -> {ty((4, 6))}"]
        self.check([("x", x)], body, (4, 6), lambda x: x.reshape(6, 4).t())
        body = [f"%out = kiln.transpose %x permutation = [2, 0, 1] : ({ty((2, 3, 4))}) -> {ty((4, 2, 3))}"]
        self.check([("x", x)], body, (4, 2, 3), lambda x: x.permute(2, 0, 1))

    def test_slices(self):
        x = self.randn(3, 11)
        for start, end, step in [(0, 11, 1), (2, 7, 1), (1, 10, 3), (0, 11, 2), (3, 4, 5)]:
            with self.subTest(start=start, end=end, step=step):
                n = len(range(start, end, step))
                body = [f"%out = kiln.slice %x axis = 1 [{start} : {end} : {step}] : ({ty((3, 11))}) -> {ty((3, n))}"]
                self.check([("x", x)], body, (3, n), lambda x: x[:, start:end:step])

    def test_concat_pad_broadcast(self):
        a, b = self.randn(2, 3), self.randn(2, 5)
        body = [f"%out = kiln.concat %a, %b axis = 1 : ({ty((2, 3))}, {ty((2, 5))}) -> {ty((2, 8))}"]
        self.check([("a", a), ("b", b)], body, (2, 8), lambda a, b: torch.cat([a, b], 1))
        body = [f"%out = kiln.pad %a low = [1, 0] high = [2, 3] value = 1.500000e+00 : ({ty((2, 3))}) -> {ty((5, 6))}"]
        self.check([("a", a)], body, (5, 6), lambda a: F.pad(a, (0, 3, 1, 2), value=1.5))
        c = self.randn(3, 1)
        body = [f"%out = kiln.broadcast_to %c () : {ty((3, 1))} -> {ty((2, 3, 4))}"]
        self.check([("c", c)], body, (2, 3, 4), lambda c: c.expand(2, 3, 4))

    def test_gather_repeated_and_scatter_add(self):
        table = self.randn(7, 4)
        ids = i64([[0, 3, 3], [6, 0, 3]])
        body = [f"%out = kiln.gather %t[%ids] axis = 0 : ({ty((7, 4))}, {ty((2, 3), 'i64')}) -> {ty((2, 3, 4))}"]
        self.check([("t", table), ("ids", ids)], body, (2, 3, 4), lambda t, i: t[i])
        x = self.randn(3, 5)
        cols = i64([4, 0, 4, 2])
        body = [f"%out = kiln.gather %x[%c] axis = 1 : ({ty((3, 5))}, {ty((4,), 'i64')}) -> {ty((3, 4))}"]
        self.check([("x", x), ("c", cols)], body, (3, 4), lambda x, c: x[:, c])
        upd = self.randn(3, 4)
        body = [f"%out = kiln.scatter_add %x[%c], %u axis = 1 : ({ty((3, 5))}, {ty((4,), 'i64')}, {ty((3, 4))}) -> {ty((3, 5))}"]
        self.check([("x", x), ("c", cols), ("u", upd)], body, (3, 5),
                   lambda x, c, u: x.index_add(1, c, u))


class Composites(GradientCase):
    def test_softmax_family(self):
        x = self.randn(3, 4, 9, scale=3.0)
        for op, fn in {"softmax": F.softmax, "log_softmax": F.log_softmax}.items():
            for axis in (-1, 1):
                with self.subTest(op=op, axis=axis):
                    body = [f"%out = kiln.{op} %x axis = {axis} : ({ty(x.shape)}) -> {ty(x.shape)}"]
                    self.check([("x", x)], body, x.shape, lambda x: fn(x, axis))

    def test_layer_norm_rms_norm(self):
        D = 13
        x, w, b = self.randn(2, 3, D), self.randn(D), self.randn(D)
        sx, sw = ty((2, 3, D)), ty((D,))
        body = [f"%out = kiln.layer_norm %x weight %w bias %b eps = 1.000000e-05 : ({sx}, {sw}, {sw}) -> {sx}"]
        self.check([("x", x), ("w", w), ("b", b)], body, x.shape,
                   lambda x, w, b: F.layer_norm(x, (D,), w, b, 1e-5))
        body = [f"%out = kiln.layer_norm %x eps = 1.000000e-05 : ({sx}) -> {sx}"]
        self.check([("x", x)], body, x.shape, lambda x: F.layer_norm(x, (D,), None, None, 1e-5))
        body = [f"%out = kiln.rms_norm %x, %w eps = 1.000000e-06 : ({sx}, {sw}) -> {sx}"]
        self.check([("x", x), ("w", w)], body, x.shape,
                   lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w)

    def test_layer_norm_dynamic_rows(self):
        D = 8
        x, w, b = self.randn(4, 3, D), self.randn(D), self.randn(D)
        sig = [(None, None, D), (D,), (D,)]
        body = [f"%out = kiln.layer_norm %x weight %w bias %b eps = 1.000000e-05 : ({ty(sig[0])}, {ty(sig[1])}, {ty(sig[2])}) -> {ty(sig[0])}"]
        self.check([("x", x), ("w", w), ("b", b)], body, x.shape,
                   lambda x, w, b: F.layer_norm(x, (D,), w, b, 1e-5), sigs=sig, out_sig=sig[0])

    def test_activations(self):
        x = self.randn(4, 33)
        t = ty(x.shape)
        cases = {
            "gelu %x approximate = tanh": lambda x: F.gelu(x, approximate="tanh"),
            "gelu %x approximate = erf": F.gelu,
            "silu %x": F.silu,
        }
        for op, fn in cases.items():
            with self.subTest(op=op):
                self.check([("x", x)], [f"%out = kiln.{op} : {t}"], x.shape, fn)

    def test_linear_embedding(self):
        x, w, b = self.randn(2, 3, 5), self.randn(4, 5), self.randn(4)
        body = [f"%out = kiln.linear %x, %w bias %b : ({ty(x.shape)}, {ty(w.shape)}, {ty(b.shape)}) -> {ty((2, 3, 4))}"]
        self.check([("x", x), ("w", w), ("b", b)], body, (2, 3, 4), F.linear)
        table, ids = self.randn(9, 4), i64([[1, 8, 1], [0, 0, 2]])
        body = [f"%out = kiln.embedding %t, %ids : ({ty(table.shape)}, {ty(ids.shape, 'i64')}) -> {ty((2, 3, 4))}"]
        self.check([("t", table), ("ids", ids)], body, (2, 3, 4), lambda t, i: F.embedding(i, t))

    def test_attention(self):
        for hkv, causal, masked in [(2, True, False), (1, False, True), (2, True, True)]:
            with self.subTest(kv_heads=hkv, causal=causal, mask=masked):
                q, k, v = self.randn(1, 2, 5, 4), self.randn(1, hkv, 6, 4), self.randn(1, hkv, 6, 3)
                mask = f32(np.where(self.rng.random((1, 1, 5, 6)) > 0.3, 0.0, -1e9))
                inputs = [("q", q), ("k", k), ("v", v)]
                operands = "%q, %k, %v"
                types = [ty(q.shape), ty(k.shape), ty(v.shape)]
                if masked:
                    inputs.append(("m", mask))
                    operands += " mask %m"
                    types.append(ty(mask.shape))
                body = [f"%out = kiln.attention {operands}{' causal' if causal else ''} : ({', '.join(types)}) -> {ty((1, 2, 5, 3))}"]

                def ref(q, k, v, m=None, causal=causal):
                    rep = q.shape[1] // k.shape[1]
                    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
                    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
                    if m is not None:
                        s = s + m
                    if causal:
                        keep = torch.ones(5, 6, dtype=torch.bool).tril(diagonal=1)
                        s = s.masked_fill(~keep, float("-inf"))
                    return torch.softmax(s, -1) @ v
                self.check(inputs, body, (1, 2, 5, 3), ref)

    def test_losses(self):
        logits = self.randn(2, 3, 7, scale=2.0)
        target = i64([[0, 6, -100], [3, 3, 1]])
        for reduction in ("mean", "sum", "none"):
            with self.subTest(loss="cross_entropy", reduction=reduction):
                out = (2, 3) if reduction == "none" else ()
                body = [f"%out = kiln.cross_entropy %l, %t reduction = {reduction} : ({ty(logits.shape)}, {ty(target.shape, 'i64')}) -> {ty(out)}"]
                self.check([("l", logits), ("t", target)], body, out,
                           lambda l, t: F.cross_entropy(l.reshape(-1, 7), t.reshape(-1), reduction=reduction).reshape(out))
        x, y = self.randn(4, 5), self.randn(4, 5)
        body = [f"%out = kiln.mse %x, %y reduction = mean : ({ty(x.shape)}, {ty(y.shape)}) -> tensor<f32>"]
        self.check([("x", x), ("y", y)], body, (), F.mse_loss)
        logp = f32(np.log(np.abs(self.randn(4, 5)) + 0.1))
        p = f32(self.rng.random((4, 5)))
        body = [f"%out = kiln.kl_div %x, %p reduction = batchmean : ({ty(x.shape)}, {ty(p.shape)}) -> tensor<f32>"]
        self.check([("x", logp), ("p", p)], body, (),
                   lambda x, p: F.kl_div(x, p, reduction="batchmean"))

    def test_cross_entropy_out_of_range_targets(self):
        """torch raises for a target outside [0, C); kiln's loss and the
        gradient of that row are NaN, ignored rows get 0, valid rows match
        torch on the valid rows alone."""
        logits = self.randn(4, 7, scale=2.0)
        target = i64([2, 7, -100, 5])
        lt, tt = ty(logits.shape), ty(target.shape, "i64")
        src = (f"func.func @loss(%l: {lt}, %t: {tt}) -> tensor<f32> {{\n"
               f"  %out = kiln.cross_entropy %l, %t reduction = sum : ({lt}, {tt}) -> tensor<f32>\n"
               f"  return %out : tensor<f32>\n}}\n")
        loss, grad = run(self.differentiate(src), "loss_grad", [logits, target],
                         [((), np.float32), (logits.shape, np.float32)])
        self.assertTrue(np.isnan(loss))
        self.assertEqual([bool(np.isnan(row).any()) for row in grad], [False, True, False, False])
        self.assertTrue(np.isnan(grad[1]).all())
        self.assertEqual(np.abs(grad[2]).max(), 0.0)
        l = oracle(logits[[0, 3]]).requires_grad_(True)
        F.cross_entropy(l, oracle(target[[0, 3]]), reduction="sum").backward()
        self.close(grad[[0, 3]], l.grad, RTOL, ATOL)

    def test_conv_pool_rnn(self):
        x, w, b = self.randn(2, 3, 7, 6), self.randn(4, 3, 3, 2), self.randn(4)
        body = [f"%out = kiln.conv2d %x, %w bias %b stride = [2, 1] padding = [1, 0] dilation = [1, 1] groups = 1"
                f" : ({ty(x.shape)}, {ty(w.shape)}, {ty(b.shape)}) -> {ty((2, 4, 4, 5))}"]
        self.check([("x", x), ("w", w), ("b", b)], body, (2, 4, 4, 5),
                   lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 0)))
        # Windows that tile the input (a patch embedding; the last row is
        # dropped): im2col by reshape and transpose.
        w2 = self.randn(5, 3, 3, 3)
        body = [f"%out = kiln.conv2d %x, %w stride = [3, 3] padding = [0, 0] dilation = [1, 1] groups = 1"
                f" : ({ty(x.shape)}, {ty(w2.shape)}) -> {ty((2, 5, 2, 2))}"]
        self.check([("x", x), ("w", w2)], body, (2, 5, 2, 2), lambda x, w: F.conv2d(x, w, None, 3))
        attrs = "kernel = [3, 3] stride = [2, 2] padding = [1, 1]"
        for op, fn in {"avg_pool2d": F.avg_pool2d, "max_pool2d": F.max_pool2d}.items():
            with self.subTest(op=op):
                body = [f"%out = kiln.{op} %x {attrs} : ({ty(x.shape)}) -> {ty((2, 3, 4, 3))}"]
                self.check([("x", x)], body, (2, 3, 4, 3),
                           lambda x: fn(x, 3, 2, 1, count_include_pad=True) if op == "avg_pool2d" else fn(x, 3, 2, 1))
        H, I = 4, 3
        xs, h = self.randn(2, I), self.randn(2, H)
        wih, whh, bih, bhh = self.randn(3 * H, I), self.randn(3 * H, H), self.randn(3 * H), self.randn(3 * H)
        tw = [ty(a.shape) for a in (wih, whh, bih, bhh)]
        body = [f"%out = kiln.gru_cell %x, %h, %a, %b, %c, %d : ({ty(xs.shape)}, {ty(h.shape)}, {', '.join(tw)}) -> {ty(h.shape)}"]
        self.check([("x", xs), ("h", h), ("a", wih), ("b", whh), ("c", bih), ("d", bhh)], body, h.shape,
                   lambda x, h, a, b, c, d: torch._VF.gru_cell(x, h, a, b, c, d))
        c = self.randn(2, H)
        wih, whh, bih, bhh = self.randn(4 * H, I), self.randn(4 * H, H), self.randn(4 * H), self.randn(4 * H)
        tw = [ty(a.shape) for a in (wih, whh, bih, bhh)]
        sh = ty(h.shape)
        # Both new states feed the output: h' + 2·c'.
        body = [f"%h2, %c2 = kiln.lstm_cell %x, %h, %c, %a, %b, %cb, %d : ({ty(xs.shape)}, {sh}, {sh}, {', '.join(tw)}) -> ({sh}, {sh})",
                f"%c3 = kiln.add %c2, %c2 : ({sh}, {sh}) -> {sh}",
                f"%out = kiln.add %h2, %c3 : ({sh}, {sh}) -> {sh}"]

        def lstm(x, h, c, a, b, cb, d):
            h2, c2 = torch._VF.lstm_cell(x, (h, c), a, b, cb, d)
            return h2 + 2 * c2
        self.check([("x", xs), ("h", h), ("c", c), ("a", wih), ("b", whh), ("cb", bih), ("d", bhh)],
                   body, h.shape, lstm)


class Errors(unittest.TestCase):
    def test_not_differentiable_message(self):
        src = ("kiln.parameter @w : tensor<4xf32> init zeros trainable\n"
               "func.func @loss(%x: tensor<4xf32>) -> tensor<f32> {\n"
               "  %w = kiln.read_param @w : tensor<4xf32>\n"
               "  %s = kiln.add %x, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n"
               "  %i = kiln.cast %s : tensor<4xf32> -> tensor<4xi64>\n"
               "  %f = kiln.cast %i : tensor<4xi64> -> tensor<4xf32>\n"
               "  %l = kiln.reduce sum %f axes = [0] : (tensor<4xf32>) -> tensor<f32>\n"
               "  return %l : tensor<f32>\n}\n")
        done = subprocess.run([KILN_OPT, "--kiln-autodiff"], input=src, capture_output=True, text=True)
        # Through an integer cast the loss is constant in w: a zero gradient.
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn('"grad:w"', done.stdout)


if __name__ == "__main__":
    unittest.main()
