"""STARFM's similar-pixel rules timed against each other in one process.

``similarity_bands=each`` (each band its own similar pixels: the USDA program, stfusion's only
rule before 2026-12-05) against ``red,nir`` (the paper's, the default where band roles are
known), on cia-1pair mirrored to 1000 x 1000 x 6 in memory, window 31, best of three
alternating runs. ``red,nir`` runs ``starfm_accumulate_bands`` (one similarity test shared by
all bands), ``each`` the per-band ``starfm_accumulate``. The results are in
docs/methods/starfm.md. Run: ``.venv/bin/python benchmarks/bench_starfm_similarity.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from stfusion.cases import named_cases
from stfusion.io import FileSource, Scaling
from stfusion.methods.starfm import STARFM


def _mirrored(path: str, scaling: Scaling | None) -> np.ndarray:
    return np.pad(FileSource(path, scaling).read(), ((0, 0), (0, 750), (0, 750)), mode="symmetric")


def main() -> None:
    warnings.simplefilter("ignore")
    case = named_cases()["cia-1pair"]
    f1 = _mirrored(case.pairs[0][0], case.fine_scaling)
    c1 = _mirrored(case.pairs[0][1], case.coarse_scaling)
    c2 = _mirrored(case.target, case.coarse_scaling)
    best: dict[str, float] = {}
    for _ in range(3):
        for rule in ("each", "red,nir"):
            est = STARFM(window=31, similarity_bands=rule, bands="blue,green,red,nir,swir1,swir2")
            est.fit([(f1, c1)], ratio=10)
            t0 = time.perf_counter()
            est.predict(c2)
            best[rule] = min(best.get(rule, float("inf")), time.perf_counter() - t0)
    ratio = best["red,nir"] / best["each"]
    print(f"each {best['each']:.2f} s, red,nir {best['red,nir']:.2f} s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
