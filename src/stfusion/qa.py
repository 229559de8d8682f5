"""Cloud and quality masks: decoding QA bands, and a Source that hides what they flag.

Every method reads its inputs through :class:`stfusion.io.Source` and treats NaN as invalid,
so wrapping an image in :class:`MaskedSource` is all it takes for every method to ignore
cloudy pixels.

Landsat Collection 2 ``QA_PIXEL`` (16 bits; USGS Landsat 8-9 C2 L2 Science Product Guide):

====  ===================  =======================================================
bit   flag                 meaning when set
====  ===================  =======================================================
0     ``fill``             designated fill (no data)
1     ``dilated_cloud``    cloud dilation (a few pixels around clouds)
2     ``cirrus``           high-confidence cirrus (Landsat 8-9 only; 0 on 4-7)
3     ``cloud``            cloud
4     ``cloud_shadow``     cloud shadow
5     ``snow``             snow
6     ``clear``            neither cloud nor dilated cloud
7     ``water``            water
8-9   cloud confidence     00 none, 01 low, 10 medium, 11 high
10-11 shadow confidence    00 none, 01 low, 10 reserved, 11 high
12-13 snow/ice conf.       00 none, 01 low, 10 reserved, 11 high
14-15 cirrus confidence    00 none, 01 low, 10 reserved, 11 high
====  ===================  =======================================================

The two-bit confidences are available as flags ``cloud_conf_medium`` (medium or high),
``cloud_conf_high``, ``shadow_conf_high``, ``snow_conf_high`` and ``cirrus_conf_high``.

MOD09GA / MYD09GA ``state_1km`` (16 bits; MODIS Surface Reflectance User's Guide, 1 km State
QA):

====  ==================  =========================================================
bit   flag                meaning
====  ==================  =========================================================
0-1   cloud state         00 clear, 01 cloudy (``cloudy``), 10 mixed (``mixed``),
                          11 not set, assumed clear (``cloud_not_set``)
2     ``cloud_shadow``    cloud shadow
3-5   land/water          (not a validity flag; not decoded here)
6-7   aerosol quantity    (not decoded here)
8-9   cirrus              00 none, 01 small (``cirrus_small``), 10 average
                          (``cirrus_average``), 11 high (``cirrus_high``)
10    ``internal_cloud``  internal cloud algorithm flag
11    ``internal_fire``   internal fire algorithm flag
12    ``snow``            MOD35 snow/ice flag
13    ``adjacent_cloud``  pixel is adjacent to a cloud
14    salt pan            (not decoded; "BRDF correction performed" in Collection 5)
15    ``internal_snow``   internal snow mask
====  ==================  =========================================================

Default invalid flags (used when none are chosen): ``LANDSAT_DEFAULT_FLAGS`` fill, dilated
cloud, cirrus (bit 2, high-confidence cirrus), cloud and cloud shadow; ``MOD09_DEFAULT_FLAGS``
cloudy, mixed, cloud shadow, high cirrus and the internal cloud flag (MOD09 has no fill
flag: fill values are the surface reflectance bands' own). A flag list given replaces the
defaults (``default`` in it stands for them). Snow is
not in the defaults (snow is a real surface state that fusion should predict); add ``snow``
where snow is a contaminant for you. ``adjacent_cloud`` is not in the MOD09 defaults: at 1 km
it removes a ring a kilometre wide around every cloud, which on a 30 m grid loses far more
ground than Landsat's dilated cloud does; add it where cloud edges leak into the coarse data.

Sentinel-2 Level-2A ``SCL`` (scene classification, one class per pixel; ESA Sen2Cor product
definition): 0 ``no_data``, 1 ``saturated_defective``, 2 ``dark_area``, 3 ``cloud_shadow``,
4 ``vegetation``, 5 ``not_vegetated``, 6 ``water``, 7 ``unclassified``, 8 ``cloud_medium``,
9 ``cloud_high``, 10 ``thin_cirrus``, 11 ``snow``. Default invalid classes:
``SCL_DEFAULT_FLAGS`` (no data, saturated, cloud shadow, the two cloud classes and cirrus).

A pixel that the mask file marks as nodata, or that lies outside the mask raster, is invalid.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from stfusion.errors import GridMismatchError, InvalidParameterError, warn
from stfusion.io import FileSource, Scaling, Source
from stfusion.io.sources import underlying_source

MASK_KINDS = ("binary", "landsat_qa_pixel", "mod09_state_1km", "sentinel2_scl")

#: Single-bit Landsat QA_PIXEL flags: name -> bit.
LANDSAT_QA_PIXEL_BITS: dict[str, int] = {
    "fill": 0,
    "dilated_cloud": 1,
    "cirrus": 2,
    "cloud": 3,
    "cloud_shadow": 4,
    "snow": 5,
    "clear": 6,
    "water": 7,
}
#: Two-bit Landsat confidences: name -> first bit.
LANDSAT_QA_PIXEL_CONFIDENCE: dict[str, int] = {
    "cloud_confidence": 8,
    "cloud_shadow_confidence": 10,
    "snow_ice_confidence": 12,
    "cirrus_confidence": 14,
}
LANDSAT_FLAGS: tuple[str, ...] = (
    *(k for k in LANDSAT_QA_PIXEL_BITS if k != "clear"),
    "cloud_conf_medium",
    "cloud_conf_high",
    "shadow_conf_high",
    "snow_conf_high",
    "cirrus_conf_high",
)
LANDSAT_DEFAULT_FLAGS: tuple[str, ...] = (
    "fill",
    "dilated_cloud",
    "cirrus",
    "cloud",
    "cloud_shadow",
)

MOD09_DEFAULT_FLAGS: tuple[str, ...] = (
    "cloudy",
    "mixed",
    "cloud_shadow",
    "cirrus_high",
    "internal_cloud",
)


#: Sentinel-2 L2A scene classification: class name -> value.
SCL_CLASSES: dict[str, int] = {
    "no_data": 0,
    "saturated_defective": 1,
    "dark_area": 2,
    "cloud_shadow": 3,
    "vegetation": 4,
    "not_vegetated": 5,
    "water": 6,
    "unclassified": 7,
    "cloud_medium": 8,
    "cloud_high": 9,
    "thin_cirrus": 10,
    "snow": 11,
}
SCL_DEFAULT_FLAGS: tuple[str, ...] = (
    "no_data",
    "saturated_defective",
    "cloud_shadow",
    "cloud_medium",
    "cloud_high",
    "thin_cirrus",
)


def _bit(qa: np.ndarray, bit: int) -> np.ndarray:
    return ((qa >> bit) & 1).astype(bool)


def _field(qa: np.ndarray, first: int, width: int = 2) -> np.ndarray:
    return ((qa >> first) & ((1 << width) - 1)).astype(np.uint8)


def _as_uint(qa: np.ndarray) -> np.ndarray:
    """QA values as unsigned integers; non-finite entries become 0 (handled by the caller)."""
    arr = np.asarray(qa)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.where(np.isfinite(arr), arr, 0)
    return arr.astype(np.int64).astype(np.uint32)


def decode_landsat_qa_pixel(qa: np.ndarray) -> dict[str, np.ndarray]:
    """Every field of a Landsat C2 ``QA_PIXEL`` array: booleans and 0-3 confidences."""
    q = _as_uint(qa)
    out: dict[str, np.ndarray] = {name: _bit(q, b) for name, b in LANDSAT_QA_PIXEL_BITS.items()}
    for name, first in LANDSAT_QA_PIXEL_CONFIDENCE.items():
        out[name] = _field(q, first)
    return out


def _landsat_flag(decoded: dict[str, np.ndarray], flag: str) -> np.ndarray:
    if flag in LANDSAT_QA_PIXEL_BITS:
        return decoded[flag]
    conf = {
        "cloud_conf_medium": ("cloud_confidence", 2),
        "cloud_conf_high": ("cloud_confidence", 3),
        "shadow_conf_high": ("cloud_shadow_confidence", 3),
        "snow_conf_high": ("snow_ice_confidence", 3),
        "cirrus_conf_high": ("cirrus_confidence", 3),
    }
    if flag in conf:
        name, level = conf[flag]
        return decoded[name] >= level
    raise InvalidParameterError(
        f"landsat_qa_pixel: unknown flag {flag!r}; choose from {', '.join(LANDSAT_FLAGS)}."
    )


def landsat_qa_pixel_invalid(qa: np.ndarray, flags: Iterable[str] | None = None) -> np.ndarray:
    """True where any of ``flags`` is set (default ``LANDSAT_DEFAULT_FLAGS``).

    Non-finite QA values (nodata of the QA file, outside its grid) are invalid too.
    """
    arr = np.asarray(qa)
    decoded = decode_landsat_qa_pixel(arr)
    bad = np.zeros(arr.shape, dtype=bool)
    for flag in check_flags("landsat_qa_pixel", flags):
        bad |= _landsat_flag(decoded, flag)
    if np.issubdtype(arr.dtype, np.floating):
        bad |= ~np.isfinite(arr)
    return bad


def decode_mod09_state_1km(state: np.ndarray) -> dict[str, np.ndarray]:
    """Every validity field of a MOD09GA ``state_1km`` array."""
    q = _as_uint(state)
    cloud_state = _field(q, 0)
    cirrus = _field(q, 8)
    return {
        "cloud_state": cloud_state,
        "cloudy": cloud_state == 1,
        "mixed": cloud_state == 2,
        "cloud_not_set": cloud_state == 3,
        "cloud_shadow": _bit(q, 2),
        "cirrus": cirrus,
        "cirrus_small": cirrus == 1,
        "cirrus_average": cirrus == 2,
        "cirrus_high": cirrus == 3,
        "internal_cloud": _bit(q, 10),
        "internal_fire": _bit(q, 11),
        "snow": _bit(q, 12),
        "adjacent_cloud": _bit(q, 13),
        "internal_snow": _bit(q, 15),
    }


MOD09_FLAGS: tuple[str, ...] = (
    "cloudy",
    "mixed",
    "cloud_not_set",
    "cloud_shadow",
    "cirrus_small",
    "cirrus_average",
    "cirrus_high",
    "internal_cloud",
    "internal_fire",
    "snow",
    "adjacent_cloud",
    "internal_snow",
)


def mod09_state_1km_invalid(state: np.ndarray, flags: Iterable[str] | None = None) -> np.ndarray:
    """True where any of ``flags`` is set (default ``MOD09_DEFAULT_FLAGS``); NaN is invalid."""
    arr = np.asarray(state)
    decoded = decode_mod09_state_1km(arr)
    bad = np.zeros(arr.shape, dtype=bool)
    for flag in check_flags("mod09_state_1km", flags):
        bad |= decoded[flag]
    if np.issubdtype(arr.dtype, np.floating):
        bad |= ~np.isfinite(arr)
    return bad


def sentinel2_scl_invalid(scl: np.ndarray, flags: Iterable[str] | None = None) -> np.ndarray:
    """True where the class is one of ``flags`` (default ``SCL_DEFAULT_FLAGS``); NaN and
    values outside 0..11 are invalid."""
    arr = np.asarray(scl)
    q = _as_uint(arr)
    bad = np.isin(q, [SCL_CLASSES[f] for f in check_flags("sentinel2_scl", flags)])
    bad |= q > max(SCL_CLASSES.values())
    if np.issubdtype(arr.dtype, np.floating):
        bad |= ~np.isfinite(arr)
    return bad


def binary_invalid(mask: np.ndarray) -> np.ndarray:
    """A 0/1 (or 0/255) mask: nonzero is invalid, and so is NaN (nodata, outside)."""
    arr = np.asarray(mask)
    if np.issubdtype(arr.dtype, np.floating):
        return ~np.isfinite(arr) | (arr != 0)
    return arr != 0


def check_flags(kind: str, flags: Iterable[str] | None) -> tuple[str, ...]:
    """The flags to use for ``kind``; ``None`` or ``"default"`` stands for the defaults."""
    if kind == "binary":
        if flags:
            raise InvalidParameterError("binary masks take no flags (nonzero = invalid).")
        return ()
    if kind == "landsat_qa_pixel":
        default, known = LANDSAT_DEFAULT_FLAGS, LANDSAT_FLAGS
    elif kind == "mod09_state_1km":
        default, known = MOD09_DEFAULT_FLAGS, MOD09_FLAGS
    elif kind == "sentinel2_scl":
        default, known = SCL_DEFAULT_FLAGS, tuple(SCL_CLASSES)
    else:
        raise InvalidParameterError(f"mask kind {kind!r} unknown; choose from {MASK_KINDS}.")
    if flags is None:
        return default
    out: list[str] = []
    for f in flags:
        f = f.strip().lower()  # Cloud, CLOUD: the names are all lower case
        if not f:
            continue
        for name in default if f == "default" else (f,):
            if name not in known:
                raise InvalidParameterError(
                    f"{kind}: unknown flag {name!r}; choose from {', '.join(known)} or 'default'."
                )
            if name not in out:
                out.append(name)
    if not out:
        raise InvalidParameterError(f"{kind}: no flags given; use 'default' for the defaults.")
    return tuple(out)


def parse_flags(text: str | None) -> tuple[str, ...] | None:
    """``"default,snow"`` -> ``("default", "snow")``; None or empty -> None (the defaults)."""
    if text is None or not text.strip():
        return None
    return tuple(t.strip() for t in text.split(",") if t.strip())


def invalid_from(values: np.ndarray, kind: str, flags: Iterable[str] | None = None) -> np.ndarray:
    """Decode a mask raster's values into a boolean invalid mask."""
    if kind == "binary":
        check_flags(kind, flags)
        return binary_invalid(values)
    if kind == "landsat_qa_pixel":
        return landsat_qa_pixel_invalid(values, flags)
    if kind == "mod09_state_1km":
        return mod09_state_1km_invalid(values, flags)
    if kind == "sentinel2_scl":
        return sentinel2_scl_invalid(values, flags)
    raise InvalidParameterError(f"mask kind {kind!r} unknown; choose from {MASK_KINDS}.")


