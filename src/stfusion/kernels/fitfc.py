"""Fit-FC kernels (Wang & Atkinson 2018): local regression on coarse pixels, bicubic weights,
and the similar-pixel spatial filter. numba, plain float arrays, NaN = invalid.

The filter kernel runs rows in parallel (``prange``) and releases the GIL (``nogil``). Its
inner loop is split in two so the expensive part vectorises: for one neighbour offset, the
spectral distances of a whole row of centres are computed branch-free; a cheap scalar pass
then offers each distance to that centre's list of the ``nsim`` best candidates.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: Keys' cubic convolution parameter (as MATLAB's ``imresize(..., 'bicubic')``).
KEYS_A = -0.5


@njit(parallel=True, nogil=True, cache=True)
def local_regression(
    c1: np.ndarray, c2: np.ndarray, half: int, a: np.ndarray, b: np.ndarray
) -> None:
    """Least-squares ``c2 = a c1 + b`` in a ``(2 half + 1)^2`` window around each coarse pixel.

    ``c1``, ``c2``: ``(band, Hc, Wc)`` coarse images, NaN invalid. A window uses the coarse
    pixels inside the grid where both are finite. With fewer than two of them, fewer than a
    quarter of a whole window's pixels (its sides capped at the grid's height and width; a
    slope through a few pixels at the edge of missing data extrapolates wildly: -56 from 2
    pixels), or no spread in ``c1`` (variance below 1e-12 of its mean square), the model falls
    back to ``a = 1``, ``b = mean(c2 - c1)`` (the additive model); with none, NaN. A window
    clipped by the scene edge keeps at least a quarter, so a scene without gaps never falls
    back for this. Results go to ``a`` and ``b`` (float64, same shape).
    """
    nb, hc, wc = c1.shape
    full = min(2 * half + 1, hc) * min(2 * half + 1, wc)
    for i in prange(hc):
        for bb in range(nb):
            for j in range(wc):
                n = 0
                s1 = 0.0
                s2 = 0.0
                for y in range(max(i - half, 0), min(i + half + 1, hc)):
                    for x in range(max(j - half, 0), min(j + half + 1, wc)):
                        u = c1[bb, y, x]
                        v = c2[bb, y, x]
                        if math.isfinite(u) and math.isfinite(v):
                            n += 1
                            s1 += u
                            s2 += v
                if n == 0:
                    a[bb, i, j] = np.nan
                    b[bb, i, j] = np.nan
                    continue
                m1 = s1 / n
                m2 = s2 / n
                sxx = 0.0
                sxy = 0.0
                sq = 0.0
                for y in range(max(i - half, 0), min(i + half + 1, hc)):
                    for x in range(max(j - half, 0), min(j + half + 1, wc)):
                        u = c1[bb, y, x]
                        v = c2[bb, y, x]
                        if math.isfinite(u) and math.isfinite(v):
                            du = u - m1
                            sxx += du * du
                            sxy += du * (v - m2)
                            sq += u * u
                if n >= 2 and 4 * n >= full and sxx > 1e-12 * sq:
                    slope = sxy / sxx
                    a[bb, i, j] = slope
                    b[bb, i, j] = m2 - slope * m1
                else:
                    a[bb, i, j] = 1.0
                    b[bb, i, j] = m2 - m1


def cubic_taps(index: np.ndarray, r: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bicubic taps of fine rows (or columns) ``index`` on a grid of ``n`` coarse pixels.

    Coarse pixel ``i`` is centred on fine coordinate ``i r + (r - 1) / 2`` (blocks anchored at
    the scene origin), so fine pixel ``p`` sits at ``u = (p + 0.5) / r - 0.5`` coarse pixels.
    Keys' kernel (a = -0.5) on the four nearest coarse centres; indices beyond the grid are
    mirrored (half-sample symmetric), as MATLAB's ``imresize`` does. Returns ``(len, 4)``
    coarse indices and weights (the weights of a row sum to 1).
    """
    u = (np.asarray(index, dtype=np.float64) + 0.5) / r - 0.5
    f = np.floor(u)
    t = u - f
    taps = f.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    dist = np.abs(t[:, None] - np.arange(-1, 3)[None, :])
    aa = KEYS_A
    near = ((aa + 2) * dist - (aa + 3)) * dist * dist + 1
    far = ((aa * dist - 5 * aa) * dist + 8 * aa) * dist - 4 * aa
    w = np.where(dist <= 1, near, np.where(dist < 2, far, 0.0))
    period = 2 * n
    taps = np.mod(taps, period)
    taps = np.where(taps >= n, period - 1 - taps, taps)
    return taps, w


