"""ESTARFM moving-window kernels (Zhu et al. 2010), numba, NaN-free inputs.

The caller (``stfusion.methods.estarfm``) turns NaN into sentinels and precomputes the
per-pixel quantities (the spectral correlation, the coarse changes), so the window loop only
tests similarity and adds. The regression sums are taken about each centre's own values,
which keeps float32 accumulators accurate (kelvin included). Loop order: output rows in
parallel (``prange``), then chunks of ``CHUNK`` output pixels whose accumulators stay in L1
cache, then window offsets, then the pixels of the chunk (the vectorised inner loop). Each
output pixel sums its window in a fixed order, whatever the tile it sits in, so tiled and
whole-scene runs agree bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Stands for "invalid" in the similarity inputs: far from any real value, finite for fastmath.
BIG = np.float32(1e30)

#: Output pixels per accumulator block: its 34 float32 rows of 128 (17 KB) stay in L1.
CHUNK = 128

#: Added to the combined distance (1 - R) d, as the reference program does, so R = 1 is finite.
EPS_DISTANCE = 1e-7

#: Planes per band of ``chg``: the coarse changes C_0 - C_1 and C_0 - C_2.
NCHG = 2
#: A centred sum of squares below this fraction of the raw one is rounding noise (flat data).
RELATIVE_FLAT = 1e-5
# Rows per band of the regression accumulators.
SX, SY, SXX, SXY, SYY, SG = range(6)

# No "nnan"/"ninf" fastmath flags: NaN marks invalid output. error_model="numpy" drops
# numba's zero-division checks from the vectorised loops; every divisor is positive there
# (the centre is always similar to itself, and the distance term has + EPS_DISTANCE).
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(parallel=True, nogil=True, cache=True)
def box_sum(a: np.ndarray, half: int, out: np.ndarray) -> None:
    """``out[k, y, x]`` = sum of ``a[k, y : y + 2 half + 1, x : x + 2 half + 1]``, in float64.

    ``a`` is padded by ``half`` on every side, ``out`` has the unpadded shape. Each sum runs in
    a fixed order (rows first, then columns), independent of where the array was cut.
    """
    nk, hp = a.shape[0], a.shape[1]
    h = out.shape[1]
    w = out.shape[2]
    size = 2 * half + 1
    rows = np.zeros((nk, hp, w), dtype=np.float64)
    for r in prange(nk * hp):
        k = r // hp
        y = r % hp
        for d in range(size):
            for x in range(w):
                rows[k, y, x] += a[k, y, x + d]
    for r in prange(nk * h):
        k = r // h
        y = r % h
        for x in range(w):
            out[k, y, x] = 0.0
        for d in range(size):
            for x in range(w):
                out[k, y, x] += rows[k, y + d, x]


@njit(parallel=True, nogil=True, cache=True)
def window_std(f: np.ndarray, half: int, out: np.ndarray) -> None:
    """``out[y, x]`` = population std of the finite values of ``f[y : y + 2 half + 1,
    x : x + 2 half + 1]`` (``f`` padded by ``half``), NaN where there are none. Sums in
    float64, in a fixed order."""
    hp = f.shape[0]
    h = out.shape[0]
    w = out.shape[1]
    size = 2 * half + 1
    rows = np.zeros((3, hp, w), dtype=np.float64)
    for y in prange(hp):
        for d in range(size):
            for x in range(w):
                v = np.float64(f[y, x + d])
                if np.isfinite(v):
                    rows[0, y, x] += 1.0
                    rows[1, y, x] += v
                    rows[2, y, x] += v * v
    for y in prange(h):
        for x in range(w):
            n = 0.0
            s1 = 0.0
            s2 = 0.0
            for d in range(size):
                n += rows[0, y + d, x]
                s1 += rows[1, y + d, x]
                s2 += rows[2, y + d, x]
            if n > 0:
                mean = s1 / n
                out[y, x] = np.sqrt(max(s2 / n - mean * mean, 0.0))
            else:
                out[y, x] = np.nan


@njit(nogil=True, cache=True, error_model="numpy")
def _relative_difference(f: float, c: float) -> float:
    return abs((np.float64(f) - c) / (np.float64(f) + c))


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def spectral_correlation(
    f1: np.ndarray, c1: np.ndarray, f2: np.ndarray, c2: np.ndarray, out: np.ndarray
) -> None:
    """``out[y, x]`` = R, the Pearson r between the fine spectrum (F_1 then F_2, all bands)
    and the coarse spectrum (C_1, C_2) of the pixel, in float64; 0.5 where it is undefined (a
    flat spectrum) or not finite. One band: the reference program's
    ``1 - (|F_1 - C_1| / (F_1 + C_1) + |F_2 - C_2| / (F_2 + C_2)) / 2`` instead, since a
    correlation of two values is always +-1."""
    nb, h, w = f1.shape
    for y in prange(h):
        for x in range(w):
            if nb == 1:
                r = 1.0 - 0.5 * (
                    _relative_difference(f1[0, y, x], c1[0, y, x])
                    + _relative_difference(f2[0, y, x], c2[0, y, x])
                )
                out[y, x] = r if np.isfinite(r) else 0.5
                continue
            mf = 0.0
            mc = 0.0
            fmin = fmax = np.float64(f1[0, y, x])
            cmin = cmax = np.float64(c1[0, y, x])
            for b in range(nb):
                for fv, cv in ((f1[b, y, x], c1[b, y, x]), (f2[b, y, x], c2[b, y, x])):
                    mf += fv
                    mc += cv
                    fmin = min(fmin, fv)
                    fmax = max(fmax, fv)
                    cmin = min(cmin, cv)
                    cmax = max(cmax, cv)
            if not (fmax > fmin and cmax > cmin):
                out[y, x] = 0.5
                continue
            mf /= 2 * nb
            mc /= 2 * nb
            sfc = 0.0
            sff = 0.0
            scc = 0.0
            for b in range(nb):
                for fv, cv in ((f1[b, y, x], c1[b, y, x]), (f2[b, y, x], c2[b, y, x])):
                    df = fv - mf
                    dc = cv - mc
                    sfc += df * dc
                    sff += df * df
                    scc += dc * dc
            r = sfc / np.sqrt(sff * scc)
            out[y, x] = r if np.isfinite(r) else 0.5


@njit(parallel=True, nogil=True, fastmath=_FAST, cache=True, error_model="numpy")
def estarfm_predict(
    fs: np.ndarray,
    thr: np.ndarray,
    omr: np.ndarray,
    vals: np.ndarray,
    chg: np.ndarray,
    tsum: np.ndarray,
    tcount: np.ndarray,
    dist: np.ndarray,
    min_similar: int,
    data_min: float,
    data_max: float,
    min_change: float,
    v_max: float,
    fcrit: np.ndarray,
    out: np.ndarray,
) -> None:
    """ESTARFM prediction of every centre pixel.

    Padded inputs (``H + 2 half``, ``W + 2 half``):
      ``fs``   ``(2, band, .., ..)`` F_1 and F_2, BIG where the pixel is invalid (a NaN in any
               band of F_1, C_1, F_2, C_2 or C_0);
      ``omr``  ``(.., ..)`` 1 - R, R the spectral correlation of the pixel (any finite value
               where invalid);
      ``vals`` ``(band, 4, .., ..)`` C_1, C_2, F_1, F_2 (0 where invalid);
      ``chg``  ``(band, 2, .., ..)`` C_0 - C_1, C_0 - C_2 (0 where invalid).
    Centre-indexed ``(.., H, W)``:
      ``thr``    ``(2, band)`` similarity thresholds; ``tsum`` ``(band, 2)`` window sums of
                 C_0 - C_1 and C_0 - C_2 over valid pixels; ``tcount`` their pixel count.
    ``dist`` ``(2 half + 1, 2 half + 1)``: 1 + distance / half. ``fcrit[df]``: the F(1, df)
    quantile of the significance test (inf for df = 0). ``out`` ``(band, H, W)``, NaN where the
    centre is invalid.
    """
    nb = fs.shape[1]
    h = out.shape[1]
    w = out.shape[2]
    size = dist.shape[0]
    half = size // 2
    eps = np.float32(EPS_DISTANCE)
    nchunks = (w + CHUNK - 1) // CHUNK
    for y in prange(h):
        accr = np.empty((nb, 6, CHUNK), dtype=np.float32)
        shx = np.empty((nb, CHUNK), dtype=np.float32)
        shy = np.empty((nb, CHUNK), dtype=np.float32)
        acc32 = np.empty((nb, 2, CHUNK), dtype=np.float32)
        cnt = np.empty(CHUNK, dtype=np.float32)
        sw = np.empty(CHUNK, dtype=np.float32)
        m = np.empty(CHUNK, dtype=np.float32)
        wt = np.empty(CHUNK, dtype=np.float32)
        yc = y + half
        for ci in range(nchunks):
            x0 = ci * CHUNK
            cw = min(CHUNK, w - x0)
            accr[:] = 0.0
            # The regression sums are taken about the centre's own values (the mean of its
            # two dates): small numbers, so float32 keeps the variances exact enough even
            # for kelvin (x^2 ~ 1e5 against a local variance ~ 1).
            xc = x0 + half
            for b in range(nb):
                for j in range(cw):
                    shx[b, j] = 0.5 * (vals[b, 0, yc, xc + j] + vals[b, 1, yc, xc + j])
                    shy[b, j] = 0.5 * (vals[b, 2, yc, xc + j] + vals[b, 3, yc, xc + j])
            acc32[:] = 0.0
            cnt[:] = 0.0
            sw[:] = 0.0
            for dy in range(size):
                yy = y + dy
                for dx in range(size):
                    dd = dist[dy, dx]
                    # similar in both pairs and every band (BIG never is). Row slices keep
                    # the inner loops on contiguous 1-D views, which numba vectorises.
                    for j in range(cw):
                        m[j] = 1.0
                    for k in range(2):
                        for b in range(nb):
                            nbr = fs[k, b, yy, x0 + dx : x0 + dx + cw]
                            cen = fs[k, b, yc, x0 + half : x0 + half + cw]
                            tk = thr[k, b, y, x0 : x0 + cw]
                            for j in range(cw):
                                ok = abs(nbr[j] - cen[j]) <= tk[j]
                                m[j] = m[j] if ok else np.float32(0.0)
                    om = omr[yy, x0 + dx : x0 + dx + cw]
                    for j in range(cw):
                        wt[j] = m[j] / (om[j] * dd + eps)
                        cnt[j] += m[j]
                        sw[j] += wt[j]
                    for b in range(nb):
                        c1 = vals[b, 0, yy, x0 + dx : x0 + dx + cw]
                        c2 = vals[b, 1, yy, x0 + dx : x0 + dx + cw]
                        f1 = vals[b, 2, yy, x0 + dx : x0 + dx + cw]
                        f2 = vals[b, 3, yy, x0 + dx : x0 + dx + cw]
                        sx = shx[b]
                        sy = shy[b]
                        r0 = accr[b, SX]
                        r1 = accr[b, SY]
                        r2 = accr[b, SXX]
                        r3 = accr[b, SXY]
                        r4 = accr[b, SYY]
                        r5 = accr[b, SG]
                        for j in range(cw):
                            a1 = c1[j] - sx[j]
                            a2 = c2[j] - sx[j]
                            e1 = f1[j] - sy[j]
                            e2 = f2[j] - sy[j]
                            mj = m[j]
                            r0[j] += mj * (a1 + a2)
                            r1[j] += mj * (e1 + e2)
                            r2[j] += mj * (a1 * a1 + a2 * a2)
                            r3[j] += mj * (a1 * e1 + a2 * e2)
                            r4[j] += mj * (e1 * e1 + e2 * e2)
                            r5[j] += mj * (a1 - a2)
                        for q in range(2):
                            src = chg[b, q, yy, x0 + dx : x0 + dx + cw]
                            a32 = acc32[b, q]
                            for j in range(cw):
                                a32[j] += wt[j] * src[j]
            for j in range(cw):
                x = x0 + j
                if fs[0, 0, yc, x + half] == BIG:
                    for b in range(nb):
                        out[b, y, x] = np.nan
                    continue
                n = cnt[j]
                for b in range(nb):
                    f1c = fs[0, b, yc, x + half]
                    f2c = fs[1, b, yc, x + half]
                    s1 = tsum[b, 0, y, x]
                    s2 = tsum[b, 1, y, x]
                    d1 = abs(s1)
                    d2 = abs(s2)
                    if d1 + d2 > 0.0:
                        t1 = d2 / (d1 + d2)
                        t2 = d1 / (d1 + d2)
                    else:
                        t1 = 0.5
                        t2 = 0.5
                    if n < min_similar:
                        c = tcount[y, x]
                        out[b, y, x] = t1 * (f1c + s1 / c) + t2 * (f2c + s2 / c)
                        continue
                    v = _conversion(accr[b, :, j], n, min_change, v_max, fcrit)
                    p1 = f1c + v * acc32[b, 0, j] / sw[j]
                    p2 = f2c + v * acc32[b, 1, j] / sw[j]
                    pred = t1 * p1 + t2 * p2
                    if pred <= data_min or pred >= data_max:
                        pred = _fine_mean(fs, thr, omr, dist, y, x, b, t1, t2)
                    out[b, y, x] = pred


@njit(nogil=True, cache=True, error_model="numpy")
def _conversion(
    s: np.ndarray, n: float, min_change: float, v_max: float, fcrit: np.ndarray
) -> float:
    """V from the sums over the similar pixels (about any shift); 1 when the regression is
    not usable."""
    if not abs(np.float64(s[SG])) / n >= min_change:
        return 1.0
    npts = 2.0 * n
    sx = np.float64(s[SX])
    sy = np.float64(s[SY])
    sxx = np.float64(s[SXX]) - sx * sx / npts
    sxy = np.float64(s[SXY]) - sx * sy / npts
    syy = np.float64(s[SYY]) - sy * sy / npts
    # float32 sums leave a variance of rounding noise where all values are equal
    if sxx <= RELATIVE_FLAT * np.float64(s[SXX]):
        return 1.0
    slope = sxy / sxx
    if not (0.0 < slope <= v_max):
        return 1.0
    r2 = sxy * sxy / (sxx * syy) if syy > RELATIVE_FLAT * np.float64(s[SYY]) else 0.0
    if r2 >= 1.0:
        return slope
    df = int(npts) - 2
    if df < 1:
        return 1.0
    fstat = df * r2 / (1.0 - r2)
    return slope if fstat >= fcrit[min(df, fcrit.shape[0] - 1)] else 1.0


@njit(nogil=True, fastmath=_FAST, cache=True, error_model="numpy")
def _fine_mean(
    fs: np.ndarray,
    thr: np.ndarray,
    omr: np.ndarray,
    dist: np.ndarray,
    y: int,
    x: int,
    b: int,
    t1: float,
    t2: float,
) -> float:
    """T_1 sum W F_1 + T_2 sum W F_2 over the similar pixels (the reference's fallback for a
    prediction outside the data range); rare, so the window is walked again."""
    nb = fs.shape[1]
    size = dist.shape[0]
    half = size // 2
    sw = 0.0
    s1 = 0.0
    s2 = 0.0
    for dy in range(size):
        for dx in range(size):
            ok = True
            for k in range(2):
                for bb in range(nb):
                    d = abs(fs[k, bb, y + dy, x + dx] - fs[k, bb, y + half, x + half])
                    ok = ok and d <= thr[k, bb, y, x]
            if ok:
                wgt = 1.0 / (omr[y + dy, x + dx] * dist[dy, dx] + np.float32(EPS_DISTANCE))
                sw += wgt
                s1 += wgt * fs[0, b, y + dy, x + dx]
                s2 += wgt * fs[1, b, y + dy, x + dx]
    return t1 * s1 / sw + t2 * s2 / sw
