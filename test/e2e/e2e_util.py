"""Shared helpers for the end-to-end numerics tests (not a test module).

The tests build small kiln functions as text, run them through
kiln_exec.run (kiln-opt --kiln-cpu-pipeline + mlir-runner) and compare the
printed results with PyTorch. Tolerances are stated in each test file.
"""

import os
import zlib
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_exec  # noqa: E402

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:  # the suite needs Debian's /usr/bin/python3 with torch
    HAVE_TORCH = False


def ty(shape, elem="f32"):
    """Tensor type text; None in `shape` is a dynamic dimension."""
    dims = "x".join("?" if d is None else str(d) for d in shape)
    return f"tensor<{dims}x{elem}>" if len(shape) else f"tensor<{elem}>"


def f32(x):
    return np.array(x, dtype=np.float32)


def i64(x):
    return np.array(x, dtype=np.int64)


def run(source, func, inputs, outputs, pipeline="--kiln-cpu-pipeline"):
    """kiln_exec.run with a readable failure that includes the source."""
    try:
        return kiln_exec.run(source, func, list(inputs), list(outputs), pipeline)
    except RuntimeError as e:
        raise AssertionError(f"{e}\n--- source ---\n{source}") from None


class KilnTestCase(unittest.TestCase):
    RTOL = 2e-5
    ATOL = 1e-5

    def setUp(self):
        if not HAVE_TORCH:
            self.skipTest("torch not importable (run with /usr/bin/python3)")
        self.rng = np.random.default_rng(zlib.crc32(self.id().encode()))

    def randn(self, *shape, scale=1.0):
        return f32(self.rng.standard_normal(shape) * scale)

    def close(self, actual, expected, rtol=None, atol=None, msg=""):
        expected = np.asarray(expected.detach().numpy() if hasattr(expected, "detach") else expected)
        actual = np.asarray(actual)
        self.assertEqual(actual.shape, expected.shape, msg)
        np.testing.assert_allclose(actual, expected.astype(actual.dtype, copy=False),
                                   rtol=self.RTOL if rtol is None else rtol,
                                   atol=self.ATOL if atol is None else atol, err_msg=msg)

    def equal(self, actual, expected, msg=""):
        expected = np.asarray(expected.detach().numpy() if hasattr(expected, "detach") else expected)
        actual = np.asarray(actual)
        self.assertEqual(actual.shape, expected.shape, msg)
        # A float64 reference rounded once to float32 is the correctly
        # rounded float32 result of +, -, *, / and sqrt, so exactness holds.
        np.testing.assert_array_equal(actual, expected.astype(actual.dtype, copy=False),
                                      err_msg=msg)


def func(name, args, body, results):
    """Builds `func.func @name(args) -> (results) { body; return }`.

    args: list of (ssa_name_without_%, type); results: list of (ssa, type);
    body: the op lines (a string or a list of strings).
    """
    if not isinstance(body, str):
        body = "\n".join(body)
    sig = ", ".join(f"%{n}: {t}" for n, t in args)
    rtypes = ", ".join(t for _, t in results)
    rvals = ", ".join(f"%{v}" for v, _ in results)
    body = "\n".join("  " + l.strip() for l in body.strip().splitlines())
    return (f"func.func @{name}({sig}) -> ({rtypes}) {{\n{body}\n"
            f"  return {rvals} : {rtypes}\n}}\n")
