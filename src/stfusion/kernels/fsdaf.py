"""FSDAF per-pixel kernels (Zhu et al. 2016), numba.

The caller (``stfusion.methods.fsdaf``) does everything that lives on the coarse grid (class
fractions, unmixing, residuals, spline coefficients); these kernels do the per-fine-pixel work
on one padded window: nearest-centre labels, the homogeneity index, the thin-plate-spline
evaluation, the residual distribution and the similar-pixel smoothing. Labels are ``int32``
with -1 for "no class / invalid"; all loops run in a fixed order, so a pixel's value never
depends on the window it was computed in. Rows (or coarse blocks) run in parallel
(``prange``); ``nogil`` lets windows run in threads too.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Weights above this multiple of the block mean are reset to the mean (reference program).
WEIGHT_CAP = 10.0


@njit(parallel=True, nogil=True, cache=True)
def nearest_centre(f: np.ndarray, centres: np.ndarray, out: np.ndarray) -> None:
    """Label of the nearest centre (squared Euclidean over bands), -1 where any band is NaN.

    ``f`` ``(band, H, W)``, ``centres`` ``(k, band)`` float64, ``out`` ``(H, W)`` int32. Ties
    go to the lower index.
    """
    nb, h, w = f.shape
    k = centres.shape[0]
    for y in prange(h):
        for x in range(w):
            ok = True
            for b in range(nb):
                if np.isnan(f[b, y, x]):
                    ok = False
            if not ok:
                out[y, x] = -1
                continue
            best = 0
            best_d = np.inf
            for c in range(k):
                d = 0.0
                for b in range(nb):
                    t = np.float64(f[b, y, x]) - centres[c, b]
                    d += t * t
                if d < best_d:
                    best_d = d
                    best = c
            out[y, x] = best


@njit(nogil=True, cache=True)
def kmeans_step(x: np.ndarray, centres: np.ndarray, new: np.ndarray, dist: np.ndarray) -> float:
    """One Lloyd iteration: assign each row of ``x`` ``(n, band)`` to its nearest centre,
    write the new centres (mean of members) into ``new`` and each row's squared distance to
    its nearest (old) centre into ``dist``; return the inertia. An empty cluster moves to
    the row farthest from its centre. Sequential, so the sums are deterministic.
    """
    n, nb = x.shape
    k = centres.shape[0]
    sums = np.zeros((k, nb))
    counts = np.zeros(k, dtype=np.int64)
    inertia = 0.0
    far = 0
    for i in range(n):
        best = 0
        best_d = np.inf
        for c in range(k):
            d = 0.0
            for b in range(nb):
                t = x[i, b] - centres[c, b]
                d += t * t
            if d < best_d:
                best_d = d
                best = c
        dist[i] = best_d
        inertia += best_d
        if best_d > dist[far]:
            far = i
        counts[best] += 1
        for b in range(nb):
            sums[best, b] += x[i, b]
    for c in range(k):
        for b in range(nb):
            new[c, b] = sums[c, b] / counts[c] if counts[c] > 0 else x[far, b]
    return inertia


@njit(parallel=True, nogil=True, cache=True)
def homogeneity_index(
    labels: np.ndarray, half: int, y0: int, y1: int, x0: int, x1: int, out: np.ndarray
) -> None:
    """Homogeneity index HI (paper step 5) of pixels ``[y0:y1, x0:x1]`` of ``labels``, into
    ``out[y - y0, x - x0]``.

    Same-class pixels / labelled pixels in the ``(2 half + 1)^2`` window, clipped to the array
    (the caller pads with -1 outside the scene). NaN where the pixel itself has no label.
    """
    h, w = labels.shape
    for y in prange(y0, y1):
        for x in range(x0, x1):
            c = labels[y, x]
            if c < 0:
                out[y - y0, x - x0] = np.nan
                continue
            same = 0
            n = 0
            for yy in range(max(0, y - half), min(h, y + half + 1)):
                for xx in range(max(0, x - half), min(w, x + half + 1)):
                    lab = labels[yy, xx]
                    if lab >= 0:
                        n += 1
                        if lab == c:
                            same += 1
            out[y - y0, x - x0] = same / n


@njit(inline="always")
def _tps_phi(d2: float) -> float:
    # r^2 log r = 0.5 r^2 log r^2 (paper: 1/2 b r^2 log r^2), 0 at r = 0
    return 0.5 * d2 * np.log(d2) if d2 > 0.0 else 0.0


@njit(parallel=True, nogil=True, cache=True)
def tps_eval_local(
    gy0: int,
    gx0: int,
    r: int,
    cy: np.ndarray,
    cx: np.ndarray,
    radius: int,
    weights: np.ndarray,
    affine: np.ndarray,
    i0: int,
    j0: int,
    out: np.ndarray,
) -> None:
    """Evaluate the per-block local splines on fine pixels ``gy0 + [0, H)``, ``gx0 + [0, W)``.

    The fine pixel (y, x) (global) uses the spline of its coarse block (i, j) = (y // r,
    x // r), fitted on the coarse centres ``(cy[i + di], cx[j + dj])``, |di|, |dj| <=
    ``radius``: ``weights[i - i0, j - j0, k, band]`` with k = (di + radius) (2 radius + 1) +
    dj + radius and ``affine[i - i0, j - j0, :, band]`` for ``1, (y - cy[i]) / r, (x - cx[j])
    / r`` (the coefficients of the blocks the pixels fall in, from block ``(i0, j0)`` on).
    Coordinates are in coarse-pixel units. NaN coefficients (no data) give NaN.
    """
    nb, h, w = out.shape
    bh = cy.shape[0]
    bw = cx.shape[0]
    side = 2 * radius + 1
    inv_r = 1.0 / r
    for yl in prange(h):
        y = gy0 + yl
        i = y // r
        for xl in range(w):
            x = gx0 + xl
            j = x // r
            u = (y - cy[i]) * inv_r
            v = (x - cx[j]) * inv_r
            li = i - i0
            lj = j - j0
            for b in range(nb):
                out[b, yl, xl] = (
                    affine[li, lj, 0, b] + affine[li, lj, 1, b] * u + (affine[li, lj, 2, b] * v)
                )
            for di in range(-radius, radius + 1):
                ii = i + di
                if ii < 0 or ii >= bh:
                    continue
                dy = (y - cy[ii]) * inv_r
                for dj in range(-radius, radius + 1):
                    jj = j + dj
                    if jj < 0 or jj >= bw:
                        continue
                    k = (di + radius) * side + dj + radius
                    dx = (x - cx[jj]) * inv_r
                    phi = _tps_phi(dy * dy + dx * dx)
                    for b in range(nb):
                        out[b, yl, xl] += weights[li, lj, k, b] * phi


@njit(parallel=True, nogil=True, cache=True)
def tps_eval_global(
    gy0: int,
    gx0: int,
    r: int,
    py: np.ndarray,
    px: np.ndarray,
    weights: np.ndarray,
    affine: np.ndarray,
    yref: float,
    xref: float,
    out: np.ndarray,
) -> None:
    """Evaluate one spline over all coarse centres ``(py, px)`` (fine-pixel coordinates).

    ``weights`` ``(n, band)``, ``affine`` ``(3, band)`` for ``1, (y - yref) / r,
    (x - xref) / r``; distances in coarse-pixel units.
    """
    nb, h, w = out.shape
    n = py.shape[0]
    inv_r = 1.0 / r
    for yl in prange(h):
        y = gy0 + yl
        for xl in range(w):
            x = gx0 + xl
            u = (y - yref) * inv_r
            v = (x - xref) * inv_r
            for b in range(nb):
                out[b, yl, xl] = affine[0, b] + affine[1, b] * u + affine[2, b] * v
            for k in range(n):
                dy = (y - py[k]) * inv_r
                dx = (x - px[k]) * inv_r
                phi = _tps_phi(dy * dy + dx * dx)
                for b in range(nb):
                    out[b, yl, xl] += weights[k, b] * phi


@njit(parallel=True, nogil=True, cache=True)
def distribute_residual(
    f1: np.ndarray,
    labels: np.ndarray,
    hi: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    residual: np.ndarray,
    r: int,
    lo: np.ndarray,
    hi_allow: np.ndarray,
    out: np.ndarray,
) -> None:
    """Total change per fine pixel, ``Delta F = Delta F(c) + r`` (paper steps 3, 5).

    All fine arrays cover whole coarse blocks: ``(band, H, W)`` / ``(H, W)`` with block
    (bi, bj) at rows ``bi r : (bi + 1) r`` (the last row/column of blocks may be partial at
    the scene edge). ``residual`` ``(H / r, W / r, band)`` is R per block (NaN: unknown, no
    residual distributed); ``class_change`` ``(classes, band)``. ``lo`` / ``hi_allow`` bound
    ``F1 + Delta F`` (the reference's allowed range). ``out`` ``(band, H, W)``, NaN where the
    pixel has no label.

    Weights: ``E_ho = F2_SP - F2_TP`` is kept only where it has the sign of R, then
    ``CW = |E_ho| HI + |R| (1 - HI)``, ``W = CW / mean(CW)`` over the block's labelled
    pixels, weights above ``WEIGHT_CAP`` reset to 1, renormalised to mean 1 (the paper's
    ``W = CW / sum CW`` with the reference's guards), ``r = W R`` (so ``sum r = m R``).
    """
    nb, h, w = f1.shape
    nbr = residual.shape[0]
    nbc = residual.shape[1]
    for blk in prange(nbr * nbc):
        bi = blk // nbc
        bj = blk % nbc
        ya = bi * r
        yb = min(h, ya + r)
        xa = bj * r
        xb = min(w, xa + r)
        cw = np.empty((yb - ya, xb - xa))
        for b in range(nb):
            res = residual[bi, bj, b]
            known = not np.isnan(res)
            ares = abs(res) if known else 0.0
            n = 0
            s = 0.0
            for y in range(ya, yb):
                for x in range(xa, xb):
                    c = labels[y, x]
                    if c < 0:
                        continue
                    e = 0.0
                    sp = spline[b, y, x]
                    if known and not np.isnan(sp):
                        e = sp - (f1[b, y, x] + class_change[c, b])
                        e = max(e, 0.0) if res > 0 else max(-e, 0.0)
                    hv = hi[y, x]
                    val = e * hv + ares * (1.0 - hv)
                    cw[y - ya, x - xa] = val
                    s += val
                    n += 1
            if n == 0:
                for y in range(ya, yb):
                    for x in range(xa, xb):
                        out[b, y, x] = np.nan
                continue
            mean = s / n
            s2 = 0.0
            for y in range(ya, yb):
                for x in range(xa, xb):
                    if labels[y, x] < 0:
                        continue
                    wv = cw[y - ya, x - xa] / mean if mean > 0.0 else 1.0
                    if wv > WEIGHT_CAP:
                        wv = 1.0
                    cw[y - ya, x - xa] = wv
                    s2 += wv
            mean2 = s2 / n
            for y in range(ya, yb):
                for x in range(xa, xb):
                    c = labels[y, x]
                    if c < 0:
                        out[b, y, x] = np.nan
                        continue
                    d = class_change[c, b]
                    if known:
                        d += cw[y - ya, x - xa] / mean2 * res
                    f = f1[b, y, x]
                    t = min(max(f + d, lo[b]), hi_allow[b])
                    out[b, y, x] = t - f


#: ``final`` modes of :func:`similar_smooth`.
FINAL_PAPER = 0
FINAL_IDL = 1
#: Added to |F1_c| in the relative spectral difference (FSDAF.pro: ``+ 0.00000001``).
REL_EPS = 1e-8
#: FSDAF.pro's ranking key ``(S + 0.00001) * (10 + d / w)``.
IDL_KEY_EPS = 1e-5
IDL_KEY_BASE = 10.0


@njit(parallel=True, nogil=True, cache=True)
def similar_smooth(
    f1: np.ndarray,
    change: np.ndarray,
    labels: np.ndarray,
    fvalid: np.ndarray,
    cvalid: np.ndarray,
    thr: np.ndarray,
    half: int,
    n_similar: int,
    mode: int,
    oy: int,
    ox: int,
    out: np.ndarray,
) -> None:
    """Final prediction with similar pixels (paper step 6), for the centres
    ``[oy : oy + H, ox : ox + W]`` of the padded arrays, into ``out`` ``(band, H, W)``.

    Spectral difference of a neighbour k (paper eq. 21, both modes):
    ``S_k = sum_b |F1_k,b - F1_c,b| / (|F1_c,b| + 1e-8)``; ``d_k`` its distance to the centre
    c in pixels; ``cvalid``: valid F1 and change in every band.

    ``mode == FINAL_PAPER`` (Zhu et al. 2016, eqs. 21-25): candidates are the ``cvalid``
    pixels of the window with the centre's label (none when the centre has no label); the
    ``n_similar`` with the smallest ``S_k`` (ties: smaller ``d_k``, then scan order) get
    weights ``1 / D_k``, ``D_k = 1 + d_k / half``.

    ``mode == FINAL_IDL`` (FSDAF.pro, final prediction): candidates are the ``cvalid`` pixels
    with ``|F1_k,b - F1_c,b| < thr_b`` in every band, any class; ranked by
    ``(S_k + 1e-5) (10 + d_k / half)`` (ties: ``d_k``, scan order); weights
    ``1 / ((1 + d_k / half) (1 + S_k))``.

    ``F2 = F1_c + sum_k w_k Delta F_k / sum_k w_k``. NaN where the centre's F1 is invalid or
    no candidate exists. All sums in float64 in a fixed order (the slow reference's order).
    """
    nb = f1.shape[0]
    hp = f1.shape[1]
    wp = f1.shape[2]
    h = out.shape[1]
    w = out.shape[2]
    hw = float(half) if half > 0 else 1.0
    side = 2 * half + 1
    idl = mode == FINAL_IDL
    for yl in prange(h):
        keys = np.empty(n_similar)
        sims = np.empty(n_similar)
        d2s = np.empty(n_similar)
        pys = np.empty(n_similar, dtype=np.int64)
        pxs = np.empty(n_similar, dtype=np.int64)
        simrow = np.empty(side)
        okrow = np.empty(side, dtype=np.bool_)
        inv = np.empty(nb)
        yc = yl + oy
        for xl in range(w):
            xc = xl + ox
            lc = labels[yc, xc]
            if not fvalid[yc, xc] or (not idl and lc < 0):
                for b in range(nb):
                    out[b, yl, xl] = np.nan
                continue
            for b in range(nb):
                inv[b] = 1.0 / (abs(np.float64(f1[b, yc, xc])) + REL_EPS)
            cnt = 0
            xa = max(0, xc - half)
            n = min(wp, xc + half + 1) - xa
            for yy in range(max(0, yc - half), min(hp, yc + half + 1)):
                dy = yy - yc
                # Branch-free pass over the row (vectorises), then the rare insertions.
                for t in range(n):
                    simrow[t] = 0.0
                    if idl:
                        okrow[t] = cvalid[yy, xa + t]
                    else:
                        okrow[t] = cvalid[yy, xa + t] and labels[yy, xa + t] == lc
                for b in range(nb):
                    fc = np.float64(f1[b, yc, xc])
                    ib = inv[b]
                    tb = thr[b]
                    for t in range(n):
                        diff = abs(np.float64(f1[b, yy, xa + t]) - fc)
                        if idl:
                            okrow[t] = okrow[t] & (diff < tb)
                        simrow[t] += diff * ib
                for t in range(n):
                    if not okrow[t]:
                        continue
                    s = simrow[t]
                    dx = xa + t - xc
                    d2 = float(dy * dy + dx * dx)
                    if idl:
                        key = (s + IDL_KEY_EPS) * (IDL_KEY_BASE + np.sqrt(d2) / hw)
                    else:
                        key = s
                    if cnt == n_similar and (
                        key > keys[cnt - 1] or (key == keys[cnt - 1] and d2 >= d2s[cnt - 1])
                    ):
                        continue
                    # insertion after any equal (key, d2): earlier scan order wins ties
                    pos = cnt if cnt < n_similar else n_similar - 1
                    while pos > 0 and (
                        keys[pos - 1] > key or (keys[pos - 1] == key and d2s[pos - 1] > d2)
                    ):
                        keys[pos] = keys[pos - 1]
                        sims[pos] = sims[pos - 1]
                        d2s[pos] = d2s[pos - 1]
                        pys[pos] = pys[pos - 1]
                        pxs[pos] = pxs[pos - 1]
                        pos -= 1
                    keys[pos] = key
                    sims[pos] = s
                    d2s[pos] = d2
                    pys[pos] = yy
                    pxs[pos] = xa + t
                    if cnt < n_similar:
                        cnt += 1
            if cnt == 0:
                for b in range(nb):
                    out[b, yl, xl] = np.nan
                continue
            sw = 0.0
            for k in range(cnt):
                wk = 1.0 / (1.0 + np.sqrt(d2s[k]) / hw)
                if idl:
                    wk = 1.0 / ((1.0 + np.sqrt(d2s[k]) / hw) * (1.0 + sims[k]))
                keys[k] = wk  # reuse: the weight of the k-th similar pixel
                sw += wk
            for b in range(nb):
                acc = 0.0
                for k in range(cnt):
                    acc += keys[k] * change[b, pys[k], pxs[k]]
                out[b, yl, xl] = f1[b, yc, xc] + acc / sw
