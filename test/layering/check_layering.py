#!/usr/bin/env python3
"""Checks that a static library uses no symbol another one defines.

    check_layering.py LIB FORBIDDEN...

The layers of docs/design.md ("Layers") are libraries that may only call
down: the dialect into no pass, the shared lowering into no backend, one
backend into no other. CMake's LINK_LIBS say what a library links; this
says what its object code really calls. Exit status 1 and the offending
symbols when LIB has an undefined symbol that a FORBIDDEN library defines.
"""
import os
import subprocess
import sys


def symbols(library, defined):
    flag = "--defined-only" if defined else "--undefined-only"
    out = subprocess.run(["nm", "-g", flag, "--format=posix", library],
                         check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # "archive[member]:" headers and blank lines have no type column.
        if len(parts) >= 2 and not line.endswith(":"):
            names.add(parts[0])
    return names


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names),
                         capture_output=True, text=True).stdout
    return out.splitlines() or names


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    library, forbidden = sys.argv[1], sys.argv[2:]
    used = symbols(library, defined=False) - symbols(library, defined=True)
    failed = False
    for other in forbidden:
        crossing = sorted(used & symbols(other, defined=True))
        name = os.path.basename(library)
        if crossing:
            failed = True
            print(f"{name} uses {len(crossing)} symbol(s) of "
                  f"{os.path.basename(other)}, a layer it must not call:")
            for symbol in demangle(crossing[:20]):
                print("  " + symbol)
        else:
            print(f"{name} uses nothing of {os.path.basename(other)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
