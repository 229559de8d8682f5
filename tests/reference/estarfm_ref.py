"""A slow, literal ESTARFM for checking the fast one. Not used by the package.

Zhu, X., Chen, J., Gao, F., Chen, X., Masek, J.G. (2010). An enhanced spatial and temporal
adaptive reflectance fusion model for complex heterogeneous regions. Remote Sensing of
Environment 114(11), 2610-2623.

Written from the paper's four implementation steps and the rules of the authors' program
listed in the module docstring of ``stfusion.methods.estarfm``, without importing anything
from ``stfusion``: one output pixel at a time, explicit loops over the window, plain Python
floats (float64), the F-test p-value from ``scipy.stats.f``. Notation: F_k / C_k = fine /
coarse image of pair k (k = 1: t_m, k = 2: t_n), C_0 = coarse target (t_p), c = the centre
pixel, i = a pixel of the window.

Steps (one centre pixel c):

1. A pixel is *valid* when every band of F_1, C_1, F_2, C_2, C_0 is finite; outside the
   scene is invalid. An invalid centre gives NaN in every band.
2. Temporal weights (the paper's T_k): per band, with the sums over the valid pixels of the
   window, ``d_k = |sum C_0 - sum C_k|``, ``T_1 = (1/d_1) / (1/d_1 + 1/d_2) = d_2 / (d_1 + d_2)``
   and ``T_2 = d_1 / (d_1 + d_2)``; 0.5 each when both are 0.
3. Similar pixels: valid pixels i with ``|F_k(i) - F_k(c)| <= thr[k][b]`` for both pairs k
   and every band b (the centre always qualifies).
4. Fewer than ``min_similar`` similar pixels: per band, with the window means m over the
   valid pixels, ``T_1 (F_1(c) + m(C_0) - m(C_1)) + T_2 (F_2(c) + m(C_0) - m(C_2))``.
5. Otherwise, per similar pixel i: the spectral correlation R_i between the vectors
   (F_1(i, all bands), F_2(i, all bands)) and (C_1(i, ...), C_2(i, ...)) (Pearson r; 0.5 when
   undefined; for one band the reference's ``1 - (|F_1-C_1|/(F_1+C_1) + |F_2-C_2|/(F_2+C_2))/2``),
   the distance ``d_i = 1 + sqrt(dx^2 + dy^2) / half``, the combined distance
   ``D_i = (1 - R_i) d_i + 1e-7`` and the weight ``W_i = (1/D_i) / sum(1/D_i)``.
6. Per band, the conversion coefficient V: linear regression of the 2n fine values
   (F_1(i), F_2(i)) on the 2n coarse values (C_1(i), C_2(i)) of the similar pixels. V is the
   slope when ``|mean C_1(i) - mean C_2(i)| >= min_change``, the regression's F-test p-value
   is ``<= alpha`` and ``0 < slope <= v_max``; otherwise V = 1. With
   ``regression="coarse-pixel"`` (the paper's conversion coefficient between a fine pixel
   and its coarse pixel) the coarse values of the regression (and of the min_change test)
   are the similar pixels' coarse-pixel values: the mean of the finite values of C_k over
   the ``ratio x ratio`` block (anchored at the array origin) the pixel lies in.
7. Per band, ``F_k' = F_k(c) + V sum_i W_i (C_0(i) - C_k(i))`` and the prediction
   ``T_1 F_1' + T_2 F_2'``; a prediction ``<= data_min`` or ``>= data_max`` is replaced by
   ``T_1 sum W_i F_1(i) + T_2 sum W_i F_2(i)``.

Automatic settings (``"auto"``, :func:`auto_settings`), computed here from the data and not
taken from the fast estimator: the program's ``DN_min``, ``DN_max`` and ``DN_max * 0.02``
(ESTARFM.pro lines 66-67, 307) in the data's units. From lo, hi = the 0.5th and 99.5th
percentiles of every finite value of F_1 and F_2: lo >= -0.5 and hi <= 1.5 is reflectance
(0, 1, 0.02), or NDVI (-1, 1, 0.02) for one band with lo < -0.05; 150 <= lo, hi <= 400 is
temperature in kelvin; integers within -5000..15000 are those x 10000 (0, 10000, 200 or
-10000, 10000, 200 for one band with lo < -500); without a physical range (kelvin, other) the
range check is off (-inf, inf) and min_change is 2 % of hi - lo. When the variable was inferred
(``variable="auto"``) and has a physical range (DN_min, DN_max), and the pair fine images hold
a value more than 5 % of DN_max - DN_min below DN_min or above DN_max, the automatic data_min
and data_max are widened to the smallest and largest finite values of F_1 and F_2 (a bound
already beyond them stays); min_change keeps DN_max * 0.02 (docs/methods/estarfm.md, below the
table of constants that depend on the variable).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Grid2D = list[list[float]]


def auto_settings(
    F1: np.ndarray,
    F2: np.ndarray,
    *,
    variable: str = "auto",
    data_min: float | str = "auto",
    data_max: float | str = "auto",
    min_change: float | str = "auto",
) -> tuple[float, float, float]:
    """(data_min, data_max, min_change) with every ``"auto"`` computed from F_1 and F_2 as the
    module docstring says; numbers are kept."""
    values = [float(v) for img in (F1, F2) for v in np.ravel(img) if math.isfinite(v)]
    bands = np.shape(F1)[0]
    lo, hi = np.percentile(values, [0.5, 99.5]) if values else (0.0, 0.0)
    integers = all(v == round(v) for v in values)
    inferred = variable == "auto"
    if variable == "auto":
        if not values or (lo >= -0.5 and hi <= 1.5):
            variable = "ndvi" if values and bands == 1 and lo < -0.05 else "reflectance"
        elif lo >= 150.0 and hi <= 400.0:
            variable = "lst"
        elif lo >= -5000.0 and hi <= 15000.0 and integers:
            variable = "ndvi" if bands == 1 and lo < -500.0 else "reflectance"
        else:
            variable = "other"
    dn_max = 10000.0 if values and hi > 1.5 else 1.0  # stored x 10000, or as is
    if variable == "reflectance":
        auto = (0.0, dn_max, 0.02 * dn_max)
    elif variable == "ndvi":
        auto = (-dn_max, dn_max, 0.02 * dn_max)
    else:
        auto = (-math.inf, math.inf, 0.02 * float(hi - lo))
    if inferred and values and math.isfinite(auto[0]):
        margin = 0.05 * (auto[1] - auto[0])
        least, most = min(values), max(values)
        if least < auto[0] - margin or most > auto[1] + margin:  # a doubtful guess
            auto = (min(auto[0], least), max(auto[1], most), auto[2])
    given = (data_min, data_max, min_change)
    lo_, hi_, change = (a if g == "auto" else float(g) for a, g in zip(auto, given))
    return lo_, hi_, change


def population_std(values: list[float]) -> float:
    """sqrt(mean((v - mean)^2)), ddof = 0; NaN for no values."""
    if not values:
        return math.nan
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def scene_thresholds(fines: list[np.ndarray], classes: float) -> list[list[float]]:
    """thr[k][b] = 2 std / classes, std over the finite pixels of fine image k, band b."""
    out = []
    for f in fines:
        row = []
        for band in f.astype(np.float64):
            vals = [v for v in band.ravel().tolist() if math.isfinite(v)]
            row.append(2.0 * population_std(vals) / classes)
        out.append(row)
    return out


def window_thresholds(
    fines: list[list[Grid2D]], y: int, x: int, half: int, classes: float
) -> list[list[float]]:
    """As scene_thresholds, with the std over the finite pixels of the window."""
    out = []
    for f in fines:
        row = []
        for band in f:
            h, w = len(band), len(band[0])
            vals = [
                band[yy][xx]
                for yy in range(max(0, y - half), min(h, y + half + 1))
                for xx in range(max(0, x - half), min(w, x + half + 1))
                if math.isfinite(band[yy][xx])
            ]
            row.append(2.0 * population_std(vals) / classes)
        out.append(row)
    return out


def correlation(f: list[float], c: list[float]) -> float:
    """Pearson r of two equally long vectors; 0.5 when undefined (a constant vector)."""
    if max(f) == min(f) or max(c) == min(c):
        return 0.5
    n = len(f)
    mf, mc = math.fsum(f) / n, math.fsum(c) / n
    sxy = math.fsum((a - mf) * (b - mc) for a, b in zip(f, c))
    sxx = math.fsum((a - mf) ** 2 for a in f)
    syy = math.fsum((b - mc) ** 2 for b in c)
    if sxx <= 0.0 or syy <= 0.0:
        return 0.5
    return sxy / math.sqrt(sxx * syy)


def spectral_r(f1: list[float], c1: list[float], f2: list[float], c2: list[float]) -> float:
    if len(f1) == 1:
        try:
            r = 1.0 - 0.5 * (
                abs((f1[0] - c1[0]) / (f1[0] + c1[0])) + abs((f2[0] - c2[0]) / (f2[0] + c2[0]))
            )
        except ZeroDivisionError:
            return 0.5
        return r if math.isfinite(r) else 0.5
    return correlation(f1 + f2, c1 + c2)


def conversion_coefficient(
    xs: list[float], ys: list[float], n: int, min_change: float, alpha: float, v_max: float
) -> float:
    """V from the regression of ys (fine, both dates) on xs (coarse, both dates)."""
    change = abs(math.fsum(xs[:n]) / n - math.fsum(xs[n:]) / n)
    if not change >= min_change:
        return 1.0
    m = len(xs)
    mx, my = math.fsum(xs) / m, math.fsum(ys) / m
    sxx = math.fsum((a - mx) ** 2 for a in xs)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(xs, ys))
    syy = math.fsum((b - my) ** 2 for b in ys)
    if sxx <= 0.0:
        return 1.0
    slope = sxy / sxx
    if not (0.0 < slope <= v_max):
        return 1.0
    r2 = sxy * sxy / (sxx * syy) if syy > 0.0 else 0.0
    fstat = math.inf if r2 >= 1.0 else (m - 2) * r2 / (1.0 - r2)
    p = 0.0 if math.isinf(fstat) else float(stats.f.sf(fstat, 1, m - 2))
    return slope if p <= alpha else 1.0


def coarse_pixel_values(c: np.ndarray, ratio: int) -> list[list[list[float]]]:
    """Every pixel's coarse-pixel value: the mean of the finite values of its block."""
    nb, h, w = c.shape
    out = [[[math.nan] * w for _ in range(h)] for _ in range(nb)]
    for b in range(nb):
        for by in range(0, h, ratio):
            for bx in range(0, w, ratio):
                vals = [
                    float(c[b, y, x])
                    for y in range(by, min(h, by + ratio))
                    for x in range(bx, min(w, bx + ratio))
                    if math.isfinite(c[b, y, x])
                ]
                mean = math.fsum(vals) / len(vals) if vals else math.nan
                for y in range(by, min(h, by + ratio)):
                    for x in range(bx, min(w, bx + ratio)):
                        out[b][y][x] = mean
    return out


