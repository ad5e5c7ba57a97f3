"""Checks the "cost_model" of a manifest (docs/artifacts.md) against costs
computed another way.

  check_cost_model.py static DYNAMIC.json STATIC.json NAME=D0,D1 ...
      For each entry point of the dynamic-shape manifest with a cost model,
      evaluates it at the given input shapes and compares with the "cost" of
      the same entry point in a manifest compiled with those static shapes.
  check_cost_model.py report DYNAMIC.json REPORT.json N
      Compares the model at every size N with the totals of
      `kiln-compile --emit=cost --json --dynamic-dim-size N` of the same
      graph (which sets every `?` to N).

Prints one line per entry point and exits 1 on any difference.
"""

import json
import sys


def evaluate(model, shapes):
    sizes = []
    for symbol in model["symbols"]:
        values = {shapes[d["input"]][d["axis"]] for d in symbol["dims"]}
        if len(values) != 1:
            raise SystemExit(f"symbol {symbol['name']}: tied dims differ")
        sizes.append(values.pop())

    def poly(terms):
        total = 0
        for coefficient, exponents in terms:
            value = coefficient
            for size, e in zip(sizes, exponents):
                value *= size**e
            total += value
        return total

    return poly(model["flops"]), poly(model["bytes"])


def main():
    mode, dynamic_path, other_path = sys.argv[1:4]
    dynamic = json.load(open(dynamic_path))
    other = json.load(open(other_path))
    ok = True
    for entry in dynamic["entry_points"]:
        model = entry.get("cost_model")
        if model is None:
            print(f"{entry['name']}: no cost model: {entry.get('cost_model_note')}")
            continue
        if mode == "static":
            shapes = {}
            for arg in sys.argv[4:]:
                name, dims = arg.split("=")
                shapes[name] = [int(d) for d in dims.split(",")]
            cost = next(e["cost"] for e in other["entry_points"]
                        if e["name"] == entry["name"])
            expected = (cost["flops"], cost["bytes"])
        else:
            n = int(sys.argv[4])
            shapes = {i["name"]: [n if d == -1 else d for d in i["shape"]]
                      for i in entry["inputs"]}
            total = next(f["total"] for f in other["functions"]
                         if f["name"] == entry["name"])
            expected = (total["flops"],
                        total["bytes_read"] + total["bytes_written"])
        fitted = evaluate(model, shapes)
        same = all(abs(a - b) <= 1e-9 * max(1, abs(b))
                   for a, b in zip(fitted, expected))
        ok &= same
        names = ", ".join(s["name"] for s in model["symbols"])
        print(f"{entry['name']}: symbols {names}: fit {fitted[0]:.0f} flops "
              f"{fitted[1]:.0f} bytes, expected {expected[0]:.0f} flops "
              f"{expected[1]:.0f} bytes: {'ok' if same else 'DIFFERENT'}")
    sys.exit(0 if ok else 1)


main()
