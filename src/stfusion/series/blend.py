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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from stfusion.io import FileSource, Grid, Scaling, Source
from stfusion.quality import QUALITY_BANDS


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
    #: ``main`` or ``fallback``: which ``tier`` bit of the quality layer it sets.
    role: str = "main"

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
        both = self.blend_quality(win, quality=False)
        return None if both is None else both[:2]

    def blend_quality(
        self, win: Window, quality: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """:meth:`blend_support`, and with ``quality`` the blend's quality ``(3, h, w)``
        (:func:`tier_quality`: ``days_to_pair``, ``pairs_used``, ``fallback``) over the
        predictions that contributed to some band of each pixel."""
        if not self.paths:
            return None
        num: Any = 0.0  # [made from pairs, substitute] x (band, h, w), once the first is read
        den: Any = 0.0
        uses: list[np.ndarray] = []
        for path, wi in zip(self.paths, self.weights):
            p = FileSource(str(path), Scaling(1.0, 0.0)).read(win).astype(np.float64)
            ok = np.isfinite(p)
            real = from_pairs(path, win)
            made = ok if real is None else ok & real[None]
            use = np.stack([made, ok & ~made])
            num = num + np.where(use, p, 0.0) * wi
            den = den + use * wi
            if quality:
                uses.append(use & (wi > 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(den > 0, num / den, np.nan)
        substitute = (den[0] == 0) & (den[1] > 0)
        blended = np.where(den[0] > 0, mean[0], mean[1]).astype(np.float32)
        if not quality:
            return blended, substitute, None
        # a prediction contributed to a band where it was of the kind the blend used there
        chosen = den[0] > 0
        contributed = [np.where(chosen, u[0], u[1]).any(axis=0) for u in uses]
        return blended, substitute, tier_quality(self.paths, contributed, win)


def _component_quality(path: Path, win: Window) -> np.ndarray:
    """``(3, h, w)``: a prediction's ``days_to_pair``, ``pairs_used``, ``fallback`` (NaN
    without its quality layer)."""
    q = quality_path(path)
    h, w = int(win.height), int(win.width)
    if not q.exists():
        return np.full((3, h, w), np.nan, np.float32)
    with rasterio.open(q) as ds:
        names = list(ds.descriptions)
        return np.stack([ds.read(names.index(n) + 1, window=win) for n in QUALITY_BANDS])


def tier_quality(paths: Sequence[Path], contributed: Sequence[np.ndarray], win: Window) -> Any:
    """``(3, h, w)`` float32 over the predictions ``paths`` that ``contributed`` (``(h, w)``
    each) at a pixel: ``days_to_pair`` the smallest of theirs (NaN where none is known),
    ``pairs_used`` the sum of theirs, ``fallback`` their flags OR-ed; NaN where none
    contributed."""
    h, w = int(win.height), int(win.width)
    days = np.full((h, w), np.inf)
    pairs = np.zeros((h, w))
    flags = np.zeros((h, w), np.int64)
    anyone = np.zeros((h, w), bool)
    for path, c in zip(paths, contributed):
        q = _component_quality(path, win)
        days = np.where(c & np.isfinite(q[0]), np.fmin(days, q[0]), days)
        pairs += np.where(c, np.nan_to_num(q[1]), 0.0)
        flags |= np.where(c, np.nan_to_num(q[2]), 0).astype(np.int64)
        anyone |= c
    days = np.where(np.isfinite(days), days, np.nan)
    out = np.stack([days, pairs, flags.astype(np.float64)]).astype(np.float32)
    return np.where(anyone[None], out, np.float32(np.nan))


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


#: ``tier`` bits: the main method's tier, the fallback's (3: bands of the pixel from both).
TIER_BITS = {"main": 1, "fallback": 2}


class Combination:
    """The tiers and the observation combined, window by window (:meth:`blocks`), with the
    quality layer of the result computed in the same pass when asked for.

    ``filled`` counts, once :meth:`blocks` is consumed, the pixels that tiers after the first
    filled (in at least one band) and the observation did not cover.
    """

    def __init__(
        self, tiers: Sequence[Tier], observed: Source | None, grid: Grid, count: int
    ) -> None:
        self.tiers, self.observed, self.grid, self.count = tiers, observed, grid, count
        self.filled = 0

    def blocks(
        self, quality: Callable[[Window, np.ndarray], None] | None = None
    ) -> Iterator[tuple[Window, np.ndarray]]:
        """The combined windows; with ``quality``, each window's quality layer
        (:data:`stfusion.series.quality.BANDS`, ``(5, h, w)`` float32; docs/commands/series.md,
        "The quality layer") is handed to it first, from the same reads of the predictions."""
        for win, out, later, q in self._combine(quality is not None):
            self.filled += int(later.any(axis=0).sum())
            if quality is not None:
                assert q is not None
                quality(win, q)
            yield win, out

    def _combine(
        self, quality: bool
    ) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray | None]]:
        grid, count = self.grid, self.count
        layers = sum(len(t.paths) for t in self.tiers) + 1
        for win in row_blocks(grid, count, layers):
            out = np.full((count, int(win.height), grid.width), np.nan, np.float32)
            later = np.zeros(out.shape, bool)
            substitute = np.zeros(out.shape, bool)
            src = np.full(out.shape, -1, np.int8)  # the tier that made each value
            per_tier: list[tuple[str, np.ndarray | None]] = []
            for k, tier in enumerate(self.tiers):
                parts = tier.blend_quality(win, quality)
                if parts is None:
                    continue
                b, sub, q = parts
                # NaN so far, or only a substitute that this tier improves on
                fill = np.isfinite(b) & (~np.isfinite(out) | (substitute & ~sub))
                later |= fill if k > 0 else False
                out[fill] = b[fill]
                substitute[fill] = sub[fill]
                src[fill] = k
                per_tier.append((tier.role, q))
            seen = np.zeros(out.shape, bool)
            if self.observed is not None:
                obs = self.observed.read(win)
                seen = np.isfinite(obs)
                out = np.where(seen, obs, out)
                later &= ~seen
                src[seen] = -1
            q_out = _date_quality(out, seen, src, per_tier) if quality else None
            yield win, out, later, q_out


def _date_quality(
    out: np.ndarray,
    seen: np.ndarray,
    src: np.ndarray,
    per_tier: Sequence[tuple[str, np.ndarray | None]],
) -> np.ndarray:
    """One window's quality layer (``observed``, ``days_to_pair``, ``pairs_used``,
    ``fallback``, ``tier``) from the combined values
    ``out``, where the observation was taken (``seen``), the tier of every other value
    (``src``) and each tier's quality: the tiers that made some band of a pixel combine as
    :func:`tier_quality` does; a pixel observed in every band has 1, 0, 0, 0, 0."""
    h, w = out.shape[1:]
    days = np.full((h, w), np.inf)
    pairs = np.zeros((h, w))
    flags = np.zeros((h, w), np.int64)
    tier = np.zeros((h, w), np.int64)
    for k, (role, q) in enumerate(per_tier):
        c = (src == k).any(axis=0)
        if q is None or not c.any():
            continue
        days = np.where(c & np.isfinite(q[0]), np.fmin(days, q[0]), days)
        pairs += np.where(c, np.nan_to_num(q[1]), 0.0)
        flags |= np.where(c, np.nan_to_num(q[2]), 0).astype(np.int64)
        tier |= np.where(c, TIER_BITS.get(role, 1), 0)
    observed = seen.all(axis=0)
    days = np.where(observed, 0.0, np.where(np.isfinite(days), days, np.nan))
    bands = np.stack([observed.astype(np.float64), days, pairs, flags, tier]).astype(np.float32)
    has = np.isfinite(out).any(axis=0)
    return np.where(has[None], bands, np.float32(np.nan))
