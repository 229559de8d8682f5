"""A slow, literal Fit-FC for checking the fast one. Not used by the package.

Wang, Q., Atkinson, P. M. (2018). Spatio-temporal fusion for daily Sentinel-2 images. Remote
Sensing of Environment 204, 31-42.

Written from the paper's equations and the conventions in the module docstring of
``stfusion.methods.fitfc``, without importing anything from ``stfusion``: plain Python loops
and floats (float64), one coarse pixel or one fine pixel at a time.

* Coarse pixels: means of the finite values in ``r x r`` blocks anchored at (0, 0); partial
  blocks at the right and bottom edges; NaN for a block with no finite value.
* RM fitting (eqs. 1-3), per band and coarse pixel X: least squares ``C2 = a C1 + b`` over
  the coarse pixels of the ``(2 h + 1)^2`` window around X inside the grid where C1 and C2
  are finite. Fewer than two such pixels, fewer than a quarter of a whole window's pixels
  (sides capped at the grid's height and width), or ``sum (C1 - mean)^2 <= 1e-12 sum C1^2``:
  ``a = 1``, ``b = mean(C2) - mean(C1)``; none: NaN. ``F_RM(x) = a(X) F1(x) + b(X)`` and
  ``R(X) = C2(X) - a(X) C1(X) - b(X)``; a NaN residual counts as 0.
* Residual interpolation: Keys' cubic convolution (a = -0.5) in rows and columns; fine pixel
  p sits at ``(p + 0.5) / r - 0.5`` coarse pixels; taps outside the coarse grid are mirrored
  (half-sample symmetric).
* SF + RC (eqs. 4-7): the candidates of centre c are the pixels n of the ``window`` x
  ``window`` neighbourhood inside the scene whose similarity bands of F1 and whose
  ``F_RM + r`` in every band are finite. They are ranked by ``sum_k (F1_k(n) - F1_k(c))^2``
  (band order, float64), then by squared distance, then by row offset, then by column
  offset; the first ``similar`` are kept. ``d = 1 + dist / (window / 2)``,
  ``F2(c) = sum (F_RM + r)(n) / d / sum 1 / d``.
* A centre with a NaN similarity band in F1, or with no candidate, takes C2(c).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

KEYS_A = -0.5


def block_means(image: np.ndarray, r: int) -> list[list[list[float]]]:
    """``[band][I][J]`` means of the finite values of each ``r x r`` block."""
    nb, h, w = image.shape
    hc, wc = -(-h // r), -(-w // r)
    out = []
    for b in range(nb):
        plane = []
        for i in range(hc):
            row = []
            for j in range(wc):
                vals = [
                    float(image[b, y, x])
                    for y in range(i * r, min((i + 1) * r, h))
                    for x in range(j * r, min((j + 1) * r, w))
                    if math.isfinite(float(image[b, y, x]))
                ]
                row.append(math.fsum(vals) / len(vals) if vals else math.nan)
            plane.append(row)
        out.append(plane)
    return out


def regress(
    c1: list[list[float]], c2: list[list[float]], half: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Local least-squares slope and intercept of ``c2 = a c1 + b`` for one band."""
    hc, wc = len(c1), len(c1[0])
    full = min(2 * half + 1, hc) * min(2 * half + 1, wc)  # a whole window, capped by the grid
    a = [[math.nan] * wc for _ in range(hc)]
    b = [[math.nan] * wc for _ in range(hc)]
    for i in range(hc):
        for j in range(wc):
            pts = [
                (c1[y][x], c2[y][x])
                for y in range(max(0, i - half), min(hc, i + half + 1))
                for x in range(max(0, j - half), min(wc, j + half + 1))
                if math.isfinite(c1[y][x]) and math.isfinite(c2[y][x])
            ]
            if not pts:
                continue
            n = len(pts)
            m1 = math.fsum(u for u, _ in pts) / n
            m2 = math.fsum(v for _, v in pts) / n
            sxx = math.fsum((u - m1) ** 2 for u, _ in pts)
            sxy = math.fsum((u - m1) * (v - m2) for u, v in pts)
            sq = math.fsum(u * u for u, _ in pts)
            if n >= 2 and n >= full / 4 and sxx > 1e-12 * sq:
                a[i][j] = sxy / sxx
            else:
                a[i][j] = 1.0
            b[i][j] = m2 - a[i][j] * m1
    return a, b


