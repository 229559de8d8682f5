"""Kernels for native coarse pixels (:class:`stfusion.coarse.NativeGrid`), numba.

The block versions in :mod:`stfusion.kernels.fsdaf` find a fine pixel's coarse pixel as
``(y // r, x // r)``; these take it from an index map (a native coarse pixel may be sheared or
rotated on the fine grid, so its fine pixels are no block). Fixed loop orders: a pixel's value
never depends on the window it was computed in.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from stfusion.kernels.fsdaf import WEIGHT_CAP


@njit(inline="always")
def _tps_phi(d2: float) -> float:
    return 0.5 * d2 * np.log(d2) if d2 > 0.0 else 0.0


@njit(parallel=True, nogil=True, cache=True)
def tps_eval_points_local(
    py: np.ndarray,
    px: np.ndarray,
    ci: np.ndarray,
    cj: np.ndarray,
    radius: int,
    weights: np.ndarray,
    affine: np.ndarray,
    i0: int,
    j0: int,
    bh: int,
    bw: int,
    out: np.ndarray,
) -> None:
    """Local splines at points ``(py, px)`` ``(H, W)`` in coarse-pixel coordinates (coarse
    pixel ``(i, j)`` centred on ``(i, j)``, ``bh x bw`` of them), each with the spline of its
    coarse pixel ``(ci, cj)``: ``weights[i - i0, j - j0, k, band]`` on the centres ``(i + di,
    j + dj)``, ``affine[i - i0, j - j0, :, band]`` for ``1, py - i, px - j`` (as
    :func:`stfusion.kernels.fsdaf.tps_eval_local` with ``r = 1``). ``out`` ``(band, H, W)``."""
    nb, h, w = out.shape
    side = 2 * radius + 1
    for yl in prange(h):
        for xl in range(w):
            i = ci[yl, xl]
            j = cj[yl, xl]
            y = py[yl, xl]
            x = px[yl, xl]
            li = i - i0
            lj = j - j0
            for b in range(nb):
                out[b, yl, xl] = (
                    affine[li, lj, 0, b]
                    + affine[li, lj, 1, b] * (y - i)
                    + (affine[li, lj, 2, b] * (x - j))
                )
            for di in range(-radius, radius + 1):
                ii = i + di
                if ii < 0 or ii >= bh:
                    continue
                dy = y - ii
                for dj in range(-radius, radius + 1):
                    jj = j + dj
                    if jj < 0 or jj >= bw:
                        continue
                    k = (di + radius) * side + dj + radius
                    dx = x - jj
                    phi = _tps_phi(dy * dy + dx * dx)
                    for b in range(nb):
                        out[b, yl, xl] += weights[li, lj, k, b] * phi


@njit(parallel=True, nogil=True, cache=True)
def tps_eval_points_global(
    py: np.ndarray,
    px: np.ndarray,
    cy: np.ndarray,
    cx: np.ndarray,
    weights: np.ndarray,
    affine: np.ndarray,
    yref: float,
    xref: float,
    out: np.ndarray,
) -> None:
    """One spline through the centres ``(cy, cx)`` at points ``(py, px)`` (coarse-pixel
    coordinates); ``affine`` for ``1, y - yref, x - xref``."""
    nb, h, w = out.shape
    n = cy.shape[0]
    for yl in prange(h):
        for xl in range(w):
            y = py[yl, xl]
            x = px[yl, xl]
            for b in range(nb):
                out[b, yl, xl] = (
                    affine[0, b] + affine[1, b] * (y - yref) + affine[2, b] * (x - xref)
                )
            for k in range(n):
                dy = y - cy[k]
                dx = x - cx[k]
                phi = _tps_phi(dy * dy + dx * dx)
                for b in range(nb):
                    out[b, yl, xl] += weights[k, b] * phi


@njit(nogil=True, cache=True)
def distribute_residual_mapped(
    f1: np.ndarray,
    labels: np.ndarray,
    hi: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    residual: np.ndarray,
    ids: np.ndarray,
    lo: np.ndarray,
    hi_allow: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`stfusion.kernels.fsdaf.distribute_residual` with coarse pixels from an index map.

    ``ids`` ``(H, W)``: the coarse pixel of each fine pixel, ``0 <= id < len(residual)``
    (-1: none, output NaN); ``residual`` ``(n, band)``. The arrays must hold every fine pixel
    of each coarse pixel whose result is used (the weights are normalised over them).
    """
    nb, h, w = f1.shape
    n_ids = residual.shape[0]
    cw = np.empty((h, w))
    for b in range(nb):
        s = np.zeros(n_ids)
        n = np.zeros(n_ids, dtype=np.int64)
        for y in range(h):
            for x in range(w):
                k = ids[y, x]
                c = labels[y, x]
                if k < 0 or c < 0:
                    continue
                res = residual[k, b]
                known = not np.isnan(res)
                e = 0.0
                sp = spline[b, y, x]
                if known and not np.isnan(sp):
                    e = sp - (f1[b, y, x] + class_change[c, b])
                    e = max(e, 0.0) if res > 0 else max(-e, 0.0)
                ares = abs(res) if known else 0.0
                hv = hi[y, x]
                val = e * hv + ares * (1.0 - hv)
                cw[y, x] = val
                s[k] += val
                n[k] += 1
        s2 = np.zeros(n_ids)
        for y in range(h):
            for x in range(w):
                k = ids[y, x]
                if k < 0 or labels[y, x] < 0:
                    continue
                mean = s[k] / n[k]
                wv = cw[y, x] / mean if mean > 0.0 else 1.0
                if wv > WEIGHT_CAP:
                    wv = 1.0
                cw[y, x] = wv
                s2[k] += wv
        for y in range(h):
            for x in range(w):
                k = ids[y, x]
                c = labels[y, x]
                if k < 0 or c < 0:
                    out[b, y, x] = np.nan
                    continue
                d = class_change[c, b]
                res = residual[k, b]
                if not np.isnan(res):
                    d += cw[y, x] / (s2[k] / n[k]) * res
                f = f1[b, y, x]
                t = min(max(f + d, lo[b]), hi_allow[b])
                out[b, y, x] = t - f
