"""Streaming training data: patch datasets that read windows from the files.

The training engine (:mod:`stfusion.dl.engine`) never holds a whole scene. Every example is
read when a ``DataLoader`` worker asks for it, through the Sources of
:func:`stfusion.scene.open_scene` (``FileSource``, ``AlignedSource``, ``qa.MaskedSource``), so
the scaling, grid alignment and masks of ``stfusion predict`` apply; peak memory is a few
windows per worker whatever the number of dates or the scene size.

Pieces:

- :class:`Site`: the dated pairs of one scene (one grid); ``stfusion train --catalog`` gives
  several. Dates are paired only within a site.
- :func:`pair_examples`: the (reference, target) examples: every ordered pair of distinct
  dates of a site, at most ``max_gap`` days apart.
- :class:`Normalisation`: per-band mean and standard deviation over the training dates'
  images, from decimated reads (:meth:`stfusion.io.Source.sample`, at most 2^18 px each).
- :class:`PatchDataset`: item ``i`` of epoch ``e`` is drawn from a generator seeded with
  ``(seed, e, i)``: an example, a position outside the validation block, a rotation/flip and
  the time mix. The same seed gives the same patches whatever the number of workers, and a
  resumed run sees the patches of an uninterrupted one. :class:`EpochSampler` hands out
  ``e * length + i`` (split between the processes of a distributed run).
- :class:`ValidationDataset`: a fixed, bounded sample (``val_patches``) of patches, chosen
  once from the seed: patches of training-date examples inside each site's spatial block
  (``val_fraction``; only the block's pixels count) and patches of examples whose target is a
  held-out date (``val_dates``; anywhere in the scene, the reference a training date). Its cost
  does not grow with the number of dates.
- :func:`read_catalog` (:mod:`stfusion.dl.catalog`): ``site,date,fine,coarse[,mask]`` rows.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window

from stfusion.dl.catalog import PairSpec, with_catalog_columns
from stfusion.dl.catalog import read_catalog as read_catalog  # re-exported: its old home
from stfusion.dl.data import (
    Block,
    ordered_pairs,
    parse_date,
    resolve_dates,
    validation_block,
)
from stfusion.dl.file_handles import (  # re-exported: datasets.<name> is their old home
    GDAL_CACHE_BYTES,  # noqa: F401
    MAX_HANDLES,  # noqa: F401
    bound_gdal_cache,  # noqa: F401
    close_handles,  # noqa: F401
    kept_open,
    streaming,  # noqa: F401
)
from stfusion.errors import GridMismatchError, InvalidParameterError, ScaleMismatchError, warn
from stfusion.io import Scaling, Source
from stfusion.scene import Scene, as_source, open_scene

#: Pixels per image read to compute the normalisation (decimated above this).
STATS_PIXELS = 1 << 18
#: A training patch with more invalid pixels than this share is redrawn (``--max-invalid``).
MAX_INVALID = 0.01


@dataclass
class Site:
    """The dated pairs of one scene; ``block``: its spatial validation block (or None)."""

    name: str
    scene: Scene
    dates: list[str] | None
    block: Block | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.scene.grid.shape


@dataclass(frozen=True)
class Example:
    """Inputs ``F_ref, C_ref, C_tgt``, label ``F_tgt`` (pair indices of site ``site``)."""

    site: int
    ref: int
    tgt: int


def _named(image: object) -> bool:
    """Whether ``image`` is given by a name that may carry a date (a path, not an array)."""
    return isinstance(image, str | os.PathLike)


def _days(a: str, b: str) -> int:
    return abs((_dt.date.fromisoformat(a) - _dt.date.fromisoformat(b)).days)


def pair_examples(
    sites: Sequence[Site],
    held_out: Sequence[str] = (),
    max_gap: float = 0.0,
    targets: str = "train",
) -> list[Example]:
    """Ordered (reference, target) examples within each site.

    ``targets="train"``: reference and target both training dates (not in ``held_out``);
    ``"held_out"``: a training reference and a held-out target. ``max_gap`` > 0: at most this
    many days apart (needs dates).
    """
    out = []
    for s, site in enumerate(sites):
        n = len(site.scene.pairs)
        held = {i for i in range(n) if site.dates and site.dates[i] in held_out}
        for r, t in ordered_pairs(n):
            if r in held or ((t in held) != (targets == "held_out")):
                continue
            if max_gap > 0 and site.dates and _days(site.dates[r], site.dates[t]) > max_gap:
                continue
            out.append(Example(s, r, t))
    return out


def training_dates(sites: Sequence[Site], held_out: Sequence[str]) -> list[tuple[int, int]]:
    """(site, pair index) of every date used for training."""
    return [
        (s, i)
        for s, site in enumerate(sites)
        for i in range(len(site.scene.pairs))
        if not (site.dates and site.dates[i] in held_out)
    ]


@dataclass
class Normalisation:
    """Per-band mean and standard deviation (physical units), and the vision loss range."""

    mean: np.ndarray
    std: np.ndarray
    physical_range: float
    #: Band-agnostic networks: statistics per example (mean 0, std 1 here; see _Reader).
    per_sample: bool = False

    @classmethod
    def identity(cls) -> Normalisation:
        """The placeholder of per-sample normalisation (one band, mean 0, std 1)."""
        return cls(np.zeros(1), np.ones(1), 1.0, per_sample=True)

    @property
    def data_range(self) -> np.ndarray:
        """Per-band data range in normalised units."""
        return (self.physical_range / self.std).astype(np.float32)

    @classmethod
    def from_sources(
        cls, fines: Sequence[Source], coarses: Sequence[Source], max_pixels: int = STATS_PIXELS
    ) -> Normalisation:
        count = fines[0].count
        n, s1, s2 = np.zeros(count), np.zeros(count), np.zeros(count)
        fine_vals: list[np.ndarray] = []
        per_image = max(4096, (1 << 20) // max(len(fines), 1))
        for kind, sources in (("fine", fines), ("coarse", coarses)):
            for src in sources:
                a = src.sample(max_pixels).reshape(count, -1).astype(np.float64)
                ok = np.isfinite(a)
                v = np.where(ok, a, 0.0)
                n += ok.sum(1)
                s1 += v.sum(1)
                s2 += (v * v).sum(1)
                if kind == "fine":
                    fv = a[ok]
                    step = max(1, fv.size // per_image)
                    fine_vals.append(fv[::step])
        if (n == 0).any():
            b = int(np.argmax(n == 0))
            raise InvalidParameterError(f"band {b + 1} has no valid pixel in the pairs.")
        mean = s1 / n
        std = np.maximum(np.sqrt(np.maximum(s2 / n - mean**2, 0.0)), 1e-6)
        fv = np.concatenate(fine_vals) if fine_vals else np.zeros(0)
        lo, hi = np.percentile(fv, [0.5, 99.5]) if fv.size else (0.0, 1.0)
        physical = 1.0 if (lo >= -0.5 and hi <= 1.5) else float(max(hi - lo, 1e-6))
        return cls(mean, std, physical)


def dihedral(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """``a`` rotated by ``k`` quarter turns and, with ``flip``, mirrored (last two axes)."""
    a = np.rot90(a, k, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if flip else a)


def time_mixed(parts: tuple[np.ndarray, ...], a: float) -> tuple[np.ndarray, ...]:
    """The target moved to ``a`` in [0, 1) between the dates: ``C_r + a (C_t - C_r)``,
    ``F_r + a (F_t - F_r)`` (docs/deep.md, ``--time-mix``)."""
    f_r, c_r, c_t, f_t, m = parts
    a32 = np.float32(a)
    return f_r, c_r, c_r + a32 * (c_t - c_r), f_r + a32 * (f_t - f_r), m


class _Reader:
    """Reads normalised windows of a site's images.

    ``norm.per_sample`` (band-agnostic networks): windows are normalised per example and band
    with the statistics of the example's reference fine image (whole image, decimated read,
    cached per date: :func:`stfusion.dl.networks.agnostic.sample_stats`), the statistics a
    prediction uses for its scene, and one band of the example is returned.
    """

    def __init__(self, sites: Sequence[Site], norm: Normalisation) -> None:
        self.sites = [Site(s.name, copy.copy(s.scene), s.dates, s.block) for s in sites]
        for s in self.sites:
            s.scene.pairs = [(kept_open(f), kept_open(c)) for f, c in s.scene.pairs]
        self.per_sample = norm.per_sample
        self.m = norm.mean.astype(np.float32)[:, None, None]
        self.s = norm.std.astype(np.float32)[:, None, None]
        self._stats: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def stats(self, site: int, index: int) -> tuple[np.ndarray, ...]:
        """``center, scale, data range`` per band of a site's fine image ``index``."""
        key = (site, index)
        if key not in self._stats:
            from stfusion.dl.networks.agnostic import sample_stats

            fine = self.sites[site].scene.pairs[index][0]
            self._stats[key] = sample_stats(fine.sample(STATS_PIXELS))
        return self._stats[key]

    def bands(self, site: int) -> int:
        return int(self.sites[site].scene.count)

    def window(self, src: Source, r: int, c: int, h: int, w: int) -> np.ndarray:
        a = src.read(Window(c, r, w, h))
        return a if self.per_sample else (a - self.m) / self.s

    def pair(
        self, ex: Example, r: int, c: int, h: int, w: int, band: int = 0
    ) -> tuple[np.ndarray, ...]:
        pairs = self.sites[ex.site].scene.pairs
        (f_r, c_r), (f_t, c_t) = pairs[ex.ref], pairs[ex.tgt]
        arrs = tuple(self.window(x, r, c, h, w) for x in (f_r, c_r, c_t, f_t))
        if self.per_sample:
            center, scale, _ = self.stats(ex.site, ex.ref)
            arrs = tuple((a[band : band + 1] - center[band]) / scale[band] for a in arrs)
        mask = np.isfinite(np.stack(arrs)).all(axis=(0, 1))[None]
        return (*arrs, mask)

    def sample_stats(self, ex: Example, band: int) -> np.ndarray:
        """The ``(center, scale, data range)`` of an example's band (per-sample mode)."""
        center, scale, rng = self.stats(ex.site, ex.ref)
        return np.array([center[band], scale[band], rng[band]], np.float32)


