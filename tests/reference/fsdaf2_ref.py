"""Slow, literal FSDAF 2.0 steps (Guo et al. 2020, as read in ``stfusion.methods.fsdaf2``'s
docstring) for testing the fast code.

One value (or one pixel, one coarse pixel) at a time in plain Python/float64, sharing no code
with ``stfusion.methods.fsdaf2``; FSDAF's residual distribution is the FSDAF reference's
(:func:`reference.fsdaf_ref.residual_change_ref`), as FSDAF 2.0 reuses that step.
"""

from __future__ import annotations

import math

import numpy as np

from reference.fsdaf_ref import residual_change_ref


def otsu_ref(values: np.ndarray) -> float:
    """Otsu's threshold: over every split "v <= t | v > t" at a distinct value t (not the
    largest), the t maximising w0 w1 (mu0 - mu1)^2 (first maximum in increasing t); inf
    with fewer than two distinct finite values."""
    v = [float(x) for x in np.ravel(values) if math.isfinite(float(x))]
    distinct = sorted(set(v))
    best, best_t = -1.0, math.inf
    n = len(v)
    for t in distinct[:-1]:
        low = [x for x in v if x <= t]
        high = [x for x in v if x > t]
        w0, w1 = len(low) / n, len(high) / n
        between = w0 * w1 * (sum(low) / len(low) - sum(high) / len(high)) ** 2
        if between > best:
            best, best_t = between, t
    return best_t


def index_ref(diffs: list[float], scale: np.ndarray) -> float:
    """Change index sqrt(mean_b (d_b / s_b)^2), a band with s_b = 0 counting 0."""
    total = 0.0
    for b, d in enumerate(diffs):
        if scale[b] > 0:
            total += (d / float(scale[b])) ** 2
    return math.sqrt(total / len(diffs))


def fsdaf2_change_ref(
    f1: np.ndarray,
    labels: np.ndarray,
    hi: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    residual: np.ndarray,
    changed: np.ndarray,
    r: int,
    scale: np.ndarray,
    threshold: float,
    lo: np.ndarray,
    hi_allow: np.ndarray,
) -> np.ndarray:
    """Steps 4-5: in a changed coarse pixel with a known residual, each labelled pixel with a
    finite spline moves its temporal prediction by P (SP - TP), P = e^2 / (e^2 + T^2), e the
    change index of SP - TP; the coarse residual loses the mean move over its labelled
    pixels; FSDAF's distribution on the moved F1; the move added back."""
    nb, h, w = f1.shape
    shift = np.zeros((nb, h, w))
    resid = np.array(residual, dtype=np.float64)
    for bi in range(math.ceil(h / r)):
        for bj in range(math.ceil(w / r)):
            known = bool(changed[bi, bj]) and all(
                not math.isnan(float(residual[bi, bj, b])) for b in range(nb)
            )
            total = [0.0] * nb
            n = 0
            for y in range(bi * r, min(h, bi * r + r)):
                for x in range(bj * r, min(w, bj * r + r)):
                    c = int(labels[y, x])
                    if c < 0:
                        continue
                    n += 1
                    d = [
                        float(spline[b, y, x]) - (float(f1[b, y, x]) + float(class_change[c, b]))
                        for b in range(nb)
                    ]
                    if not known or any(math.isnan(v) for v in d):
                        continue
                    e = index_ref(d, scale)
                    p = e * e / (e * e + threshold * threshold)
                    for b in range(nb):
                        shift[b, y, x] = p * d[b]
                        total[b] += p * d[b]
            for b in range(nb):
                if n:
                    resid[bi, bj, b] -= total[b] / n
    f1p = f1.astype(np.float64) + shift
    out = residual_change_ref(f1p, labels, hi, spline, class_change, resid, r, lo, hi_allow)
    return out + shift
