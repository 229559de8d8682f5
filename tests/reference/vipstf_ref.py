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
  coefficients; NaN where S(x) is empty or has no coefficients. Where S(x) is empty but
  some fine values are finite, ``F_v`` takes the coefficients of the pairs whose fine value
  is finite (``C_v`` stays NaN): a pair with a coarse gap, not a fine one too.
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


Model = tuple[dict[int, float], float]


def pixel_model(
    models: dict[tuple[int, tuple[int, ...]], Model | None],
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    band: int,
    y: int,
    x: int,
) -> tuple[tuple[int, ...], Model | None, bool]:
    """(V2)'s subset S of a band-pixel and its (V1) model, and whether the coarse images
    take part: S = the pairs whose fine and coarse values are finite; where there are
    none, the pairs whose fine value is finite (``F_v`` from them, ``C_v`` NaN)."""
    fine_ok = tuple(i for i in range(len(fines)) if math.isfinite(float(fines[i][band, y, x])))
    both = tuple(i for i in fine_ok if math.isfinite(float(coarses[i][band, y, x])))
    subset = both or fine_ok
    return subset, (models.get((band, subset)) if subset else None), bool(both)


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
                subset, model, coarse_ok = pixel_model(models, fines, coarses, band, y, x)
                if model is None:
                    continue
                a, b = model
                vf[band, y, x] = sum(a[i] * float(fines[i][band, y, x]) for i in subset) + b
                if coarse_ok:
                    vc[band, y, x] = sum(a[i] * float(coarses[i][band, y, x]) for i in subset) + b
    return vf, vc


# ------------------------------------------------------------------------------ VIPSTF-SW
#
# A loop-based port of the authors' VIPSTF-SW code (github.com/qunmingwang/VIPSTF-SW, main
# script "!Virtual_image_pair_based_spatio_temporal_fusion.m" with its helpers
# LinearRegression_multiple.m, STARFM_fast_2016_v2.m, Extend_plane.m and Mins_matrix.m, all
# in that repository at commit 84832e0). Nothing of stfusion is used.
#
# * Regression: per band, C_0 = sum_i a_i C_i + b over every pixel (MATLAB ``regress``);
#   r = its residual; Z1 = sum_i a_i F_i; Z2 = Z1 + b.
# * STARFM_fast_2016_v2 with zero pair images (M_cube = L_cube = 0, M0 = r): images extended
#   by copying edge pixels (Extend_plane), Dif = |dR|^2 + |dNIR|^2 of Z1 in the window,
#   Mins_matrix picks ``similar`` times the first minimum in column-major order and sets it
#   to 1e10 (here: inf), weights 1 / (1 + dist / A), A = (2 w + 1) / 2; the S and T factors
#   are commented out and the L_cube term is 0, so the output is sum W r / sum W.
# * Prediction Z2 + filtered r.
#
# ``literal_band_loop``: the authors' loop fills Z1 band by band and filters band k with the
# red and NIR bands of Z1 as they are at that point (all zero before they are computed), so
# the bands before red are filtered with Dif = 0 everywhere and red with Dif from red alone.
# Off by default: that is the code's loop order, not the method (see docs/methods/vipstf.md).
#
# Missing data (not in the authors' code; stfusion's rules, for :func:`vipstf_sw`): a
# neighbour is no candidate where its Dif is NaN or r is NaN in any band; no candidate: NaN.


def _mins_matrix(dif: np.ndarray, count: int) -> list[tuple[int, int]]:
    """The authors' Mins_matrix: ``count`` times the first minimum in column-major order
    (MATLAB ``min(A(:))``), each then taken out; stops early when no finite value is left."""
    rows = dif.shape[0]
    flat = np.where(np.isnan(dif), np.inf, dif).T.ravel()  # column-major
    out = []
    for _ in range(count):
        k = int(np.argmin(flat))  # the first occurrence, as MATLAB's min
        if not math.isfinite(float(flat[k])):
            break
        jj, ii = divmod(k, rows)
        out.append((ii, jj))
        flat[k] = math.inf
    return out


def sw_filter(sims: list[np.ndarray], resid: np.ndarray, half: int, similar: int) -> np.ndarray:
    """STARFM_fast_2016_v2 with zero pair images: ``sims`` the similarity images ``(H, W)``,
    ``resid`` ``(band, H, W)``; returns the filtered residual ``(band, H, W)``."""
    nb, h, w = resid.shape
    side = 2 * half + 1
    ext_s = [np.pad(s.astype(np.float64), half, mode="edge") for s in sims]
    ext_r = [np.pad(r.astype(np.float64), half, mode="edge") for r in resid]
    big_a = side / 2.0
    dd = np.array(
        [[1.0 + math.hypot(i - half, j - half) / big_a for j in range(side)] for i in range(side)]
    )
    out = np.full((nb, h, w), math.nan)
    for i in range(h):
        for j in range(w):
            dif = np.zeros((side, side))
            for s in ext_s:
                dif = dif + np.abs(s[i : i + side, j : j + side] - s[i + half, j + half]) ** 2
            for r in ext_r:
                dif[~np.isfinite(r[i : i + side, j : j + side])] = math.nan
            chosen = _mins_matrix(dif, similar)
            if not chosen:
                continue
            sum_w = sum(1.0 / dd[ii, jj] for ii, jj in chosen)
            for b in range(nb):
                acc = 0.0
                for ii, jj in chosen:
                    acc += (1.0 / dd[ii, jj]) * float(ext_r[b][i + ii, j + jj]) / sum_w
                out[b, i, j] = acc
    return out