def _to_tensors(
    parts: Sequence[np.ndarray], stats: np.ndarray | None = None
) -> tuple[torch.Tensor, ...]:
    out = [torch.from_numpy(np.nan_to_num(np.ascontiguousarray(a), nan=0.0)) for a in parts[:-1]]
    extra = () if stats is None else (torch.from_numpy(stats),)
    return (*out, torch.from_numpy(np.ascontiguousarray(parts[-1])), *extra)


class PatchDataset(torch.utils.data.Dataset):
    """Random training patches read from the files (see the module docstring).

    Items are ``(F_r, C_r, C_t, F_t, mask)`` (float32 ``(bands, P, P)`` normalised, NaN set to
    0; mask ``(1, P, P)`` bool, all four valid); with ``single=True`` (STFDCNN: one date at a
    time) ``(F, C, mask)`` of a training date. Positions are multiples of ``multiple``.
    Indices are global (``epoch * length + i``, see :class:`EpochSampler`).
    """

    def __init__(
        self,
        sites: Sequence[Site],
        norm: Normalisation,
        examples: Sequence[Example],
        patch: int,
        length: int,
        seed: int,
        *,
        augment: bool = True,
        time_mix: float = 0.0,
        single: Sequence[tuple[int, int]] | None = None,
        multiple: int = 1,
        stream: int = 0,
        max_invalid: float = MAX_INVALID,
    ) -> None:
        self.reader = _Reader(sites, norm)
        self.examples = list(examples)
        self.single = None if single is None else list(single)
        self.patch, self.length, self.seed, self.stream = patch, int(length), seed, stream
        self.augment, self.time_mix, self.multiple = augment, float(time_mix), multiple
        self.max_invalid = max_invalid
        if not (self.single if single is not None else self.examples):
            raise InvalidParameterError(
                "no training examples: training needs two or more training dates of one site "
                "(within --max-gap of each other, not held out by --val-dates)."
            )
        # A site too small for a whole patch beside its validation block (Kranj: 44 x 45 px)
        # gives windows cut to the largest strip beside the block, padded by reflection.
        self.strips = [_strips(site, patch) for site in sites]
        for site, strips in zip(sites, self.strips):
            if strips is not None and not strips:
                raise InvalidParameterError(
                    f"{site.name}: the validation block covers the whole {site.shape[0]} x "
                    f"{site.shape[1]} scene; use a smaller val_fraction."
                )

    def __len__(self) -> int:
        return self.length

    def _position(self, rng: np.random.Generator, s: int) -> tuple[int, int, int, int] | None:
        """A window ``(row, col, height, width)`` outside the validation block, or None."""
        site = self.reader.sites[s]
        p, m = self.patch, self.multiple
        strips = self.strips[s]
        if strips is not None:  # cut to a strip beside the block, padded to p later
            top, left, h, w = strips[int(rng.integers(len(strips)))]
            ph, pw = min(p, h), min(p, w)
            r = top + int(rng.integers((h - ph) // m + 1)) * m
            c = left + int(rng.integers((w - pw) // m + 1)) * m
            return r, c, ph, pw
        h, w = site.shape
        r = int(rng.integers((h - p) // m + 1)) * m
        c = int(rng.integers((w - p) // m + 1)) * m
        if site.block is not None and site.block.intersects(r, c, p, p):
            return None
        return r, c, p, p

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.seed, self.stream, int(index)])
        p = self.patch
        sites = self.reader.sites
        for _ in range(1000):
            if self.single is not None:
                s, t = self.single[int(rng.integers(len(self.single)))]
                pos = self._position(rng, s)
                if pos is None:
                    continue
                f, c = sites[s].scene.pairs[t]
                fw = self.reader.window(f, *pos)
                cw = self.reader.window(c, *pos)
                if self.reader.per_sample:  # one band, normalised by its image's statistics
                    band = int(rng.integers(self.reader.bands(s)))
                    center, scale, _ = self.reader.stats(s, t)
                    fw = (fw[band : band + 1] - center[band]) / scale[band]
                    cw = (cw[band : band + 1] - center[band]) / scale[band]
                mask = np.isfinite(fw).all(0) & np.isfinite(cw).all(0)
                parts: tuple[np.ndarray, ...] = (fw, cw, mask[None])
            else:
                ex = self.examples[int(rng.integers(len(self.examples)))]
                pos = self._position(rng, ex.site)
                if pos is None:
                    continue
                band = 0
                if self.reader.per_sample:
                    band = int(rng.integers(self.reader.bands(ex.site)))
                    stats = self.reader.sample_stats(ex, band)
                parts = self.reader.pair(ex, *pos, band)
            if 1.0 - parts[-1].mean() > self.max_invalid:
                continue
            parts = padded(parts, p)
            if self.single is None and self.time_mix > 0 and rng.random() < self.time_mix:
                parts = time_mixed(parts, float(rng.random()))
            if self.augment:
                k, flip = int(rng.integers(4)), bool(rng.integers(2))
                parts = tuple(dihedral(a, k, flip) for a in parts)
            if self.reader.per_sample and self.single is None:
                return _to_tensors(parts, stats)
            return _to_tensors(parts)
        windows = "both windows" if self.single is not None else "all four windows"
        raise InvalidParameterError(
            f"could not find a training patch outside the validation block with at most "
            f"{self.max_invalid * 100:g} % invalid (nodata or masked) pixels in {windows} "
            f"(--max-invalid {self.max_invalid:g}); use a smaller --patch, allow more with "
            "e.g. --max-invalid 0.2, or check the nodata and masks of the inputs."
        )


@dataclass(frozen=True)
class ValPatch:
    """One validation patch: an example, its window, and the block it is scored in."""

    example: Example
    row: int
    col: int
    block: Block | None  # None: every pixel of the window counts (a held-out date)
    band: int = 0  # per-sample normalisation: the band of the patch


class ValidationDataset(torch.utils.data.Dataset):
    """A fixed, bounded sample of validation patches (see the module docstring).

    Items as :class:`PatchDataset` (pairs); pixels outside the patch's scoring block are left
    out of the mask. Patches have ``patch`` px sides (clipped to the scene); a block smaller
    than a patch is scored on the patch at the scene's bottom-right corner.
    """

    def __init__(
        self,
        sites: Sequence[Site],
        norm: Normalisation,
        held_out: Sequence[str],
        patch: int,
        n: int,
        seed: int,
        max_gap: float = 0.0,
        multiple: int = 1,
    ) -> None:
        self.reader = _Reader(sites, norm)
        self.patch = patch
        rng = np.random.default_rng([seed, 7919])
        spatial = [
            e
            for e in pair_examples(sites, held_out, max_gap, "train")
            if sites[e.site].block is not None
        ]
        dated = pair_examples(sites, held_out, max_gap, "held_out") if held_out else []
        if held_out and not dated:
            raise InvalidParameterError(
                f"--val-dates {','.join(held_out)}: no held-out date has a training reference "
                "date in its site (within --max-gap)."
            )
        kinds = [k for k in (spatial, dated) if k]
        if not kinds:
            raise InvalidParameterError(
                "no validation examples: give --val-fraction > 0 or --val-dates."
            )
        self.items: list[ValPatch] = []
        for j, kind in enumerate(kinds):
            share = n // len(kinds) + (1 if j < n % len(kinds) else 0)
            for _ in range(max(share, 1)):
                ex = kind[int(rng.integers(len(kind)))]
                site = sites[ex.site]
                h, w = site.shape
                ph, pw = min(patch, h), min(patch, w)
                block = site.block if kind is spatial else None
                if block is not None:
                    r = _in_range(rng, block.row, block.row + block.height - ph, h - ph, multiple)
                    c = _in_range(rng, block.col, block.col + block.width - pw, w - pw, multiple)
                else:
                    r = int(rng.integers((h - ph) // multiple + 1)) * multiple
                    c = int(rng.integers((w - pw) // multiple + 1)) * multiple
                band = int(rng.integers(site.scene.count)) if norm.per_sample else 0
                self.items.append(ValPatch(ex, r, c, block, band))
        # every pixel masked (a held-out date under clouds): its RMSE read 0, a "perfect"
        # score that fixed the best epoch at the first (a training trial)
        if not any(bool(self[i][4].any()) for i in range(len(self.items))):
            what = [f"the held-out dates {', '.join(held_out)}"] if dated else []
            what += ["the validation block (--val-fraction)"] if spatial else []
            raise InvalidParameterError(
                f"the validation sample ({len(self.items)} patches of {' and '.join(what)}) "
                "has no valid pixel: masked or nodata everywhere. Hold out other dates "
                "(--val-dates) or validate on a block (--val-fraction)."
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        it = self.items[index]
        h, w = self.reader.sites[it.example.site].shape
        ph, pw = min(self.patch, h), min(self.patch, w)
        parts = self.reader.pair(it.example, it.row, it.col, ph, pw, it.band)
        if it.block is not None:
            b = it.block
            inside = np.zeros((ph, pw), bool)
            inside[
                max(b.row - it.row, 0) : b.row + b.height - it.row,
                max(b.col - it.col, 0) : b.col + b.width - it.col,
            ] = True
            parts = (*parts[:4], parts[4] & inside[None])
        parts = padded(parts, self.patch)  # a scene smaller than the patch
        if self.reader.per_sample:
            return _to_tensors(parts, self.reader.sample_stats(it.example, it.band))
        return _to_tensors(parts)


def _strips(site: Site, patch: int) -> list[tuple[int, int, int, int]] | None:
    """None when a ``patch`` x ``patch`` window fits beside the site's validation block; else
    the strips ``(row, col, height, width)`` of the scene outside the block (above it, left of
    it; the whole scene without a block) that training windows are cut to."""
    h, w = site.shape
    b = site.block
    if b is None:
        return None if (h >= patch and w >= patch) else [(0, 0, h, w)]
    if h >= patch and w >= patch and (b.row >= patch or b.col >= patch):
        return None
    strips = [(0, 0, b.row, w), (0, 0, h, b.col)]
    return [x for x in strips if x[2] > 0 and x[3] > 0]


def padded(parts: tuple[np.ndarray, ...], patch: int) -> tuple[np.ndarray, ...]:
    """Windows smaller than ``patch`` padded to it at the bottom and right: the images by
    reflection (so the network and the loss terms that see the whole patch see plausible
    texture), the mask (last) with False (the padding never counts as a labelled pixel)."""
    h, w = parts[-1].shape[-2:]
    if h >= patch and w >= patch:
        return parts
    pad = ((0, 0), (0, patch - h), (0, patch - w))
    images = tuple(np.pad(a, pad, mode="reflect") for a in parts[:-1])
    return (*images, np.pad(parts[-1], pad, constant_values=False))


def _in_range(rng: np.random.Generator, lo: int, hi: int, limit: int, multiple: int) -> int:
    """A position in [lo, hi] on the ``multiple`` grid (``limit`` when the range is empty)."""
    lo_m = -(-lo // multiple) * multiple
    if hi < lo_m:
        return max(limit // multiple * multiple, 0)
    return lo_m + int(rng.integers((hi - lo_m) // multiple + 1)) * multiple


class EpochSampler(torch.utils.data.Sampler[int]):
    """Indices ``epoch * length + i`` for ``i < length`` (``fixed``: ``i``), split between the
    processes of a distributed run (rank ``k`` of ``n`` takes every ``n``-th)."""

    def __init__(self, length: int, fixed: bool = False) -> None:
        self.length, self.fixed, self.epoch = int(length), fixed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _shard(self) -> tuple[int, int]:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[int]:
        rank, world = self._shard()
        base = 0 if self.fixed else self.epoch * self.length
        return iter(range(base + rank, base + self.length, world))

    def __len__(self) -> int:
        rank, world = self._shard()
        return len(range(rank, self.length, world))


def loader(
    dataset: torch.utils.data.Dataset, batch: int, workers: int, fixed: bool, drop_last: bool
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` with an :class:`EpochSampler`."""
    assert isinstance(dataset, Sized)  # ours are map-style, with a length
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=EpochSampler(len(dataset), fixed),
        num_workers=workers,
        drop_last=drop_last,
        persistent_workers=False,
        pin_memory=False,
    )


# ----------------------------------------------------------------------------- opening


def open_sites(
    groups: dict[str, list[PairSpec]],
    *,
    fine_scaling: Scaling | None = None,
    coarse_scaling: Scaling | None = None,
    resampling: str = "nearest",
    any_bands: bool = False,
) -> list[Site]:
    """Open each site's pairs with :func:`stfusion.scene.open_scene`; a pair's mask (a binary
    raster, nonzero = invalid) masks its fine image (:class:`stfusion.qa.MaskedSource`).
    ``any_bands``: the sites may differ in bands (band-agnostic networks)."""
    sites = []
    for name, specs in groups.items():
        raw = [(s.fine, s.coarse) for s in specs]
        # a row's date, else its file name's (a row left empty once made every row's
        # catalog date give way to the file names, silently)
        given = [s.date or (parse_date(str(s.fine)) if _named(s.fine) else None) for s in specs]
        known = [d for d in given if d]
        dates = resolve_dates(
            raw, known if len(known) == len(specs) else None, [s.where for s in specs]
        )
        # a row's own scale opens its images with it; the others take the run's
        images = [
            (
                as_source(s.fine, s.scaling("fine", fine_scaling), "fine"),
                as_source(s.coarse, s.scaling("coarse", coarse_scaling), "coarse"),
            )
            for s in specs
        ]
        _check_bands(name, images)
        try:
            scene = open_scene(
                images,
                fine_scaling=fine_scaling,
                coarse_scaling=coarse_scaling,
                resampling=resampling,
            )
        except ScaleMismatchError as exc:
            raise with_catalog_columns(exc, name, specs) from None
        if any(s.mask for s in specs):
            from stfusion.qa import MaskedSource

            scene.pairs = [
                (MaskedSource(f, s.mask) if s.mask else f, c)
                for (f, c), s in zip(scene.pairs, specs)
            ]
        if dates is not None and len(set(dates)) != len(dates):
            raise InvalidParameterError(
                f"site {name}: the pairs' dates repeat ({', '.join(dates)})."
            )
        sites.append(Site(name, scene, dates))
    counts = {s.scene.count for s in sites}
    if len(counts) > 1 and not any_bands:
        raise InvalidParameterError(
            f"the sites have different band counts ({', '.join(map(str, sorted(counts)))}); "
            "a band-tied model (train's --band-tied or band-tied --init, or a band-tied "
            "distill teacher) trains on one set of bands: give sites of one band set, one "
            "model per set, or a band-agnostic model (train's default; the shipped teachers)."
        )
    return sites


def _check_bands(site: str, images: Sequence[tuple[Source, Source]]) -> None:
    """Refuse images of another band count than the site's first fine image, naming what
    ``train`` and ``distill`` accept to choose bands (``FILE:BANDS``: they have no band or
    preset options)."""
    ref = images[0][0]
    for img in (x for pair in images for x in pair):
        if img.count != ref.count:
            where = "--pair" if site == "main" else "the catalog's fine and coarse columns"
            more = img if img.count > ref.count else ref
            bands = ",".join(str(b + 1) for b in range(min(img.count, ref.count)))
            raise GridMismatchError(
                f"{img.label} has {img.count} bands but {ref.label} has {ref.count}: every "
                "image of a site needs the same bands in the same order. Choose them in "
                f"{where} with FILE:BANDS (1-based numbers or band names, e.g. "
                f"{Path(more.label).name}:{bands}; docs/inputs.md)."
            )


def set_blocks(
    sites: Sequence[Site], val_fraction: float, multiple: int = 1, patch: int = 0
) -> None:
    """Give each site its bottom-right validation block (``val_fraction`` 0: none); warn
    when the strips beside it are narrower than a ``patch`` (training then sees a strip a
    few pixels wide, padded: --val-fraction 0.99 trained on one row, silently)."""
    for site in sites:
        b = site.block = (
            validation_block(site.shape, val_fraction, multiple) if val_fraction > 0 else None
        )
        if b is not None and b.row == 0 and b.col == 0:  # said here, not after the warning
            raise InvalidParameterError(
                f"{site.name}: the validation block (--val-fraction {val_fraction:g}) covers "
                f"the whole {site.shape[0]} x {site.shape[1]} scene; give a smaller "
                "--val-fraction, or hold out dates (--val-dates)."
            )
        if b is not None and max(b.row, b.col) < patch <= min(site.shape):
            warn(
                f"site {site.name}: the validation block (--val-fraction {val_fraction:g}) "
                f"leaves {b.row} row(s) above it and {b.col} column(s) beside it, fewer than "
                f"--patch {patch}: training patches come from that strip, padded. Give a "
                "smaller --val-fraction or --patch, or hold out dates (--val-dates)."
            )


def steps_per_epoch(sites: Sequence[Site], n_targets: int, patch: int, batch: int) -> int:
    """About one pass over the training area of every target date, at least 10 steps."""
    area = 0
    for site in sites:
        h, w = site.shape
        b = site.block
        area += h * w - (b.height * b.width if b else 0)
    area = area * n_targets // max(len(sites), 1)
    return max(10, math.ceil(area / (patch**2 * batch)))


def describe(sites: Sequence[Site]) -> dict[str, Any]:
    """Sites and their dates, as stored in the checkpoint."""
    return {s.name: list(s.dates or []) for s in sites}


def describe_sites(sites: Sequence[Site]) -> list[dict[str, Any]]:
    """Per site: name, dates, shape, band count and names, resolution ratio and, when
    georeferenced, CRS (WKT) and bounds (checkpoints: a target date at another place is not
    taken for a training date, :class:`stfusion.methods.deep.TrainingSite`)."""
    out = []
    for s in sites:
        grid = s.scene.grid
        out.append(
            {
                "site": s.name,
                "dates": list(s.dates or []),
                "shape": list(s.shape),
                "bands": int(s.scene.count),
                "band_names": list(s.scene.band_names),
                "ratio": s.scene.ratio,
                "crs": grid.crs.to_wkt() if grid.crs is not None else None,
                "bounds": [float(v) for v in grid.bounds] if grid.georeferenced else None,
            }
        )
    return out