def cubic_upsample(coarse: np.ndarray, r: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bicubic interpolation of ``coarse`` ``(band, Hc, Wc)`` at fine ``rows`` x ``cols``.

    Rows and columns are global fine indices, so any window gets exactly the values a
    whole-scene run gets. ``coarse`` must be NaN-free. Returns float64 ``(band, len(rows),
    len(cols))``.
    """
    _, hc, wc = coarse.shape
    ti, wi = cubic_taps(rows, r, hc)
    tj, wj = cubic_taps(cols, r, wc)
    lo, hi = int(ti.min()), int(ti.max()) + 1
    sub = coarse[:, lo:hi, :].astype(np.float64)
    across = np.zeros((coarse.shape[0], hi - lo, len(cols)))
    for q in range(4):
        across += sub[:, :, tj[:, q]] * wj[None, None, :, q]
    out = np.zeros((coarse.shape[0], len(rows), len(cols)))
    for p in range(4):
        out += across[:, ti[:, p] - lo, :] * wi[None, :, p, None]
    return out


def filter_offsets(half: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window offsets ordered by distance, then row, then column, and their weights ``1/d``.

    ``d = 1 + dist / (window / 2)`` (Wang & Atkinson 2018, eq. 6; window = 2 half + 1). The
    order settles ties in spectral difference: the nearer pixel wins, then the earlier one.
    """
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    dy = dy.ravel()
    dx = dx.ravel()
    d2 = dy * dy + dx * dx
    order = np.lexsort((dx, dy, d2))
    dy, dx, d2 = dy[order], dx[order], d2[order]
    invd = 1.0 / (1.0 + np.sqrt(d2) / ((2 * half + 1) / 2.0))
    return dy.astype(np.int64), dx.astype(np.int64), invd


@njit(parallel=True, nogil=True, cache=True)
def similar_pixel_filter(
    feat_c: np.ndarray,
    feat_n: np.ndarray,
    pred: np.ndarray,
    ody: np.ndarray,
    odx: np.ndarray,
    oinvd: np.ndarray,
    nsim: int,
    half: int,
    out: np.ndarray,
) -> None:
    """Weighted mean of ``pred`` over the ``nsim`` spectrally most similar pixels.

    Padded inputs (halo ``half``): ``feat_c`` ``(k, H + 2 half, W + 2 half)`` the similarity
    bands of the fine image (NaN where a centre cannot be compared), ``feat_n`` the same but
    NaN where a neighbour is not usable as a candidate, ``pred`` ``(band, ...)`` what is
    averaged. ``ody``/``odx``/``oinvd`` from :func:`filter_offsets`. For each centre the
    candidates are ranked by the squared spectral difference (sum over the ``k`` bands, in
    float64), ties going to the earlier offset; the output ``(band, H, W)`` is
    ``sum(pred / d) / sum(1 / d)`` over the selected ones, NaN where there is none.
    """
    nk = feat_c.shape[0]
    nb = pred.shape[0]
    h = out.shape[1]
    w = out.shape[2]
    noff = ody.shape[0]
    for y in prange(h):
        yc = y + half
        best = np.full((w, nsim), np.inf)
        which = np.full((w, nsim), -1, dtype=np.int64)
        dist = np.empty(w)
        centre = np.empty((nk, w))
        for k in range(nk):
            for x in range(w):
                centre[k, x] = feat_c[k, yc, x + half]
        for t in range(noff):
            yy = yc + ody[t]
            xo = half + odx[t]
            for x in range(w):
                dist[x] = 0.0
            for k in range(nk):
                row_n = feat_n[k, yy]
                row_c = centre[k]
                for x in range(w):
                    diff = np.float64(row_n[x + xo]) - row_c[x]
                    dist[x] += diff * diff
            for x in range(w):
                d = dist[x]
                # NaN never passes: unusable neighbours and uncomparable centres drop out.
                if d < best[x, nsim - 1]:
                    pos = nsim - 1
                    while pos > 0 and best[x, pos - 1] > d:
                        best[x, pos] = best[x, pos - 1]
                        which[x, pos] = which[x, pos - 1]
                        pos -= 1
                    best[x, pos] = d
                    which[x, pos] = t
        acc = np.empty(nb)
        for x in range(w):
            sw = 0.0
            for bb in range(nb):
                acc[bb] = 0.0
            for m in range(nsim):
                t = which[x, m]
                if t < 0:
                    break
                wt = oinvd[t]
                yy = yc + ody[t]
                xx = x + half + odx[t]
                sw += wt
                for bb in range(nb):
                    acc[bb] += wt * pred[bb, yy, xx]
            for bb in range(nb):
                out[bb, y, x] = acc[bb] / sw if sw > 0.0 else np.nan
