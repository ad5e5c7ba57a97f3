"""The cnn family (a convolutional image encoder) against the torch module
it names:

    stages[i] = Sequential(Conv2d(c_in, c_out, k, padding=k // 2), act, pool(2))
    projection = Linear(c_last, embedding_dim)

with the image's pixels averaged after the last stage. The module's
state_dict is the weights; `forward` (features, image_embeds) and
`encode_image` are compared with it in float64 on images whose size is not
a power of two (pooling floors), with max and average pooling, 3x3 and 5x5
kernels, 1 and 3 channels, a dynamic batch. Tolerance 1e-5 absolute plus
1e-4 relative (float32 against float64; a wrong padding or pooling moves
values by O(0.1)).
"""

import os
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_artifacts import compile_torch_module, report, run_artifact  # noqa: E402


class Encoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU}[cfg.get("activation", "relu")]
        pool = torch.nn.MaxPool2d if cfg.get("pool", "max") == "max" else torch.nn.AvgPool2d
        k = cfg.get("kernel_size", 3)
        widths = [cfg.get("num_channels", 3)] + cfg["stage_channels"]
        self.stages = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(a, b, k, padding=k // 2), act(), pool(2))
            for a, b in zip(widths, widths[1:]))
        self.projection = torch.nn.Linear(widths[-1], cfg["embedding_dim"])

    def forward(self, x):
        for stage in self.stages:
            x = stage(x)
        return x, self.projection(x.mean((2, 3)))


class CNN(unittest.TestCase):
    def check(self, cfg, batch=3):
        torch.manual_seed(1)
        model = Encoder(cfg).double().eval()
        size = cfg["image_size"]
        with tempfile.TemporaryDirectory() as tmp:
            art = compile_torch_module(model, cfg, "cnn", tmp)
            x = np.random.default_rng(0).standard_normal(
                (batch, cfg.get("num_channels", 3), size, size)).astype(np.float32)
            out = run_artifact(art, {"pixel_values": x}, tmp)
            embeds = run_artifact(art, {"pixel_values": x}, tmp, entry="encode_image")["image_embeds"]
            with torch.no_grad():
                features, expected = model(torch.from_numpy(x).double())
            for name, got, want in (("features", out["features"], features.numpy()),
                                    ("image_embeds", out["image_embeds"], expected.numpy()),
                                    ("encode_image", embeds, expected.numpy())):
                report(f"{cfg} {name}", got, want)
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{cfg} {name}")

    def test_max_pool(self):
        self.check({"image_size": 13, "stage_channels": [4, 6], "embedding_dim": 5})

    def test_avg_pool_5x5_one_channel_gelu(self):
        self.check({"image_size": 12, "num_channels": 1, "stage_channels": [3, 4, 5], "kernel_size": 5,
                    "pool": "avg", "activation": "gelu", "embedding_dim": 7}, batch=2)


if __name__ == "__main__":
    unittest.main()
