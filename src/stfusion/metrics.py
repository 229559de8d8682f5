"""Image-quality metrics for comparing a predicted image with the truth.

The definitions are pinned (see ``docs/metrics.md``) because published numbers for the same
metric disagree between libraries (ERGAS by a factor R^2, SSIM by the window and variance
estimator, SAM by the pixels it skips). Scores are only comparable if everyone computes them
the same way, so every choice is fixed here and tested against computations by hand.

Conventions shared by all metrics:

* ``pred`` and ``truth`` are ``(band, y, x)`` arrays (a 2-D array is taken as one band); NaN or
  inf marks an invalid pixel. Everything is computed in float64.
* Per-band metrics use the pixels valid (finite) in *both* images in that band.
* A band with no valid pixel gives NaN for that band, never an exception.
* Means over bands leave NaN bands out (``evaluate`` warns); over no band at all they are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import correlate1d

from stfusion.errors import InvalidParameterError, keywords_checked, warn
from stfusion.metrics_inputs import Float64Array, as_pair, dataarray_band_names
from stfusion.scale_check import scale_mismatch

__all__ = [
    "BANDLESS_METRICS",
    "METRIC_NAMES",
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_RADIUS",
    "SSIM_SIGMA",
    "MetricReport",
    "bias",
    "cc",
    "coverage",
    "ergas",
    "evaluate",
    "gaussian_window",
    "mae",
    "psnr",
    "resolve_data_range",
    "rmse",
    "sam",
    "ssim",
    "ssim_map",
    "uiqi",
    "valid_fraction",
]

METRIC_NAMES: tuple[str, ...] = (
    "rmse",
    "mae",
    "bias",
    "cc",
    "ssim",
    "psnr",
    "sam_deg",
    "sam_rad",
    "ergas",
    "uiqi",
    "coverage",
    "valid_fraction",
)

#: Metrics that have no per-band value; ``MetricReport.per_band`` omits them.
BANDLESS_METRICS: tuple[str, ...] = ("sam_deg", "sam_rad", "ergas")

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 x 11 window
SSIM_K1 = 0.01
SSIM_K2 = 0.03

DataRange = float | str


def _valid(p: Float64Array, t: Float64Array) -> NDArray[np.bool_]:
    return np.isfinite(p) & np.isfinite(t)


def _masked_moments(
    p: Float64Array, t: Float64Array
) -> tuple[NDArray[np.bool_], Float64Array, Float64Array, Float64Array]:
    """Mask, count, and the two per-band means over the jointly valid pixels."""
    valid = _valid(p, t)
    n = valid.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(valid, p, 0.0).sum(axis=(1, 2)) / n
        mean_t = np.where(valid, t, 0.0).sum(axis=(1, 2)) / n
    return valid, n, mean_p, mean_t


def _band_mean_of(values: Float64Array, valid: NDArray[np.bool_]) -> Float64Array:
    """Per-band mean over ``valid``; NaN (without a RuntimeWarning) where a band is empty."""
    n = valid.sum(axis=(1, 2))
    total = np.where(valid, values, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / n, dtype=np.float64)


def _mean_over_bands(values: ArrayLike) -> float:
    """NaN bands carry no information, so they are left out instead of poisoning the mean."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan
    with np.errstate(invalid="ignore"):
        return float(np.mean(v))


def resolve_data_range(truth: ArrayLike, data_range: DataRange = 1.0) -> Float64Array:
    """Per-band data range L for SSIM/PSNR.

    ``"truth"`` takes max - min over the truth's finite pixels (not the jointly valid ones), so
    every prediction compared with the same truth is normalised by the same L. A band whose
    truth range is empty or zero gets NaN (SSIM/PSNR are undefined there).
    """
    t = np.asarray(truth, dtype=np.float64)
    if t.ndim == 2:
        t = t[np.newaxis]
    if isinstance(data_range, str):
        if data_range != "truth":
            raise InvalidParameterError(
                f"data_range must be a positive number or 'truth'; got {data_range!r}."
            )
        finite = np.isfinite(t)
        hi = np.where(finite, t, -np.inf).max(axis=(1, 2), initial=-np.inf)
        lo = np.where(finite, t, np.inf).min(axis=(1, 2), initial=np.inf)
        with np.errstate(invalid="ignore"):
            rng = hi - lo
        return np.where(np.isfinite(rng) & (rng > 0), rng, np.nan)
    if isinstance(data_range, bool) or not isinstance(data_range, int | float | np.number):
        raise InvalidParameterError(
            f"data_range must be a positive number or 'truth'; got {data_range!r}."
        )
    value = float(data_range)
    if not (math.isfinite(value) and value > 0):
        raise InvalidParameterError(f"data_range must be positive and finite; got {value}.")
    return np.full(t.shape[0], value, dtype=np.float64)


