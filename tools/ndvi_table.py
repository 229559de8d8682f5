"""Mean RMSE on NDVI computed from the named cases' red and NIR bands, per method.

    python tools/ndvi_table.py [--methods additive,edcstfn,...] [--cases cia-1pair,...]

Loads each case as ``tests/test_variables.py`` does (``load(case, ndvi=True)``: one NDVI
band, reflectance x 10000 scaled first), runs every method with its defaults (the deep ones
with their shipped weights) and prints a Markdown table of the mean RMSE and the change
against the additive baseline (docs/deep.md, "NDVI with the shipped weights"). Needs
../shared/data beside the repository and torch for the deep methods.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

ONE_PAIR = "additive,edcstfn,dcstfn,vitgan,student,ganstfm,fitfc,fsdaf2"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=ONE_PAIR)
    ap.add_argument("--cases", default="cia-1pair,boreas-1pair,lgc-flood,boreas-2pair")
    a = ap.parse_args()
    from stfusion.methods import get_method
    from stfusion.metrics import rmse
    from test_variables import load, run  # the NDVI loading the tests check

    warnings.simplefilter("ignore")
    methods = a.methods.split(",")
    print("| case | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for case in a.cases.split(","):
        pairs, target, truth, ratio = load(case, ndvi=True)
        cells, base = [], None
        for name in methods:
            cls = get_method(name)
            if not cls.tags.min_pairs <= len(pairs) <= (cls.tags.max_pairs or len(pairs)):
                cells.append("")
                continue
            score = float(np.mean(rmse(run(cls, pairs, target, ratio), truth)))
            base = score if name == "additive" else base
            change = "" if base is None or name == "additive" else f" ({score / base - 1:+.1%})"
            cells.append(f"{score:.4f}{change}")
        print(f"| {case} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
