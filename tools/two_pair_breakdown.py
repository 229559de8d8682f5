"""Why a two-pair deep prediction wins or loses against the two-pair additive mean.

    python tools/two_pair_breakdown.py CASE [--weights CKPT] [--model edcstfn]

For a two-pair named case (cia-2pair, boreas-2pair, kranj-2pair) prints the mean RMSE of, per
pair, the additive prediction A, the regression baseline R (the untrained networks' baseline,
``tests/test_dl_agnostic.py::regression_reference``) and the network's one-pair prediction N;
the means of the two pairs' A, R and N; and the blend ``mean A + lambda (mean N - mean A)``
for a few lambda (chosen with the truth, so an upper bound, not a method). docs/deep.md,
"Why, per pair". Held-out weights come from ``tools/deep_generalisation.sh``
(``$OUT/loso_<site>/<model>.ckpt``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case")
    ap.add_argument("--weights", default="demo", help="checkpoint (default: the shipped one)")
    ap.add_argument("--model", default="edcstfn")
    a = ap.parse_args()
    from stfusion.cases import named_cases
    from stfusion.methods import get_method
    from stfusion.metrics import evaluate
    from test_dl_agnostic import regression_reference

    warnings.simplefilter("ignore")
    c = named_cases()[a.case]
    if len(c.pairs) != 2:
        raise SystemExit(f"{a.case}: needs a two-pair case")

    def rd(path: str, scale: float | None) -> np.ndarray:
        with rasterio.open(path) as ds:
            return ds.read().astype(np.float64) * (scale or 1.0)

    fines = [rd(f, c.fine_scale) for f, _ in c.pairs]
    coarses = [rd(x, c.coarse_scale) for _, x in c.pairs]
    target, truth = rd(c.target, c.coarse_scale), rd(c.truth, c.fine_scale)

    def score(p: np.ndarray) -> float:
        return evaluate(p.astype(np.float32), truth.astype(np.float32), ratio=c.ratio).mean["rmse"]

    cls = get_method(a.model)
    scaling = {"fine_scaling": c.fine_scaling, "coarse_scaling": c.coarse_scaling}
    add = [f + target - x for f, x in zip(fines, coarses)]
    reg = [regression_reference(f, x, target) for f, x in zip(fines, coarses)]
    net = [
        cls(weights=a.weights).fit([p], **scaling).predict(c.target).values.astype(np.float64)
        for p in c.pairs
    ]
    print(f"{a.case}, {a.model} ({a.weights})")
    for name, preds in (("A additive", add), ("R regression", reg), ("N network", net)):
        one = ", ".join(f"{score(p):.5f}" for p in preds)
        print(f"  {name:13s} pair 1, 2: {one}   mean of the two: {score(sum(preds) / 2):.5f}")
    mean_a, mean_n = sum(add) / 2, sum(net) / 2
    base = score(mean_a)
    blends = [
        f"{lam:g}: {score(mean_a + lam * (mean_n - mean_a)) / base - 1:+.1%}"
        for lam in (0.25, 0.5, 0.75, 1.0)
    ]
    print("  mean A + lambda (mean N - mean A), vs mean A: " + ", ".join(blends))


if __name__ == "__main__":
    main()