def open_mask(
    mask: str | os.PathLike[str] | Source, target: Source, notes: list[str] | None = None
) -> Source:
    """The mask raster as a Source on ``target``'s grid (nearest neighbour if reprojected).

    Values are read raw (no scale/offset), so QA bits survive; a mask on another grid is
    reprojected like a coarse image (any grid ``stfusion.scene.align_coarse`` handles).
    """
    from stfusion.scene import align_coarse

    raw = _raw(mask)
    shift = _off_grid(raw, target)
    if shift:
        warn(shift)
    aligned, _ratio = align_coarse(
        raw, target, "nearest", notes if notes is not None else [], mask=True
    )
    return aligned


def _off_grid(mask: Source, target: Source) -> str | None:
    """A warning when ``mask`` has the image's pixel size and CRS but its pixel edges fall
    between the image's (made on another grid, or with the pixel-centre origin of another
    convention): nearest neighbour then moves every mask edge by up to a pixel, silently."""
    m, t = mask.grid, target.grid
    if not (m.georeferenced and t.georeferenced) or m.crs != t.crs:
        return None
    (mx, my), (tx, ty) = m.res, t.res
    if abs(mx - tx) > 1e-3 * tx or abs(my - ty) > 1e-3 * ty:
        return None
    (ml, mb, mr, mt), (tl, tb, tr, tt) = m.bounds, t.bounds
    if ml >= tr or tl >= mr or mb >= tt or tb >= mt:  # apart: the alignment's error says so
        return None
    fx = ((m.transform.c - t.transform.c) / tx) % 1.0
    fy = ((m.transform.f - t.transform.f) / ty) % 1.0
    off = max(min(fx, 1 - fx), min(fy, 1 - fy))
    if off < 0.1:
        return None
    return (
        f"{mask.label}: on a grid shifted by {min(fx, 1 - fx):.2f} px in x and "
        f"{min(fy, 1 - fy):.2f} px in y against {target.label}'s, with the same pixel size: "
        "each mask pixel is taken from the nearest one, so masked areas move by up to a "
        "pixel. Make the mask on the image's grid (e.g. gdalwarp -tap, or -te/-tr of the image)."
    )


