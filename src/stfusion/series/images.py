"""The images of a series run, opened on the fine grid and masked, each once.

:class:`ImageSet` opens an acquisition as a :class:`~stfusion.io.Source` on the output grid
(:mod:`.grids`: fine images on other grids placed on it pixel for pixel, coarse images on
their own grid reprojected), masks it, measures its valid fraction and caches the result; a
file that cannot be read is reported, not raised, so the series goes on without it. The
warnings stfusion gives about an input (a QA band read as a binary mask) are logged and
kept (:attr:`ImageSet.warned`) for the run's notes.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from rasterio.windows import Window

from stfusion.dates import Acquisition
from stfusion.errors import (
    InputFileError,
    STFusionError,
    STFusionWarning,
    UnreadableInputError,
)
from stfusion.io import AlignedSource, FileSource, Grid, Scaling, Source
from stfusion.pair_scales import SAMPLE_PIXELS, check_scales
from stfusion.qa import MaskedSource
from stfusion.scene import align_coarse
from stfusion.scene_checks import (
    check_one_ratio,
    fill_advice,
    warn_fine_looking_coarse,
    warn_undeclared_fill,
)
from stfusion.series.placed import PlacedSource, placement

log = logging.getLogger("stfusion")

#: Pixels sampled to measure an image's valid fraction (all pixels of smaller images).
VALID_SAMPLE = 1 << 16


def valid_fraction(source: Source, sample: np.ndarray | None = None) -> float:
    """Fraction of (sampled) pixels valid in every band (``sample``: one already read)."""
    s = source.sample(VALID_SAMPLE) if sample is None else sample
    if s.size == 0:
        return 0.0
    return float(np.isfinite(s).all(axis=0).mean())


def fully_valid(source: Source, rows: int = 256) -> bool:
    """Whether every pixel of every band is finite (read in row blocks)."""
    g = source.grid
    for r in range(0, g.height, rows):
        block = source.read(Window(0, r, g.width, min(rows, g.height - r)))
        if not np.isfinite(block).all():
            return False
    return True


def describe_error(exc: BaseException) -> str:
    """One line for summary.csv: stfusion's own messages as they are, others with their type."""
    text = str(exc).strip().replace("\n", " ")
    return text if isinstance(exc, STFusionError) else f"{type(exc).__name__}: {text}"


@dataclass
class Image:
    """One input image, opened on the fine grid (masked), or the reason it could not be."""

    acq: Acquisition
    source: Source | None = None
    error: str = ""
    valid: float | None = None


