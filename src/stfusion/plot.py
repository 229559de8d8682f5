"""Figures a person looks at: quicklooks with one colour stretch, and error maps."""

from __future__ import annotations

import os
from collections.abc import Sequence

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
    rgb = np.stack([(image[b] - lo[i]) / (hi[i] - lo[i]) for i, b in enumerate(bands)], axis=-1)
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0), 0, 1)
    return rgb


def quicklook_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    truth: np.ndarray,
    prediction: np.ndarray,
    band_names: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "",
) -> None:
    """Panels with one colour stretch, then |prediction - truth| (mean over bands)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = rgb_bands(band_names)
    images = [im for _, im in panels]
    lo, hi = stretch_limits(images, bands)
    n = len(panels) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), constrained_layout=True)
    for ax, (label, im) in zip(axes, panels):
        ax.imshow(composite(im, bands, lo, hi), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    err = np.nanmean(np.abs(prediction - truth), axis=0)
    vmax = float(np.nanpercentile(err, 99)) if np.isfinite(err).any() else 1.0
    im = axes[-1].imshow(err, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
    axes[-1].set_title("|prediction - truth|, mean over bands", fontsize=9)
    axes[-1].set_axis_off()
    fig.colorbar(im, ax=axes[-1], shrink=0.8, label="reflectance")
    names = "/".join(band_names[b] for b in bands)
    fig.suptitle(f"{title}  (composite {names}, same 2-98% stretch in every panel)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
