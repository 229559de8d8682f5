"""Blending a date's predictions: temporal weights within a tier, fallback tiers, the observation.

A :class:`Tier` is the predictions of one method for one target (one per chosen pair set),
blended with weights renormalised per pixel over the predictions valid there. A later tier
(the fallback) fills only the pixels earlier tiers leave NaN; the fine image observed on the
target date, where valid, wins over every prediction (gap-filling).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from stfusion.io import FileSource, Grid, Scaling, Source


@dataclass
class Tier:
    """Predictions blended with weights; a later tier fills only where earlier ones are NaN."""

    paths: list[Path]
    weights: list[float]
    method: str = ""
    sets: list[list[dt.date]] = field(default_factory=list)
    #: What the method chose when fitted (its ``fitted_tags``: the variable, ...).
    fitted: dict[str, Any] = field(default_factory=dict)

    def blend(self, win: Window) -> np.ndarray | None:
        if not self.paths:
            return None
        num: np.ndarray | None = None
        den: np.ndarray | None = None
        for path, wi in zip(self.paths, self.weights):
            p = FileSource(str(path), Scaling(1.0, 0.0)).read(win).astype(np.float64)
            ok = np.isfinite(p)
            num = (0.0 if num is None else num) + np.where(ok, p, 0.0) * wi
            den = (0.0 if den is None else den) + ok * wi
        assert num is not None and den is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan).astype(np.float32)


def row_blocks(grid: Grid, count: int, layers: int) -> list[Window]:
    """Full-width row windows small enough for ``layers`` float64 images (~64 MB)."""
    rows = max(1, min(grid.height, (64 << 20) // max(grid.width * count * 8 * (layers + 3), 1)))
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
            for k, tier in enumerate(self.tiers):
                b = tier.blend(win)
                if b is None:
                    continue
                fill = ~np.isfinite(out) & np.isfinite(b)
                later |= fill if k > 0 else False
                out[fill] = b[fill]
            if self.observed is not None:
                obs = self.observed.read(win)
                seen = np.isfinite(obs)
                out = np.where(seen, obs, out)
                later &= ~seen
            self.filled += int(later.any(axis=0).sum())
            yield win, out
