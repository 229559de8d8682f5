"""Grids (CRS + transform + shape), scaling and the ground resolution ratio."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from stfusion.errors import InvalidParameterError


@functools.lru_cache(maxsize=256)
def _same_place(a: str, b: str, bounds: tuple[float, float, float, float], tol: float) -> bool:
    """Whether the CRSs ``a`` and ``b`` (WKT) give the corners and centre of ``bounds`` (in
    ``a``) the same coordinates, within ``tol``."""
    from rasterio._err import CPLE_BaseError  # GDAL/PROJ's own (no public name)
    from rasterio.errors import CRSError
    from rasterio.warp import transform

    x0, y0, x1, y1 = bounds
    xs = [x0, x1, x0, x1, (x0 + x1) / 2]
    ys = [y0, y0, y1, y1, (y0 + y1) / 2]
    try:
        tx, ty = transform(CRS.from_wkt(a), CRS.from_wkt(b), xs, ys)
    except (CRSError, ValueError, rasterio.errors.RasterioError, CPLE_BaseError):
        return False  # e.g. PROJ "utm: Invalid latitude" for a CRS tag the data do not fit
    d = np.hypot(np.subtract(tx, xs), np.subtract(ty, ys))
    return bool(np.all(np.isfinite(d)) and d.max() <= tol)


def short_crs(crs: CRS) -> str:
    """``EPSG:32755``, or a PROJ string where there is no EPSG code (MODIS sinusoidal), not
    the WKT of hundreds of characters."""
    text = crs.to_string()
    if text.startswith(("PROJCS[", "GEOGCS[", "PROJCRS[", "GEOGCRS[")):
        try:
            return crs.to_proj4().replace(" +no_defs=True", "").replace(" +no_defs", "")
        except Exception:  # a CRS PROJ cannot write as a string: keep the WKT
            return text
    return text


#: Degrees from the antimeridian within which a geographic grid's longitudes are wrapped
#: around its centre (:meth:`Grid.continuous_crs`); grids farther away are left as they are.
ANTIMERIDIAN_REACH = 10.0


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (None when not georeferenced), affine transform and size."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel width and height in CRS units (also on rotated or sheared grids)."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    def has_transform(self) -> bool:
        """Whether the grid carries a geotransform (GDAL gives an ungeoreferenced raster the
        identity), with or without a CRS."""
        return not self.transform.is_identity

    def profile(self) -> dict[str, Any]:
        """The grid as rasterio's ``crs``/``transform`` keywords of a file to write: none
        where the input had none (the identity written out made GDAL and QGIS take an
        ungeoreferenced output for a south-up one at the origin)."""
        out: dict[str, Any] = {"width": self.width, "height": self.height, "crs": self.crs}
        if self.has_transform() or self.crs is not None:
            out["transform"] = self.transform
        return out

    def same_transform(self, other: Grid) -> bool:
        """Same shape and geotransform within a thousandth of a pixel (the CRS aside)."""
        return self.shape == other.shape and self.transform.almost_equals(
            other.transform, precision=1e-3 * min(self.res)
        )

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) with left < right and bottom < top, also for south-up
        (positive y pixel size) and east-left grids."""
        x0, y0, x1, y1 = rasterio.transform.array_bounds(self.height, self.width, self.transform)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def same_as(self, other: Grid) -> bool:
        """The same pixels on the ground: equal shapes, transforms within a thousandth of a
        pixel, and CRSs that are equal or put the grid's corners at the same coordinates
        (``EPSG:32755`` and its PROJ string with ``+towgs84=0,0,0`` are one grid)."""
        if not self.same_transform(other):
            return False
        if self.crs == other.crs:
            return True
        if self.crs is None or other.crs is None:
            return False
        tol = 1e-3 * min(self.res)
        return _same_place(self.crs.to_wkt(), other.crs.to_wkt(), self.bounds, tol)

    def continuous_crs(self) -> CRS | None:
        """The grid's CRS for transforming coordinates into and out of it: a geographic CRS
        near or across the antimeridian gets its longitudes wrapped around the grid's centre
        (PROJ's ``+lon_wrap``), so they run on past 180 as the grid's own do (GDAL stores a
        grid across 180 E with longitudes up to 360); any other CRS as it is."""
        crs = self.crs
        if crs is None or not crs.is_geographic:
            return crs
        left, _, right, _ = self.bounds
        if -180.0 + ANTIMERIDIAN_REACH < left and right < 180.0 - ANTIMERIDIAN_REACH:
            return crs  # far from 180: as it is (a PROJ string would lose datum shifts)
        centre = (left + right) / 2.0
        # WGS84 exactly; another datum through its PROJ string (a datum grid shift of a
        # metre or two may be lost there, against half the scene lost without the wrap)
        base = "+proj=longlat +datum=WGS84" if crs.to_epsg() == 4326 else crs.to_proj4()
        return CRS.from_proj4(f"{base} +lon_wrap={centre:.9g} +no_defs")

    def pixel_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """x of each column's centre and y of each row's centre (north-up grids)."""
        t = self.transform
        xs = t.c + t.a * (np.arange(self.width) + 0.5)
        ys = t.f + t.e * (np.arange(self.height) + 0.5)
        return xs, ys

    def describe(self) -> str:
        crs = short_crs(self.crs) if self.crs else "no CRS"
        # GDAL's identity transform of a raster without georeferencing has e > 0: not south-up
        t = self.transform
        up = ", south-up" if t.e > 0 and not t.is_identity else ""
        if t.b or t.d:  # a rotated or sheared geotransform (kept exactly in the output)
            up += f", rotated or sheared (geotransform {t.a:g}, {t.b:g}, {t.d:g}, {t.e:g})"
        size = f"{self.height} x {self.width} px (rows x columns)"
        return f"{size}, {self.res[0]:g} x {self.res[1]:g}{up}, {crs}"

    def origin(self) -> str:
        """The upper-left corner, to the precision that tells two grids apart (``%g``
        printed 401012 for 401012.5 and 401014.5 alike)."""
        return f"origin {self.transform.c:.10g}, {self.transform.f:.10g}"


