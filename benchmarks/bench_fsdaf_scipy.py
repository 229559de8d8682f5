"""FSDAF's hand-written k-means and thin-plate spline against scipy's, on the real cases.

Issue 12 asks for scipy's k-means++ and RBF thin-plate spline wherever they give the same
results as stfusion's code. This measures both, one process, real data:

* **k-means** (``stfusion.methods.fsdaf_classes.kmeans``: k-means++ seeding, 4 restarts, best
  inertia, numba Lloyd steps until the centres stop moving) against 4 calls of
  ``scipy.cluster.vq.kmeans2(minit="++", iter=100)`` sharing one ``numpy.random.Generator``
  (best inertia kept, centres sorted alike), on FSDAF's own sample of F1 (``fine.sample(
  KMEANS_SAMPLE)``) of cia-1pair, boreas-1pair and lgc-flood, k = 4 and 6, seeds 0 and 1:
  largest centre difference, labels that differ, time (fastest of ``--repeat``, numba
  compiled first).
* **spline** (``stfusion.methods.fsdaf_spline``) through the C2 block means of boreas-1pair
  and lgc-flood (R = 16), evaluated at every fine pixel: the global spline
  (``spline_radius=0``) against ``scipy.interpolate.RBFInterpolator(kernel=
  "thin_plate_spline")``; the local splines (radius 4, FSDAF's default) against one
  ``RBFInterpolator`` per coarse pixel through the same (2 radius + 1)^2 centres (the same
  function) and against ``RBFInterpolator(neighbors=81)`` (scipy's local form: the 81
  nearest centres of each fine pixel, Euclidean).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_fsdaf_scipy.py          # about 2 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/bench_fsdaf_scipy.py --repeat 1 --out /tmp/x.json

Writes ``results/fsdaf_scipy.json`` and prints a Markdown summary (docs/methods/fsdaf.md quotes
it).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.vq import kmeans2, vq
from scipy.interpolate import RBFInterpolator

from stfusion.cases import named_cases
from stfusion.io import FileSource
from stfusion.methods.fsdaf import KMEANS_SAMPLE
from stfusion.methods.fsdaf_classes import kmeans
from stfusion.methods.fsdaf_spline import block_centres, fit_spline

RESULTS = Path(__file__).resolve().parent / "results"
KMEANS_CASES = ("cia-1pair", "boreas-1pair", "lgc-flood")
SPLINE_CASES = ("boreas-1pair", "lgc-flood")
RADIUS = 4


def scipy_kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4) -> np.ndarray:
    """``kmeans``'s scheme with scipy: ``n_init`` k-means++ runs drawing from one Generator,
    the lowest inertia kept, centres sorted as ``kmeans`` sorts them."""
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        c, lab = kmeans2(x, k, iter=100, minit="++", rng=rng)
        inertia = float(((x - c[lab]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = c, inertia
    assert best is not None
    return best[np.lexsort((*best.T[::-1], best.sum(axis=1)))]


def _fastest(repeat: int, fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kw)
        times.append(time.perf_counter() - t)
    return out, min(times)


def kmeans_rows(repeat: int) -> list[dict[str, Any]]:
    kmeans(np.random.default_rng(0).random((200, 3)), 3)  # compile the numba step
    cases = named_cases()
    rows = []
    for name in KMEANS_CASES:
        case = cases[name]
        s = FileSource(case.pairs[0][0], case.fine_scaling).sample(KMEANS_SAMPLE)
        x = s.reshape(s.shape[0], -1).T
        x = np.ascontiguousarray(x[np.isfinite(x).all(axis=1)], dtype=np.float64)
        for k in (4, 6):
            for seed in (0, 1):
                a, ta = _fastest(repeat, kmeans, x, k, seed)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    b, tb = _fastest(repeat, scipy_kmeans, x, k, seed)
                same = a.shape == b.shape
                rows.append(
                    {
                        "case": name,
                        "n": len(x),
                        "bands": x.shape[1],
                        "k": k,
                        "seed": seed,
                        "max_centre_diff": float(np.abs(a - b).max()) if same else None,
                        "labels_differ": int((vq(x, a)[0] != vq(x, b)[0]).sum()) if same else None,
                        "scipy_warnings": len(caught),
                        "hand_s": ta,
                        "scipy_s": tb,
                    }
                )
    return rows


def _block_means(case_name: str) -> tuple[np.ndarray, int, tuple[int, int]]:
    case = named_cases()[case_name]
    c2 = FileSource(case.target, case.coarse_scaling).read().astype(np.float64)
    r = int(case.ratio or 0)
    nb, h, w = c2.shape
    bh, bw = -(-h // r), -(-w // r)
    pad = np.full((nb, bh * r, bw * r), np.nan)
    pad[:, :h, :w] = c2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # partial edge blocks
        vals = np.nanmean(pad.reshape(nb, bh, r, bw, r), axis=(2, 4))
    return vals, r, (h, w)


def _per_pixel_rbf(vals: np.ndarray, r: int, shape: tuple[int, int]) -> np.ndarray:
    """One scipy TPS per coarse pixel through the centres of its (2 RADIUS + 1)^2
    neighbourhood, evaluated at the fine pixels inside it: FSDAF's local spline."""
    nb, bh, bw = vals.shape
    cy, cx = block_centres(shape[0], r), block_centres(shape[1], r)
    out = np.empty((nb, *shape))
    for i in range(bh):
        for j in range(bw):
            ii = np.arange(max(0, i - RADIUS), min(bh, i + RADIUS + 1))
            jj = np.arange(max(0, j - RADIUS), min(bw, j + RADIUS + 1))
            pts = np.stack(np.meshgrid(cy[ii], cx[jj], indexing="ij"), -1).reshape(-1, 2)
            y = vals[:, ii][:, :, jj].reshape(nb, -1).T
            ys, xs = (
                np.arange(i * r, min((i + 1) * r, shape[0])),
                np.arange(j * r, min((j + 1) * r, shape[1])),
            )
            q = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2).astype(float)
            f = RBFInterpolator(pts, y, kernel="thin_plate_spline")(q)
            out[:, ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] = f.T.reshape(nb, len(ys), len(xs))
    return out