@dataclass
class ImageSet:
    """The run's images by date, opened on demand and cached (see the module doc)."""

    fine: dict[dt.date, Acquisition]
    coarse: dict[dt.date, Acquisition]
    #: A fine image on the output grid (:func:`.grids.choose_grid`): it sets the grid, the
    #: band count and names.
    ref: FileSource
    fine_scaling: Scaling
    coarse_scaling: Scaling
    resampling: str
    fine_mask: tuple[str, tuple[str, ...]]
    coarse_mask: tuple[str, tuple[str, ...]]
    min_valid: float
    #: The resolution ratio: given (``ratio=R``), else measured at the first reprojection.
    ratio: float | None = None
    aligned: int = 0  # coarse images reprojected onto the fine grid
    images: dict[tuple[str, dt.date], Image] = field(default_factory=dict)
    #: stfusion's warnings about the images opened so far, in order (the run's notes).
    warned: list[str] = field(default_factory=list)
    _clear: list[dt.date] | None = None
    #: per sensor, the undeclared fill values (as stored) already warned about
    _fill_said: dict[str, set[str]] = field(default_factory=dict)
    #: The first pair's coarse image, each target's scale checked against it (and its sample)
    scale_ref: Source | None = None
    _ref_sample: np.ndarray | None = None
    #: The first coarse image reprojected: its ratio and name, the others' checked against it
    _first_ratio: tuple[float, str] | None = None

    @property
    def grid(self) -> Grid:
        return self.ref.grid

    @property
    def count(self) -> int:
        return self.ref.count

    @property
    def band_names(self) -> tuple[str, ...]:
        return self.ref.band_names

    def open_image(self, acq: Acquisition) -> Image:
        """The image on the fine grid, masked, with its valid fraction (cached)."""
        key = (acq.sensor, acq.date)
        if key in self.images:
            return self.images[key]
        img = Image(acq)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                img.source = self._source(acq)
                sample = img.source.sample(VALID_SAMPLE)
                img.valid = valid_fraction(img.source, sample)
                if acq.sensor != "fine" and img.valid > 0:  # a Landsat file among the MODIS
                    # ones was predicted from without a word, while predict warns
                    warn_fine_looking_coarse(self.ref, img.source, "coarse image")
                if img.valid > 0:  # MODIS -28672 was fused as reflectance -2.87, silently
                    self._warn_fill(acq, img.source, sample)
            # stfusion's own warnings about an input (a QA band read as a binary mask, ...)
            # go to the log once per image and to the run's notes; the libraries' are dropped
            for w in caught:
                if issubclass(w.category, STFusionWarning):
                    log.warning("series: %s", w.message)
                    self.warned.append(str(w.message))
        except UnreadableInputError:
            # not broken, unreadable for now (permissions): going on without it recomputed
            # and replaced every output it had made, exit 0
            raise
        except Exception as exc:  # a broken file is reported and the series goes on
            text = describe_error(exc)
            img.source, img.error = None, text if acq.path in text else f"{acq.path}: {text}"
            log.warning("series: %s", img.error)
        self.images[key] = img
        return img

    def check_target_scale(self, target: Source) -> None:
        """predict's check of a coarse target's scale against the pairs' coarse images (one
        date's image stored x10000 among 0-1 ones was predicted from, exit 0): an error
        naming both files and the fix, which fails the date."""
        if self.scale_ref is None:
            return
        if self._ref_sample is None:
            self._ref_sample = self.scale_ref.sample(SAMPLE_PIXELS)
        samples = self._ref_sample, target.sample(SAMPLE_PIXELS)
        check_scales(self.scale_ref, target, "--coarse-scale", "--coarse-scale", samples)

    def _warn_fill(self, acq: Acquisition, source: Source, sample: np.ndarray) -> None:
        """predict's warning about an undeclared fill value, once per sensor and value."""
        option = "--fine-nodata" if acq.sensor == "fine" else "--coarse-nodata"
        python = f"SeriesConfig({option[2:].replace('-', '_')}={{stored}})"
        said = self._fill_said.setdefault(acq.sensor, set())
        # a conventional fill fails the image, as in predict
        warn_undeclared_fill(source, sample, fill_advice(option, python), said=said, refuse=True)

    def _source(self, acq: Acquisition) -> Source:
        if acq.sensor == "fine":
            src: Source = FileSource(acq.path, self.fine_scaling)
            if not src.grid.same_as(self.grid):
                return self._placed(acq, src)
            kind, flags = self.fine_mask
        else:
            native = FileSource(acq.path, self.coarse_scaling)
            src, ratio = align_coarse(native, self.ref, self.resampling, [])
            if ratio is not None:
                self.aligned += 1
                if self._first_ratio is None:
                    self._first_ratio = (ratio, native.label)
                check_one_ratio([self._first_ratio, (ratio, native.label)])  # fails this date
                if self.ratio is None:
                    self.ratio = ratio
            kind, flags = self.coarse_mask
        self._check_count(src)
        if acq.mask and isinstance(src, AlignedSource):
            # masked on its own grid, then aligned: FSDAF and Fit-FC still see the native
            # pixels (cloudy ones NaN), as without a mask
            masked = MaskedSource(src.native, acq.mask, kind, flags or None)
            src = type(src)(masked, src.grid, src.resampling)
        elif acq.mask:
            src = MaskedSource(src, acq.mask, kind, flags or None)
        return src

    def _placed(self, acq: Acquisition, src: Source) -> Source:
        """A fine image on another grid, placed on the output grid (:mod:`.grids`): masked
        on its own grid first, where its mask lies."""
        at = placement(src.grid, self.grid)
        if at is None:  # choose_grid refused such pairs; a file replaced during the run
            raise InputFileError(
                f"on a grid ({src.grid.describe()}) that cannot be put on the output grid "
                f"({self.grid.describe()}) without resampling; resample it onto that grid."
            )
        self._check_count(src)
        if acq.mask:
            kind, flags = self.fine_mask
            src = MaskedSource(src, acq.mask, kind, flags or None)
        return PlacedSource(src, self.grid, *at)

    def _check_count(self, src: Source) -> None:
        if src.count != self.count:
            raise InputFileError(
                f"{src.count} bands, but the fine images have {self.count}; every image needs "
                "the same bands in the same order (choose them with --fine-bands/--coarse-bands "
                "or a preset; docs/inputs.md)."
            )

    def unreadable_pairs(self) -> dict[dt.date, str]:
        """Pair dates whose fine or coarse image (or mask) could not be opened: the error."""
        self.clear_pairs()
        out = {}
        for d in sorted(set(self.fine) & set(self.coarse)):
            for acq in (self.fine[d], self.coarse[d]):
                img = self.images.get((acq.sensor, acq.date))
                if img is not None and img.error:
                    out[d] = img.error
                    break
        return out

    def clear_pairs(self) -> list[dt.date]:
        """Dates of the clear pairs: fine and coarse both at least ``min_valid`` valid (and
        not empty, also with ``min_valid`` 0: an empty pair was chosen as the nearest)."""
        if self._clear is None:
            clear = []
            for d in sorted(set(self.fine) & set(self.coarse)):
                f, c = self.open_image(self.fine[d]), self.open_image(self.coarse[d])
                if f.source is None or c.source is None:
                    continue
                assert f.valid is not None and c.valid is not None
                if min(f.valid, c.valid) >= self.min_valid and min(f.valid, c.valid) > 0:
                    clear.append(d)
            self._clear = clear
        return self._clear