@dataclass(frozen=True)
class Scaling:
    """How file values become physical values: ``value * scale + offset``.

    ``None`` means "use the file's own scale/offset metadata, else 1 and 0".
    """

    scale: float | None = None
    offset: float | None = None
    #: Which bands to read, in this order: names or 1-based numbers (``--fine-bands`` /
    #: ``--coarse-bands``); ``None`` reads every band. See :mod:`stfusion.inputs`.
    bands: tuple[str, ...] | None = None
    #: A fill value the file (or array) holds but does not declare, as stored (before
    #: scaling), e.g. -9999 (``--fine-nodata`` / ``--coarse-nodata``): read as NaN, like
    #: declared nodata. ``None``: only what the file declares.
    nodata: float | None = None

    def __post_init__(self) -> None:
        # Checked here, not where the values are used: Scaling(0) once meant 1 for arrays
        # (``scale or 1``) and zeroed a file, and Scaling("1e-4") failed deep in numpy.
        for name, positive in (("scale", True), ("offset", False), ("nodata", False)):
            value = getattr(self, name)
            if value is None:
                continue
            number = isinstance(value, Real) and not isinstance(value, bool)
            if not number or not math.isfinite(float(value)) or (positive and not value > 0):
                what = "a finite number > 0" if positive else "a finite number"
                none = "only the fill the file declares" if name == "nodata" else "the file's own"
                raise InvalidParameterError(
                    f"Scaling({name}={value!r}): give {what} (e.g. Scaling(1e-4, 0.0, "
                    f"nodata=-9999)), or None ({none})."
                )
        if self.bands is not None:
            # () as parse_bands gives it: every band
            object.__setattr__(self, "bands", _band_choice(self.bands) or None)


def _band_choice(bands: object) -> tuple[str, ...]:
    """``Scaling.bands`` as names or 1-based numbers in text: ``(3, 4, 1)`` and ``"3,4,1"``
    are ``("3", "4", "1")`` (an int had no ``isdigit`` and a string was read letter by
    letter); no band at all is None, every band."""
    items = bands.split(",") if isinstance(bands, str) else bands
    out: list[str] = []
    try:
        for item in items:  # type: ignore[attr-defined]
            if isinstance(item, int | np.integer) and not isinstance(item, bool) and item >= 1:
                out.append(str(int(item)))
            elif isinstance(item, str) and item.strip():
                out.append(item.strip())
            else:
                raise TypeError
    except TypeError:
        raise InvalidParameterError(
            f"Scaling(bands={bands!r}): give band names or 1-based band numbers, e.g. "
            "Scaling(bands=(3, 4, 1)) or Scaling(bands=('nir', 'red')), or None (every band)."
        ) from None
    return tuple(out)


@dataclass(frozen=True)
class RasterInfo:
    """What ``stfusion inspect`` shows about one file."""

    path: str
    driver: str
    grid: Grid
    count: int
    dtype: str
    nodata: float | None
    file_scales: tuple[float, ...]
    file_offsets: tuple[float, ...]
    band_names: tuple[str, ...]
    scale: float
    offset: float
    scale_source: str


def resolution_ratio(coarse: Grid, fine: Grid) -> float:
    """The ground ratio: sqrt(coarse pixel area / fine pixel area) at the fine scene's centre.

    Areas are measured in the fine grid's CRS: the corners of the coarse pixel that holds the
    fine scene's centre are transformed into it (a sheared or rotated coarse pixel, such as
    MODIS sinusoidal far from its central meridian, keeps its true area), and the fine pixel's
    area is that of its transform. Pixel sizes in projected units are not ground sizes: the
    sinusoidal grid at 146 E measures 14.3 fine pixels "across" where its pixels cover 9.3 x
    9.3 (463 m MODIS on 50 m Landsat).
    """
    fine_area = abs(fine.transform.determinant)
    if coarse.crs is None or fine.crs is None or coarse.crs == fine.crs:
        return float(np.sqrt(abs(coarse.transform.determinant) / fine_area))
    from rasterio.warp import transform as warp_transform

    fine_crs, coarse_crs = fine.continuous_crs(), coarse.continuous_crs()
    cx, cy = fine.transform * (fine.width / 2.0, fine.height / 2.0)
    (ux,), (uy,) = warp_transform(fine_crs, coarse_crs, [cx], [cy])
    col, row = ~coarse.transform * (ux, uy)
    col, row = np.floor(col), np.floor(row)
    corners = [
        coarse.transform * (col + dx, row + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))
    ]
    xs, ys = warp_transform(coarse_crs, fine_crs, [c[0] for c in corners], [c[1] for c in corners])
    x, y = np.asarray(xs), np.asarray(ys)
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return float(np.sqrt(area / fine_area))
