"""What the matmul benchmarks share: compiling a kiln function to an
artifact and timing it with `kiln bench`."""

import os
import re
import subprocess


def artifact_path(src, tmp, flags):
    """Where kiln_time writes the artifact of `src` compiled with `flags`."""
    return os.path.join(tmp, os.path.basename(src) + "".join(flags).replace("-", "") + ".kiln")


def kiln_time(build, src, inputs, tmp, iters, flags, env):
    """Median seconds per call of `src` compiled with `flags` for the CPU,
    `kiln bench` with 3 warm-up calls and `iters` timed ones; `inputs` is
    {name: .npy path}."""
    art = artifact_path(src, tmp, flags)
    subprocess.run([os.path.join(build, "bin", "kiln-compile"), src, "--target", "cpu", "-o", art, *flags],
                   check=True, env=env)
    cmd = [os.path.join(build, "bin", "kiln"), "bench", art, "--warmup", "3", "--iters", str(iters)]
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={path}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return float(re.search(r"p50[^0-9]*([0-9.]+)", out).group(1)) / 1e3
