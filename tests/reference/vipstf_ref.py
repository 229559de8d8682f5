"""A slow, literal VIPSTF virtual pair for checking the fast one. Not used by the package.

Wang, Q., Tang, Y., Tong, X., Atkinson, P. M. (2020). Virtual image pair-based
spatio-temporal fusion. Remote Sensing of Environment 249, 112009.

Written from the equations as stated in the module docstring of ``stfusion.methods.vipstf``
(labels (V1)-(V2) there), without importing anything from ``stfusion``: plain loops over
pixels, one regression design matrix per band and subset, ``numpy.linalg.lstsq`` on the design
matrix itself (not on the cross products, as the fast code does).

* (V1) per band and non-empty subset S of the pairs: rows ``(C_i(x) for i in S, 1)`` and
  ``y = C_0(x)`` over the fine-grid pixels x where every ``C_i``, i in S, and ``C_0`` are
  finite; least squares (minimum norm when singular). Fewer rows than columns: ``a_k = 1``
  for S's first pair k, ``b = mean(C_0 - C_k)`` over those rows; no row: no coefficients.
* (V2) per pixel and band, S(x) = the pairs whose fine and coarse values are both finite;
  ``F_v = sum_{i in S} a_i F_i + b``, ``C_v = sum_{i in S} a_i C_i + b`` with S(x)'s
  coefficients; NaN where S(x) is empty or has no coefficients.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np


def regress_subset(
    coarses: list[np.ndarray],
    target: np.ndarray,
    band: int,
    subset: tuple[int, ...],
    intercept: bool = True,
) -> tuple[dict[int, float], float] | None:
    """(V1) for one band and subset: ``({pair: a}, b)`` or None without data."""
    _, h, w = target.shape
    rows: list[list[float]] = []
    ys: list[float] = []
    for y in range(h):
        for x in range(w):
            t = float(target[band, y, x])
            vals = [float(coarses[i][band, y, x]) for i in subset]
            if not math.isfinite(t) or not all(math.isfinite(v) for v in vals):
                continue
            rows.append(vals + ([1.0] if intercept else []))
            ys.append(t)
    if not rows:
        return None
    ncol = len(subset) + (1 if intercept else 0)
    if len(rows) < ncol:
        k = subset[0]
        b = sum(yv - r[0] for yv, r in zip(ys, rows)) / len(rows)
        return {i: (1.0 if i == k else 0.0) for i in subset}, b
    coef = np.linalg.lstsq(np.array(rows), np.array(ys), rcond=None)[0]
    a = {i: float(coef[j]) for j, i in enumerate(subset)}
    return a, (float(coef[-1]) if intercept else 0.0)


def virtual_pair(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(V1)-(V2): the virtual fine and coarse images ``(band, H, W)`` (float64)."""
    n = len(fines)
    nb, h, w = target.shape
    models: dict[tuple[int, tuple[int, ...]], tuple[dict[int, float], float] | None] = {}
    for band in range(nb):
        for size in range(1, n + 1):
            for subset in combinations(range(n), size):
                models[band, subset] = regress_subset(coarses, target, band, subset, intercept)
    vf = np.full((nb, h, w), math.nan)
    vc = np.full((nb, h, w), math.nan)
    for band in range(nb):
        for y in range(h):
            for x in range(w):
                subset = tuple(
                    i
                    for i in range(n)
                    if math.isfinite(float(fines[i][band, y, x]))
                    and math.isfinite(float(coarses[i][band, y, x]))
                )
                model = models.get((band, subset)) if subset else None
                if model is None:
                    continue
                a, b = model
                vf[band, y, x] = sum(a[i] * float(fines[i][band, y, x]) for i in subset) + b
                vc[band, y, x] = sum(a[i] * float(coarses[i][band, y, x]) for i in subset) + b
    return vf, vc
