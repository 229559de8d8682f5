"""Coarse cells: statistics of fine images over R x R blocks and their way back to fine pixels.

Used by the ensemble for its local reliability (smoothed error maps interpolated to the fine
pixels) and its coarse-consistency step (:func:`consistency_gain`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def smooth_cells(e: np.ndarray, window: int) -> np.ndarray:
    """NaN-aware ``window x window`` mean over cells; cells with nothing near take the mean."""
    from scipy.ndimage import uniform_filter

    ok = np.isfinite(e)
    if not ok.any():
        return np.full_like(e, np.nan)
    v = np.where(ok, e, 0.0)
    n = uniform_filter(ok.astype(np.float64), window, mode="constant")
    s = uniform_filter(v, window, mode="constant")
    out = np.where(n > 1e-12, s / np.maximum(n, 1e-12), np.nan)
    return np.where(np.isfinite(out), out, float(e[ok].mean()))


def cells_to_fine(
    e: np.ndarray,
    r: int,
    shape: tuple[int, int],
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """Bilinear interpolation from cell centres to fine pixel centres (clamped at edges);
    ``rows``, ``cols``: only fine rows ``[i0, i1)`` and columns ``[j0, j1)`` (the same values
    as those of the whole)."""
    out = e
    r0, r1 = rows if rows is not None else (0, shape[0])
    c0, c1 = cols if cols is not None else (0, shape[1])
    for axis, index in ((0, np.arange(r0, r1)), (1, np.arange(c0, c1))):
        pos = (index + 0.5) / r - 0.5
        n = e.shape[axis]
        pos = np.clip(pos, 0.0, n - 1.0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        t = pos - lo
        a, b = np.take(out, lo, axis=axis), np.take(out, hi, axis=axis)
        t = t[:, None] if axis == 0 else t[None, :]
        out = a * (1.0 - t) + b * t
    return out


def finite_mean(arrays: Iterable[np.ndarray], empty: float) -> np.ndarray:
    """Element-wise mean of the finite values of same-shape ``arrays`` (read one at a time),
    ``empty`` where none is finite."""
    sums: np.ndarray | None = None
    counts: np.ndarray | None = None
    for a in arrays:
        ok = np.isfinite(a)
        if sums is None or counts is None:
            sums, counts = np.zeros_like(a), np.zeros_like(a)
        sums += np.where(ok, a, 0.0)
        counts += ok
    assert sums is not None and counts is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), empty)


def consistency_gain(noise_var: np.ndarray, residual_var: np.ndarray, pairs: int) -> np.ndarray:
    """Per band, the share ``lambda`` of the coarse residual to add back to a prediction.

    ``residual_var``: the variance over coarse cells of ``C_t + o - mean_cell(P)`` (coarse
    target, plus the fine-coarse offset ``o`` the pairs show, minus the prediction's cell
    means). ``noise_var``: the variance over cells of ``mean_cell(C_k) - mean_cell(F_k)``
    at the pair dates, averaged over the ``pairs`` pairs: how far the coarse sensor departs
    from the block means of the fine one (footprint, registration, calibration). The
    residual holds the prediction's own cell error plus the target date's departure minus
    the mean of the pairs' (in ``o``): noise of variance ``(1 + 1 / pairs) noise_var`` when
    the departures are independent and alike from date to date. The Wiener gain
    ``1 - noise / residual``, clipped to [0, 1], adds back the part of the residual that is
    the prediction's error: 1 where the coarse images are the fine ones' block means
    (simulated), 0 where the sensors disagree as much as the residual varies (real pairs).
    """
    noise = (1.0 + 1.0 / max(pairs, 1)) * np.asarray(noise_var, np.float64)
    resid = np.asarray(residual_var, np.float64)
    ok = np.isfinite(noise) & np.isfinite(resid) & (resid > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = 1.0 - noise / np.where(ok, resid, 1.0)
    return np.where(ok, np.clip(gain, 0.0, 1.0), 0.0)
