"""FSDAF's classification of F1 (paper step 1) and unmixing of the class changes (step 2).

See :mod:`stfusion.methods.fsdaf` for the method; these are its scene-wide steps on arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stfusion.kernels.fsdaf import kmeans_step

#: A class needs more than this fraction of a coarse pixel for the pixel to be a candidate.
MIN_PURE_FRACTION = 0.01
#: Percentiles of the pure pixels' changes kept for the unmixing (the reference's 10-90 %).
TRIM = (0.1, 0.9)
#: ISODATA settings of FSDAF.pro (its ENVI ``class_doit`` call): ITERATIONS, ISO_MERGE_PAIRS,
#: ISO_MIN_PIXELS (pixels of the scene), ISO_MERGE_DIST = ISO_SPLIT_STD = 0.05 * DN_max.
ISO_ITERATIONS = 20
ISO_MERGE_PAIRS = 2
ISO_MIN_PIXELS = 200
ISO_DIST_OF_MAX = 0.05


# ----------------------------------------------------------------------------- classification


def kmeans(
    x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100
) -> np.ndarray:
    """Centres ``(k', band)`` of Lloyd's k-means with k-means++ seeding, ``k' <= k``.

    ``x`` ``(n, band)`` finite. Deterministic for a given seed; fewer centres when ``x`` has
    fewer than ``k`` distinct rows. The best of ``n_init`` runs (lowest inertia) is kept;
    centres are sorted by their sum over bands.

    Not ``scipy.cluster.vq.kmeans2(minit="++")``, although ``n_init`` calls of it drawing from
    one Generator give these centres bit for bit (tests/test_fsdaf_scipy.py): kmeans2 always
    runs all ``iter`` steps (no convergence test), 1.8-6.6x slower on FSDAF's samples of the
    named cases, and with fewer distinct rows than ``k`` it repeats centres after a 0/0
    (benchmarks/bench_fsdaf_scipy.py; docs/methods/fsdaf.md, "Implementation").
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    best: np.ndarray | None = None
    best_inertia = np.inf
    tol = 1e-10 * float(np.mean(np.var(x, axis=0))) + 1e-300
    dist = np.empty(len(x))
    for _ in range(n_init):
        c = _kmeans_pp(x, k, rng)
        new = np.empty_like(c)
        for _ in range(max_iter):
            kmeans_step(x, c, new, dist)
            shift = float(((new - c) ** 2).sum())
            c, new = new, c
            if shift <= tol:
                break
        inertia = kmeans_step(x, c, new, dist)
        if inertia < best_inertia:
            best, best_inertia = c.copy(), inertia
        if len(c) < k:
            break  # fewer distinct points than classes: every seeding gives the same centres
    assert best is not None
    return best[np.lexsort((*best.T[::-1], best.sum(axis=1)))]


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    c = [x[rng.integers(len(x))]]
    d = ((x - c[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d.sum()
        if total <= 0:
            break  # every point coincides with a centre
        c.append(x[rng.choice(len(x), p=d / total)])
        d = np.minimum(d, ((x - c[-1]) ** 2).sum(axis=1))
    return np.array(c)


def _assign(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean; ties: lower index) of every row."""
    d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d, axis=1)


def _class_stats(x: np.ndarray, lab: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Members, means and standard deviations (per band) of classes ``0..k-1``."""
    n = np.bincount(lab, minlength=k).astype(np.float64)
    nb = x.shape[1]
    s1 = np.stack([np.bincount(lab, x[:, b], minlength=k) for b in range(nb)], axis=1)
    s2 = np.stack([np.bincount(lab, x[:, b] ** 2, minlength=k) for b in range(nb)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n[:, None]
        sd = np.sqrt(np.maximum(s2 / n[:, None] - mean**2, 0.0))
    return n, mean, sd


def isodata(
    x: np.ndarray,
    min_k: int,
    max_k: int,
    merge_distance: float,
    split_std: float,
    min_members: int = 1,
    seed: int = 0,
    iterations: int = ISO_ITERATIONS,
    merge_pairs: int = ISO_MERGE_PAIRS,
) -> np.ndarray:
    """ISODATA centres ``(k, band)``, ``min_k <= k <= max_k`` (fewer only when ``x`` has
    fewer distinct rows), sorted as :func:`kmeans`'s.

    The scheme of ENVI's ISODATA as FSDAF.pro calls it (``NUM_CLASSES`` = max, ``MIN_CLASSES``,
    ``ITERATIONS`` 20, ``ISO_MERGE_DIST``, ``ISO_MERGE_PAIRS`` 2, ``ISO_MIN_PIXELS``,
    ``ISO_SPLIT_STD``, ``ISO_SPLIT_SMULT`` 1), made deterministic: start from :func:`kmeans`
    with ``max_k`` classes (seeded); then each iteration (a) drops classes with fewer than
    ``min_members`` members, smallest first, while more than ``min_k`` remain; (b) on even
    iterations splits, largest spread first while fewer than ``max_k``, every class whose
    largest per-band standard deviation exceeds ``split_std`` (and has at least
    ``2 min_members`` members) into two centres at its mean -+ that deviation along that
    band; on odd iterations merges, closest first, at most ``merge_pairs`` disjoint pairs of
    centres closer than ``merge_distance`` (Euclidean) into their member-weighted mean, while
    more than ``min_k`` remain; (c) one Lloyd step (assign, recompute means). It stops after
    ``iterations`` or when two consecutive iterations neither split nor merged and no centre
    moved; a last Lloyd refinement (to convergence, at most 100 steps) follows.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    c = kmeans(x, max_k, seed)
    if len(c) < max_k:
        return c  # fewer distinct rows than classes: nothing to split or merge
    quiet = 0
    for it in range(iterations):
        lab = _assign(x, c)
        n, mean, sd = _class_stats(x, lab, len(c))
        changed = False
        # (a) too small classes (empty ones included)
        while len(c) > min_k and n.min() < min_members:
            keep = np.ones(len(c), dtype=bool)
            keep[int(np.argmin(n))] = False
            c = c[keep]
            lab = _assign(x, c)
            n, mean, sd = _class_stats(x, lab, len(c))
            changed = True
        live = n > 0
        c = np.where(live[:, None], mean, c)
        if it % 2 == 0:
            # (b) split
            spread = sd.max(axis=1)
            new: list[np.ndarray] = []
            for j in np.argsort(-spread, kind="stable"):
                if len(c) + len(new) >= max_k:
                    break
                if spread[j] <= split_std or n[j] < 2 * min_members:
                    continue
                band = int(np.argmax(sd[j]))
                lo, hi = c[j].copy(), c[j].copy()
                lo[band] -= sd[j, band]
                hi[band] += sd[j, band]
                c[j] = lo
                new.append(hi)
            if new:
                c = np.concatenate([c, np.array(new)])
                changed = True
        else:
            # (b) merge
            d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
            iu, ju = np.triu_indices(len(c), 1)
            order = np.argsort(d[iu, ju], kind="stable")
            used = np.zeros(len(c), dtype=bool)
            drop: list[int] = []
            merged = 0
            for q in order:
                i, j = int(iu[q]), int(ju[q])
                if d[i, j] >= merge_distance or merged >= merge_pairs:
                    break
                if used[i] or used[j] or len(c) - len(drop) <= min_k:
                    continue
                w = n[i] + n[j]
                c[i] = (n[i] * c[i] + n[j] * c[j]) / w if w > 0 else (c[i] + c[j]) / 2
                n[i] = w
                used[i] = used[j] = True
                drop.append(j)
                merged += 1
            if drop:
                c = np.delete(c, drop, axis=0)
                changed = True
        # (c) one Lloyd step
        lab = _assign(x, c)
        n, mean, _ = _class_stats(x, lab, len(c))
        moved = bool(np.any(np.where(n[:, None] > 0, mean, c) != c))
        c = np.where(n[:, None] > 0, mean, c)
        quiet = 0 if (changed or moved) else quiet + 1
        if quiet >= 2:
            break
    for _ in range(100):
        lab = _assign(x, c)
        n, mean, _ = _class_stats(x, lab, len(c))
        new_c = np.where(n[:, None] > 0, mean, c)
        if np.array_equal(new_c, c):
            break
        c = new_c
    return c[np.lexsort((*c.T[::-1], c.sum(axis=1)))]


# --------------------------------------------------------------------------------- unmixing


def unmix_class_changes(
    fractions: Any,
    change: np.ndarray,
    complete: np.ndarray,
    n_pure: int,
    bounds: tuple[float, float],
) -> np.ndarray:
    """Class-level change ``Delta F(c)`` for one band (paper step 2), shape ``(classes,)``.

    ``fractions`` ``(n, classes)`` (an array, or anything indexed as one with ``[:, c]``,
    ``[rows, c]`` and ``[rows]``: :class:`stfusion.methods.fsdaf_tables.Fractions`),
    ``change`` ``(n,)`` = ``Delta C`` per coarse pixel (NaN: unknown), ``complete`` ``(n,)``:
    fractions sum to 1. For each class the ``n_pure`` complete coarse pixels with the largest
    fraction (> 1 %) are taken, those whose change lies within the 10th-90th percentile of
    theirs are kept, and all kept rows are solved together by least squares within
    ``bounds``. A class in no kept row gets the fraction-weighted mean change of the coarse
    pixels containing it (limited to ``bounds``).
    """
    from scipy.optimize import lsq_linear

    lb, ub = float(bounds[0]), float(bounds[1])
    n_classes = fractions.shape[1]
    ok = complete & np.isfinite(change)
    rows = []
    for c in range(n_classes):
        idx = np.flatnonzero(ok & (fractions[:, c] > MIN_PURE_FRACTION))
        if idx.size == 0:
            continue
        idx = idx[np.argsort(-fractions[idx, c], kind="stable")][:n_pure]
        ch = change[idx]
        srt = np.sort(ch)
        lo = srt[int(np.floor(TRIM[0] * len(srt)))]
        hi = srt[min(int(np.floor(TRIM[1] * len(srt))), len(srt) - 1)]
        rows.append(idx[(ch >= lo) & (ch <= hi)])
    sel = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    x = fractions[sel]
    y = change[sel]
    out = np.empty(n_classes)
    solved = x.sum(axis=0) > 0 if len(sel) else np.zeros(n_classes, dtype=bool)
    if ub - lb <= 0.0:
        out[:] = lb  # no spread in Delta C: every class changed by the same amount
        return out
    for k in np.flatnonzero(~solved):
        has = np.isfinite(change) & (fractions[:, k] > 0)
        wsum = fractions[has, k].sum()
        guess = (fractions[has, k] * change[has]).sum() / wsum if wsum > 0 else np.nanmean(change)
        out[k] = min(max(float(guess), lb), ub)
    if solved.any():
        res = lsq_linear(x[:, solved], y, bounds=(lb, ub), method="bvls")
        out[solved] = res.x
    return out
