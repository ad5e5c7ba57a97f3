"""Python side of Kiln.

Today: reading and writing the files Kiln artifacts use (safetensors
weights, .npy inputs and outputs) with numpy. The builder API and bindings
of the frontends milestone will live here too.
"""

from .io import load_safetensors, save_safetensors  # noqa: F401