def authors_vipstf_sw(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    red: int,
    nir: int,
    half: int = 32,
    similar: int = 30,
    literal_band_loop: bool = False,
    coef: np.ndarray | None = None,
) -> np.ndarray:
    """The authors' VIPSTF-SW on NaN-free images (``red``, ``nir``: 0-based bands).

    ``coef``: ``(band, n + 1)`` ``a_1..a_n, b`` to use instead of this module's regression,
    so that exact ties of Dif (common with quantised reflectances: one neighbour as much
    brighter as another is darker) come out bit for bit as in the code under test; they are
    settled by the last bits of ``a_i``, here as in MATLAB.
    """
    n = len(fines)
    nb, h, w = target.shape
    z1 = np.zeros((nb, h, w))
    z2 = np.zeros((nb, h, w))
    rb = np.zeros((nb, h, w))
    out = np.zeros((nb, h, w))
    for k in range(nb):
        if coef is None:
            model = regress_subset(coarses, target, k, tuple(range(n)))
            assert model is not None
            a, b = model
        else:
            a, b = {i: float(coef[k, i]) for i in range(n)}, float(coef[k, n])
        for i in range(n):
            z1[k] = z1[k] + a[i] * fines[i][k].astype(np.float64)
        z2[k] = z1[k] + b
        fit = sum(a[i] * coarses[i][k].astype(np.float64) for i in range(n)) + b
        rb[k] = target[k].astype(np.float64) - fit
        if literal_band_loop:
            out[k] = sw_filter([z1[red].copy(), z1[nir].copy()], rb[k : k + 1], half, similar)[0]
    if not literal_band_loop:
        out = sw_filter([z1[red], z1[nir]], rb, half, similar)
    return z2 + out


def vipstf_sw(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    sim_bands: list[int],
    half: int = 32,
    similar: int = 30,
    coef: np.ndarray | None = None,
) -> np.ndarray:
    """VIPSTF-SW with stfusion's missing-data rules, in plain loops.

    Per pixel and band, S = the pairs whose fine and coarse values are finite and (V1)
    fitted on S (:func:`regress_subset`, or ``coef[band, sum 2^i for i in S]``, ``a_1..a_n,
    b``, when given); ``F_v = sum_S a_i F_i + b``, ``C_v`` the same of the coarse images,
    ``r = C_0 - C_v``; similarity on ``sum_S a_i F_i + (b - b_all)`` (``b_all``: b of the model
    with every pair, 0 if it has none), which is the authors' ``sum a_i F_i`` where every pair
    is usable. Prediction ``F_v + SW(r)``; a NaN result takes the coarse target value.
    """
    n = len(fines)
    nb, h, w = target.shape
    models: dict[tuple[int, tuple[int, ...]], tuple[dict[int, float], float] | None] = {}
    for band in range(nb):
        for size in range(1, n + 1):
            for subset in combinations(range(n), size):
                if coef is None:
                    models[band, subset] = regress_subset(coarses, target, band, subset)
                    continue
                row = coef[band, sum(1 << i for i in subset)]
                ok = bool(np.isfinite(row).all())
                models[band, subset] = (
                    ({i: float(row[i]) for i in subset}, float(row[n])) if ok else None
                )
    sim = np.full((nb, h, w), math.nan)
    vf = np.full((nb, h, w), math.nan)
    resid = np.full((nb, h, w), math.nan)
    for band in range(nb):
        every = models.get((band, tuple(range(n))))
        b_all = every[1] if every is not None else 0.0
        for y in range(h):
            for x in range(w):
                subset, model, coarse_ok = pixel_model(models, fines, coarses, band, y, x)
                if model is None:
                    continue
                a, b = model
                z = sum(a[i] * float(fines[i][band, y, x]) for i in subset)
                sim[band, y, x] = z + (b - b_all)
                vf[band, y, x] = z + b
                if coarse_ok:
                    cv = sum(a[i] * float(coarses[i][band, y, x]) for i in subset) + b
                    resid[band, y, x] = float(target[band, y, x]) - cv
    pred = vf + sw_filter([sim[b] for b in sim_bands], resid, half, similar)
    return np.where(np.isnan(pred), target, pred)
