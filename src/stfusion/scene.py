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
import os
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
from affine import Affine

from stfusion.errors import (
    GridMismatchError,
    InvalidParameterError,
    warn,
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
from stfusion.io.dataarray import Layout, dataarray_source
from stfusion.io.grid import short_crs
from stfusion.io.sources import numeric_values, physical, stored_as, underlying_source
from stfusion.scene_checks import (
    check_one_ratio,
    check_pair,
    check_target_scale,
    check_valid,
    warn_band_order,
    warn_fine_looking_coarse,
)

log = logging.getLogger("stfusion")

PathLike = str | os.PathLike[str]
ImageLike = Any  # a path, a Source, a numpy array or an xarray.DataArray


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
    #: The ground ratio of each coarse image reprojected from its own grid, with its name
    #: (a target given later must match them: ``check_one_ratio``).
    measured_ratios: list[tuple[float, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.pairs[0][0].count

    @property
    def target_outside_pairs(self) -> bool:
        """Whether the dates are known and the target is not strictly between the earliest
        and the latest pair: a method that weights one pair before and one after then
        extrapolates (ESTARFM, STFDCNN warn)."""
        dates, day = self.pair_dates, self.target_date
        return dates is not None and day is not None and not min(dates) < day < max(dates)

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
        warn(
            f"{label}: an array of shape {shape} is read as (band, y, x): {y} bands of "
            f"{x} x {last} pixels. If it is (y, x, band), give np.moveaxis(a, -1, 0) "
            f"({last} bands of {y} x {x} pixels)."
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
        arr = numeric_values(raw, what)
    except InvalidParameterError:
        raise
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
        layout=Layout(two_d=True) if arr.ndim == 2 else None,
    )


#: A coarse image covering less of the fine scene than this is warned about.
PARTLY_COVERED = 0.98
#: Below this ground ratio a coarse image on its own grid has fine-sized pixels: resampled.
FINE_SIZED = 1.5


def _block_factor(coarse: tuple[int, int], fine: tuple[int, int]) -> int | None:
    """R when ``fine`` is ``coarse`` times an integer R >= 2 on both axes, else None."""
    (ch, cw), (fh, fw) = coarse, fine
    if ch and cw and fh % ch == 0 and fw % cw == 0 and fh // ch == fw // cw >= 2:
        return fh // ch
    return None


def _repeated(coarse: Source, factor: int, grid: Grid) -> ArraySource:
    """A plain coarse array (masked or not: its invalid pixels NaN) repeated over factor x
    factor fine pixels, keeping the scale and offset that made the caller's values
    physical."""
    inner = underlying_source(coarse)
    assert isinstance(inner, ArraySource)
    arr = np.repeat(np.repeat(coarse.read(), factor, axis=1), factor, axis=2)
    return ArraySource(
        arr,
        grid,
        coarse.band_names,
        coarse.label,
        scale=inner.scale,
        offset=inner.offset,
    )


def refuse_transforms_without_crs(a: Source, b: Source, instead: str) -> None:
    """Refuse two rasters, one or both without a CRS, whose geotransforms differ: taken
    pixel by pixel (as rasters without georeferencing are) they would show different places,
    and without a CRS they cannot be aligned. ``instead``: the other way out, for the
    message. Rasters with GDAL's identity transform (no georeferencing) pass."""
    ga, gb = a.grid, b.grid
    if ga.georeferenced and gb.georeferenced:
        return
    if not (ga.has_transform() and gb.has_transform()) or ga.same_transform(gb):
        return
    which = (
        "neither has a CRS"
        if not (a.grid.georeferenced or b.grid.georeferenced)
        else (f"{(a if not a.grid.georeferenced else b).label} has no CRS")
    )
    where = [
        f"{g.origin()}, pixel {g.res[0]:g} x {g.res[1]:g}, {g.height} x {g.width} px"
        for g in (a.grid, b.grid)
    ]
    raise GridMismatchError(
        f"{a.label} and {b.label}: {which}, and their geotransforms differ ({where[0]} vs "
        f"{where[1]}), so they cannot be aligned, and taken pixel by pixel they would show "
        f"different places. {_declare_crs_advice(a, b)}, or {instead}."
    )


def _declare_crs_advice(a: Source, b: Source) -> str:
    """How to declare the missing CRS: the other image's, where it has one (a fixed example
    code sent users of the other UTM hemisphere to the wrong place), for a file or an array."""
    known = next((s.grid.crs for s in (a, b) if s.grid.georeferenced), None)
    code = "EPSG:CODE" if known is None else short_crs(known)
    missing = [s for s in (a, b) if not s.grid.georeferenced]
    if all(isinstance(s, FileSource) for s in missing):
        files = " and ".join(s.label for s in missing)
        shell = shlex.quote(code)  # a PROJ string where there is no EPSG code
        return f"Declare the CRS of {files} (gdal_edit.py -a_srs {shell} FILE, if that is its CRS)"
    return f"Declare the CRS (a DataArray: da.rio.write_crs({code!r}), if that is its CRS)"


def _bounds_in(coarse: Source, fine: Source) -> tuple[float, float, float, float]:
    """``coarse``'s bounds in ``fine``'s CRS; a GridMismatchError when PROJ finds no way
    between the two (a local, engineering CRS beside an EPSG one: it was a traceback)."""
    from rasterio._err import CPLE_BaseError  # GDAL/PROJ's own (no public name)
    from rasterio.errors import CRSError
    from rasterio.warp import transform_bounds

    cg, fg = coarse.grid, fine.grid
    try:
        return tuple(transform_bounds(cg.continuous_crs(), fg.continuous_crs(), *cg.bounds))
    except (CPLE_BaseError, CRSError):
        raise GridMismatchError(
            f"{coarse.label} ({short_crs(cg.crs)}) and {fine.label} ({short_crs(fg.crs)}): "
            "PROJ finds no coordinate operation between their CRSs (a local or engineering "
            "CRS relates only to itself). Give both files the same CRS, or warp one onto "
            "the other's (gdalwarp -t_srs)."
        ) from None


def _check_degrees(src: Source) -> None:
    """Refuse a geographic CRS whose grid lies beyond any longitude and latitude (UTM metres
    tagged EPSG:4326): PROJ then failed deep inside with "Invalid latitude"."""
    g = src.grid
    left, bottom, right, top = g.bounds
    if (
        g.crs is not None
        and g.crs.is_geographic
        and (
            min(left, right) < -540
            or max(left, right) > 540
            or min(bottom, top) < -90.5
            or max(bottom, top) > 90.5
        )
    ):
        raise GridMismatchError(
            f"{src.label}: its CRS ({short_crs(g.crs)}) is in degrees, but its grid spans x "
            f"{left:.6g}..{right:.6g}, y {bottom:.6g}..{top:.6g}, beyond any longitude and "
            "latitude: the CRS tag is wrong (metres labelled as degrees?). Give the file "
            "its real CRS (gdal_edit.py -a_srs EPSG:CODE FILE, on a copy; rioxarray: "
            "da.rio.write_crs)."
        )


def align_coarse(
    coarse: Source, fine: Source, resampling: str, notes: list[str], mask: bool = False
) -> tuple[Source, float | None]:
    """Put ``coarse`` on ``fine``'s grid; return it and the resolution ratio if known.
    ``mask``: it is a mask (:func:`stfusion.qa.open_mask`), which the messages say."""
    fg, cg = fine.grid, coarse.grid
    if not fg.georeferenced or not cg.georeferenced:
        refuse_transforms_without_crs(
            coarse,
            fine,
            "resample the mask onto the image's grid"
            if mask
            else "resample the coarse image onto the fine grid",
        )
        if cg.shape == fg.shape:
            arrays = not isinstance(coarse, FileSource) and not isinstance(fine, FileSource)
            if arrays and not (fg.georeferenced or cg.georeferenced):
                return coarse, None  # plain arrays: nothing to warn about
            # one side has a CRS the other lacks: nothing checks they cover one area
            notes.append(f"{coarse.label}: not georeferenced (or {fine.label} is not)")
            return coarse, None
        plain = coarse.plain() and fine.plain()  # plain arrays, masked or not
        if plain:
            factor = _block_factor(cg.shape, fg.shape)
            if factor is not None:
                # a plain coarse array R times smaller: each pixel covers R x R fine pixels
                # from the top-left corner, as a coarse image resampled onto the fine grid
                notes.append(
                    f"{coarse.label}: {cg.height} x {cg.width} array repeated {factor} x "
                    f"{factor} onto the {fg.height} x {fg.width} fine array (ratio {factor})"
                )
                return _repeated(coarse, factor, fg), None if mask else float(factor)
        raise GridMismatchError(
            f"{coarse.label} ({cg.height} x {cg.width}) and {fine.label} ({fg.height} x "
            f"{fg.width}): different shapes and at least one has no CRS, so they cannot be "
            "aligned. "
            + (
                "Plain arrays line up when both have one shape, or when the fine one is an "
                "integer R times the coarse one on both axes (each coarse pixel covering R x R "
                "fine pixels from the top-left corner); else give georeferenced DataArrays "
                "(rioxarray) or files."
                if plain
                else "Georeference both files, or resample the "
                f"{'mask' if mask else 'coarse image'} onto the "
                f"{'image' if mask else 'fine'} grid."
            )
        )
    for src in (coarse, fine):
        _check_degrees(src)
    if cg.same_as(fg):
        return coarse, None
    cb = _bounds_in(coarse, fine) if cg.crs != fg.crs else cg.bounds
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
        warn(
            f"the mask {coarse.label} covers only about {covered:.0%} of {fine.label}: every "
            "pixel outside it counts as invalid. Give a mask that covers the image."
            if mask
            else f"{coarse.label} covers only about {covered:.0%} of the fine image "
            f"{fine.label}: outside it there is no coarse change, and methods differ in what "
            "they do there (STARFM leaves most of it empty, Fit-FC part of it, FSDAF fills it "
            "with its class changes). Give coarse images that cover the fine scene, or crop "
            "the fine images to them."
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
            f"{coarse.label}: the fine grid stored in the other row order (south-up against "
            "north-up), read on it pixel for pixel; the methods that need the resolution "
            "ratio take ratio=R"
            if north_up(coarse).grid.same_as(north_up(fine).grid)
            else f"{head}: its pixels are about the fine pixels' size, so it was already "
            "resampled and is used like a coarse image on the fine grid (the methods that "
            "need the resolution ratio take ratio=R)"
        )
        log.info(msg)
        notes.append(msg)
        return FineSizedSource(north_up(coarse), fg, resampling, covered), None
    msg = f"{head} (FSDAF and Fit-FC use its native pixels)"
    log.info(msg)
    notes.append(msg)
    # native pixels in north-up order whichever way the file stores its rows
    # covered: check_valid's "valid values over only" would say it again
    return AlignedSource(north_up(coarse), fg, resampling, covered), ratio


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


def scene_keywords() -> list[str]:
    """The keywords of :func:`open_scene` that ``fit(pairs, ...)`` takes (all but ``pairs``)."""
    import inspect

    return [k for k in inspect.signature(open_scene).parameters if k != "pairs"]


def check_keywords(given: dict[str, Any], caller: str, params: Sequence[str] = ()) -> None:
    """Refuse keywords ``open_scene`` does not take (``fit(pairs, ration=10)``), naming the
    accepted ones and the closest; ``params``: the method's parameters, which belong to its
    constructor."""
    import difflib

    accepted = [k for k in scene_keywords() if k != "target"]
    for key in given:
        if key in accepted:
            continue
        if key == "target":  # accepted and then ignored: predict() still asked for it
            raise InvalidParameterError(
                f"{caller}: the coarse target image is given to predict(target), not to fit."
            )
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


def check_fit_call(pairs: Any, ratio: Any) -> None:
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
    check_fit_call(pairs, ratio)
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
    _check_band_counts([*fines, *all_coarse], ref)
    warn_band_order(ref, [*fines[1:], *all_coarse])
    aligned: list[Source] = []
    ratios: list[tuple[float, str]] = []
    repeated: dict[float, str] = {}  # plain arrays R times smaller: R and one such array
    for c in all_coarse:
        a, r = align_coarse(c, ref, resampling, notes)
        aligned.append(a)
        if r is not None:
            ratios.append((r, c.label))
            if not (c.grid.georeferenced or ref.grid.georeferenced):
                repeated.setdefault(r, c.label)
    _check_one_block_ratio(repeated, ratio, ref)
    unreferenced = [n for n in notes if "not georeferenced" in n]
    if unreferenced:
        # the inputs of those notes that lack a CRS (the fine image too, when it has none)
        bare = list(
            dict.fromkeys(x.label for x in [*fines, *all_coarse] if not x.grid.georeferenced)
        )
        warn(
            f"{len(bare)} input(s) without georeferencing (e.g. {bare[0]}); "
            f"all are {ref.grid.height} x {ref.grid.width} px, so their pixels are assumed to "
            "line up."
        )
    if ratios:
        check_one_ratio(ratios)
        measured = float(np.mean([r for r, _ in ratios]))
        if measured < 0.9:
            raise GridMismatchError(
                f"the coarse images have smaller pixels than the fine image {ref.label} "
                f"(ground ratio {measured:.3g}): are FINE and COARSE swapped? --pair takes the "
                "fine (high-resolution) image first, then the coarse one."
            )
        if ratio is not None and abs(ratio - measured) > 0.05 * measured:
            warn(
                f"ratio={ratio:g} was given; the coarse grid's ground ratio (sqrt of coarse / "
                f"fine pixel area at the scene centre) is {measured:.4g}. Using {ratio:g} as "
                "given (recorded in STFUSION_RATIO and used for ERGAS); leave the ratio out to "
                "use the measured one."
            )
        ratio = measured if ratio is None else ratio
    if ratio is not None and not (ratio > 0 and np.isfinite(ratio)):
        raise InvalidParameterError(f"ratio must be positive, got {ratio}.")
    tgt = aligned[len(coarses)] if target is not None else None
    scene = Scene(
        grid=ref.grid,
        measured_ratios=ratios,
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
        _check_images(scene)
    return scene


def _check_band_counts(images: Sequence[Source], ref: Source) -> None:
    """Every image has ``ref``'s band count, or an error saying how to choose bands."""
    for img in images:
        if img.count == ref.count:
            continue
        if img.plain() and ref.plain():  # arrays: band-last ones show as many "bands"
            raise GridMismatchError(
                f"{img.label} has {_bands(img.count)} but {ref.label} has {ref.count}: "
                "arrays are read as (band, y, x). If yours are (y, x, band), give "
                "np.moveaxis(a, -1, 0) for each; else give each image the same bands in "
                "the same order."
            )
        raise GridMismatchError(
            f"{img.label} has {_bands(img.count)} but {ref.label} has {ref.count}: every "
            "image needs the same bands in the same order. Choose them with --fine-bands / "
            "--coarse-bands (names or 1-based numbers, e.g. --coarse-bands 3,4,1,2,6,7 for "
            "MODIS against Landsat blue..SWIR2), FILE:BANDS, or a preset (--fine-preset, "
            "--coarse-preset; docs/inputs.md)."
        )


def _check_one_block_ratio(repeated: dict[float, str], ratio: float | None, ref: Source) -> None:
    """Plain coarse arrays R times smaller (``repeated``: R -> one such array) must share
    one R, the fitted ``ratio`` too: a target cropped or of another sensor was stretched
    over the scene silently."""
    if ratio is not None and repeated and ratio not in repeated:
        repeated = {ratio: "the pairs' coarse images", **repeated}  # fitted: now the target
    if len(repeated) > 1:
        raise GridMismatchError(
            "the coarse arrays are not all one size: "
            + ", ".join(f"{label} {r:g} times smaller" for r, label in repeated.items())
            + f" than the fine array {ref.label}. Each coarse pixel must cover R x R fine "
            "pixels with one R for every coarse image: give them all at one size (or as "
            "georeferenced DataArrays or files, which are reprojected)."
        )


def _check_images(scene: Scene) -> None:
    """The checks of the images' values, once aligned: each a clear error or warning."""
    told = False  # one band order warning per scene
    if scene.ratio is not None and scene.ratio > min(scene.grid.shape):
        warn(
            f"ratio={scene.ratio:g} is more than the scene's {scene.grid.height} x "
            f"{scene.grid.width} fine px: it holds less than one coarse pixel across, so there "
            "is no coarse texture to fuse. Check the ratio (coarse / fine pixel size) or give "
            "a larger scene."
        )
    for f, c in scene.pairs:
        check_valid(f, "fine image")
        check_valid(c, "coarse image")
        told = check_pair(f, c, band_order=not told) or told
    if scene.target is not None:
        check_valid(scene.target, "coarse target image")
        check_target_scale(scene.pairs[0], scene.target)
        warn_fine_looking_coarse(scene.pairs[0][0], scene.target, "coarse target image")


def _bands(n: int) -> str:
    return "1 band" if n == 1 else f"{n} bands"
