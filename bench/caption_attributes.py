#!/usr/bin/env python3
"""Per-attribute accuracy of a captioner on the shapes set, from the lines
`kiln caption NAME.kiln --run RUN --images SET.jsonl` prints
(`IMAGE<TAB>CAPTION<TAB>(reference: REFERENCE[, exact])`): the share of
images whose caption is well-formed, and whose count, size, colour, shape,
position and colour-shape pair agree with the reference's.

  kiln caption cap.kiln --run cap-run/ --images shapes/novel.jsonl > novel.txt
  bench/caption_attributes.py novel.txt
"""

import re
import sys

CAPTION = re.compile(r"^(one|two|three) (small|large) (red|green|blue|yellow|purple|white) "
                     r"(circle|square|triangle)s? (on the left|on the right|at the top|at the bottom)$")
ATTRIBUTES = ("count", "size", "colour", "shape", "position")


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    rows = []
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and parts[2].startswith("(reference: "):
                reference = parts[2][len("(reference: "):].rstrip(")").split(", exact")[0]
                rows.append((parts[1], reference))
    if not rows:
        sys.exit(f"{sys.argv[1]}: no 'kiln caption --images' lines with references")
    right = dict.fromkeys(ATTRIBUTES + ("colour+shape", "well-formed"), 0)
    for caption, reference in rows:
        got, want = CAPTION.match(caption), CAPTION.match(reference)
        if not want:
            sys.exit(f"reference {reference!r} is not a shapes-set caption")
        if not got:
            continue
        right["well-formed"] += 1
        for i, name in enumerate(ATTRIBUTES):
            right[name] += got.group(i + 1) == want.group(i + 1)
        right["colour+shape"] += got.group(3, 4) == want.group(3, 4)
    print(f"{len(rows)} images: " + ", ".join(f"{k} {100 * v / len(rows):.1f}%" for k, v in right.items()))


if __name__ == "__main__":
    main()