def _check_ratio(ratio: float | None) -> float | None:
    if ratio is None:
        return None
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"ratio={ratio!r}: give a number, R = coarse pixel size / fine pixel size "
            "(e.g. 16 for 480 m / 30 m)."
        ) from None
    if not (math.isfinite(r) and r >= 1):
        inverse = f" ({ratio} looks like fine / coarse: give {1 / r:g})" if 0 < r < 1 else ""
        raise InvalidParameterError(
            "ratio R (coarse pixel size / fine pixel size, e.g. 16 for 480 m / 30 m) must be "
            f"at least 1; got {ratio}{inverse}."
        )
    return r


# --------------------------------------------------------------------------------------------
# per-band pixel-wise metrics
# --------------------------------------------------------------------------------------------


def rmse(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Root mean square error per band."""
    p, t = as_pair(pred, truth)
    valid = _valid(p, t)
    with np.errstate(invalid="ignore"):
        return np.sqrt(_band_mean_of((p - t) ** 2, valid))


def mae(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Mean absolute error per band."""
    p, t = as_pair(pred, truth)
    return _band_mean_of(np.abs(p - t), _valid(p, t))


def bias(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Mean of ``pred - truth`` per band (positive: the prediction is too high)."""
    p, t = as_pair(pred, truth)
    return _band_mean_of(p - t, _valid(p, t))


def _is_constant(a: Float64Array, valid: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Per band: max == min over the valid pixels (True for an empty band)."""
    hi = np.where(valid, a, -np.inf).max(axis=(1, 2), initial=-np.inf)
    lo = np.where(valid, a, np.inf).min(axis=(1, 2), initial=np.inf)
    return np.asarray((hi <= lo) | ~valid.any(axis=(1, 2)))


def _centered_sums(
    p: Float64Array, t: Float64Array
) -> tuple[Float64Array, Float64Array, Float64Array, Float64Array, Float64Array]:
    """Means and sums of centred products over the jointly valid pixels, per band.

    A band that is constant over its valid pixels gets exactly zero (co)variance: rounding in
    its mean must not turn "undefined" into a tiny spurious value.
    """
    valid, _, mean_p, mean_t = _masked_moments(p, t)
    dp = np.where(valid, p - mean_p[:, None, None], 0.0)
    dt = np.where(valid, t - mean_t[:, None, None], 0.0)
    const_p = _is_constant(p, valid)
    const_t = _is_constant(t, valid)
    dp[const_p] = 0.0
    dt[const_t] = 0.0
    return (
        mean_p,
        mean_t,
        (dp * dt).sum(axis=(1, 2)),
        (dp * dp).sum(axis=(1, 2)),
        (dt * dt).sum(axis=(1, 2)),
    )


def cc(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Pearson correlation per band; NaN when either image is constant over the valid pixels."""
    p, t = as_pair(pred, truth)
    _, _, sxy, sxx, syy = _centered_sums(p, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    return np.where((sxx > 0) & (syy > 0), r, np.nan)


def uiqi(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Universal image quality index (Wang & Bovik 2002), global per band.

    Q = 4 s_xy m_x m_y / ((s_x^2 + s_y^2)(m_x^2 + m_y^2)); the 1/N vs 1/(N-1) choice cancels.
    NaN where the denominator is 0 (e.g. both images constant).
    """
    p, t = as_pair(pred, truth)
    mean_p, mean_t, sxy, sxx, syy = _centered_sums(p, t)
    den = (sxx + syy) * (mean_p**2 + mean_t**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = 4.0 * sxy * mean_p * mean_t / den
    return np.where(den > 0, q, np.nan)


def psnr(pred: ArrayLike, truth: ArrayLike, data_range: DataRange = 1.0) -> Float64Array:
    """PSNR per band in dB, ``10 log10(L^2 / MSE)``; inf where the band is reproduced exactly."""
    p, t = as_pair(pred, truth)
    rng = resolve_data_range(t, data_range)
    mse = _band_mean_of((p - t) ** 2, _valid(p, t))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(rng**2 / mse)
    return np.where(np.isnan(mse) | np.isnan(rng), np.nan, out)


def coverage(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Fraction of the truth-valid pixels that the prediction covers, per band.

    Reported with every score: leaving hard pixels empty must not look like skill.
    """
    p, t = as_pair(pred, truth)
    truth_ok = np.isfinite(t)
    n_truth = truth_ok.sum(axis=(1, 2))
    n_both = (truth_ok & np.isfinite(p)).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(n_both / n_truth, dtype=np.float64)


def valid_fraction(pred: ArrayLike, truth: ArrayLike) -> Float64Array:
    """Fraction of all pixels that are valid in both images, per band."""
    p, t = as_pair(pred, truth)
    n_pix = p.shape[1] * p.shape[2]
    if n_pix == 0:
        return np.full(p.shape[0], np.nan)
    return _valid(p, t).sum(axis=(1, 2)) / float(n_pix)


# --------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------


def gaussian_window(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> Float64Array:
    """The 1-D Gaussian (sums to 1); the 2-D SSIM window is its outer product (11 x 11)."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _gauss_filter(a: Float64Array, g: Float64Array) -> Float64Array:
    """Separable Gaussian over y and x with zeros outside the image (= zero weight there)."""
    out = correlate1d(a, g, axis=-1, mode="constant", cval=0.0)
    return correlate1d(out, g, axis=-2, mode="constant", cval=0.0)


def _ssim_band(
    p: Float64Array, t: Float64Array, rng: float, shift: float | None = None
) -> Float64Array:
    """SSIM map of one (y, x) band; one band at a time keeps the temporaries small.
    ``shift``: the truth's mean over the jointly valid pixels of the whole band (given when
    ``p`` and ``t`` are one block of it)."""
    valid = np.isfinite(p) & np.isfinite(t)
    out = np.full(p.shape, np.nan)
    if not valid.any() or math.isnan(rng):
        return out
    # Shift both images by the same constant (the truth's valid mean) before forming
    # E[x^2] - E[x]^2: the variances are unchanged, the means are shifted back below, and the
    # cancellation error of the sample-free form no longer grows with the offset (LST ~300 K).
    if shift is None:
        shift = float(t[valid].mean())
    x = np.where(valid, p - shift, 0.0)
    y = np.where(valid, t - shift, 0.0)

    g = gaussian_window()
    w = _gauss_filter(valid.astype(np.float64), g)[valid]  # > 0: each pixel weighs itself
    mx = _gauss_filter(x, g)[valid] / w
    my = _gauss_filter(y, g)[valid] / w
    vx = _gauss_filter(x * x, g)[valid] / w - mx * mx
    vy = _gauss_filter(y * y, g)[valid] / w - my * my
    cxy = _gauss_filter(x * y, g)[valid] / w - mx * my
    mux = mx + shift
    muy = my + shift

    c1 = (SSIM_K1 * rng) ** 2
    c2 = (SSIM_K2 * rng) ** 2
    num = (2.0 * mux * muy + c1) * (2.0 * cxy + c2)
    den = (mux * mux + muy * muy + c1) * (vx + vy + c2)
    out[valid] = num / den
    return out


def ssim_map(pred: ArrayLike, truth: ArrayLike, data_range: DataRange = 1.0) -> Float64Array:
    """Local SSIM at every pixel valid in both images (NaN elsewhere), shape (band, y, x).

    Local statistics are Gaussian-weighted normalised convolutions over the jointly valid
    pixels, so gaps and image edges get zero weight instead of made-up values; without gaps and
    away from edges this is exactly Wang et al. (2004) with the Gaussian window.
    """
    p, t = as_pair(pred, truth)
    rng = resolve_data_range(t, data_range)
    if p.shape[0] == 0:
        return np.empty(p.shape)
    return np.stack([_ssim_band(p[b], t[b], float(rng[b])) for b in range(p.shape[0])])


def ssim(pred: ArrayLike, truth: ArrayLike, data_range: DataRange = 1.0) -> Float64Array:
    """Mean SSIM per band over the pixels valid in both images (see :func:`ssim_map`)."""
    smap = ssim_map(pred, truth, data_range)
    return _band_mean_of(smap, ~np.isnan(smap))


# --------------------------------------------------------------------------------------------
# band-less metrics
# --------------------------------------------------------------------------------------------


def sam(pred: ArrayLike, truth: ArrayLike, *, degrees: bool = False) -> float:
    """Mean spectral angle (radians, or degrees with ``degrees=True``).

    Uses pixels valid in every band of both images, skipping zero-norm spectra (no direction).
    NaN when no pixel qualifies.
    """
    p, t = as_pair(pred, truth)
    ok = np.all(np.isfinite(p), axis=0) & np.all(np.isfinite(t), axis=0)
    p0 = np.where(ok, p, 0.0)
    t0 = np.where(ok, t, 0.0)
    pt = (p0 * t0).sum(axis=0)
    pp = (p0 * p0).sum(axis=0)
    tt = (t0 * t0).sum(axis=0)
    keep = ok & (pp > 0) & (tt > 0)
    if not keep.any():
        return math.nan
    # sqrt(pp * tt) rather than sqrt(pp) * sqrt(tt): identical spectra then give cos == 1 exactly.
    cos = np.clip(pt[keep] / np.sqrt(pp[keep] * tt[keep]), -1.0, 1.0)
    angle = float(np.mean(np.arccos(cos)))
    return math.degrees(angle) if degrees else angle


def ergas(pred: ArrayLike, truth: ArrayLike, ratio: float | None) -> float:
    """ERGAS = (100 / R) sqrt(mean_b (RMSE_b / mean_b)^2), R = coarse / fine pixel size.

    ``mean_b`` is the truth's mean over the jointly valid pixels of band b. NaN when ``ratio`` is
    None (ERGAS is meaningless without it) or no band has a value; bands with no value are left
    out of the mean.
    """
    r = _check_ratio(ratio)
    p, t = as_pair(pred, truth)
    if r is None:
        return math.nan
    valid = _valid(p, t)
    err = np.sqrt(_band_mean_of((p - t) ** 2, valid))
    mean_t = _band_mean_of(t, valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = (err / mean_t) ** 2
    terms = terms[~np.isnan(terms)]
    if terms.size == 0:
        return math.nan
    return float(100.0 / r * np.sqrt(np.mean(terms)))


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _json_float(v: float) -> float | str | None:
    """JSON has no NaN/inf: NaN -> None, +-inf -> "inf"/"-inf"."""
    f = float(v)
    if math.isnan(f):
        return None
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


@dataclass
class MetricReport:
    """All metrics for one prediction, per band and as the mean over bands.

    ``per_band`` holds the per-band metrics (every name in METRIC_NAMES except the band-less
    ``sam_deg``, ``sam_rad`` and ``ergas``, which are omitted there); ``mean`` holds all of
    METRIC_NAMES: the mean over bands (NaN bands left out) or the band-less scalar.
    ``band_data_range`` is the L used for SSIM/PSNR in each band; ``notes`` explains NaNs.
    """

    per_band: dict[str, list[float]]
    mean: dict[str, float]
    band_names: list[str]
    data_range: float | str
    ratio: float | None
    band_data_range: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: how the files were read (``evaluate_files``): paths, scales, fills, the mask
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: floats stay floats, NaN becomes None and +-inf becomes "inf"/"-inf".

        ``{metric: {"bands": {band_name: value}, "mean": value}, ..., "data_range": ...,
        "ratio": ..., "band_data_range": {band_name: value}, "notes": [...]}``; band-less
        metrics have ``"bands": {}``.
        """
        out: dict[str, Any] = {}
        for name in METRIC_NAMES:
            values = self.per_band.get(name, [])
            out[name] = {
                "bands": {b: _json_float(v) for b, v in zip(self.band_names, values)},
                "mean": _json_float(self.mean[name]),
            }
        out["data_range"] = (
            self.data_range if isinstance(self.data_range, str) else _json_float(self.data_range)
        )
        out["ratio"] = None if self.ratio is None else _json_float(self.ratio)
        out["band_data_range"] = {
            b: _json_float(v) for b, v in zip(self.band_names, self.band_data_range)
        }
        out["notes"] = list(self.notes)
        if self.inputs:
            out["inputs"] = self.inputs
        return out


#: A numeric data range smaller than the truth's spread by more than this factor is taken for
#: a units mistake (digital numbers or kelvin scored with the reflectance default of 1).
DATA_RANGE_FACTOR = 2.0


#: A numeric data range this many times the truth's spread makes SSIM and PSNR say nothing:
#: 10000 (the range of digital numbers) for images scored as reflectance gave SSIM 1.0000.
DATA_RANGE_TOO_WIDE = 100.0


def _beyond_data_range(lo: float, hi: float, data_range: DataRange) -> str | None:
    """A note when the truth's finite values (``lo`` .. ``hi``) spread far beyond a numeric
    ``data_range``, or fill a tiny part of it, else None."""
    if isinstance(data_range, str) or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    # above 2, the widest range of reflectance or an index: 1 on clear water (a spread of
    # 0.008) is the convention, not a mistake
    if float(data_range) > 2 and 0 < (hi - lo) * DATA_RANGE_TOO_WIDE < float(data_range):
        return (
            f"the data range {float(data_range):g} is {float(data_range) / (hi - lo):.0f} "
            f"times the truth's spread ({lo:.4g} to {hi:.4g}): SSIM and PSNR then score "
            "almost any prediction as perfect (SSIM near 1, PSNR near 100 dB). Is it the "
            "range of the stored digital numbers, while the images are scored scaled? Give "
            "the range of the values as scored (1 for reflectance) or --data-range truth."
        )
    if hi - lo <= DATA_RANGE_FACTOR * float(data_range):
        return None
    return (
        f"the truth's values span {lo:.4g} to {hi:.4g}, far beyond the data range "
        f"{float(data_range):g} that SSIM and PSNR assume: those two scores are not "
        "comparable with published ones. Give the scale that brings the images to "
        "reflectance (--truth-scale / --pred-scale, e.g. 0.0001) or --data-range truth "
        "(temperatures, other units)."
    )


@keywords_checked
def evaluate(
    pred: ArrayLike,
    truth: ArrayLike,
    *,
    ratio: float | None = None,
    data_range: float | str = 1.0,
    band_names: Sequence[str] | None = None,
) -> MetricReport:
    """Every metric in METRIC_NAMES for one prediction against its truth.

    ``ratio`` is R = coarse pixel size / fine pixel size (e.g. 16 for 480 m / 30 m), needed only
    for ERGAS. ``data_range`` is L for SSIM/PSNR: a number, or ``"truth"`` for the truth's
    per-band range (for LST, NDVI). Warns (STFusionWarning) when a band has no valid pixel or a
    mean over bands had to leave bands out, and when prediction and truth differ in scale by
    more than ``SCALE_CHECK_FACTOR`` (20x: reflectance against reflectance x 10000), naming the
    truth scale to give; ``stfusion evaluate`` refuses to score such a pair.
    """
    p, t = as_pair(pred, truth)
    mismatch = scale_mismatch(p, t)
    if mismatch is not None:
        warn(mismatch.message())
    if ratio is None:  # a prediction returned by predict() carries it
        ratio = getattr(pred, "attrs", {}).get("ratio")
    r = _check_ratio(ratio)
    if band_names is None:
        band_names = dataarray_band_names(pred, truth)
    names = _band_names(band_names, p.shape[0])
    rng = resolve_data_range(t, data_range)
    per_band_arrays: dict[str, Float64Array] = {
        "rmse": rmse(p, t),
        "mae": mae(p, t),
        "bias": bias(p, t),
        "cc": cc(p, t),
        "ssim": ssim(p, t, data_range),
        "psnr": psnr(p, t, data_range),
        "uiqi": uiqi(p, t),
        "coverage": coverage(p, t),
        "valid_fraction": valid_fraction(p, t),
    }
    finite = t[np.isfinite(t)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
    return _report(
        per_band_arrays,
        sam(p, t),
        ergas(p, t, r),
        np.asarray(~_valid(p, t).any(axis=(1, 2))),
        (lo, hi),
        rng,
        names,
        data_range,
        r,
    )


def _band_names(band_names: Sequence[str] | None, n_bands: int) -> list[str]:
    if band_names is None:
        return [f"band_{i + 1}" for i in range(n_bands)]
    names = [str(b) for b in band_names]
    if len(names) != n_bands:
        raise InvalidParameterError(
            f"band_names has {len(names)} names but the images have {n_bands} bands."
        )
    return names


def _report(
    per_band_arrays: dict[str, Float64Array],
    sam_rad: float,
    ergas_value: float,
    empty_bands: NDArray[np.bool_],
    truth_span: tuple[float, float],
    rng: Float64Array,
    names: list[str],
    data_range: DataRange,
    r: float | None,
) -> MetricReport:
    """The report, its notes and warnings, from the per-band metrics (one place for
    :func:`evaluate` and :func:`stfusion.metrics_blocks.evaluate_blocks`)."""
    per_band = {
        k: [float(v) for v in per_band_arrays[k]] for k in METRIC_NAMES if k not in BANDLESS_METRICS
    }
    mean = {k: _mean_over_bands(v) for k, v in per_band_arrays.items()}
    one_band = len(names) < 2
    sam_rad = math.nan if one_band else sam_rad  # one band: 0 or 180 degrees, no spectrum
    mean["sam_rad"] = sam_rad
    mean["sam_deg"] = math.degrees(sam_rad)
    mean["ergas"] = ergas_value
    mean = {k: mean[k] for k in METRIC_NAMES}

    notes: list[str] = []
    empty = [names[i] for i in np.flatnonzero(empty_bands)]
    if empty:
        notes.append(f"no pixel valid in both images in band(s) {empty}: their metrics are NaN")
    if r is None:
        notes.append("ergas is NaN: no resolution ratio R (coarse / fine pixel size) was given")
    if one_band:
        notes.append("sam is NaN: one band has no spectrum (its angle is only 0 or 180 degrees)")
    elif math.isnan(sam_rad):
        notes.append(
            "sam is NaN: no pixel is valid in all bands of both images with a non-zero spectrum"
        )
    out_of_range = _beyond_data_range(*truth_span, data_range)
    if out_of_range is not None:
        notes.append(out_of_range)
        warn(out_of_range)
    bad_range = [names[i] for i in np.flatnonzero(np.isnan(rng))]
    if bad_range:
        notes.append(f"data range is empty or zero in band(s) {bad_range}: ssim and psnr are NaN")
    skipped = {
        k: [names[i] for i in np.flatnonzero(np.isnan(v))]
        for k, v in per_band_arrays.items()
        if np.isnan(v).any() and not np.isnan(v).all()
    }
    for k, bands in skipped.items():
        notes.append(f"mean {k} leaves out NaN band(s) {bands}")
    if not empty_bands.all():  # NaN in every band with data: a constant image
        notes += [
            f"{k} is NaN in every band: the prediction or the truth is constant there"
            for k, v in per_band_arrays.items()
            if k in ("cc", "uiqi") and v.size and np.isnan(v).all()
        ]
    if math.isinf(ergas_value):
        notes.append("ergas is inf: a truth band's mean is 0 (ERGAS divides by it)")
    if truth_span[0] < 0 and data_range == "truth":  # ERGAS 0.019 in kelvin, 36.8 in Celsius
        notes.append(
            "the truth has values below 0: ergas (which divides by each band's mean), uiqi and "
            "ssim (which compare the means as ratios) change with where the variable's zero "
            "lies; compare them within one unit only (a temperature in kelvin, not in degrees "
            "Celsius)"
        )
    if empty or skipped:
        warn("; ".join(n for n in notes if n.startswith(("no pixel", "mean "))))
    return MetricReport(
        per_band=per_band,
        mean=mean,
        band_names=names,
        data_range=data_range if isinstance(data_range, str) else float(data_range),
        ratio=r,
        band_data_range=[float(v) for v in rng],
        notes=notes,
    )