def as_mask(mask: Any, image: Source) -> str | Source:
    """A Source as it is, a path as a string (provenance records it); a numpy array
    (``(y, x)`` or ``(band, y, x)``, the image's size) as an ArraySource on the image's grid;
    a DataArray on its own grid (its coordinates and CRS): the image's, or finer (in-memory
    masks are not reprojected onto a coarser or other CRS's grid). Anything
    else is refused by name (an array once became a glob of its repr)."""
    from stfusion.io import ArraySource

    if isinstance(mask, Source | str):
        return mask
    if isinstance(mask, os.PathLike):
        return str(os.fspath(mask))  # provenance records str paths
    if hasattr(mask, "dims") and hasattr(mask, "coords"):  # xarray
        from stfusion.scene import as_source

        return as_source(mask, Scaling(1.0, 0.0), str(mask.name or "<mask DataArray>"))
    arr = np.asarray(mask) if isinstance(mask, np.ndarray | list | tuple) else None
    if arr is None or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidParameterError(
            f"mask: a {type(mask).__name__}; give a path (a mask raster on any grid), a "
            "Source, or a numpy array of the image's size ((y, x) or (band, y, x))."
        )
    if arr.ndim not in (2, 3) or arr.shape[-2:] != image.grid.shape:
        h, w = image.grid.shape
        raise GridMismatchError(
            f"mask: an array of shape {arr.shape} for {image.label} ({h} x {w} px): give a "
            f"({h}, {w}) or (band, {h}, {w}) array, or a mask file (any grid; reprojected)."
        )
    return ArraySource(arr, image.grid, (), "<mask array>")