def keys(x: float) -> float:
    """Keys' cubic convolution kernel."""
    x = abs(x)
    if x <= 1:
        return (KEYS_A + 2) * x**3 - (KEYS_A + 3) * x**2 + 1
    if x < 2:
        return KEYS_A * x**3 - 5 * KEYS_A * x**2 + 8 * KEYS_A * x - 4 * KEYS_A
    return 0.0


def mirror(i: int, n: int) -> int:
    while i < 0 or i >= n:
        i = -1 - i if i < 0 else 2 * n - 1 - i
    return i


def bicubic(coarse: list[list[float]], r: int, y: int, x: int) -> float:
    """The residual field at fine pixel (y, x); NaN residuals count as 0."""
    hc, wc = len(coarse), len(coarse[0])
    u = (y + 0.5) / r - 0.5
    v = (x + 0.5) / r - 0.5
    fu, fv = math.floor(u), math.floor(v)
    total = 0.0
    for p in range(fu - 1, fu + 3):
        for q in range(fv - 1, fv + 3):
            val = coarse[mirror(p, hc)][mirror(q, wc)]
            total += keys(u - p) * keys(v - q) * (val if math.isfinite(val) else 0.0)
    return total


def fitfc(
    f1: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    r: int,
    *,
    regression_window: int,
    window: int,
    similar: int,
    similarity_bands: Sequence[int] | None = None,
) -> np.ndarray:
    """Fit-FC prediction ``(band, H, W)`` from fine-grid arrays F1, C1 and C2."""
    nb, h, w = f1.shape
    sim = list(range(nb)) if similarity_bands is None else list(similarity_bands)
    cc1 = block_means(c1, r)
    cc2 = block_means(c2, r)
    pred = np.full((nb, h, w), math.nan)
    for band in range(nb):
        a, b = regress(cc1[band], cc2[band], regression_window // 2)
        res = [
            [cc2[band][i][j] - (a[i][j] * cc1[band][i][j] + b[i][j]) for j in range(len(a[0]))]
            for i in range(len(a))
        ]
        for y in range(h):
            for x in range(w):
                i, j = y // r, x // r
                pred[band, y, x] = a[i][j] * float(f1[band, y, x]) + b[i][j] + bicubic(res, r, y, x)
    half = window // 2
    out = np.full((nb, h, w), math.nan)
    for y in range(h):
        for x in range(w):
            centre = [float(f1[k, y, x]) for k in sim]
            if not all(math.isfinite(v) for v in centre):
                out[:, y, x] = c2[:, y, x]
                continue
            cands = []
            for dy in range(-half, half + 1):
                for dx in range(-half, half + 1):
                    yy, xx = y + dy, x + dx
                    if not (0 <= yy < h and 0 <= xx < w):
                        continue
                    spec = [float(f1[k, yy, xx]) for k in sim]
                    if not all(math.isfinite(v) for v in spec):
                        continue
                    if not all(math.isfinite(pred[bb, yy, xx]) for bb in range(nb)):
                        continue
                    diff = 0.0
                    for v, cv in zip(spec, centre):
                        diff += (v - cv) * (v - cv)
                    cands.append((diff, dy * dy + dx * dx, dy, dx))
            cands.sort()
            chosen = cands[:similar]
            if not chosen:
                out[:, y, x] = c2[:, y, x]
                continue
            weights = [1.0 / (1.0 + math.sqrt(d2) / (window / 2.0)) for _, d2, _, _ in chosen]
            for bb in range(nb):
                num = sum(
                    wt * pred[bb, y + dy, x + dx] for wt, (_, _, dy, dx) in zip(weights, chosen)
                )
                out[bb, y, x] = num / sum(weights)
    return out
