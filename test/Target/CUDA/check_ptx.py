"""Assembles every kernel of a `kiln-compile --emit=ptx` listing with ptxas.

Usage: check_ptx.py PTXAS ARCH LISTING.ptx
Prints one line per listing ("N kernels assemble for ARCH") or the first
rejected kernel with ptxas's message, and exits non-zero on any failure.
"""
import os
import re
import subprocess
import sys
import tempfile


def main():
    ptxas, arch, listing = sys.argv[1:4]
    text = open(listing).read()
    parts = re.split(r"^// kernel module (\S+)\n", text, flags=re.M)
    kernels = list(zip(parts[1::2], parts[2::2]))
    if not kernels:
        print(f"{listing}: no kernels")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "kernel.ptx")
        for name, ptx in kernels:
            if f".target {arch}" not in ptx:
                print(f"{name}: PTX is not for {arch}")
                return 1
            with open(source, "w") as f:
                f.write(ptx)
            result = subprocess.run(
                [ptxas, "-arch", arch, "-o", os.path.join(tmp, "kernel.cubin"), source],
                capture_output=True, text=True)
            if result.returncode != 0:
                print(f"{name}: ptxas rejects it for {arch}:\n{result.stderr}")
                return 1
    print(f"{len(kernels)} kernels assemble for {arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