def _raw(mask: str | os.PathLike[str] | Source) -> Source:
    return mask if isinstance(mask, Source) else FileSource(str(mask), Scaling(1.0, 0.0))


#: A mask whose pixels are smaller than the image's by this ground ratio or more is decoded
#: on its own grid and aggregated: an image pixel is invalid if any of its mask pixels is.
FINER_MASK = 0.75


@dataclass
class DecodedMask(Source):
    """A mask raster decoded on its own grid: 1.0 where invalid, 0.0 where valid."""

    raw: Source
    kind: str
    flags: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.grid = self.raw.grid
        self.count = self.raw.count
        self.band_names = self.raw.band_names
        self.label = self.raw.label

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        return invalid_from(self.raw.read(window, halo), self.kind, self.flags).astype(np.float32)


def _finer(mask: Source, target: Source) -> bool:
    """Whether ``mask``'s pixels are clearly smaller than ``target``'s on the ground."""
    from stfusion.io import resolution_ratio

    mg, tg = mask.grid, target.grid
    if not (mg.georeferenced and tg.georeferenced) or mg.same_as(tg):
        return False
    return resolution_ratio(mg, tg) <= FINER_MASK


def _check_binary_values(mask: Source, label: str) -> None:
    """Log a warning when a "binary" mask holds other values than 0, 1 and 255: a QA band
    (Landsat QA_PIXEL, MODIS state_1km) read as binary masks every pixel it flags at all,
    often all of them."""
    values = mask.sample(1 << 14)
    path = getattr(underlying_source(mask), "path", None)
    if isinstance(path, str) and os.path.isfile(path):
        with rasterio.open(path) as ds:
            declared = ds.nodata
        if declared == 0:  # GDAL tools often tag 0 so; nodata is invalid, so all of it is
            warn(
                f"{label}: a binary mask that declares nodata 0, the value of its clear "
                f"pixels: they count as invalid (nodata is), {np.isnan(values).mean():.0%} of "
                "it. If 0 means clear, remove the tag (gdal_edit.py -unsetnodata MASK, on a "
                "copy)."
            )
    found = np.unique(values[np.isfinite(values)])
    other = found[~np.isin(found, (0, 1, 255))]
    if other.size:
        warn(
            f"{label}: a binary mask (nonzero = invalid) holding values such as "
            f"{', '.join(f'{v:g}' for v in other[:3])}: if it is a QA band, give its kind "
            "(landsat_qa_pixel, sentinel2_scl, mod09_state_1km: --fine-mask-kind or "
            "--coarse-mask-kind in predict and series, --mask-kind in evaluate, kind= in "
            "Python), or it masks every pixel with any bit set."
        )


