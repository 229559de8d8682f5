"""How far a blend of stfusion's methods could go on the named cases, chosen with the truth.

    python tools/blend_bound.py [--cases cia-1pair,...] [--methods fitfc,fsdaf,...] [--most 4]

Runs each method on each case as ``stfusion bench --multi-pair vip`` does (``run_one``: the
deep methods with their shipped weights, one-pair methods as VIPSTF over them on two-pair
cases, runs whose weights saw the target skipped), then scores the mean of every set of 1 to
``--most`` predictions (equal weights) with ``stfusion evaluate``'s mean RMSE over bands and
prints the best sets against the additive baseline. The sets are chosen *with the truth*, so
the best is an upper bound for any fixed equal-weight blend of these methods (the ensemble's
weights are not fixed: it could beat the bound locally, but it chooses without the truth).
Answers "would a better ensemble reach issue 15's 15 % over additive?" (docs/methods/
ensemble.md, "How far a blend could go"). Needs ../shared/data and torch for the deep
methods; about 10 minutes for the six named cases on two cores.
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np

CASES = "cia-1pair,boreas-1pair,lgc-flood,cia-2pair,boreas-2pair,kranj-2pair"
METHODS = "fitfc,fsdaf,fsdaf2,starfm,estarfm,robot,student,edcstfn,vitgan,dcstfn,ganstfm,stfdcnn"


def predictions(case_name: str, methods: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each method's prediction on the case (as the bench makes it) and the truth."""
    from stfusion.bench import _truth, run_one
    from stfusion.cases import named_cases

    case = named_cases()[case_name]
    out: dict[str, np.ndarray] = {}
    for m in ["additive", *methods]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = run_one(case, m, (), "vip")
        if run.prediction is None:
            print(f"  {case_name}: {run.method} {run.status}: {run.reason[:90]}")
            continue
        out[run.method] = np.asarray(run.prediction, dtype=np.float64)
    return out, _truth(case)[0].astype(np.float64)


def mean_rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    from stfusion.metrics import rmse

    return float(np.mean(rmse(pred, truth)))


def _cell(scored: tuple[float, tuple[str, ...]], base: float) -> str:
    score, combo = scored
    return f"{' + '.join(combo)} {score:.5f} ({100 * (score / base - 1):+.1f} %)"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--most", type=int, default=4, help="largest set blended")
    ap.add_argument("--show", type=int, default=3, help="best sets shown per case")
    a = ap.parse_args()
    print("| case | additive | best method | best blend (chosen with the truth) | 15 % target |")
    print("|---|---|---|---|---|")
    for name in a.cases.split(","):
        preds, truth = predictions(name, a.methods.split(","))
        base = mean_rmse(preds.pop("additive"), truth)
        scored = []
        for k in range(1, min(a.most, len(preds)) + 1):
            for combo in itertools.combinations(sorted(preds), k):
                blend = sum(preds[m] for m in combo) / k
                scored.append((mean_rmse(blend, truth), combo))
        scored.sort()
        single = min(s for s in scored if len(s[1]) == 1)
        best = "; ".join(_cell(s, base) for s in scored[: a.show])
        print(f"| {name} | {base:.5f} | {_cell(single, base)} | {best} | {0.85 * base:.5f} |")


if __name__ == "__main__":
    main()
