"""Slow, literal FSDAF steps (Zhu et al. 2016) for testing the fast kernels.

Written from the paper's formulas (equation numbers: Zhu et al. 2016, section 2.2), the
authors' IDL program ``FSDAF.pro`` where the paper leaves a rule open, and the conventions in
``docs/methods/fsdaf.md``, one pixel (or one coarse pixel) at a time in plain Python/float64,
sharing no code with ``stfusion`` (no scipy either: the bounded least squares and the
thin-plate spline are solved here from their definitions). Only for small arrays.

``fsdaf_ref`` composes the steps end to end for a given class map (global spline, the
paper's final rule).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

#: Coarse pixels whose fraction of a class exceeds this may be among its purest (FSDAF.pro:
#: ``where(Fraction1 gt 0.01)``).
PURE_MIN_FRACTION = 0.01
#: Quantiles of Delta C kept among a class's purest coarse pixels (paper section 2.2.2 and
#: FSDAF.pro ``Percentiles=[0.1, 0.9]``).
KEEP_QUANTILES = (0.1, 0.9)


def homogeneity_ref(labels: np.ndarray, half: int) -> np.ndarray:
    """Step 5, homogeneity index: HI = (same-class pixels) / (classified pixels) in the
    (2 half + 1)^2 window around the pixel, clipped to the array; NaN for unlabelled pixels."""
    h, w = labels.shape
    out = np.full((h, w), np.nan)
    for y in range(h):
        for x in range(w):
            if labels[y, x] < 0:
                continue
            win = labels[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1]
            total = np.count_nonzero(win >= 0)
            same = np.count_nonzero(win == labels[y, x])
            out[y, x] = same / total
    return out


def residual_change_ref(
    f1: np.ndarray,
    labels: np.ndarray,
    hi: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    residual: np.ndarray,
    r: int,
    lo: np.ndarray,
    hi_allow: np.ndarray,
) -> np.ndarray:
    """Steps 3 and 5 for every coarse pixel (r x r block from the array origin).

    TP = F1 + dF(c); E_ho = SP - TP kept where it has the sign of R (else 0), |E_ho|;
    E_he = |R|; CW = |E_ho| HI + |R| (1 - HI); W = CW / mean(CW) (1 if the mean is 0);
    W > 10 -> 1; W /= mean(W); r = W R; dF = dF(c) + r, then F1 + dF limited to
    [lo, hi_allow]. R NaN: dF = dF(c) (limited the same way).
    """
    nb, h, w = f1.shape
    out = np.full((nb, h, w), np.nan)
    for bi in range(math.ceil(h / r)):
        for bj in range(math.ceil(w / r)):
            pix = [
                (y, x)
                for y in range(bi * r, min(h, bi * r + r))
                for x in range(bj * r, min(w, bj * r + r))
                if labels[y, x] >= 0
            ]
            for b in range(nb):
                res = float(residual[bi, bj, b])
                cws = []
                for y, x in pix:
                    tp = float(f1[b, y, x]) + float(class_change[labels[y, x], b])
                    e_ho = 0.0
                    if not math.isnan(res) and not math.isnan(spline[b, y, x]):
                        e_ho = float(spline[b, y, x]) - tp
                        e_ho = max(e_ho, 0.0) if res > 0 else max(-e_ho, 0.0)
                    e_he = abs(res) if not math.isnan(res) else 0.0
                    cws.append(e_ho * float(hi[y, x]) + e_he * (1.0 - float(hi[y, x])))
                if not pix:
                    continue
                mean = sum(cws) / len(cws)
                wts = [c / mean if mean > 0 else 1.0 for c in cws]
                wts = [1.0 if wv > 10.0 else wv for wv in wts]
                mean2 = sum(wts) / len(wts)
                for (y, x), wv in zip(pix, wts):
                    d = float(class_change[labels[y, x], b])
                    if not math.isnan(res):
                        d += wv / mean2 * res
                    f = float(f1[b, y, x])
                    out[b, y, x] = min(max(f + d, lo[b]), hi_allow[b]) - f
    return out


def smooth_ref(
    f1: np.ndarray,
    change: np.ndarray,
    labels: np.ndarray,
    half: int,
    n_similar: int,
    thr: np.ndarray,
    final: str = "paper",
) -> np.ndarray:
    """Step 6 at every pixel, window clipped to the array.

    Usable neighbour k: a label, valid F1 and change in every band. Relative spectral
    difference (paper eq. 21): S_k = sum_b |F1_k - F1_c| / (|F1_c| + 1e-8); d_k the
    Euclidean distance in pixels.

    final="paper" (paper eqs. 21-24): same label as the centre (an unlabelled centre has
    none); sorted by (S_k, d_k^2, scan order); the first ``n_similar`` weighted by
    1 / D_k, D_k = 1 + d_k / half.

    final="idl" (FSDAF.pro's final prediction): any label, |F1_k - F1_c| < thr_b in every
    band; sorted by ((S_k + 1e-5) (10 + d_k / half), d_k^2, scan order); weights
    1 / ((1 + d_k / half) (1 + S_k)).

    F2 = F1_c + sum w_k dF_k / sum w_k; NaN without a candidate or a valid centre.
    """
    nb, h, w = f1.shape
    out = np.full((nb, h, w), np.nan)
    hw = float(half) if half > 0 else 1.0
    # plain Python copies (float64), read pixel by pixel below
    f = f1.astype(np.float64).tolist()
    dch = change.astype(np.float64).tolist()
    lab = labels.tolist()
    valid = np.isfinite(f1).all(axis=0).tolist()
    usable = (np.isfinite(f1).all(axis=0) & np.isfinite(change).all(axis=0)).tolist()
    for y in range(h):
        for x in range(w):
            if not valid[y][x]:
                continue
            if final == "paper" and lab[y][x] < 0:
                continue
            fc = [f[b][y][x] for b in range(nb)]
            cands = []
            order = 0
            for yy in range(max(0, y - half), min(h, y + half + 1)):
                for xx in range(max(0, x - half), min(w, x + half + 1)):
                    order += 1
                    if lab[yy][xx] < 0 or not usable[yy][xx]:
                        continue
                    if final == "paper" and lab[yy][xx] != lab[y][x]:
                        continue
                    diffs = [abs(f[b][yy][xx] - fc[b]) for b in range(nb)]
                    if final != "paper" and any(not diffs[b] < thr[b] for b in range(nb)):
                        continue
                    s = 0.0
                    for b in range(nb):
                        s += diffs[b] * (1.0 / (abs(fc[b]) + 1e-8))
                    d2 = float((yy - y) ** 2 + (xx - x) ** 2)
                    dist = math.sqrt(d2)
                    key = s if final == "paper" else (s + 1e-5) * (10.0 + dist / hw)
                    cands.append((key, d2, order, yy, xx, s, dist))
            if not cands:
                continue
            cands.sort()
            chosen = cands[:n_similar]
            if final == "paper":
                wts = [1.0 / (1.0 + c[6] / hw) for c in chosen]
            else:
                wts = [1.0 / ((1.0 + c[6] / hw) * (1.0 + c[5])) for c in chosen]
            total = sum(wts)
            for b in range(nb):
                acc = sum(wv * dch[b][c[3]][c[4]] for wv, c in zip(wts, chosen))
                out[b, y, x] = fc[b] + acc / total
    return out


def class_fractions_ref(labels: np.ndarray, r: int, n_classes: int) -> np.ndarray:
    """Step 2, class fractions: f_c = N_c / m per r x r block (m = pixels in the block)."""
    h, w = labels.shape
    out = np.zeros((math.ceil(h / r), math.ceil(w / r), n_classes))
    for bi in range(out.shape[0]):
        for bj in range(out.shape[1]):
            block = labels[bi * r : bi * r + r, bj * r : bj * r + r]
            for c in range(n_classes):
                out[bi, bj, c] = np.count_nonzero(block == c) / block.size
    return out


# ----------------------------------------------------------------- steps 2-4 (eqs. 2-13)


def block_mean_ref(img: np.ndarray, r: int) -> np.ndarray:
    """Mean of the finite values of each r x r block (the value of a coarse pixel read on the
    fine grid), ``(band, bh, bw)``; NaN for a block without any."""
    nb, h, w = img.shape
    out = np.full((nb, math.ceil(h / r), math.ceil(w / r)), np.nan)
    for b in range(nb):
        for bi in range(out.shape[1]):
            for bj in range(out.shape[2]):
                vals = [
                    float(img[b, y, x])
                    for y in range(bi * r, min(h, bi * r + r))
                    for x in range(bj * r, min(w, bj * r + r))
                    if math.isfinite(img[b, y, x])
                ]
                if vals:
                    out[b, bi, bj] = sum(vals) / len(vals)
    return out


def std_ref(values: list[float], ddof: int = 0) -> float:
    """sqrt(sum (v - mean)^2 / (n - ddof)). stfusion and the authors' Python port: ddof 0;
    IDL ``stddev``: ddof 1."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - ddof))


def bounded_lsq_ref(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """argmin ||x g - y||^2 subject to lo <= g_c <= hi, by enumeration: every assignment of
    each unknown to {free, at lo, at hi}; the free unknowns from the normal equations given the
    fixed ones; the feasible candidate with the least squared error wins (the problem is
    convex, so its minimiser is one of them). FSDAF.pro minimises the same function with
    ``CONSTRAINED_MIN``. 3^k solves: only for a few classes. ``x`` must have full column
    rank (the minimiser is then unique, and every subset of its columns has full rank too).
    """
    k = x.shape[1]
    assert np.linalg.matrix_rank(x) == k, "the unmixing system is rank deficient"
    if hi <= lo:
        return np.full(k, lo)  # a single feasible point
    best, best_err = None, math.inf
    for states in itertools.product((0, 1, 2), repeat=k):  # 0 free, 1 at lo, 2 at hi
        g = np.array([lo if s == 1 else hi if s == 2 else 0.0 for s in states])
        free = [c for c in range(k) if states[c] == 0]
        if free:
            rest = y - x @ g
            a = x[:, free]
            g[free] = np.linalg.solve(a.T @ a, a.T @ rest)
            if any(not (lo - 1e-12 <= g[c] <= hi + 1e-12) for c in free):
                continue
        err = float(((x @ g - y) ** 2).sum())
        if err < best_err:
            best, best_err = g, err
    assert best is not None
    return best


def unmix_ref(
    fractions: np.ndarray,
    dc: np.ndarray,
    complete: np.ndarray,
    n_pure: int,
    ddof: int = 0,
) -> tuple[np.ndarray, list[list[int]], tuple[float, float]]:
    """Step 2 for one band (paper eqs. 2-4, rules of section 2.2.2 and FSDAF.pro).

    ``fractions`` ``(n, classes)`` (eq. 1), ``dc`` ``(n,)`` = Delta C = C2 - C1 (eq. 2; NaN:
    unknown), ``complete`` ``(n,)``: every fine pixel of the coarse pixel is classified.
    For each class c: the coarse pixels with a known Delta C, complete, and f_c > 1 %, in
    order of f_c, largest first (ties: raster order), the first ``n_pure`` of them (the
    purest); of their Delta C, sorted, the values at positions floor(0.1 n) and floor(0.9 n)
    (FSDAF.pro ``Value_Locate`` on ``findgen(n+1)/n``) bound the ones kept. The kept rows of
    all classes (a coarse pixel may appear for several) form eq. 4, solved by least squares
    with every Delta F(c) in [min Delta C - sd, max Delta C + sd], sd the standard deviation
    of the known Delta C with ``ddof`` (stfusion: 0, IDL ``stddev``: 1). A class in no kept
    row: the fraction-weighted mean of the known Delta C of the coarse pixels holding it,
    limited to the bounds (stfusion's rule; FSDAF.pro leaves it to its minimiser).

    Returns (Delta F(c) ``(classes,)``, the kept coarse pixels of each class, the bounds).
    """
    n, k = fractions.shape
    known = [i for i in range(n) if math.isfinite(dc[i])]
    vals = [float(dc[i]) for i in known]
    sd = std_ref(vals, ddof)
    lo, hi = min(vals) - sd, max(vals) + sd
    kept: list[list[int]] = []
    for c in range(k):
        cand = [i for i in known if complete[i] and fractions[i, c] > PURE_MIN_FRACTION]
        cand.sort(key=lambda i: (-float(fractions[i, c]), i))
        purest = cand[:n_pure]
        if not purest:
            kept.append([])
            continue
        srt = sorted(float(dc[i]) for i in purest)
        m = len(purest)
        q_lo = srt[math.floor(KEEP_QUANTILES[0] * m)]
        q_hi = srt[min(math.floor(KEEP_QUANTILES[1] * m), m - 1)]
        kept.append([i for i in purest if q_lo <= dc[i] <= q_hi])
    rows = [i for ks in kept for i in ks]
    x = np.array([[float(fractions[i, c]) for c in range(k)] for i in rows]).reshape(-1, k)
    y = np.array([float(dc[i]) for i in rows])
    out = np.empty(k)
    if hi <= lo:
        out[:] = lo
        return out, kept, (lo, hi)
    solved = [c for c in range(k) if any(x[j, c] > 0 for j in range(len(rows)))]
    for c in range(k):
        if c not in solved:
            has = [i for i in known if fractions[i, c] > 0]
            wsum = sum(float(fractions[i, c]) for i in has)
            guess = (
                sum(float(fractions[i, c] * dc[i]) for i in has) / wsum
                if wsum > 0
                else sum(vals) / len(vals)
            )
            out[c] = min(max(guess, lo), hi)
    if solved:
        out[solved] = bounded_lsq_ref(x[:, solved], y, lo, hi)
    return out, kept, (lo, hi)


def residual_ref(
    f1: np.ndarray, labels: np.ndarray, class_change: np.ndarray, dc: np.ndarray, r: int
) -> np.ndarray:
    """Step 3: F2_TP = F1 + Delta F(c) (eq. 5) and, per coarse pixel, eq. 9:
    R = Delta C - (1/m) [sum F2_TP - sum F1] over its m classified fine pixels (stfusion
    counts the classified pixels of an incomplete coarse pixel). ``dc`` ``(band, bh, bw)``.
    ``(bh, bw, band)``; NaN where Delta C is unknown or no fine pixel is classified."""
    nb, h, w = f1.shape
    out = np.full((dc.shape[1], dc.shape[2], nb), np.nan)
    for bi in range(dc.shape[1]):
        for bj in range(dc.shape[2]):
            pix = [
                (y, x)
                for y in range(bi * r, min(h, bi * r + r))
                for x in range(bj * r, min(w, bj * r + r))
                if labels[y, x] >= 0 and np.isfinite(f1[:, y, x]).all()
            ]
            for b in range(nb):
                if not pix or not math.isfinite(dc[b, bi, bj]):
                    continue
                tp = sum(float(f1[b, y, x]) + float(class_change[labels[y, x], b]) for y, x in pix)
                f = sum(float(f1[b, y, x]) for y, x in pix)
                out[bi, bj, b] = float(dc[b, bi, bj]) - (tp - f) / len(pix)
    return out


def allowed_range_ref(
    c2: np.ndarray, tp: np.ndarray, valid_range: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The range F1 + Delta F is kept in (FSDAF.pro after step 4: ``min_allow = max(min(
    min(coarse2), min(L2_1)), DN_min)``, ``max_allow`` likewise with DN_max): per band, from
    the smaller of the minima of C2 (on the fine grid) and F2_TP, to the larger of their
    maxima, within ``valid_range`` (stfusion's DN_min, DN_max)."""
    nb = c2.shape[0]
    lo, hi = np.empty(nb), np.empty(nb)
    for b in range(nb):
        vals = [float(v) for v in c2[b].ravel() if math.isfinite(v)]
        tvals = [float(v) for v in tp[b].ravel() if math.isfinite(v)]
        lo[b], hi[b] = min(min(vals), min(tvals)), max(max(vals), max(tvals))
        if valid_range is not None:
            lo[b], hi[b] = max(lo[b], valid_range[0]), min(hi[b], valid_range[1])
    return lo, hi


def tps_ref(values: np.ndarray, r: int, shape: tuple[int, int]) -> np.ndarray:
    """Step 4, the global thin-plate spline (eqs. 10-13) through ``values`` ``(band, bh,
    bw)`` (C2 per coarse pixel; NaN ones left out) at the coarse-pixel centres (the mean fine
    (row, col) of each r x r block), evaluated at every fine pixel of ``shape``.

    f(x, y) = a0 + a1 x + a2 y + 1/2 sum_i b_i r_i^2 log r_i^2 (eq. 10), with
    sum b_i = sum b_i x_i = sum b_i y_i = 0 (eq. 11) and E_TPS = 0 (eq. 12: through the
    points): the (N + 3) linear system of these conditions, solved directly.
    """
    h, w = shape
    nb, bh, bw = values.shape
    out = np.empty((nb, h, w))

    def kern(d2: float) -> float:
        return 0.5 * d2 * math.log(d2) if d2 > 0 else 0.0

    cy = [(bi * r + min(h, bi * r + r) - 1) / 2 for bi in range(bh)]
    cx = [(bj * r + min(w, bj * r + r) - 1) / 2 for bj in range(bw)]
    for b in range(nb):
        pts = [
            (cy[bi], cx[bj], float(values[b, bi, bj]))
            for bi in range(bh)
            for bj in range(bw)
            if math.isfinite(values[b, bi, bj])
        ]
        n = len(pts)
        a = np.zeros((n + 3, n + 3))
        rhs = np.zeros(n + 3)
        for i, (yi, xi, v) in enumerate(pts):
            for j, (yj, xj, _) in enumerate(pts):
                a[i, j] = kern((yi - yj) ** 2 + (xi - xj) ** 2)
            a[i, n : n + 3] = (1.0, xi, yi)
            a[n : n + 3, i] = (1.0, xi, yi)
            rhs[i] = v
        coef = np.linalg.solve(a, rhs)
        bi_, a0, a1, a2 = coef[:n], coef[n], coef[n + 1], coef[n + 2]
        py = np.array([p[0] for p in pts])
        px = np.array([p[1] for p in pts])
        for y in range(h):
            d2 = (y - py[None, :]) ** 2 + (np.arange(w)[:, None] - px[None, :]) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                k = np.where(d2 > 0, 0.5 * d2 * np.log(d2), 0.0)
            out[b, y] = a0 + a1 * np.arange(w) + a2 * y + k @ bi_
    return out


def fsdaf_ref(
    f1: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    r: int,
    half: int,
    n_similar: int,
    n_pure: int,
    valid_range: tuple[float, float] | None,
    ddof: int = 0,
) -> dict[str, np.ndarray]:
    """FSDAF end to end from these references, for a given class map ``labels`` (0 ..
    ``n_classes`` - 1, -1 unclassified), the global spline and ``final="paper"``: fractions
    (eq. 1), Delta C (eq. 2), unmixing (eqs. 3-4), F2_TP (eq. 5), R (eq. 9), F2_SP (eqs.
    10-13), the residual distribution limited to the allowed range (eqs. 14-20), the final
    prediction (eqs. 21-24); a pixel with a valid F1 but no similar pixel, or a prediction
    outside ``valid_range``, takes F1 + C2 - C1 limited to ``valid_range``.

    Returns the intermediate results under the names of the fitted attributes
    (``class_change_`` ``(classes, band)``, ``residual_`` ``(bh, bw, band)``, ``allowed_``,
    ``spline``, ``change``) and ``prediction``.
    """
    nb, h, w = f1.shape
    frac = class_fractions_ref(labels, r, n_classes)
    bh, bw = frac.shape[:2]
    complete = np.array(
        [
            all(
                labels[y, x] >= 0 and np.isfinite(f1[:, y, x]).all()
                for y in range(bi * r, min(h, bi * r + r))
                for x in range(bj * r, min(w, bj * r + r))
            )
            for bi in range(bh)
            for bj in range(bw)
        ]
    )
    m1, m2 = block_mean_ref(c1, r), block_mean_ref(c2, r)
    dc = m2 - m1
    change = np.empty((n_classes, nb))
    for b in range(nb):
        change[:, b] = unmix_ref(
            frac.reshape(-1, n_classes), dc[b].ravel(), complete, n_pure, ddof
        )[0]
    resid = residual_ref(f1, labels, change, dc, r)
    tp = np.full(f1.shape, np.nan)
    for y in range(h):
        for x in range(w):
            if labels[y, x] >= 0:
                tp[:, y, x] = f1[:, y, x] + change[labels[y, x]]
    allowed = allowed_range_ref(c2, tp, valid_range)
    spline = tps_ref(m2, r, (h, w))
    hi_index = homogeneity_ref(labels, r // 2)
    total = residual_change_ref(f1, labels, hi_index, spline, change, resid, r, *allowed)
    pred = smooth_ref(f1, total, labels, half, n_similar, np.zeros(nb), "paper")
    for b in range(nb):
        for y in range(h):
            for x in range(w):
                if not np.isfinite(f1[:, y, x]).all():
                    continue
                v = float(pred[b, y, x])
                alt = float(f1[b, y, x]) + float(c2[b, y, x]) - float(c1[b, y, x])
                lo, hi = valid_range if valid_range is not None else (-math.inf, math.inf)
                if math.isnan(v) or not lo <= v <= hi:
                    pred[b, y, x] = min(max(alt, lo), hi) if math.isfinite(alt) else v
    return {
        "class_change_": change,
        "residual_": resid,
        "allowed_": np.array(allowed),
        "spline": spline,
        "change": total,
        "prediction": pred,
    }