@dataclass
class MaskedSource(Source):
    """``source`` with NaN wherever ``mask`` says invalid.

    ``mask`` is a path (or a Source) of a raster on the source's grid or on any grid that
    can be aligned onto it (reprojected with nearest neighbour, window by window), a numpy
    array of the source's size (on its grid) or a DataArray (:func:`as_mask`). ``kind``:
    ``binary`` (nonzero = invalid), ``landsat_qa_pixel``, ``mod09_state_1km`` or
    ``sentinel2_scl`` (decoded with ``flags``, default the product's default flags). A
    one-band mask applies to every band; a binary mask with as many bands as the source masks
    band by band. Holds paths (the
    aligned mask re-reads its file in each process) or the mask array, so it pickles and
    shares no handle.
    """

    source: Source
    mask: str | Source  # a Path becomes a str, an array a Source (as_mask)
    kind: str = "binary"
    flags: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.source, Source):
            raise InvalidParameterError(
                f"MaskedSource: the image is a {type(self.source).__name__}; give a Source: "
                "FileSource(path), or stfusion.scene.as_source(array_or_dataarray)."
            )
        if self.kind not in MASK_KINDS:
            raise InvalidParameterError(
                f"mask kind {self.kind!r} unknown; choose from {', '.join(MASK_KINDS)}."
            )
        self.flags = check_flags(self.kind, self.flags) if self.kind != "binary" else None
        self.mask = as_mask(self.mask, self.source)
        self.grid = self.source.grid
        self.count = self.source.count
        self.band_names = self.source.band_names
        mask_label = self.mask.label if isinstance(self.mask, Source) else str(self.mask)
        self.label = f"{self.source.label} (masked by {mask_label})"
        raw = _raw(self.mask)
        #: a mask finer than the image: decoded there, then "any invalid mask pixel" (max)
        self.aggregated_ = _finer(raw, self.source)
        if self.aggregated_:
            from stfusion.io import AlignedSource

            decoded = DecodedMask(raw, self.kind, self.flags)
            self.mask_source_: Source = AlignedSource(decoded, self.source.grid, "max")
            self.notes.append(
                f"{mask_label}: finer than {self.source.label}; a pixel is invalid where any "
                "mask pixel within it is"
            )
        else:
            self.mask_source_ = open_mask(raw, self.source, self.notes)
        mc = self.mask_source_.count
        if mc != 1 and not (self.kind == "binary" and mc == self.count):
            raise GridMismatchError(
                f"{mask_label}: {mc} bands; a mask needs 1 band (or, for a binary mask, one "
                f"per image band: {self.count})."
            )
        if self.kind == "binary":
            _check_binary_values(raw if self.aggregated_ else self.mask_source_, mask_label)

    def invalid(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        """Boolean ``(1 or band, h + 2 halo, w + 2 halo)``: True where the mask says invalid."""
        raw = self.mask_source_.read(window, halo)
        if self.aggregated_:
            return ~(raw == 0)  # decoded already; NaN: outside the mask raster
        return invalid_from(raw, self.kind, self.flags)

    def plain(self) -> bool:
        return self.source.plain()

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        values = self.source.read(window, halo)
        bad = np.broadcast_to(self.invalid(window, halo), values.shape)
        values[bad] = np.nan
        return values
