"""Putting fine and coarse images on one grid, and checking that they belong together.

The fine grid (that of the first fine image) is the output grid. A coarse image on another
grid (its native MODIS grid, another CRS or extent) is reprojected onto it window by window;
the resolution ratio (the ground ratio, :func:`stfusion.io.resolution_ratio`) is recorded, and
a ``ratio`` given by the user overrides it with a warning. FSDAF and Fit-FC take the coarse
image's native pixels from the aligned source (:mod:`stfusion.coarse`). Every problem is
reported with the files involved and what to do.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
from affine import Affine

from stfusion.errors import (
    EmptyInputError,
    GridMismatchError,
    InvalidParameterError,
    ScaleMismatchError,
    STFusionWarning,
)
from stfusion.io import (
    RESAMPLING_CHOICES,
    AlignedSource,
    ArraySource,
    FileSource,
    FineSizedSource,
    Grid,
    Scaling,
    Source,
    north_up,
    resolution_ratio,
)
from stfusion.io.dataarray import dataarray_source
from stfusion.io.sources import physical, stored_as, underlying_source

log = logging.getLogger("stfusion")

PathLike = str | os.PathLike[str]
ImageLike = Any  # a path, a Source, a numpy array or an xarray.DataArray

#: Fine and coarse images of one date whose |value| medians and 98th percentiles both differ
#: this much are almost surely on other scales (both: a median near 0, as NDVI's, alone says
#: nothing). The real pairs in ../shared/data differ at most 1.5x.
SCALE_ERROR_FACTOR = 1000.0
SCALE_WARN_PAIR = 5.0
#: Between dates (a coarse target against a pair's coarse image: snow, cloud or flood can
#: change a band 15-25x) and between sites (a training catalog): warn from 20x.
SCALE_WARN_FACTOR = 20.0
MOSTLY_EMPTY = 0.5


@dataclass
class Scene:
    """Inputs of one prediction, all readable on the fine grid."""

    grid: Grid
    pairs: list[tuple[Source, Source]]
    target: Source | None
    ratio: float | None
    band_names: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    #: Acquisition dates of the pairs and the target, when known (quality layer, bench).
    pair_dates: tuple[np.datetime64, ...] | None = None
    target_date: np.datetime64 | None = None
    #: How coarse files were scaled and resampled, so a coarse target given later is read
    #: the same way.
    coarse_scaling: Scaling | None = None
    resampling: str = "nearest"

    @property
    def count(self) -> int:
        return self.pairs[0][0].count

    def sources(self) -> list[Source]:
        out = [s for pair in self.pairs for s in pair]
        if self.target is not None:
            out.append(self.target)
        return out


def _identity_grid(shape: tuple[int, int]) -> Grid:
    return Grid(crs=None, transform=Affine.identity(), width=shape[1], height=shape[0])


def as_scaling(value: Any, name: str = "scaling") -> Scaling | None:
    """``value`` as a Scaling: a Scaling or None as it is, a plain number as
    ``Scaling(number)`` (the scale: ``fine_scaling=1e-4``)."""
    if value is None or isinstance(value, Scaling):
        return value
    if isinstance(value, Real) and not isinstance(value, bool):
        return Scaling(float(value))
    raise InvalidParameterError(
        f"{name}={value!r}: give a Scaling (Scaling(scale, offset, bands, nodata), from "
        "stfusion.io) or a number (the scale, e.g. 1e-4), or leave it out."
    )


#: A 3-D array whose last axis is this short, and both others more than BAND_LAST_FACTOR
#: times longer, looks like (y, x, band): warned about, read as (band, y, x) all the same.
BAND_LAST_MAX = 16
BAND_LAST_FACTOR = 4


def _warn_band_last(shape: tuple[int, ...], label: str) -> None:
    """An image (y, x, band) from PIL/OpenCV/skimage was read as ``shape[0]`` bands of
    ``shape[1] x shape[2]`` pixels, silently: warn (band-first hyperspectral cubes exist,
    so it is not refused)."""
    if len(shape) != 3:
        return
    y, x, last = shape
    if last <= BAND_LAST_MAX and y > BAND_LAST_FACTOR * last and x > BAND_LAST_FACTOR * last:
        warnings.warn(
            f"{label}: an array of shape {shape} is read as (band, y, x): {y} bands of "
            f"{x} x {last} pixels. If it is (y, x, band), give np.moveaxis(a, -1, 0) "
            f"({last} bands of {y} x {x} pixels).",
            STFusionWarning,
            stacklevel=5,
        )


def as_source(image: ImageLike, scaling: Scaling | float | None = None, label: str = "") -> Source:
    """Turn a path, array or DataArray into a Source (in physical units).

    Arrays and DataArrays take ``scaling`` as files do (a DataArray without it: its
    ``scale_factor``/``add_offset`` attributes, as a file's metadata; a plain number is the
    scale); a DataArray's nodata (``rio.nodata``) and a masked array's mask become NaN, as
    do infinities. A DataArray is put in ``(band, y, x)`` order by its dimension names
    (``y``/``x``, ``lat``/``lon``, ``latitude``/``longitude``), on the grid of its
    coordinates (refused when they are not evenly spaced) and CRS; the prediction keeps
    those names, coordinates and band labels. A 3-D numpy array is ``(band, y, x)``.
    """
    if isinstance(image, Source):
        return image
    scaling = as_scaling(scaling)
    if isinstance(image, str | os.PathLike):
        return FileSource(str(image), scaling or Scaling())
    if hasattr(image, "data_vars"):  # an xarray.Dataset
        raise InvalidParameterError(
            f"{label or 'an image'}: an xarray.Dataset; give one of its variables "
            f"(ds[name]: {', '.join(map(str, image.data_vars)) or 'none'}) or its variables "
            "as bands (ds.to_dataarray('band'))."
        )
    if hasattr(image, "dims") and hasattr(image, "coords"):  # xarray, with or without .rio
        return dataarray_source(image, scaling, label)
    what = label or "an image"
    try:
        if image is None:
            raise TypeError
        raw = np.ma.asarray(image)
        arr = np.ma.filled(raw.astype(np.float32), np.nan)
    except (TypeError, ValueError):  # None, text, objects: not numpy's "could not convert"
        raise InvalidParameterError(
            f"{what}: a {type(image).__name__} {shown_value(image)}; give a path, a numpy "
            "array of numbers (band, y, x), an xarray.DataArray or a Source."
        ) from None
    _warn_band_last(raw.shape, label or "<array>")
    scale, offset = stored_as(scaling)
    return ArraySource(
        physical(arr, scaling),
        _identity_grid(arr.shape[-2:]),
        (),
        label or "<array>",
        scale=scale,
        offset=offset,
    )


#: A coarse image covering less of the fine scene than this is warned about.
PARTLY_COVERED = 0.98
#: Below this ground ratio a coarse image on its own grid has fine-sized pixels: resampled.
FINE_SIZED = 1.5


def align_coarse(
    coarse: Source, fine: Source, resampling: str, notes: list[str], mask: bool = False
) -> tuple[Source, float | None]:
    """Put ``coarse`` on ``fine``'s grid; return it and the resolution ratio if known.
    ``mask``: it is a mask (:func:`stfusion.qa.open_mask`), which the messages say."""
    fg, cg = fine.grid, coarse.grid
    if not fg.georeferenced or not cg.georeferenced:
        if cg.shape == fg.shape:
            if not isinstance(coarse, FileSource) and not isinstance(fine, FileSource):
                return coarse, None  # plain arrays: nothing to warn about
            notes.append(f"{coarse.label}: not georeferenced (or {fine.label} is not)")
            return coarse, None
        raise GridMismatchError(
            f"{coarse.label} ({cg.height} x {cg.width}) and {fine.label} ({fg.height} x "
            f"{fg.width}): different shapes and at least one has no CRS, so they cannot be "
            "aligned. Georeference both files, or resample the "
            f"{'mask' if mask else 'coarse image'} onto the {'image' if mask else 'fine'} grid."
        )
    if cg.same_as(fg):
        return coarse, None
    from rasterio.warp import transform_bounds

    cb = transform_bounds(cg.crs, fg.crs, *cg.bounds) if cg.crs != fg.crs else cg.bounds
    fb = fg.bounds
    overlap_x = min(cb[2], fb[2]) - max(cb[0], fb[0])
    overlap_y = min(cb[3], fb[3]) - max(cb[1], fb[1])
    if overlap_x <= 0 or overlap_y <= 0:
        what, other = ("mask", "image") if mask else ("coarse", "fine")
        raise GridMismatchError(
            f"{coarse.label} and {fine.label} do not overlap ({what} bounds "
            f"{tuple(round(v) for v in cb)} vs {other} {tuple(round(v) for v in fb)} in "
            f"{fg.crs}). Check that they show the same area.{_crs_hint(coarse, fine)}"
        )
    covered = overlap_x * overlap_y / ((fb[2] - fb[0]) * (fb[3] - fb[1]))
    if covered < PARTLY_COVERED:
        warnings.warn(
            f"the mask {coarse.label} covers only about {covered:.0%} of {fine.label}: every "
            "pixel outside it counts as invalid. Give a mask that covers the image."
            if mask
            else f"{coarse.label} covers only about {covered:.0%} of the fine image "
            f"{fine.label}: outside it there is no coarse change, and methods differ in what "
            "they do there (STARFM leaves most of it empty, FSDAF and Fit-FC extrapolate). "
            "Give coarse images that cover the fine scene, or crop the fine images to them.",
            STFusionWarning,
            stacklevel=3,
        )
    ratio = resolution_ratio(cg, fg)
    head = (
        f"aligned {coarse.label} ({cg.describe()}) onto the fine grid ({fg.describe()}) with "
        f"{resampling} resampling; ground ratio {ratio:.3f}"
    )
    if 0.9 <= ratio < FINE_SIZED:
        # a coarse image already resampled to fine-sized pixels, on a grid shifted from the
        # fine one: its 30 m "pixels" are not MODIS's, so no native-pixel unmixing with them
        msg = (
            f"{head}: its pixels are about the fine pixels' size, so it was already resampled "
            "and is used like a coarse image on the fine grid (the methods that need the "
            "resolution ratio take ratio=R)"
        )
        log.info(msg)
        notes.append(msg)
        return FineSizedSource(north_up(coarse), fg, resampling), None
    msg = f"{head} (FSDAF and Fit-FC use its native pixels)"
    log.info(msg)
    notes.append(msg)
    # native pixels in north-up order whichever way the file stores its rows
    return AlignedSource(north_up(coarse), fg, resampling), ratio


def warn_band_order(ref: Source, others: Sequence[Source], fix: str | None = None) -> None:
    """Warn when an image names the same bands as ``ref`` in another order: bands are fused
    (or scored) by position, so blue would be fused with red. ``fix``: what to do (default:
    the band options of ``predict``)."""
    own = [n.lower() for n in ref.band_names]
    if len(set(own)) != len(own) or any(re.fullmatch(r"(band)?_?\d*", n) for n in own):
        return  # generic or repeated names say nothing about the order
    for img in others:
        names = [n.lower() for n in img.band_names]
        if names != own and sorted(names) == sorted(own):
            advice = fix or (
                f"Bands are fused by position: give the order, e.g. --coarse-bands "
                f"{','.join(ref.band_names)} (--fine-bands for a fine image, or FILE:BANDS)."
            )
            warnings.warn(
                f"{img.label} names its bands {', '.join(img.band_names)}; {ref.label} "
                f"{', '.join(ref.band_names)}. {advice}",
                STFusionWarning,
                stacklevel=3,
            )
            return


def _scale_in_effect(src: Source) -> float:
    """The scale that made ``src``'s values physical (its file's or array's, under any
    wrappers: an aligned coarse image, a mask); 1 when none is known."""
    scale = float(getattr(underlying_source(src), "scale", 1.0) or 1.0)
    return abs(scale) if math.isfinite(scale) else 1.0


def _crs_hint(coarse: Source, fine: Source) -> str:
    """For images in two CRSs that do not overlap: which CRS each declares, and whether the
    coarse image's own coordinates would overlap in the fine one's (a wrong CRS tag)."""
    cg, fg = coarse.grid, fine.grid
    if cg.crs == fg.crs:
        return ""
    cb, fb = cg.bounds, fg.bounds
    same_numbers = min(cb[2], fb[2]) > max(cb[0], fb[0]) and min(cb[3], fb[3]) > max(cb[1], fb[1])
    hint = (
        f" Its coordinates would overlap if they were in {fg.crs}: its CRS tag is likely "
        f"wrong; set the right one on a copy (gdal_edit.py -a_srs {fg.crs} COPY.tif)."
        if same_numbers
        else " Check that each file declares the right CRS."
    )
    return f" {coarse.label} declares {cg.crs}, {fine.label} {fg.crs}.{hint}"


def _small_side_advice(small: Source, option: str, factor: float) -> str:
    """What to give when ``small``'s values are too small to be reflectance: its scale in
    effect times ``factor`` (a power of ten), 1 meaning "leave the option out"."""
    given = _scale_in_effect(small)
    scale = 10.0 ** round(np.log10(given * factor))
    python = option.lstrip("-").replace("-scale", "_scaling")
    fix = (
        f"leave {option} out (its {given:g} makes them so)"
        if scale == 1 and given != 1
        else f"give {option} {scale:g} (Python: {python}={scale:g})"
    )
    return f"{small.label} holds values too small for reflectance: {fix}."


def check_scales(
    fine: Source,
    coarse: Source,
    fine_option: str = "--fine-scale",
    coarse_option: str = "--coarse-scale",
) -> None:
    """Catch reflectance x10000 against 0-1 (the commonest silent error in STF).

    ``fine_option``/``coarse_option``: the options that scale each image, named in the
    advice (the larger-valued side's); the same option for both (the coarse target against
    a pair's coarse image) means the files themselves must agree.
    """
    f = fine.sample(1 << 16)
    c = coarse.sample(1 << 16)
    for b in range(min(f.shape[0], c.shape[0])):
        fv = f[b][np.isfinite(f[b])]
        cv = c[b][np.isfinite(c[b])]
        if fv.size == 0 or cv.size == 0:
            continue
        fm, cm = float(np.median(np.abs(fv))), float(np.median(np.abs(cv)))
        fp, cp = float(np.percentile(np.abs(fv), 98)), float(np.percentile(np.abs(cv), 98))
        if min(fm, cm, fp, cp) <= 0:
            continue
        factor = min(max(fm, cm) / min(fm, cm), max(fp, cp) / min(fp, cp))
        if factor >= SCALE_ERROR_FACTOR:
            big, option = (fine, fine_option) if fm > cm else (coarse, coarse_option)
            # the power of ten nearest the scale in effect over the factor: with --fine-scale
            # 10 given for x10000 values, 1e-4 (not 1e-5, the factor's own correction)
            given = _scale_in_effect(big)
            scale = 10.0 ** round(np.log10(given / factor))
            small, small_option = (coarse, coarse_option) if fm > cm else (fine, fine_option)
            if min(fm, cm) < 1e-3 <= max(fm, cm) <= 2 and fine_option != coarse_option:
                # the larger side looks like reflectance, the smaller like none (0-1 values
                # scaled by 0.0001 again): fix the smaller side, not scale the other down
                advice = _small_side_advice(small, small_option, factor)
            elif fine_option == coarse_option:
                advice = (
                    f"{option} applies to both, so the files must be in the same units: "
                    f"rescale {big.label}, or record its scale in it (gdal_edit.py -scale "
                    f"{scale:g} FILE, on a copy)."
                )
            else:
                python = option.lstrip("-").replace("-scale", "_scaling")
                advice = (
                    f"{big.label} holds the larger values: give {option} {scale:g} "
                    f"(Python: {python}={scale:g}), or set both scales, so both are in the "
                    "same units."
                )
            raise ScaleMismatchError(
                f"{fine.label} (median {fm:.4g}) and {coarse.label} (median {cm:.4g}) differ "
                f"{factor:.0f}x in band {b + 1}: their scales do not match. {advice}"
            )
        if factor >= (SCALE_WARN_FACTOR if fine_option == coarse_option else SCALE_WARN_PAIR):
            options = (
                fine_option if fine_option == coarse_option else f"{fine_option}/{coarse_option}"
            )
            warnings.warn(
                f"{fine.label} and {coarse.label}: band {b + 1} medians differ "
                f"{max(fm, cm) / min(fm, cm):.0f}x ({fm:.4g} vs {cm:.4g}; 98th percentiles of "
                f"|value| {fp:.4g} vs {cp:.4g}); check {options}.",
                STFusionWarning,
                stacklevel=3,
            )
            return


def undeclared_fill(
    sample: np.ndarray, reflectance: bool = True
) -> tuple[int, float, float, float, float] | None:
    """A value many pixels hold far outside the others (an undeclared fill such as -28672 or
    -9999 read as data: "reflectance" -2.87 or -0.9999): (band, value, share, p1, p99 of the
    other values), or None. ``sample``: ``(band, n)`` values. ``reflectance=False`` (an index
    or a temperature, as its band names or tags say): no rule for values just below 0, where
    an NDVI lake may hold one exact value."""
    for b in range(sample.shape[0]):
        v = sample[b][np.isfinite(sample[b])]
        for fill in (v.min(), v.max()) if v.size >= 100 else ():
            is_fill = v == fill
            share = float(is_fill.mean())
            rest = v[~is_fill]
            if share < 1e-3 or rest.size < 100:
                continue
            p1, p99 = np.percentile(rest, [1, 99])  # the other values' range
            spread = max(float(p99 - p1), 1e-12)
            # reflectance (the others within -0.1..1.5) holding one value below -0.1: a fill
            # read through an offset (Landsat C2's stored 0 is -0.2), however close
            below_reflectance = reflectance and p1 >= -0.1 and p99 <= 1.5 and fill < -0.1
            if p1 - 5 * spread <= fill <= p99 + 5 * spread and not below_reflectance:
                continue
            return b, float(fill), share, float(p1), float(p99)
    return None


def stored_value(source: Source, physical: float) -> float:
    """The value as the file stores it (before scaling) of a physical value read from
    ``source``; rounded to an integer when within float32 rounding of one."""
    scale, offset = getattr(source, "scale", 1.0), getattr(source, "offset", 0.0)
    stored = (physical - offset) / scale if scale else physical
    whole = round(stored)
    return float(whole) if abs(stored - whole) <= max(1e-2, 1e-6 * abs(whole)) else stored


def warn_undeclared_fill(
    source: Source, sample: np.ndarray, advice: str, reflectance: bool = True
) -> None:
    """Warn when ``sample`` (read from ``source``) holds an undeclared fill value
    (:func:`undeclared_fill`); ``advice`` says what to do, with ``{stored}`` for the value
    as the file stores it (before scaling)."""
    found = undeclared_fill(sample, reflectance)
    if found is None:
        return
    b, fill, share, p1, p99 = found
    stored = f"{stored_value(source, fill):.6g}"
    warnings.warn(
        f"{source.label}: {share:.1%} of band {b + 1} holds {fill:.6g}, far from the other "
        f"values ({p1:.4g} .. {p99:.4g}): {advice.format(stored=stored)}",
        STFusionWarning,
        stacklevel=4,
    )


def check_valid(source: Source, role: str) -> float:
    """Valid fraction of ``source``; an error if empty, a warning if mostly empty."""
    s = source.sample(1 << 18)
    frac = float(np.isfinite(s).mean()) if s.size else 0.0
    if frac == 0.0:
        raise EmptyInputError(
            f"{source.label}: the {role} has no valid pixels (all nodata/NaN). Check its nodata "
            "value and that it covers the fine image's area."
        )
    option = "--fine-nodata" if role.startswith("fine") else "--coarse-nodata"
    warn_undeclared_fill(
        source,
        s,
        f"an undeclared nodata (fill) value? Declare it with {option} {{stored}} (Python: "
        "Scaling(nodata={stored})), or in the file (gdal_edit.py -a_nodata VALUE FILE, on a "
        "copy), so it is not fused as data.",
    )
    if frac < MOSTLY_EMPTY:
        warnings.warn(
            f"{source.label}: the {role} has valid values over only {frac:.1%} of the fine "
            "scene (nodata, clouds masked, or it covers part of the scene); predictions there "
            "fall back as documented.",
            STFusionWarning,
            stacklevel=3,
        )
    return frac


def pair_list(pairs: Any) -> list[Any] | tuple[Any, ...]:
    """``pairs`` as a list when it is an iterator, a generator or another iterable (``zip(
    fines, coarses)`` gave "object of type 'zip' has no len()"); a list or tuple as it is."""
    if isinstance(pairs, list | tuple):
        return pairs
    if not isinstance(pairs, str | bytes | os.PathLike):
        try:
            return list(pairs)
        except TypeError:  # not iterable: said below
            pass
    raise InvalidParameterError(
        f"pairs must be a list (or another iterable) of (fine, coarse) pairs, e.g. "
        f"[(F1, C1), (F2, C2)]; got {type(pairs).__name__} {shown_value(pairs)}."
    )


def shown_value(value: Any) -> str:
    """``repr(value)`` on one line, cut to 60 characters (an array's runs for pages); an
    array's dtype and shape."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"of dtype {value.dtype} and shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def check_keywords(given: dict[str, Any], caller: str, params: Sequence[str] = ()) -> None:
    """Refuse keywords ``open_scene`` does not take (``fit(pairs, ration=10)``), naming the
    accepted ones and the closest; ``params``: the method's parameters, which belong to its
    constructor."""
    import difflib
    import inspect

    accepted = [k for k in inspect.signature(open_scene).parameters if k != "pairs"]
    for key in given:
        if key in accepted:
            continue
        if key in params:
            raise InvalidParameterError(
                f"{caller}: {key} is a parameter of the method, not of fit: give it when "
                f"creating the method ({key}=...), or with set_params({key}=...)."
            )
        close = difflib.get_close_matches(key, [*accepted, *params], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidParameterError(
            f"{caller} got an unknown keyword {key!r}.{hint} It accepts: {', '.join(accepted)}."
        )


def _check_call(pairs: Any, ratio: Any) -> None:
    """The mistakes of a Python call to fit, said plainly (not "too many values to unpack")."""
    if not pairs:
        raise InvalidParameterError("no pairs given: at least one fine + coarse pair is needed.")
    if isinstance(pairs, tuple) and len(pairs) == 2 and not isinstance(pairs[0], tuple | list):
        raise InvalidParameterError(
            "pairs must be a list of (fine, coarse) pairs: give [(fine, coarse)] for one pair, "
            "not (fine, coarse)."
        )
    if not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
        raise InvalidParameterError(
            "pairs must be a list of (fine, coarse) pairs, e.g. [(F1, C1), (F2, C2)]."
        )
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, Real)):
        raise InvalidParameterError(
            f"ratio={ratio!r}: give a number (coarse / fine pixel size, e.g. 16)."
        )


def as_date(value: Any, name: str) -> np.datetime64:
    """``value`` as a day: 'YYYY-MM-DD', a datetime.date or datetime, numpy.datetime64 or a
    pandas Timestamp; anything else (numbers, 'yesterday') is refused by name."""
    accepted = (
        "give 'YYYY-MM-DD' (e.g. '2001-10-17'), a datetime.date, a datetime or a numpy.datetime64"
    )
    if isinstance(value, bool | Real):  # np.datetime64(5, "D") is 1970-01-06
        raise InvalidParameterError(f"{name}={value!r}: not a date; {accepted}.")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.date()  # the local day (numpy would convert to UTC, warning)
    try:
        day = np.datetime64(value, "D")
    except (ValueError, TypeError, OverflowError):
        raise InvalidParameterError(f"{name}={value!r}: not a date; {accepted}.") from None
    if np.isnat(day):
        raise InvalidParameterError(f"{name}={value!r}: not a date; {accepted}.")
    return day


def _check_resampling(resampling: Any) -> None:
    # checked here: inputs on one grid never reach AlignedSource, which checked it alone
    if not isinstance(resampling, str) or resampling not in RESAMPLING_CHOICES:
        raise InvalidParameterError(
            f"resampling={resampling!r}: unknown; choose from {', '.join(RESAMPLING_CHOICES)} "
            "(how a coarse image on its own grid is put on the fine grid)."
        )


def _pair_dates(dates: Any) -> tuple[np.datetime64, ...] | None:
    if dates is None:
        return None
    if isinstance(dates, str) or not hasattr(dates, "__iter__"):
        raise InvalidParameterError(
            f"pair_dates={dates!r}: give a list of dates, one per pair, e.g. ['2001-10-17']."
        )
    return tuple(as_date(d, f"pair_dates[{i}]") for i, d in enumerate(dates))


def open_scene(
    pairs: Iterable[tuple[ImageLike, ImageLike]],
    target: ImageLike | None = None,
    *,
    fine_scaling: Scaling | float | None = None,
    coarse_scaling: Scaling | float | None = None,
    resampling: str = "nearest",
    ratio: float | None = None,
    check: bool = True,
    pair_dates: Sequence[Any] | None = None,
    target_date: Any = None,
) -> Scene:
    """Open and validate the inputs of a prediction.

    ``pairs``: any iterable of ``(fine, coarse)`` pairs; ``fine_scaling``/``coarse_scaling``:
    a :class:`Scaling` or a number (the scale). ``pair_dates`` / ``target_date`` (dates:
    'YYYY-MM-DD', ``datetime.date``, ``numpy.datetime64``) are optional; they feed the
    quality layer's "days to the nearest pair".
    """
    pairs = pair_list(pairs)
    _check_call(pairs, ratio)
    fine_scaling = as_scaling(fine_scaling, "fine_scaling")
    coarse_scaling = as_scaling(coarse_scaling, "coarse_scaling")
    _check_resampling(resampling)
    dates = _pair_dates(pair_dates)
    day = None if target_date is None else as_date(target_date, "target_date")
    notes: list[str] = []
    fines = [as_source(f, fine_scaling, "fine") for f, _ in pairs]
    coarses = [as_source(c, coarse_scaling, "coarse") for _, c in pairs]
    ref = fines[0]
    for f in fines[1:]:
        if not f.grid.same_as(ref.grid):
            raise GridMismatchError(
                f"{f.label} ({f.grid.describe()}) and {ref.label} ({ref.grid.describe()}): fine "
                "images must share one grid. Resample them onto a common grid first."
            )
    all_coarse = (
        [*coarses, as_source(target, coarse_scaling, "coarse target")]
        if (target is not None)
        else coarses
    )
    for img in [*fines, *all_coarse]:
        if img.count != ref.count:
            raise GridMismatchError(
                f"{img.label} has {img.count} bands but {ref.label} has {ref.count}: every "
                "image needs the same bands in the same order. Choose them with --fine-bands / "
                "--coarse-bands (names or 1-based numbers, e.g. --coarse-bands 3,4,1,2,6,7 for "
                "MODIS against Landsat blue..SWIR2), FILE:BANDS, or a preset (--fine-preset, "
                "--coarse-preset; docs/inputs.md)."
            )
    warn_band_order(ref, [*fines[1:], *all_coarse])
    aligned: list[Source] = []
    ratios: list[float] = []
    for c in all_coarse:
        a, r = align_coarse(c, ref, resampling, notes)
        aligned.append(a)
        if r is not None:
            ratios.append(r)
    unreferenced = [n for n in notes if "not georeferenced" in n]
    if unreferenced:
        # the inputs of those notes that lack a CRS (the fine image too, when it has none)
        bare = list(
            dict.fromkeys(x.label for x in [*fines, *all_coarse] if not x.grid.georeferenced)
        )
        warnings.warn(
            f"{len(bare)} input(s) without georeferencing (e.g. {bare[0]}); "
            f"all are {ref.grid.height} x {ref.grid.width} px, so their pixels are assumed to "
            "line up.",
            STFusionWarning,
            stacklevel=2,
        )
    if ratios:
        measured = float(np.mean(ratios))
        if measured < 0.9:
            raise GridMismatchError(
                f"the coarse images have smaller pixels than the fine image {ref.label} "
                f"(ground ratio {measured:.3g}): are FINE and COARSE swapped? --pair takes the "
                "fine (high-resolution) image first, then the coarse one."
            )
        if ratio is not None and abs(ratio - measured) > 0.05 * measured:
            warnings.warn(
                f"ratio={ratio:g} was given; the coarse grid's ground ratio (sqrt of coarse / "
                f"fine pixel area at the scene centre) is {measured:.4g}. Using {ratio:g} as "
                "given (recorded in STFUSION_RATIO and used for ERGAS); leave the ratio out to "
                "use the measured one.",
                STFusionWarning,
                stacklevel=2,
            )
        ratio = measured if ratio is None else ratio
    if ratio is not None and not (ratio > 0 and np.isfinite(ratio)):
        raise InvalidParameterError(f"ratio must be positive, got {ratio}.")
    tgt = aligned[len(coarses)] if target is not None else None
    scene = Scene(
        grid=ref.grid,
        pairs=list(zip(fines, aligned[: len(coarses)])),
        target=tgt,
        ratio=ratio,
        band_names=ref.band_names,
        notes=notes,
        pair_dates=dates,
        target_date=day,
        coarse_scaling=coarse_scaling,
        resampling=resampling,
    )
    if scene.pair_dates is not None and len(scene.pair_dates) != len(scene.pairs):
        raise InvalidParameterError(
            f"{len(scene.pair_dates)} pair dates for {len(scene.pairs)} pairs."
        )
    if check:
        for f, c in scene.pairs:
            check_valid(f, "fine image")
            check_valid(c, "coarse image")
            check_scales(f, c)
        if tgt is not None:
            check_valid(tgt, "coarse target image")
            # the target against a pair's coarse image (the same sensor): a target x10000
            # among 0-1 pairs would otherwise give "reflectance" in the thousands, silently
            check_scales(scene.pairs[0][1], tgt, "--coarse-scale", "--coarse-scale")
    return scene
