"""VIPSTF's overhead over its base method, in one process, on the real cia-2pair case.

The 250 x 250 x 6 CIA subset (real data, R = 10) is read into memory once. For each base
method (FSDAF, Fit-FC, defaults), this times ``fit`` + ``prepare`` + ``predict`` of

* the base method alone on one pair (the pair closest in time to the target, 2001-10-08), and
* ``vipstf`` with that base on both pairs (the regression pass, the virtual pair read window by
  window, and the base method fitted and run on it),

alternating the two within each repeat and keeping the fastest of ``--repeat`` runs. Numba
kernels are compiled by a first, untimed run of each. Target (issue 15): ratio < 1.5.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_vipstf.py            # about 2 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/bench_vipstf.py --bases fitfc --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numba
import numpy as np

from stfusion.cases import named_cases
from stfusion.io import FileSource
from stfusion.methods import get_method
from stfusion.methods.vipstf import VIPSTF


def _load(case_name: str) -> dict[str, object]:
    case = named_cases()[case_name]
    fines = [FileSource(f, case.fine_scaling).read() for f, _ in case.pairs]
    coarses = [FileSource(c, case.coarse_scaling).read() for _, c in case.pairs]
    return {
        "pairs": list(zip(fines, coarses)),
        "target": FileSource(case.target, case.coarse_scaling).read(),
        "truth": FileSource(case.truth, case.fine_scaling).read(),
        "ratio": case.ratio,
    }


def _timed(est: object, pairs: list, target: np.ndarray, ratio: float) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    pred = est.fit(pairs, ratio=ratio).predict(target).values  # type: ignore[attr-defined]
    return time.perf_counter() - t0, pred


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    err = (pred - truth).reshape(pred.shape[0], -1)
    return float(np.mean(np.sqrt(np.nanmean(err**2, axis=1))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bases", nargs="+", default=["fsdaf", "fitfc"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", default="cia-2pair")
    ap.add_argument("--out", type=Path, default=None, help="write a JSON record here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    data = _load(args.case)
    pairs, target, ratio = data["pairs"], data["target"], data["ratio"]
    rows = []
    for base in args.bases:
        runs = {
            "base": lambda b=base: (get_method(b)(), [pairs[0]]),  # type: ignore[index]
            "vipstf": lambda b=base: (VIPSTF(base=b), pairs),
        }
        best = {k: float("inf") for k in runs}
        rmse = {}
        for k, make in runs.items():  # warm-up: compile the kernels
            est, ps = make()
            _, pred = _timed(est, ps, target, ratio)  # type: ignore[arg-type]
            rmse[k] = _rmse(pred, data["truth"])  # type: ignore[arg-type]
        for _ in range(args.repeat):
            for k, make in runs.items():
                est, ps = make()
                sec, _ = _timed(est, ps, target, ratio)  # type: ignore[arg-type]
                best[k] = min(best[k], sec)
        row = {
            "base": base,
            "base_s": best["base"],
            "vipstf_s": best["vipstf"],
            "ratio": best["vipstf"] / best["base"],
            "rmse_base_pair1": rmse["base"],
            "rmse_vipstf": rmse["vipstf"],
        }
        rows.append(row)
        print(
            f"{base:8s} alone {row['base_s']:7.2f} s  vipstf+{base} {row['vipstf_s']:7.2f} s  "
            f"ratio {row['ratio']:.2f}  (RMSE {row['rmse_base_pair1']:.5f} -> "
            f"{row['rmse_vipstf']:.5f})"
        )
    if args.out:
        record = {
            "case": args.case,
            "repeat": args.repeat,
            "rows": rows,
            "numba_threads": numba.get_num_threads(),
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
