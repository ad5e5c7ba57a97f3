"""Assembles a `kiln-compile --emit=ptx` listing with ptxas.

Usage: check_ptx.py PTXAS ARCH LISTING.ptx
The listing is one PTX module holding every kernel (as the artifact embeds
it); ptxas must accept the file as it is, and then each module the listing
names. Prints "N kernels assemble for ARCH (M module(s))" or the first
rejection with ptxas's message, and exits non-zero on any failure.
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
        def rejection(source):
            """ptxas's message when it rejects `source`, else None."""
            result = subprocess.run(
                [ptxas, "-arch", arch, "-o", os.path.join(tmp, "out.cubin"), source],
                capture_output=True, text=True)
            return result.stderr if result.returncode != 0 else None

        # The listing as it is.
        message = rejection(listing)
        if message is not None:
            print(f"{listing}: ptxas rejects the listing for {arch}:\n{message}")
            return 1
        source = os.path.join(tmp, "kernel.ptx")
        for name, ptx in kernels:
            if f".target {arch}" not in ptx:
                print(f"{name}: PTX is not for {arch}")
                return 1
            with open(source, "w") as f:
                f.write(ptx)
            message = rejection(source)
            if message is not None:
                print(f"{name}: ptxas rejects it for {arch}:\n{message}")
                return 1
    entries = sum(len(re.findall(r"^\.visible \.entry ", ptx, flags=re.M)) for _, ptx in kernels)
    print(f"{entries} kernels assemble for {arch} ({len(kernels)} module(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