def predict(
    F1: np.ndarray,
    C1: np.ndarray,
    F2: np.ndarray,
    C2: np.ndarray,
    C0: np.ndarray,
    *,
    half: int,
    classes: float = 4.0,
    threshold: str = "scene",
    min_similar: int = 6,
    data_min: float | str = "auto",
    data_max: float | str = "auto",
    min_change: float | str = "auto",
    variable: str = "auto",
    alpha: float = 0.05,
    v_max: float = 5.0,
    regression: str = "window",
    ratio: int | None = None,
    paths: dict[str, int] | None = None,
) -> np.ndarray:
    """ESTARFM for whole ``(band, y, x)`` arrays, one pixel at a time (slow).

    ``paths``, if given, counts the (pixel, band) cases that took each branch: ``few`` (too few
    similar pixels), ``v`` (V from the regression), ``v1`` (V = 1), ``revised`` (prediction
    outside the data range), so a test can check that a comparison covered them.
    """
    count = paths if paths is not None else {}
    data_min, data_max, min_change = auto_settings(
        F1, F2, variable=variable, data_min=data_min, data_max=data_max, min_change=min_change
    )
    imgs = [np.asarray(a, dtype=np.float64).tolist() for a in (F1, C1, F2, C2, C0)]
    f1, c1, f2, c2, c0 = imgs
    nb, h, w = np.shape(F1)
    valid = [
        [all(math.isfinite(img[b][y][x]) for img in imgs for b in range(nb)) for x in range(w)]
        for y in range(h)
    ]
    thr_scene = scene_thresholds([F1, F2], classes) if threshold == "scene" else None
    if regression == "coarse-pixel":
        assert ratio is not None
        rx1, rx2 = (
            coarse_pixel_values(np.asarray(C1), ratio),
            coarse_pixel_values(np.asarray(C2), ratio),
        )
    else:
        rx1, rx2 = c1, c2
    out = np.full((nb, h, w), np.nan)
    for y in range(h):
        for x in range(w):
            if not valid[y][x]:
                continue
            thr = thr_scene or window_thresholds([f1, f2], y, x, half, classes)
            win = [
                (yy, xx)
                for yy in range(max(0, y - half), min(h, y + half + 1))
                for xx in range(max(0, x - half), min(w, x + half + 1))
                if valid[yy][xx]
            ]
            sim = [
                (yy, xx)
                for yy, xx in win
                if all(
                    abs(f1[b][yy][xx] - f1[b][y][x]) <= thr[0][b]
                    and abs(f2[b][yy][xx] - f2[b][y][x]) <= thr[1][b]
                    for b in range(nb)
                )
            ]
            n = len(sim)
            if n >= min_similar:
                inv = []
                for yy, xx in sim:
                    r = spectral_r(
                        [f1[b][yy][xx] for b in range(nb)],
                        [c1[b][yy][xx] for b in range(nb)],
                        [f2[b][yy][xx] for b in range(nb)],
                        [c2[b][yy][xx] for b in range(nb)],
                    )
                    d = 1.0 + math.sqrt((yy - y) ** 2 + (xx - x) ** 2) / half
                    inv.append(1.0 / ((1.0 - r) * d + 1e-7))
                total = math.fsum(inv)
                wts = [v / total for v in inv]
            for b in range(nb):
                d1 = abs(math.fsum(c0[b][i][j] - c1[b][i][j] for i, j in win))
                d2 = abs(math.fsum(c0[b][i][j] - c2[b][i][j] for i, j in win))
                t1, t2 = (0.5, 0.5) if d1 + d2 == 0.0 else (d2 / (d1 + d2), d1 / (d1 + d2))
                if n < min_similar:
                    m01 = math.fsum(c0[b][i][j] - c1[b][i][j] for i, j in win) / len(win)
                    m02 = math.fsum(c0[b][i][j] - c2[b][i][j] for i, j in win) / len(win)
                    out[b, y, x] = t1 * (f1[b][y][x] + m01) + t2 * (f2[b][y][x] + m02)
                    count["few"] = count.get("few", 0) + 1
                    continue
                xs = [rx1[b][i][j] for i, j in sim] + [rx2[b][i][j] for i, j in sim]
                ys = [f1[b][i][j] for i, j in sim] + [f2[b][i][j] for i, j in sim]
                v = conversion_coefficient(xs, ys, n, min_change, alpha, v_max)
                key = "v1" if v == 1.0 else "v"
                count[key] = count.get(key, 0) + 1
                p1 = f1[b][y][x] + v * math.fsum(
                    wt * (c0[b][i][j] - c1[b][i][j]) for wt, (i, j) in zip(wts, sim)
                )
                p2 = f2[b][y][x] + v * math.fsum(
                    wt * (c0[b][i][j] - c2[b][i][j]) for wt, (i, j) in zip(wts, sim)
                )
                pred = t1 * p1 + t2 * p2
                if pred <= data_min or pred >= data_max:
                    count["revised"] = count.get("revised", 0) + 1
                    pred = t1 * math.fsum(
                        wt * f1[b][i][j] for wt, (i, j) in zip(wts, sim)
                    ) + t2 * math.fsum(wt * f2[b][i][j] for wt, (i, j) in zip(wts, sim))
                out[b, y, x] = pred
    return out