def _scipy_tps(vals: np.ndarray, r: int, shape: tuple[int, int], **kw: Any) -> np.ndarray:
    """``RBFInterpolator`` through the coarse centres, at every fine pixel."""
    nb = vals.shape[0]
    cy, cx = block_centres(shape[0], r), block_centres(shape[1], r)
    pts = np.stack(np.meshgrid(cy, cx, indexing="ij"), -1).reshape(-1, 2)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    q = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    f = RBFInterpolator(pts, vals.reshape(nb, -1).T, kernel="thin_plate_spline", **kw)(q)
    return f.T.reshape(nb, *shape)


def _ours(vals: np.ndarray, r: int, shape: tuple[int, int], radius: int) -> np.ndarray:
    return fit_spline(vals, r, shape, radius).evaluate(0, 0, *shape)


def _diff(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = a - b
    return {"max": float(np.abs(d).max()), "rms": float(np.sqrt(np.mean(d**2)))}


def spline_rows(repeat: int) -> list[dict[str, Any]]:
    warm = np.random.default_rng(0).random((1, 4, 4))
    for radius in (0, RADIUS):  # compile the numba evaluation kernels
        _ours(warm, 4, (16, 16), radius)
    rows = []
    for name in SPLINE_CASES:
        vals, r, shape = _block_means(name)
        glob, t_glob = _fastest(repeat, _ours, vals, r, shape, 0)
        loc, t_loc = _fastest(repeat, _ours, vals, r, shape, RADIUS)
        s_glob, ts_glob = _fastest(repeat, _scipy_tps, vals, r, shape)
        s_pix, ts_pix = _fastest(repeat, _per_pixel_rbf, vals, r, shape)
        nn = (2 * RADIUS + 1) ** 2
        s_nn, ts_nn = _fastest(repeat, _scipy_tps, vals, r, shape, neighbors=nn)
        rows.append(
            {
                "case": name,
                "fine": list(shape),
                "coarse": list(vals.shape[1:]),
                "global_vs_scipy": _diff(glob, s_glob),
                "local_vs_scipy_per_pixel": _diff(loc, s_pix),
                "local_vs_scipy_neighbors81": _diff(loc, s_nn),
                "local_vs_global": _diff(loc, glob),
                "scipy_neighbors81_vs_global": _diff(s_nn, glob),
                "seconds": {
                    "global": t_glob,
                    "scipy_global": ts_glob,
                    "local": t_loc,
                    "scipy_per_pixel": ts_pix,
                    "scipy_neighbors81": ts_nn,
                },
            }
        )
    return rows


def _markdown(km: list[dict[str, Any]], sp: list[dict[str, Any]]) -> str:
    lines = [
        "| case | n x bands | k | seed | max centre diff | labels differ | hand s | scipy s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in km:
        lines.append(
            f"| {r['case']} | {r['n']} x {r['bands']} | {r['k']} | {r['seed']} | "
            f"{r['max_centre_diff']} | {r['labels_differ']} | {r['hand_s']:.3f} | "
            f"{r['scipy_s']:.3f} |"
        )
    lines += [
        "",
        "| case | compared | max diff | RMS diff | stfusion s | scipy s |",
        "|---|---|---|---|---|---|",
    ]
    for r in sp:
        t = r["seconds"]
        for key, ours, theirs in (
            ("global_vs_scipy", t["global"], t["scipy_global"]),
            ("local_vs_scipy_per_pixel", t["local"], t["scipy_per_pixel"]),
            ("local_vs_scipy_neighbors81", t["local"], t["scipy_neighbors81"]),
            ("local_vs_global", t["local"], t["global"]),
        ):
            d = r[key]
            lines.append(
                f"| {r['case']} | {key} | {d['max']:.2e} | {d['rms']:.2e} | {ours:.3f} | "
                f"{theirs:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing, fastest kept")
    ap.add_argument("--out", type=Path, default=RESULTS / "fsdaf_scipy.json")
    args = ap.parse_args()
    km = kmeans_rows(args.repeat)
    sp = spline_rows(args.repeat)
    md = _markdown(km, sp)
    print(md)
    record = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "command": f"benchmarks/bench_fsdaf_scipy.py --repeat {args.repeat}",
        "kmeans": km,
        "spline": sp,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
