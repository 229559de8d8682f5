"""The pinned metrics of :mod:`stfusion.metrics` for images larger than memory.

:func:`evaluate_blocks` reads a prediction and its truth block by block, in two passes, and
returns the :class:`~stfusion.metrics.MetricReport` that :func:`stfusion.metrics.evaluate`
gives for the whole arrays (to float rounding): docs/metrics.md, "Images larger than memory".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from stfusion.metrics import (
    SSIM_RADIUS,
    MetricReport,
    _band_names,
    _check_ratio,
    _report,
    _ssim_band,
    _valid,
    resolve_data_range,
)
from stfusion.metrics_inputs import Float64Array, as_pair

__all__ = ["BlockReader", "evaluate_blocks"]

#: Reads one block of the prediction and the truth: ``(row, col, height, width, halo)`` ->
#: ``(pred, truth)``, each ``(band, height + 2 halo, width + 2 halo)``, NaN outside the image.
BlockReader = Callable[[int, int, int, int, int], tuple[ArrayLike, ArrayLike]]


def evaluate_blocks(
    read: BlockReader,
    shape: tuple[int, int, int],
    blocks: Sequence[tuple[int, int, int, int]],
    *,
    ratio: float | None = None,
    data_range: float | str = 1.0,
    band_names: Sequence[str] | None = None,
) -> MetricReport:
    """:func:`evaluate` of a ``shape`` ``(band, y, x)`` pair of images read block by block
    (``blocks``: ``(row, col, height, width)`` covering the image once), for images larger
    than memory. The same definitions in two passes: the first gathers the per-band counts,
    means and extremes, the second the sums of the metrics (SSIM with a halo of its window
    radius, so every local statistic sees the pixels it sees in the whole image). Sums run
    in another order than in :func:`evaluate`: equal up to float rounding (tested).
    """
    nb, h, w = (int(v) for v in shape)
    r = _check_ratio(ratio)
    names = _band_names(band_names, nb)
    inf = np.full(nb, np.inf)
    n, n_truth, sum_p, sum_t = (np.zeros(nb) for _ in range(4))
    p_lo, t_lo, f_lo = inf.copy(), inf.copy(), inf.copy()
    p_hi, t_hi, f_hi = -inf, -inf, -inf
    for r0, c0, bh, bw in blocks:
        p, t = as_pair(*read(r0, c0, bh, bw, 0))
        valid = _valid(p, t)
        finite_t = np.isfinite(t)
        n += valid.sum(axis=(1, 2))
        n_truth += finite_t.sum(axis=(1, 2))
        sum_p += np.where(valid, p, 0.0).sum(axis=(1, 2))
        sum_t += np.where(valid, t, 0.0).sum(axis=(1, 2))
        for lo, hi, a, ok in (
            (p_lo, p_hi, p, valid),
            (t_lo, t_hi, t, valid),
            (f_lo, f_hi, t, finite_t),
        ):
            np.minimum(lo, np.where(ok, a, np.inf).min(axis=(1, 2), initial=np.inf), out=lo)
            np.maximum(hi, np.where(ok, a, -np.inf).max(axis=(1, 2), initial=-np.inf), out=hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p, mean_t = sum_p / n, sum_t / n
    if isinstance(data_range, str):
        resolve_data_range(np.zeros((nb, 1, 1)), data_range)  # refuses anything but "truth"
        with np.errstate(invalid="ignore"):
            span = f_hi - f_lo
        rng = np.where(np.isfinite(span) & (span > 0), span, np.nan)
    else:
        rng = resolve_data_range(np.zeros((nb, 1, 1)), data_range)
    const_p = (p_hi <= p_lo) | (n == 0)
    const_t = (t_hi <= t_lo) | (n == 0)

    sq, ab, dif, sxy, sxx, syy, s_ssim, n_ssim = (np.zeros(nb) for _ in range(8))
    sam_sum, sam_n = 0.0, 0
    halo = SSIM_RADIUS
    for r0, c0, bh, bw in blocks:
        pw, tw = as_pair(*read(r0, c0, bh, bw, halo))
        core = (slice(None), slice(halo, halo + bh), slice(halo, halo + bw))
        p, t = pw[core], tw[core]
        valid = _valid(p, t)
        d = np.where(valid, p - t, 0.0)
        sq += (d * d).sum(axis=(1, 2))
        ab += np.abs(d).sum(axis=(1, 2))
        dif += d.sum(axis=(1, 2))
        dp = np.where(valid, p - mean_p[:, None, None], 0.0)
        dt = np.where(valid, t - mean_t[:, None, None], 0.0)
        dp[const_p] = 0.0
        dt[const_t] = 0.0
        sxy += (dp * dt).sum(axis=(1, 2))
        sxx += (dp * dp).sum(axis=(1, 2))
        syy += (dt * dt).sum(axis=(1, 2))
        for b in range(nb):
            if n[b] == 0:
                continue
            smap = _ssim_band(pw[b], tw[b], float(rng[b]), float(mean_t[b]))[core[1:]]
            ok = ~np.isnan(smap)
            s_ssim[b] += smap[ok].sum()
            n_ssim[b] += ok.sum()
        ok = np.all(np.isfinite(p), axis=0) & np.all(np.isfinite(t), axis=0)
        p0, t0 = np.where(ok, p, 0.0), np.where(ok, t, 0.0)
        pt, pp, tt = (p0 * t0).sum(axis=0), (p0 * p0).sum(axis=0), (t0 * t0).sum(axis=0)
        keep = ok & (pp > 0) & (tt > 0)
        cos = np.clip(pt[keep] / np.sqrt(pp[keep] * tt[keep]), -1.0, 1.0)
        sam_sum += float(np.arccos(cos).sum())
        sam_n += int(keep.sum())

    with np.errstate(invalid="ignore", divide="ignore"):
        mse = sq / n
        err = np.sqrt(mse)
        corr = np.where((sxx > 0) & (syy > 0), sxy / np.sqrt(sxx * syy), np.nan)
        den = (sxx + syy) * (mean_p**2 + mean_t**2)
        q = np.where(den > 0, 4.0 * sxy * mean_p * mean_t / den, np.nan)
        peak = 10.0 * np.log10(rng**2 / mse)
        per_band_arrays: dict[str, Float64Array] = {
            "rmse": err,
            "mae": ab / n,
            "bias": dif / n,
            "cc": corr,
            "ssim": s_ssim / n_ssim,
            "psnr": np.where(np.isnan(mse) | np.isnan(rng), np.nan, peak),
            "uiqi": q,
            "coverage": n / n_truth,
            "valid_fraction": n / float(h * w) if h * w else np.full(nb, np.nan),
        }
        terms = (err / mean_t) ** 2
    terms = terms[~np.isnan(terms)]
    ergas_value = (
        math.nan if r is None or terms.size == 0 else float(100.0 / r * np.sqrt(np.mean(terms)))
    )
    sam_rad = sam_sum / sam_n if sam_n else math.nan
    span = (float(f_lo.min()), float(f_hi.max())) if np.isfinite(f_lo).any() else (math.nan,) * 2
    return _report(per_band_arrays, sam_rad, ergas_value, n == 0, span, rng, names, data_range, r)
