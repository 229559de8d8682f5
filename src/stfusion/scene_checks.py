"""Checks on the input images before fusion, each a clear warning or error naming the file:
scales that do not match (reflectance against reflectance x 10000), bands in another order,
undeclared fill values, images with few valid pixels."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from stfusion.bands import names_index_or_temperature
from stfusion.errors import (
    EmptyInputError,
    GridMismatchError,
    InvalidParameterError,
    STFusionError,
    UndeclaredFillError,
    warn,
)
from stfusion.io import Source, scan_values
from stfusion.io.files import same_file
from stfusion.io.sources import underlying_source, wrapped
from stfusion.pair_scales import (
    SAMPLE_PIXELS,
    SCALE_WARN_FACTOR,
    check_scales,
    check_target_scale,
    warn_raw_products,
)

__all__ = [
    "PAIR_IS",
    "SCALE_WARN_FACTOR",
    "check_one_ratio",
    "check_pair",
    "check_pair_files",
    "check_scales",
    "check_target_scale",
    "check_valid",
    "fill_advice",
    "stored_value",
    "undeclared_fill",
    "warn_band_order",
    "warn_bands_matching_another_order",
    "warn_fine_looking_coarse",
    "warn_one_file_pairs",
    "warn_self_scoring",
    "warn_undeclared_fill",
]

MOSTLY_EMPTY = 0.5


def warn_band_order(ref: Source, others: Sequence[Source], fix: str | None = None) -> None:
    """Warn when an image names the same bands as ``ref`` in another order: bands are fused
    (or scored) by position, so blue would be fused with red. ``fix``: what to do (default:
    the band options of ``predict``)."""
    if _warn_role_order(ref, others, fix):
        return
    own = [n.lower() for n in ref.band_names]
    if len(set(own)) != len(own) or any(re.fullmatch(r"(band)?_?\d*", n) for n in own):
        return  # generic or repeated names say nothing about the order
    for img in others:
        names = [n.lower() for n in img.band_names]
        if names != own and sorted(names) == sorted(own):
            advice = fix or (
                f"Bands are fused by position: give the order, e.g. --coarse-bands "
                f"{','.join(ref.band_names)} (--fine-bands for a fine image, or FILE:BANDS; "
                f"in Python reorder the array, a DataArray with "
                f".sel(band={list(ref.band_names)}))."
            )
            warn(
                f"{img.label} names its bands {', '.join(img.band_names)}; {ref.label} "
                f"{', '.join(ref.band_names)}. {advice}"
            )
            return


#: A pair's fine and coarse bands are reported as in another order when matching them in
#: that order leaves this many times less squared difference than in file order. On the real
#: pairs of ../shared/data file order is the best match; MODIS's own order against Landsat's
#: costs 4-90x more.
BAND_MATCH_FACTOR = 2.0


def warn_bands_matching_another_order(
    fine: Source, coarse: Source, samples: tuple[np.ndarray, np.ndarray] | None = None
) -> bool:
    """Warn when a pair's bands match far better in another order than by position (a
    MOD09GA file in its own order, red, NIR, blue, green, ..., beside Landsat's blue, green,
    red, NIR, ...), which band names cannot tell when the files have none. Compares values
    (the coarse image scaled by one factor for all bands to the fine image's level), so it
    holds for any bands: whether it warned. ``samples``: as :func:`check_scales` takes."""
    from scipy.optimize import linear_sum_assignment

    if fine.count < 2 or coarse.count != fine.count or _roles_named(fine, coarse):
        return False
    f, c = samples or (fine.sample(SAMPLE_PIXELS), coarse.sample(SAMPLE_PIXELS))
    f, c = f.reshape(fine.count, -1), c.reshape(coarse.count, -1)
    ok = np.isfinite(f).all(axis=0) & np.isfinite(c).all(axis=0)
    if ok.sum() < 100:
        return False
    f, c = f[:, ok].astype(np.float64), c[:, ok].astype(np.float64)
    fm, cm = float(np.median(np.abs(f))), float(np.median(np.abs(c)))
    if fm > 0 and cm > 0:
        c *= fm / cm  # one factor for every band: a scale slip cannot pose as an order
    # mean (f_i - c_j)^2 for every i, j without a (band, band, pixel) array
    cost = ((f**2).sum(1)[:, None] + (c**2).sum(1)[None, :] - 2 * f @ c.T) / f.shape[1]
    _, order = linear_sum_assignment(cost)
    in_order, best = float(np.trace(cost)), float(cost[np.arange(len(order)), order].sum())
    if (order == np.arange(len(order))).all() or in_order < BAND_MATCH_FACTOR * best:
        return False
    moved = [i for i in range(len(order)) if order[i] != i]
    inner = underlying_source(coarse)
    spec = inner.band_spec(order) if hasattr(inner, "band_spec") else [str(j + 1) for j in order]
    python = ", ".join(t if t.isdigit() else repr(t) for t in spec)
    pairs = ", ".join(
        f"fine band {i + 1} ({fine.band_names[i]}) with coarse band {order[i] + 1}" for i in moved
    )
    warn(
        f"{coarse.label}: its bands match those of {fine.label} far better in another order "
        f"than by position ({in_order / best:.0f}x less squared difference): {pairs}. Bands "
        "are fused by position; if the coarse file keeps its own band order (MODIS: red, NIR, "
        f"blue, green, ...), choose the bands in the fine image's order: --coarse-bands "
        f"{','.join(spec)} (the file's bands; or FILE:BANDS; Python: "
        f"coarse_scaling=Scaling(bands=({python},)))."
    )
    return True


#: A coarse image on the fine grid whose pixel-to-pixel differences are at least this share
#: of the fine image's looks like a fine image. Real coarse images on the fine grid: 0.05-0.19
#: (every pair of the named cases); block means of a fine image repeated (or interpolated)
#: over 2 x 2 pixels: 0.6 (0.53); a Landsat image given as the coarse one: 0.91-1.11.
FINE_LOOKING = 0.85


def _detail(values: np.ndarray, ok: np.ndarray) -> list[np.ndarray]:
    """Per band, the absolute differences between horizontal and vertical neighbours where
    both are in ``ok``."""
    dx, mx = np.abs(np.diff(values, axis=2)), ok[:, :, 1:] & ok[:, :, :-1]
    dy, my = np.abs(np.diff(values, axis=1)), ok[:, 1:, :] & ok[:, :-1, :]
    return [np.concatenate([dx[b][mx[b]], dy[b][my[b]]]) for b in range(values.shape[0])]


def _median(parts: list[np.ndarray]) -> float:
    """The median of the values of ``parts`` together; 0 for none."""
    values = np.concatenate(parts) if parts else np.empty(0)
    return float(np.median(values)) if values.size else 0.0


def _same_image(a: Source, b: Source) -> bool:
    """Whether two sources read one file or one in-memory array (the same values: arrays
    are copied when read in)."""
    ia, ib = underlying_source(a), underlying_source(b)
    if ia is ib:
        return True
    pa, pb = getattr(ia, "path", None), getattr(ib, "path", None)
    if pa is not None and pb is not None:
        return same_file(pa, pb)
    xa, xb = getattr(ia, "array", None), getattr(ib, "array", None)
    if not (isinstance(xa, np.ndarray) and isinstance(xb, np.ndarray)):
        return False
    return np.shares_memory(xa, xb) or np.array_equal(xa, xb, equal_nan=True)


def warn_fine_looking_coarse(fine: Source, coarse: Source, role: str = "coarse image") -> bool:
    """Warn when ``coarse`` (on ``fine``'s grid) changes from pixel to pixel about as much as
    the fine image does: a fine image given as the coarse one (``--coarse L_0317.tif``),
    which no scale or band check sees. Read from up to five windows of up to 128 x 128
    pixels within the scan bound (contiguous, since neighbours are compared); whether it
    warned."""
    from rasterio.windows import Window

    if _same_image(fine, coarse):
        return False  # one image as both (GAN-STFM's fine reference as (F, F), or warned of)
    h, w = fine.grid.shape
    side = max(4, min(128, math.isqrt(scan_values() // max(fine.count, 1))))
    starts = {
        (
            max(0, min(h - side, int(fy * h) - side // 2)),
            max(0, min(w - side, int(fx * w) - side // 2)),
        )
        for fy, fx in ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))
    }
    f_all: list[list[np.ndarray]] = [[] for _ in range(fine.count)]
    c_all: list[list[np.ndarray]] = [[] for _ in range(fine.count)]
    for r0, c0 in sorted(starts):
        win = Window(c0, r0, min(side, w - c0), min(side, h - r0))
        f, c = fine.read(win).astype(np.float64), coarse.read(win).astype(np.float64)
        ok = np.isfinite(f) & np.isfinite(c)
        for b, (fd, cd) in enumerate(zip(_detail(f, ok), _detail(c, ok), strict=True)):
            f_all[b].append(fd)
            c_all[b].append(cd)
    # medians, not sums: the edges of a few bright cloudy cells in a real MODIS target
    # outweighed everything else (1.12 with 8 cloudy cells of 36; the median 0.12)
    f_med, c_med = (np.array([_median(v) for v in all_]) for all_ in (f_all, c_all))
    keep = f_med > 0
    if not keep.any():
        return False
    share = float(np.median(c_med[keep] / f_med[keep]))
    if share < FINE_LOOKING:
        return False
    warn(
        f"{coarse.label}: the {role} changes from pixel to pixel as much as the fine image "
        f"{fine.label} does ({share:.2f} of its typical neighbour-to-neighbour difference; a "
        "coarse image on the fine grid has much less: 0.1-0.2 on real MODIS-Landsat pairs). Is it "
        "a fine image given as the coarse one? The coarse images are MODIS (or another "
        "low-resolution sensor) at the pair dates and at the date to predict."
    )
    return True


def _warn_role_order(ref: Source, others: Sequence[Source], fix: str | None) -> bool:
    """Warn when the band names of ``ref`` and of an image give roles (blue, red, NIR, ...)
    in another order, in any naming (Landsat ``SR_B4`` against MODIS ``sur_refl_b01``):
    whether it warned."""
    from stfusion.bands import OTHER, roles_from_names

    own = roles_from_names(ref.band_names)
    for img in others:
        theirs = roles_from_names(img.band_names)
        clash = [i for i, (a, b) in enumerate(zip(own, theirs)) if OTHER not in (a, b) and a != b]
        if not clash:
            continue
        order = [theirs.index(r) for r in own if r in theirs]
        names = ",".join(img.band_names[i] for i in order)
        advice = fix or (
            f"Bands are fused by position: give the order, e.g. --coarse-bands {names} "
            "(--fine-bands for a fine image, or FILE:BANDS; in Python reorder the array, a "
            f"DataArray with .sel(band={names.split(',')}))."
            if len(order) == len(own)
            else "Bands are fused by position: choose and order them with --fine-bands / "
            "--coarse-bands (or FILE:BANDS)."
        )
        i = clash[0]
        warn(
            f"{img.label}: band {i + 1} is {theirs[i]} by its name {img.band_names[i]}, band "
            f"{i + 1} of {ref.label} is {own[i]} ({ref.band_names[i]}); in order, "
            f"{', '.join(theirs)} against {', '.join(own)}. {advice}"
        )
        return True
    return False


def _roles_named(fine: Source, coarse: Source) -> bool:
    """Whether both images' band names give every band's role: the names decide the order
    (:func:`_warn_role_order`), not the values."""
    from stfusion.bands import OTHER, roles_from_names

    return all(OTHER not in roles_from_names(s.band_names) for s in (fine, coarse))


def check_pair(fine: Source, coarse: Source, band_order: bool = True) -> bool:
    """The value checks of a pair (its coarse image on the fine grid): the scales
    (:func:`check_scales`), the band order by values (with ``band_order``) and a fine image
    given as the coarse one; one sample of each image serves the first two. Whether it
    warned of the band order."""
    samples = fine.sample(SAMPLE_PIXELS), coarse.sample(SAMPLE_PIXELS)
    if not check_scales(fine, coarse, samples=samples):
        warn_raw_products(fine, coarse, samples)
    told = band_order and warn_bands_matching_another_order(fine, coarse, samples)
    warn_fine_looking_coarse(fine, coarse)
    return told


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


def uniform_fill(sample: np.ndarray) -> tuple[float, float] | None:
    """A value that at least 1 % of the pixels hold in every band at once, the lowest of
    every band: (value, share of the valid pixels), or None. A fill written to all bands
    (0 in an int16 file without a declared nodata) looks like data to
    :func:`undeclared_fill` when it lies inside the values' range; real surfaces do not
    measure one exact value in every band. ``sample``:
    ``(band, n)``; two bands or more."""
    if sample.shape[0] < 2:
        return None
    first = sample[0]
    valid = np.isfinite(first)
    same = valid & (sample == first).all(axis=0)
    if not same.any():
        return None
    values, counts = np.unique(first[same], return_counts=True)
    k = int(counts.argmax())
    share = float(counts[k]) / max(int(valid.sum()), 1)
    # a fill at the bottom of every band's values (0 below positive data); the top is a
    # sensor's or a clip's saturation, and values between meet by chance with few bands.
    # "At the bottom" leaves 1 % of a band below it: surface reflectance has a few slightly
    # negative pixels (0.2 % of a Landsat SWIR band), and 0, Collection 2's fill, over a
    # quarter of the scene then went unflagged.
    with np.errstate(invalid="ignore"):
        below = [np.mean(sample[b][np.isfinite(sample[b])] < values[k]) for b in range(len(sample))]
    bottom = all(float(f) <= 0.01 for f in below)
    return (float(values[k]), share) if share >= 0.01 and bottom else None


def stored_value(source: Source, physical: float) -> float:
    """The value as the file stores it (before scaling) of a physical value read from
    ``source`` (its file's, under any wrapper: a mask, an aligned coarse image, which gave
    the scaled value); rounded to an integer when within float32 rounding of one."""
    file = underlying_source(source)
    scale, offset = getattr(file, "scale", 1.0), getattr(file, "offset", 0.0)
    stored = (physical - offset) / scale if scale else physical
    whole = round(stored)
    return float(whole) if abs(stored - whole) <= max(1e-2, 1e-6 * abs(whole)) else stored


#: Fill values by convention, as stored (GDAL's -9999, MODIS's -28672, the integer types'
#: extremes, float32's lowest, netCDF's default float fill).
CONVENTIONAL_FILLS = (-9999.0, -999.0, -28672.0, -32768.0, -32767.0, 32767.0, 65535.0,
                      -3.4028234663852886e38, 9.969209968386869e36)  # fmt: skip


def warn_undeclared_fill(
    source: Source,
    sample: np.ndarray,
    advice: str,
    reflectance: bool | None = None,
    said: set[str] | None = None,
    refuse: bool = False,
) -> str | None:
    """Warn when ``sample`` (read from ``source``) holds an undeclared fill value
    (:func:`undeclared_fill`); ``advice`` says what to do, with ``{stored}`` for the value
    as the file stores it (before scaling). ``reflectance`` None: unless ``source``'s band
    names say index or temperature. ``said``: values (as stored) already warned about, not
    warned again (a season's files share their fill); the new one is added. Returns the
    warning's text, or None.

    ``refuse`` (fusion's inputs): a value far outside the others that is, as stored, a
    conventional fill (:data:`CONVENTIONAL_FILLS`) is an ``UndeclaredFillError`` instead:
    fused as data, -9999 made 28 % of a Fit-FC output below -1 after the warning, exit 0.
    Another value so found (a pond's one NDVI value) or a fill written to every band inside
    the values' range (:func:`uniform_fill`) stays a warning."""
    if reflectance is None:
        reflectance = not names_index_or_temperature(getattr(source, "band_names", ()))
    found = undeclared_fill(sample, reflectance)
    if found is not None:
        b, fill, share, p1, p99 = found
        value = stored_value(source, fill)
        stored = f"{value:.6g}"
        text = (
            f"{source.label}: {share:.1%} of band {b + 1} holds {fill:.6g}, far from the other "
            f"values ({p1:.4g} .. {p99:.4g}): {advice.format(stored=stored)}"
        )
        if refuse and any(math.isclose(value, f, rel_tol=1e-6) for f in CONVENTIONAL_FILLS):
            raise UndeclaredFillError(text)
    else:
        uniform = uniform_fill(sample)
        if uniform is None:
            return None
        fill, share = uniform
        stored = f"{stored_value(source, fill):.6g}"
        text = (
            f"{source.label}: {share:.1%} of the pixels hold {fill:.6g} in every band: "
            f"{advice.format(stored=stored)}"
        )
    if said is not None:
        if stored in said:
            return None
        said.add(stored)
        text += " Later images holding it are not named again."
    warn(text)
    return text


def scattered_gaps(sample: np.ndarray, fill: float) -> tuple[int, float, float, float] | None:
    """A band where the fill value ``fill`` (as read, after scaling) lies inside the values
    (their 1-99 % range) and pixels are missing one by one, each among four valid
    neighbours: a declared nodata that is also a data value (int16 293 in a red band masks
    the pixels where the surface measured 293). (band, share of the band's pixels, p1, p99),
    or None. Gaps from clouds, masks and edges come in patches; ``sample``: ``(band, y, x)``."""
    for b in range(sample.shape[0]):
        valid = np.isfinite(sample[b])
        n = int(valid.sum())
        if n < 100:
            continue
        around = np.pad(valid, 1)
        lone = ~valid & around[:-2, 1:-1] & around[2:, 1:-1] & around[1:-1, :-2] & around[1:-1, 2:]
        k = int(lone.sum())
        p1, p99 = (float(v) for v in np.percentile(sample[b][valid], [1, 99]))
        if k >= max(5, 1e-4 * n) and k <= 0.05 * n and p1 <= fill <= p99:
            return b, k / (n + int((~valid).sum())), p1, p99
    return None


def warn_nodata_among_data(source: Source, sample: np.ndarray) -> None:
    """Warn when the nodata value ``source``'s file declares masks scattered pixels inside
    a band's values (:func:`scattered_gaps`): GDAL drops them as gaps, silently."""
    file = underlying_source(source)
    nodata = getattr(file, "nodata_", None)
    if nodata is None or sample.ndim != 3 or not np.isfinite(nodata):
        return
    fill = nodata * getattr(file, "scale", 1.0) + getattr(file, "offset", 0.0)
    found = scattered_gaps(sample, fill)
    if found is not None:
        b, share, p1, p99 = found
        warn(
            f"{source.label}: its declared nodata {nodata:.6g} is also a value of the data: "
            f"{share:.2%} of band {b + 1} is missing pixel by pixel among valid neighbours, "
            f"where the surface measured {fill:.6g} (the band's values: {p1:.4g} .. "
            f"{p99:.4g}). Those pixels are read as missing. If {nodata:.6g} is not the file's "
            f"fill, remove the tag (gdal_edit.py -unsetnodata {source.label}, on a copy) or "
            "set the true one (gdal_edit.py -a_nodata VALUE)."
        )


def fill_advice(option: str, python: str) -> str:
    """:func:`warn_undeclared_fill`'s advice: declare the value with ``option`` (``python``
    in Python), or in the file."""
    return (
        f"an undeclared nodata (fill) value? Declare it with {option} {{stored}} (Python: "
        f"{python}), or in the file (gdal_edit.py -a_nodata VALUE FILE, on a copy), so it is "
        "not fused as data."
    )


def check_valid(source: Source, role: str) -> float:
    """Valid fraction of ``source``; an error if empty, a warning if mostly empty."""
    if source.count == 0 or 0 in source.grid.shape:
        raise EmptyInputError(
            f"{source.label}: the {role} is empty ({source.count} band(s) of "
            f"{source.grid.height} x {source.grid.width} px): give an image with pixels."
        )
    s = source.sample(1 << 18)
    frac = float(np.isfinite(s).mean()) if s.size else 0.0
    if frac == 0.0:
        # a masked image (stfusion.qa.MaskedSource), perhaps under its alignment
        kinds = [getattr(s, "kind", None) for s in wrapped(source) if hasattr(s, "mask_source_")]
        kind = kinds[0] if kinds else None
        option = "--fine-mask-kind" if role.startswith("fine") else "--coarse-mask-kind"
        hint = (
            f" Its mask is read as binary (nonzero = invalid): a QA band needs its kind, "
            f"{option} (landsat_qa_pixel, mod09_state_1km, sentinel2_scl)."
            if kind == "binary"
            else ""
        )
        raise EmptyInputError(
            f"{source.label}: the {role} has no valid pixels (all nodata/NaN). Check its nodata "
            f"value and that it covers the fine image's area.{hint}"
        )
    empty = [b for b in range(s.shape[0]) if not np.isfinite(s[b]).any()]
    if empty:
        names = list(getattr(source, "band_names", ()) or ())
        which = ", ".join(f"{b + 1} ({names[b]})" if b < len(names) else str(b + 1) for b in empty)
        raise EmptyInputError(
            f"{source.label}: band(s) {which} of the {role} have no valid pixels (all "
            "nodata/NaN) while the other bands have values: no method can fuse them. "
            "Leave them out of both images (--bands, "
            "or --fine-bands and --coarse-bands; docs/inputs.md), or check the file's nodata."
        )
    option = "--fine-nodata" if role.startswith("fine") else "--coarse-nodata"
    warn_undeclared_fill(source, s, fill_advice(option, "Scaling(nodata={stored})"), refuse=True)
    warn_nodata_among_data(source, s)
    # an image covering part of the scene was warned about as such (align_coarse)
    partly = min(
        (float(w.covered_) for w in wrapped(source) if hasattr(w, "covered_")), default=1.0
    )
    if frac < MOSTLY_EMPTY and not (partly < 1.0 and frac >= partly - 0.02):
        warn(
            f"{source.label}: the {role} has valid values over only {frac:.1%} of the fine "
            "scene (nodata, clouds masked, or it covers part of the scene); predictions there "
            "fall back as documented."
        )
    return frac


#: What a pair is, said when one file is given as both its images.
PAIR_IS = (
    "A pair is a fine image (Landsat, Sentinel-2) and the coarse image (MODIS) of the same "
    "date: give that date's coarse image as the pair's second file"
)


def check_pair_files(
    pairs: Sequence[tuple[str, str]], target: str, same_bands: bool = True
) -> None:
    """Mistakes in the files of a prediction that used to finish with exit 0: one file as
    both images of a pair (``same_bands``: fine and coarse read the same bands of it), a pair
    given twice (ESTARFM regressed it on itself) are refused; a target that is a pair's own
    coarse image (it predicts that pair's date, returning its fine image) is warned about.
    Files are compared as files (another path or a link to one is the same)."""
    for k, (f, c) in enumerate(pairs, 1):
        if same_bands and same_file(f, c):
            raise InvalidParameterError(
                f"{f}: given as both the fine and the coarse image of pair {k}. {PAIR_IS} "
                "(GAN-STFM without a coarse reference: --fine-ref FINE)."
            )
        first = next(
            (
                j
                for j, (g, d) in enumerate(pairs[: k - 1], 1)
                if same_file(f, g) and same_file(c, d)
            ),
            None,
        )
        if first is not None:
            raise InvalidParameterError(
                f"pair {k} ({f}, {c}) repeats pair {first}: each pair must be another date's "
                "fine and coarse images. Leave the repeat out."
            )
    own = [k for k, (_, c) in enumerate(pairs, 1) if _same_files(c, target)]
    if own:
        warn(
            f"{target}: the coarse target is the coarse image of pair {own[0]}, so this "
            "predicts that pair's own date, whose fine image is an input: the prediction "
            "(nearly) returns it. Give the coarse image of the date to predict."
        )
    else:
        _warn_pair_dates(pairs, target)


#: A pair whose file names give dates further apart than this is warned about (a 16-day
#: MODIS composite is dated by its first day, up to 15 days before a Landsat image in it).
PAIR_DAYS_APART = 16


def _files(spec: str) -> list[str]:
    """The files a glob, comma list or ``FILE:BANDS`` names (``[spec]`` when none): a
    check of names or files looks at them, not at the pattern (a glob's date, a glob that
    names the pair's own coarse files, went unwarned)."""
    from stfusion.io.stacks import split_spec

    try:
        return split_spec(spec)[0] or [spec]
    except STFusionError:
        return [spec]


def _same_files(a: str, b: str) -> bool:
    """Whether two inputs name the same files (paths, globs or lists of band files)."""
    fa, fb = _files(a), _files(b)
    return len(fa) == len(fb) and all(same_file(x, y) for x, y in zip(sorted(fa), sorted(fb)))


def _warn_pair_dates(pairs: Sequence[tuple[str, str]], target: str) -> None:
    """Dates read from the file names (where every name of a pair gives one): a pair of two
    dates weeks apart (a mix-up of files), a target on a pair's own date (the prediction
    has that date's fine image as an input, so it scores itself)."""
    from stfusion.dates import parse_date_text

    def day(path: str) -> dt.date | None:  # a glob's or list's: its first file's name's
        return parse_date_text(os.path.basename(path)) or parse_date_text(
            os.path.basename(_files(path)[0])
        )

    for k, (f, c) in enumerate(pairs, 1):
        df, dc = day(f), day(c)
        if df is not None and dc is not None and abs((df - dc).days) > PAIR_DAYS_APART:
            warn(
                f"pair {k}: the fine image {f} is dated {df} by its name, the coarse image "
                f"{c} {dc}, {abs((df - dc).days)} days apart. A pair is a fine and a coarse "
                "image of one date (a composite: the one that contains that date); check the "
                "files."
            )
    dt_ = day(target)
    same = [k for k, (f, _) in enumerate(pairs, 1) if dt_ is not None and day(f) == dt_]
    if same:
        warn(
            f"{target}: the coarse target is dated {dt_} by its name, the date of pair "
            f"{same[0]}'s fine image {pairs[same[0] - 1][0]}: that fine image is an input, so "
            "the prediction is close to it and scoring it against that image says little. "
            "To test a method on a date, leave that date's pair out."
        )


def warn_self_scoring(prediction: str, truth: str, pred_tags: dict[str, str]) -> None:
    """``stfusion evaluate`` of a prediction that is the truth, by file or by content (a
    series output of a date with a fine image): RMSE 0 and PSNR inf, with no word before."""
    if same_file(prediction, truth):
        warn(
            f"{prediction} is both the prediction and the truth: it scores itself (RMSE 0). "
            "Give the fine image observed on the predicted date as the truth."
        )
    if pred_tags.get("STFUSION_SERIES_STATUS") == "gap-filled":
        warn(
            f"{prediction}: a series output of a date with a fine image, written as observed "
            "where that image is valid (STFUSION_SERIES_STATUS gap-filled): against that "
            "date's fine image it scores itself there. To test the fusion, run the series "
            "without that date's fine image and score its prediction."
        )


def warn_one_file_pairs(pairs: Sequence[tuple[Any, Any]], method: str, uses_coarse: bool) -> None:
    """``est.fit([("L.tif", "L.tif")])`` (the Python form of ``--pair L.tif L.tif``, which
    the command refuses): warned about, unless the method reads no coarse image at the
    reference date (GAN-STFM: ``(F, F)`` is how a fine reference alone is given)."""
    for k, (f, c) in enumerate(pairs, 1):
        paths = isinstance(f, str | os.PathLike) and isinstance(c, str | os.PathLike)
        if uses_coarse and paths and same_file(f, c):
            warn(
                f"{method}.fit(): {os.fspath(f)} is both the fine and the coarse image of pair "
                f"{k}; {method} reads the coarse image of the reference date, so this fuses "
                f"the date with itself. {PAIR_IS}."
            )


#: How far apart two coarse images' ground ratios may be (relative): MODIS's 463 m
#: sinusoidal pixels beside the same data on a 500 m grid (8 %) are one sensor's; 250 m
#: beside 500 m, or 30 m beside 60 m, are not.
RATIO_SPREAD = 0.25


def check_one_ratio(measured: Sequence[tuple[float, str]]) -> None:
    """The coarse images on their own grids (``(ground ratio, label)`` each) share one pixel
    size: a pair's 30 m coarse image with a 60 m target was fused at their mean ratio, 4.5,
    with no word (FSDAF 0.00906 where one size scored 0.00699)."""
    if not measured:
        return
    first, first_label = measured[0]
    for r, label in measured[1:]:
        if abs(r - first) > RATIO_SPREAD * min(r, first):
            raise GridMismatchError(
                f"{label} has pixels {r:.3g} times the fine image's, {first_label} "
                f"{first:.3g} times: the coarse images must all have one pixel size (one "
                "sensor and product). Reproject the odd one onto the others' grid (e.g. "
                "gdalwarp -r average -tr XRES YRES, with the others' pixel size) or use "
                "coarse images of one product."
            )
