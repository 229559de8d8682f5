"""Figures a person looks at: quicklooks with one colour stretch, error maps, and the bench's
quicklook grid and truth-vs-prediction density plots."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Band names whose presence allows a natural or false colour composite.
_RGB_SETS = (("nir", "red", "green"), ("red", "green", "blue"))


def rgb_bands(band_names: Sequence[str]) -> list[int]:
    """Indices for a colour composite: NIR-red-green if named, else the first three bands."""
    lower = [b.lower() for b in band_names]
    for combo in _RGB_SETS:
        if all(c in lower for c in combo):
            return [lower.index(c) for c in combo]
    n = len(band_names)
    return [min(i, n - 1) for i in range(3)]


def stretch_limits(
    images: Sequence[np.ndarray], bands: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """2-98 % limits per composite band over all images together (one stretch for all)."""
    lo, hi = [], []
    for b in bands:
        vals = np.concatenate([im[b][np.isfinite(im[b])].ravel() for im in images])
        p = np.percentile(vals, [2, 98]) if vals.size else np.array([0.0, 1.0])
        lo.append(p[0])
        hi.append(p[1] if p[1] > p[0] else p[0] + 1e-6)
    return np.array(lo), np.array(hi)


def composite(
    image: np.ndarray, bands: Sequence[int], lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """RGBA in 0..1; a pixel missing in a composite band is transparent (the page's white, as
    in the error maps), not black, which reads as dark land."""
    rgb = np.stack([(image[b] - lo[i]) / (hi[i] - lo[i]) for i, b in enumerate(bands)], axis=-1)
    alpha = np.isfinite(rgb).all(axis=-1, keepdims=True).astype(rgb.dtype)
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0), 0, 1)
    return np.concatenate([rgb, alpha], axis=-1)


def _error_colorbar(
    fig: Any, mappable: Any, ax: Any, errors: Sequence[np.ndarray], vmax: float, label: str
) -> None:
    """The error maps' colour bar, with an arrow and the share of pixels where the 99th
    percentile cap clips the scale (the largest errors would otherwise look like the cap)."""
    n = sum(int(np.isfinite(e).sum()) for e in errors)
    above = sum(int((e > vmax).sum()) for e in errors)
    if above:
        label = f"{label}\n{100 * above / max(n, 1):.1f} % of pixels above the scale"
    fig.colorbar(mappable, ax=ax, shrink=0.8, label=label, extend="max" if above else "neither")


def quicklook_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    truth: np.ndarray,
    prediction: np.ndarray,
    band_names: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "",
) -> None:
    """Panels with one colour stretch, then |prediction - truth| (mean over bands)."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    bands = rgb_bands(band_names)
    images = [im for _, im in panels]
    lo, hi = stretch_limits(images, bands)
    n = len(panels) + 1
    fig = Figure(figsize=(3.2 * n, 3.6), constrained_layout=True)
    axes = fig.subplots(1, n)
    for ax, (label, im) in zip(axes, panels):
        ax.imshow(composite(im, bands, lo, hi), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    err = np.nanmean(np.abs(prediction - truth), axis=0)
    vmax = float(np.nanpercentile(err, 99)) if np.isfinite(err).any() else 1.0
    im = axes[-1].imshow(err, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
    axes[-1].set_title("|prediction - truth|, mean over bands", fontsize=9)
    axes[-1].set_axis_off()
    with np.errstate(invalid="ignore"):
        _error_colorbar(fig, im, axes[-1], [err], vmax, "reflectance")
    names = "/".join(band_names[b] for b in bands)
    fig.suptitle(f"{title}  (composite {names}, same 2-98% stretch in every panel)", fontsize=10)
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------- stfusion bench's figures


def quicklook_grid(
    truth: np.ndarray,
    predictions: Sequence[tuple[str, str, np.ndarray]],
    band_names: Sequence[str],
    title: str = "",
    per_row: int = 6,
    error_label: str = "mean |error| over bands",
) -> Any:
    """The truth and every prediction ``(name, caption, image)`` as colour composites with
    one stretch (the truth's 2-98 %), each above its mean absolute error map (one colour
    scale for all); rows of at most ``per_row`` panels, so many methods stay readable.
    Returns the matplotlib figure."""
    from matplotlib.figure import Figure

    bands = rgb_bands(band_names)
    lo, hi = stretch_limits([truth], bands)
    panels: list[tuple[str, str, np.ndarray | None, np.ndarray]] = [("", "truth", None, truth)]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels empty in every band
        for name, caption, pred in predictions:
            panels.append((name, caption, np.nanmean(np.abs(pred - truth), axis=0), pred))
    errs = [e[np.isfinite(e)] for _, _, e, _ in panels[1:] if e is not None]
    vmax = max((float(np.percentile(e, 99)) for e in errs if e.size), default=0.0) or 1e-6
    cols = min(len(panels), per_row)
    blocks = -(-len(panels) // cols)
    fig = Figure(figsize=(2.6 * cols, 5.6 * blocks), constrained_layout=True)
    axes = fig.subplots(2 * blocks, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    err_axes, im = [], None
    for k, (name, caption, err, image) in enumerate(panels):
        top, bottom = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        top.imshow(composite(image, bands, lo, hi), interpolation="nearest")
        top.set_title(caption, fontsize=9)
        if err is not None:
            im = bottom.imshow(err, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            bottom.set_title(f"|error| {name}", fontsize=9)
            err_axes.append(bottom)
    if im is not None:
        with np.errstate(invalid="ignore"):
            _error_colorbar(
                fig,
                im,
                err_axes,
                [e for _, _, e, _ in panels[1:] if e is not None],
                vmax,
                error_label,
            )
    combo = "/".join(band_names[b] for b in bands)
    fig.suptitle(
        f"{title}: composite {combo}, one 2-98% stretch (of the truth) for all", fontsize=10
    )
    return fig


def bin_edges(values: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """About ``bins`` histogram bins over ``lo..hi``. Values on few levels (integers scaled to
    reflectance: 8-bit Landsat-7 DN give ~20 levels per 0.1) get bins of whole levels, the
    edges midway between levels, else bins alternately catch one level and none, which draws
    empty stripes across the density."""
    finite = values[np.isfinite(values)]
    u = np.unique(finite)
    levels = u[(u >= lo) & (u <= hi)]
    # quantised: few levels, or many pixels per level (int16 x 1e-4: LGC's truth has 390
    # levels, more than 4 per bin, and drew stripes); continuous floats are all distinct
    quantised = levels.size <= 4 * bins or finite.size >= 8 * u.size
    if levels.size < 2 or not quantised:
        return np.linspace(lo, hi, bins + 1)
    per_bin = math.ceil(levels.size / bins)
    mids = (levels[1:] + levels[:-1]) / 2
    inner = mids[per_bin - 1 :: per_bin]
    first = levels[0] - (levels[1] - levels[0]) / 2
    last = levels[-1] + (levels[-1] - levels[-2]) / 2
    return np.unique(np.concatenate([[first], inner, [last]]))


def scatter_grid(
    truth: np.ndarray,
    predictions: Sequence[tuple[str, np.ndarray]],
    band_names: Sequence[str],
    quantity: str = "reflectance",
    title: str = "",
    bins: int = 80,
) -> Any:
    """Truth-vs-prediction density per band (columns) and method (rows): per band one pair of
    axis limits for every method (0.5-99.5 % of the truth and all predictions together), one
    log colour scale for every panel with its colour bar, the 1:1 line. Returns the figure."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    nb = truth.shape[0]
    limits = []
    for b in range(nb):
        v = np.concatenate(
            [im[b][np.isfinite(im[b])] for im in [truth, *(p for _, p in predictions)]]
        )
        lo, hi = (float(x) for x in np.percentile(v, [0.5, 99.5])) if v.size else (0.0, 1.0)
        limits.append((lo, hi if hi > lo else lo + 1e-6))
    counts = []
    for _, pred in predictions:
        row = []
        for b in range(nb):
            t, p = truth[b].ravel(), pred[b].ravel()
            m = np.isfinite(t) & np.isfinite(p)
            xe, ye = (bin_edges(v[m], *limits[b], bins) for v in (t, p))
            h, _, _ = np.histogram2d(t[m], p[m], bins=[xe, ye])
            row.append((xe, ye, np.ma.masked_equal(h.T, 0)))  # rows: prediction, cols: truth
        counts.append(row)
    top = max((float(h.max()) for row in counts for _, _, h in row if h.count()), default=1.0)
    norm = LogNorm(vmin=1, vmax=max(top, 2.0))
    n = max(len(predictions), 1)
    fig = Figure(figsize=(2.3 * nb + 1.0, 2.2 * n + 0.6), constrained_layout=True)
    axes = fig.subplots(n, nb, squeeze=False)
    mesh = None
    for i, (label, _) in enumerate(predictions):
        for b in range(nb):
            ax, (lo, hi) = axes[i, b], limits[b]
            xe, ye, h = counts[i][b]
            mesh = ax.pcolormesh(xe, ye, h, cmap="viridis", norm=norm)
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.6, alpha=0.7)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_title(f"{label}: {band_names[b]}", fontsize=7)
            ax.tick_params(labelsize=6)
            if b == 0:
                ax.set_ylabel(f"predicted {quantity}", fontsize=7)
            if i == n - 1:
                ax.set_xlabel(f"truth {quantity}", fontsize=7)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, shrink=0.6, label="pixels per bin (log scale)")
    fig.suptitle(
        f"{title}: truth vs prediction density, one scale per band and for all", fontsize=10
    )
    return fig
