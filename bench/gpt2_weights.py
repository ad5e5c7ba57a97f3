"""Random gpt2 weights for the benchmarks: one set shared by every variant
of a model in a run (N(0, 0.02), LayerNorm gains near 1), so that the
variants compute the same function and their outputs can be compared."""

import numpy as np


def random_gpt2_weights(manifest, seed=0):
    """{parameter name: f32 array} for the parameters of an artifact's
    manifest."""
    rng = np.random.default_rng(seed)
    weights = {}
    for p in manifest["parameters"]:
        gain = p["name"].endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
        # In the model's shape (an artifact may store it as panels).
        shape = p.get("packed", {}).get("shape", p["shape"])
        weights[p["name"]] = ((1.0 if gain else 0.0) + 0.02 * rng.standard_normal(shape)).astype(np.float32)
    return weights
