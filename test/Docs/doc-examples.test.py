"""Parses and verifies every ```mlir example in the hand-written guides.

Usage: check_doc_examples.py KILN_OPT DOCS_DIR
Each block is run through `kiln-opt` on its own; a block that fails is
reported with its file and line, and the script exits non-zero.
"""

import pathlib
import re
import subprocess
import sys


def main():
    kiln_opt, docs = sys.argv[1], pathlib.Path(sys.argv[2])
    failures = 0
    checked = 0
    for md in sorted(docs.glob("*.md")):
        text = md.read_text()
        for match in re.finditer(r"^```mlir\n(.*?)^```", text, re.S | re.M):
            line = text[: match.start()].count("\n") + 1
            block = match.group(1)
            result = subprocess.run([kiln_opt, "-"], input=block, capture_output=True, text=True)
            checked += 1
            if result.returncode != 0:
                failures += 1
                print(f"{md.name}:{line}: example does not verify:\n{result.stderr}")
            else:
                print(f"{md.name}:{line}: ok")
    print(f"{checked} examples, {failures} failing")
    if checked == 0:
        print("no examples found")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
