"""Everything one ``stfusion series`` run needs, in one frozen :class:`SeriesConfig`.

The CLI builds it from its options; from Python, ``run_series(SeriesConfig(...))`` or, the
short form, ``run_series(out_dir, fine=[...], coarse=[...], ...)`` with the same field names.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from stfusion.dates import parse_date_range
from stfusion.errors import InvalidParameterError
from stfusion.io.writing import PARTIAL_EXTRA
from stfusion.tiling import MAX_MEM_LIMIT_MB, MIN_MEM_LIMIT_MB

#: Output data types (``SeriesConfig.dtype``).
DTYPES = ("float32", "int16")
#: Cube formats (``SeriesConfig.cube``).
CUBE_FORMATS = ("zarr", "netcdf")
#: Field names that used to be ``run_series`` parameters of another name.
ALIASES = {"dates": "date_range"}

DateRange = tuple[dt.date | None, dt.date | None]


def _params(value: Sequence[str] | Mapping[str, Any] | str | None) -> tuple[str, ...]:
    """``NAME=VALUE`` strings, from such strings or a mapping (as ``run_prediction`` takes)."""
    if isinstance(value, Mapping):
        return tuple(f"{k}={v}" for k, v in value.items())
    return _strings(value)


def _strings(value: str | os.PathLike[str] | Sequence[Any] | None) -> tuple[str, ...]:
    """A tuple of strings; one string (or path) alone is one item, not its characters."""
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    items = list(value)
    for v in items:
        if not isinstance(v, (str, os.PathLike)):
            raise InvalidParameterError(
                f"a series reads its images from files: give paths, folders or globs, not "
                f"{type(v).__name__} objects (write arrays to GeoTIFFs first, e.g. "
                "da.rio.to_raster(path), with the date in the file name)."
            )
    return tuple(os.fspath(v) for v in items)


@dataclass(frozen=True)
class SeriesConfig:
    """The options of one series run (docs/commands/series.md has each option's story).

    Sequences may be given as lists or single strings; they are stored as tuples. Values are
    checked when the config is made (``InvalidParameterError``); the inputs, the method and
    its parameters when the run starts, before any work.
    """

    #: Output folder (created if missing): ``PREFIX_YYYY-MM-DD.tif``, ``summary.csv``, the cube.
    out_dir: str | os.PathLike[str]
    #: Fine images (e.g. Landsat): folders or glob patterns, dated by their file names.
    fine: Sequence[str] = ()
    #: Coarse images (e.g. MODIS), as ``fine``; every coarse date in ``date_range`` is a target
    #: (and a fine date without one between the first and the last, written as observed).
    coarse: Sequence[str] = ()
    #: CSV ``path,date,sensor[,mask]`` read in addition to ``fine``/``coarse``; None: none.
    catalog: str | os.PathLike[str] | None = None
    #: Fusion method name (``stfusion methods``).
    method: str = "starfm"
    #: Method parameters: ``NAME=VALUE`` strings or a mapping (``{"ratio": 16}``); ``ratio=R``
    #: gives the resolution ratio. Stored as ``NAME=VALUE`` strings.
    params: Sequence[str] | Mapping[str, Any] = ()
    #: Targets: only coarse dates in this inclusive range, ``"START:END"`` (either end may be
    #: empty; one date alone is one day) or ``(start, end)`` dates (None: open). None: all.
    #: Pairs outside the range are still used. (Not a list of pair dates: that is ``train``'s
    #: ``--dates``.)
    date_range: str | DateRange | None = None
    #: Targets: only every ``every``-th day from the start of ``date_range`` (or the first
    #: coarse date), e.g. 7 for a weekly series from daily coarse images; 1: every coarse date.
    every: int = 1
    #: Fine values become ``value * fine_scale + fine_offset`` (unitless multipliers; reflectance
    #: x10000: 1e-4). None: the file's scale/offset metadata, else the preset's, else 1 and 0.
    fine_scale: float | None = None
    fine_offset: float | None = None
    #: As ``fine_scale``/``fine_offset``, for the coarse images.
    coarse_scale: float | None = None
    coarse_offset: float | None = None
    #: How coarse images on their own grid are reprojected onto the fine grid.
    resampling: str = "nearest"
    #: Masks of the fine images (folders or globs), matched by date; kind ``binary`` (nonzero =
    #: invalid) or a QA kind of :data:`stfusion.qa.MASK_KINDS`; flags that make a pixel
    #: invalid (None: the kind's defaults).
    fine_mask: Sequence[str] = ()
    fine_mask_kind: str = "binary"
    fine_mask_flags: str | Sequence[str] | None = None
    #: As the fine masks, for the coarse images (any grid).
    coarse_mask: Sequence[str] = ()
    coarse_mask_kind: str = "binary"
    coarse_mask_flags: str | Sequence[str] | None = None
    #: Valid fraction (0..1, after masking) a pair needs to be used and a target to be predicted.
    min_valid: float = 0.5
    #: Clear pairs taken before and after each target (>= 1).
    pairs_per_side: int = 1
    #: How a one-pair method (Fit-FC, FSDAF, ...) uses the several pairs chosen for a target:
    #: ``vip`` one VIPSTF prediction over all of them, ``none`` one prediction per pair,
    #: blended with temporal weights. Other methods combine pairs their own way.
    multi_pair: str = "none"
    #: Output data type: ``float32`` (NaN nodata) or ``int16`` (scaled, nodata -32768).
    dtype: str = "float32"
    #: Scale of int16 outputs: value = stored x ``int16_scale`` (> 0).
    int16_scale: float = 1e-4
    #: Also write all dates as one cube: ``zarr`` or ``netcdf``; None: no cube.
    cube: str | None = None
    #: Output names ``PREFIX_YYYY-MM-DD.tif`` (a plain file-name prefix).
    prefix: str = "fused"
    #: Method (default parameters) filling pixels the main one leaves empty; None/"none": none.
    fallback: str | None = "starfm"
    #: Windows of one date processed at the same time (threads).
    workers: int = 1
    #: Memory for the working windows of each prediction, in MB; None: 1024 MB.
    mem_limit_mb: float | None = None
    #: Replace outputs made with other settings (verified outputs of these settings are kept).
    overwrite: bool = False
    #: Also write ``PREFIX_YYYY-MM-DD_quality.tif`` beside each output: per pixel, whether the
    #: value is observed, days to the nearest pair, pairs used, fallback flags and the tier
    #: (docs/commands/series.md, "The quality layer"). Not part of the settings key.
    quality: bool = False
    #: Bands to use (names or 1-based numbers, in the fine images' order); None: all, or the
    #: preset's. Band files of one date are then stacked (docs/inputs.md).
    fine_bands: str | Sequence[str] | None = None
    coarse_bands: str | Sequence[str] | None = None
    #: Input presets (bands, scaling, QA masks), e.g. ``landsat89-c2l2``; None: none.
    fine_preset: str | None = None
    coarse_preset: str | None = None
    #: A fill value the fine (coarse) files hold but do not declare, as stored: nodata.
    fine_nodata: float | None = None
    coarse_nodata: float | None = None

    def __post_init__(self) -> None:
        from stfusion.inputs import parse_bands
        from stfusion.qa import parse_flags

        norm: dict[str, Any] = {
            "out_dir": Path(self.out_dir),
            "fine": _strings(self.fine),
            "coarse": _strings(self.coarse),
            "params": _params(self.params),
            "fine_mask": _strings(self.fine_mask),
            "coarse_mask": _strings(self.coarse_mask),
            "fine_bands": parse_bands(self.fine_bands),
            "coarse_bands": parse_bands(self.coarse_bands),
        }
        for name in ("fine_mask_flags", "coarse_mask_flags"):
            flags = getattr(self, name)
            norm[name] = parse_flags(flags) if isinstance(flags, str) else flags
            if norm[name] is not None:
                norm[name] = tuple(norm[name])
        if isinstance(self.fallback, str) and self.fallback.lower() == "none":
            norm["fallback"] = None
        for name, value in norm.items():
            object.__setattr__(self, name, value)
        self._check()

    def _check(self) -> None:
        """The checks that need no input file, so a bad value fails before any work."""
        if self.dtype not in DTYPES:
            raise InvalidParameterError(f"--dtype {self.dtype}: choose float32 or int16.")
        if not self.int16_scale > 0:
            raise InvalidParameterError(f"--int16-scale must be > 0, got {self.int16_scale}.")
        if not 0.0 <= self.min_valid <= 1.0:
            raise InvalidParameterError(f"--min-valid must be within 0..1, got {self.min_valid}.")
        if self.pairs_per_side < 1:
            raise InvalidParameterError(
                f"--pairs-per-side must be >= 1, got {self.pairs_per_side}."
            )
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise InvalidParameterError(
                f"--every must be a whole number of days >= 1, got {self.every!r}."
            )
        self._check_numbers()
        self.targets_range()  # a bad date fails now, not after the inputs are read
        if self.multi_pair not in ("none", "vip"):
            raise InvalidParameterError(f"--multi-pair {self.multi_pair}: choose none or vip.")
        if not self.prefix or os.sep in self.prefix:
            raise InvalidParameterError(f"--prefix {self.prefix!r}: give a plain file-name prefix.")
        name = f"{self.prefix}_2000-01-01{'_quality' if self.quality else ''}.tif"
        self.check_outputs_are_not_inputs([f"{self.prefix}_2000-01-01.tif", name])
        if len(os.fsencode(name)) + PARTIAL_EXTRA > 255:
            raise InvalidParameterError(
                f"--prefix {self.prefix[:20]}...: the outputs' names ({len(os.fsencode(name))} "
                f"bytes, and {PARTIAL_EXTRA} more while written) would be too long for file "
                "systems (255 bytes); give a shorter prefix."
            )

    def _check_numbers(self) -> None:
        """Workers, the memory budget and the scales: each failed every date, or later."""
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InvalidParameterError(
                f"--workers must be a whole number >= 1, got {self.workers!r}."
            )
        limit = self.mem_limit_mb
        if limit is not None and not (
            isinstance(limit, int | float) and MIN_MEM_LIMIT_MB <= limit <= MAX_MEM_LIMIT_MB
        ):
            raise InvalidParameterError(
                f"--mem-limit must be a number of MB from {MIN_MEM_LIMIT_MB:g} to "
                f"{MAX_MEM_LIMIT_MB:g}, got {limit!r}."
            )
        for name in ("fine_scale", "coarse_scale", "fine_offset", "coarse_offset"):
            value, scale = getattr(self, name), name.endswith("scale")
            if value is None:
                continue
            finite = isinstance(value, int | float) and math.isfinite(value)
            if not finite or (scale and value <= 0):
                raise InvalidParameterError(
                    f"--{name.replace('_', '-')} must be a finite number"
                    f"{' above 0' if scale else ''}, got {value!r}."
                )

    def check_outputs_are_not_inputs(self, names: Sequence[str]) -> None:
        """An --out-dir that is an input folder (or under an input glob that matches an
        output's name: ``names``) makes the next run read its own outputs as images."""
        out = Path(self.out_dir).resolve()
        for option, specs in (("--fine", self.fine), ("--coarse", self.coarse)):
            for spec in specs:
                path = Path(str(spec))
                if path.is_dir():
                    clash = path.resolve() == out
                else:  # a glob (or one file): its folder, and whether it matches an output
                    clash = path.parent.resolve() == out and any(
                        fnmatch.fnmatch(n, path.name) for n in names
                    )
                if clash:
                    raise InvalidParameterError(
                        f"--out-dir {self.out_dir} is where {option} {spec} finds its images: "
                        f"the outputs ({self.prefix}_YYYY-MM-DD.tif) would be read as "
                        "images of the next run. Choose another --out-dir."
                    )

    def targets_range(self) -> DateRange:
        """``date_range`` as ``(start, end)`` (None: open at that end)."""
        if isinstance(self.date_range, tuple):
            return self.date_range
        return parse_date_range(self.date_range, option="--date-range")

    @classmethod
    def from_kwargs(cls, out_dir: str | os.PathLike[str], **kwargs: Any) -> SeriesConfig:
        """``SeriesConfig(out_dir, **kwargs)``, also taking the old ``run_series`` names
        (``dates`` for ``date_range``)."""
        return cls(out_dir, **_renamed(kwargs))


def _renamed(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    for old, new in ALIASES.items():
        if old in out:
            if new in out:
                raise InvalidParameterError(f"give {new}= or its old name {old}=, not both.")
            out[new] = out.pop(old)
    known = {f.name for f in fields(SeriesConfig)}
    unknown = sorted(set(out) - known)
    if unknown:
        raise TypeError(f"unknown series option(s): {', '.join(unknown)}")
    return out


def replace_config(config: SeriesConfig, **kwargs: Any) -> SeriesConfig:
    """A copy of ``config`` with some fields changed (old names accepted as in from_kwargs)."""
    values = {f.name: getattr(config, f.name) for f in fields(SeriesConfig)}
    values.update(_renamed(kwargs))
    return SeriesConfig(**values)
