"""Slow, literal FSDAF steps (Zhu et al. 2016) for testing the fast kernels.

Written from the paper's formulas and the conventions in ``stfusion.methods.fsdaf``'s
docstring, one pixel (or one coarse pixel) at a time in plain Python/float64, sharing no code
with ``stfusion.kernels.fsdaf``. Only for small arrays.
"""

from __future__ import annotations

import math

import numpy as np


def homogeneity_ref(labels: np.ndarray, half: int) -> np.ndarray:
    """Step 5, homogeneity index: HI = (same-class pixels) / (classified pixels) in the
    (2 half + 1)^2 window around the pixel, clipped to the array; NaN for unlabelled pixels."""
    h, w = labels.shape
    out = np.full((h, w), np.nan)
    for y in range(h):
        for x in range(w):
            if labels[y, x] < 0:
                continue
            same = total = 0
            for yy in range(y - half, y + half + 1):
                for xx in range(x - half, x + half + 1):
                    if 0 <= yy < h and 0 <= xx < w and labels[yy, xx] >= 0:
                        total += 1
                        same += int(labels[yy, xx] == labels[y, x])
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

    final="paper" (paper eqs. 21-25): same label as the centre (an unlabelled centre has
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
    for y in range(h):
        for x in range(w):
            if not np.isfinite(f1[:, y, x]).all():
                continue
            if final == "paper" and labels[y, x] < 0:
                continue
            fc = [float(f1[b, y, x]) for b in range(nb)]
            cands = []
            order = 0
            for yy in range(max(0, y - half), min(h, y + half + 1)):
                for xx in range(max(0, x - half), min(w, x + half + 1)):
                    order += 1
                    if labels[yy, xx] < 0 or not np.isfinite(f1[:, yy, xx]).all():
                        continue
                    if not np.isfinite(change[:, yy, xx]).all():
                        continue
                    diffs = [abs(float(f1[b, yy, xx]) - fc[b]) for b in range(nb)]
                    if final == "paper":
                        if labels[yy, xx] != labels[y, x]:
                            continue
                    elif any(not diffs[b] < thr[b] for b in range(nb)):
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
                acc = sum(wv * float(change[b, c[3], c[4]]) for wv, c in zip(wts, chosen))
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
