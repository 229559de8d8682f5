"""Blending a date's predictions: temporal weights within a tier, fallback tiers, the observation.

A :class:`Tier` is the predictions of one method for one target (one per chosen pair set),
blended with weights renormalised per pixel over the predictions valid there. A value that a
prediction's quality layer (:func:`quality_path`, ``pairs_used`` 0) says no pair's fine data
made (Fit-FC's and STARFM's coarse substitute where the pair's fine pixel is missing) is a
*substitute*: it is used only where no prediction, in this tier or a later one, has a value
made from a pair. A later tier (the fallback) fills only the pixels earlier tiers leave NaN
or hold only substitutes; the fine image observed on the target date, where valid, wins over
every prediction (gap-filling).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from stfusion.io import FileSource, Grid, Scaling, Source


def quality_path(path: Path) -> Path:
    """Where a component prediction's quality layer is written (``NAME_quality.tif``, the
    name ``stfusion predict --quality`` gives): read by :meth:`Tier.blend_support`."""
    return path.with_name(f"{path.stem}_quality{path.suffix}")


def from_pairs(path: Path, win: Window) -> np.ndarray | None:
    """``(h, w)``: where the prediction at ``path`` has a value made from a pair's fine data
    (its quality layer's ``pairs_used`` > 0); None when it has no quality layer (every value
    then counts as made from the pairs, as before quality layers were read)."""
    q = quality_path(path)
    if not q.exists():
        return None
    with rasterio.open(q) as ds:
        band = ds.descriptions.index("pairs_used") + 1
        return np.asarray(ds.read(band, window=win) > 0)


@dataclass
class Tier:
    """Predictions blended with weights; a later tier fills only where earlier ones are NaN
    or hold only substitutes (:meth:`blend_support`)."""

    paths: list[Path]
    weights: list[float]
    method: str = ""
    sets: list[list[dt.date]] = field(default_factory=list)
    #: What the method chose when fitted (its ``fitted_tags``: the variable, ...).
    fitted: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """The component predictions and their quality layers (to remove once blended)."""
        return [*self.paths, *(quality_path(p) for p in self.paths)]

    def blend(self, win: Window) -> np.ndarray | None:
        """The blended window (None without predictions): see :meth:`blend_support`."""
        both = self.blend_support(win)
        return None if both is None else both[0]

    def blend_support(self, win: Window) -> tuple[np.ndarray, np.ndarray] | None:
        """The blended window and where it holds only substitutes (``(band, h, w)`` each).

        The weights are renormalised per pixel and band over the predictions whose value
        there was made from a pair; where none has such a value, over those with a
        substitute (a one-pair method's coarse value where its pair has no fine pixel). So
        where one pair's fine image has a gap, the other pair's prediction is used alone.
        """
        if not self.paths:
            return None
        num: Any = 0.0  # [made from pairs, substitute] x (band, h, w), once the first is read
        den: Any = 0.0
        for path, wi in zip(self.paths, self.weights):
            p = FileSource(str(path), Scaling(1.0, 0.0)).read(win).astype(np.float64)
            ok = np.isfinite(p)
            real = from_pairs(path, win)
            made = ok if real is None else ok & real[None]
            use = np.stack([made, ok & ~made])
            num = num + np.where(use, p, 0.0) * wi
            den = den + use * wi
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(den > 0, num / den, np.nan)
        substitute = (den[0] == 0) & (den[1] > 0)
        return np.where(den[0] > 0, mean[0], mean[1]).astype(np.float32), substitute


def row_blocks(grid: Grid, count: int, layers: int) -> list[Window]:
    """Full-width row windows small enough for ``layers`` float64 images (~64 MB)."""
    # + 8: a tier's blend keeps sums and means for values made from pairs and substitutes
    rows = max(1, min(grid.height, (64 << 20) // max(grid.width * count * 8 * (layers + 8), 1)))
    return [
        Window(0, r, grid.width, min(rows, grid.height - r)) for r in range(0, grid.height, rows)
    ]


def holes(tier: Tier, target: Source, observed: Source | None, grid: Grid, count: int) -> int:
    """Pixels (all bands) the tier leaves NaN although the coarse target has values there."""
    n = 0
    for win in row_blocks(grid, count, len(tier.paths)):
        b = tier.blend(win)
        t = np.isfinite(target.read(win)).all(axis=0)
        hole = ~np.isfinite(b).all(axis=0) if b is not None else np.ones(t.shape, bool)
        if observed is not None:
            hole &= ~np.isfinite(observed.read(win)).all(axis=0)
        n += int((hole & t).sum())
    return n


class Combination:
    """The tiers and the observation combined, window by window (:meth:`blocks`).

    ``filled`` counts, once :meth:`blocks` is consumed, the pixels that tiers after the first
    filled (in at least one band) and the observation did not cover.
    """

    def __init__(
        self, tiers: Sequence[Tier], observed: Source | None, grid: Grid, count: int
    ) -> None:
        self.tiers, self.observed, self.grid, self.count = tiers, observed, grid, count
        self.filled = 0

    def blocks(self) -> Iterator[tuple[Window, np.ndarray]]:
        grid, count = self.grid, self.count
        layers = sum(len(t.paths) for t in self.tiers) + 1
        for win in row_blocks(grid, count, layers):
            out = np.full((count, int(win.height), grid.width), np.nan, np.float32)
            later = np.zeros(out.shape, bool)
            substitute = np.zeros(out.shape, bool)
            for k, tier in enumerate(self.tiers):
                both = tier.blend_support(win)
                if both is None:
                    continue
                b, sub = both
                # NaN so far, or only a substitute that this tier improves on
                fill = np.isfinite(b) & (~np.isfinite(out) | (substitute & ~sub))
                later |= fill if k > 0 else False
                out[fill] = b[fill]
                substitute[fill] = sub[fill]
            if self.observed is not None:
                obs = self.observed.read(win)
                seen = np.isfinite(obs)
                out = np.where(seen, obs, out)
                later &= ~seen
            self.filled += int(later.any(axis=0).sum())
            yield win, out
