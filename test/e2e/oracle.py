"""The numerics oracle: PyTorch, computing in float64 (not a test module).

References are computed in float64 from exactly the float32 values Kiln is
given, so a test's verdict depends on Kiln alone: not on which BLAS the
oracle's torch links (Debian's reference BLAS and OpenBLAS sum in different
orders, and a fresh machine has only the former), nor on which SIMD kernels
torch picks on this CPU. A test's tolerance then bounds Kiln's own float32
rounding against the exact result, and the tests say how they derive it.
"""

import numpy as np
import torch


def oracle(a):
    """A torch tensor for the reference: float arrays (and tensors) become
    float64, integer and boolean ones keep their dtype."""
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.array(a))
    return t.double() if t.is_floating_point() else t


def oracle_dict(weights):
    """{name: float64 tensor} for a {name: float32 array} weight dict."""
    return {k: oracle(v) for k, v in weights.items()}
