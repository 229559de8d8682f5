"""Raster input and output.

Everything that touches files lives here. Values are scaled on read (``value * scale +
offset``), nodata becomes NaN, and arrays are float32 ``(band, y, x)``. Sources are small,
picklable descriptions (path + scaling) that open the file per read, so a window can be read in
any thread or process and no open handle is ever shared.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import os
import shutil
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window

from stfusion.errors import InputFileError, OutputExistsError

log = logging.getLogger("stfusion")


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
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)[:4]

    def same_as(self, other: Grid) -> bool:
        return (
            self.shape == other.shape
            and self.crs == other.crs
            and self.transform.almost_equals(other.transform, precision=1e-6 * max(self.res))
        )

    def window_transform(self, window: Window) -> Affine:
        return rasterio.windows.transform(window, self.transform)

    def describe(self) -> str:
        crs = self.crs.to_string() if self.crs else "no CRS"
        return f"{self.width} x {self.height} px, {self.res[0]:g} x {self.res[1]:g}, {crs}"


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


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` printable in a message: undecodable bytes of the name appear as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def check_name(path: str | os.PathLike[str], role: str = "input") -> None:
    """Refuse a file name GDAL cannot take: it needs UTF-8, and a name with bytes that are
    not UTF-8 (``b'\\xff'``, decoded by Python as lone surrogates) cannot be passed to it."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise InputFileError(
            f"{shown(path)}: the {role} file name is not valid UTF-8, which GDAL cannot open. "
            "Rename the file (or its folder) with UTF-8 characters only."
        ) from None


def _open(path: str | os.PathLike[str]) -> rasterio.DatasetReader:
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{shown(p)}: file not found. Check the path.")
    if p.is_dir():
        raise InputFileError(f"{shown(p)}: is a directory, not a raster file.")
    check_name(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(p)
    except RasterioIOError as exc:
        raise InputFileError(
            f"{p}: not a raster GDAL can read ({exc}). Give a GeoTIFF, ENVI (with its .hdr) "
            "or another GDAL format."
        ) from None


def _read_error(path: str, window: Window | None, exc: Exception) -> InputFileError:
    """A failed read of a file that opened: the file is damaged or incomplete (truncated
    download, copy still running, disk error)."""
    where = ("the whole image" if window is None else
             f"rows {int(window.row_off)}-{int(window.row_off + window.height) - 1}, columns "
             f"{int(window.col_off)}-{int(window.col_off + window.width) - 1}")  # fmt: skip
    # rasterio says "Read failed. See previous exception"; GDAL's own message is the cause.
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    detail = " ".join(str(cause).split()) or type(cause).__name__
    return InputFileError(
        f"{shown(path)}: reading {where} failed ({detail}). The file looks damaged or "
        "incomplete (a truncated download or copy?); check it with `gdalinfo -checksum` and "
        "copy or download it again."
    )


def _grid_of(ds: rasterio.DatasetReader) -> Grid:
    crs = ds.crs if ds.crs else None
    return Grid(crs=crs, transform=ds.transform, width=ds.width, height=ds.height)


def _band_names(ds: rasterio.DatasetReader) -> tuple[str, ...]:
    names = []
    for i, desc in enumerate(ds.descriptions, start=1):
        names.append(desc if desc else f"band{i}")
    return tuple(names)


def _resolve_scaling(ds: rasterio.DatasetReader, scaling: Scaling) -> tuple[float, float, str]:
    file_scales = tuple(float(s) for s in ds.scales)
    file_offsets = tuple(float(o) for o in ds.offsets)
    if scaling.scale is not None or scaling.offset is not None:
        return (
            1.0 if scaling.scale is None else float(scaling.scale),
            0.0 if scaling.offset is None else float(scaling.offset),
            "given",
        )
    if any(s != 1.0 for s in file_scales) or any(o != 0.0 for o in file_offsets):
        if len(set(file_scales)) > 1 or len(set(file_offsets)) > 1:
            raise InputFileError(
                f"{ds.name}: bands have different scale/offset metadata ({file_scales}, "
                f"{file_offsets}); give the scale explicitly."
            )
        return file_scales[0], file_offsets[0], "file metadata"
    return 1.0, 0.0, "default"


def inspect_raster(path: str | os.PathLike[str], scaling: Scaling | None = None) -> RasterInfo:
    """Describe how a file would be read (grid, bands, nodata, scaling)."""
    src = FileSource(str(path), scaling or Scaling())
    if type(src) is not FileSource:  # HDF4, band files, a band choice: stfusion.inputs
        return src.info()  # type: ignore[attr-defined,no-any-return]
    with _open(path) as ds:
        scale, offset, source = _resolve_scaling(ds, scaling or Scaling())
        return RasterInfo(
            path=str(path),
            driver=ds.driver,
            grid=_grid_of(ds),
            count=ds.count,
            dtype=ds.dtypes[0],
            nodata=ds.nodata,
            file_scales=tuple(float(s) for s in ds.scales),
            file_offsets=tuple(float(o) for o in ds.offsets),
            band_names=_band_names(ds),
            scale=scale,
            offset=offset,
            scale_source=source,
        )


def _clip_window(window: Window, halo: int, grid: Grid) -> tuple[Window, Window]:
    """The part of ``window`` grown by ``halo`` that lies inside the grid, and where it goes
    in the padded output array."""
    r0 = int(window.row_off) - halo
    c0 = int(window.col_off) - halo
    h = int(window.height) + 2 * halo
    w = int(window.width) + 2 * halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + h, grid.height), min(c0 + w, grid.width)
    inside = Window(cc0, rr0, max(cc1 - cc0, 0), max(rr1 - rr0, 0))
    dest = Window(cc0 - c0, rr0 - r0, inside.width, inside.height)
    return inside, dest


# ------------------------------------------------------------------------ bounded scene scans

#: Values (pixels x bands) a scene-wide pass (validation, statistics, sampling, coarse
#: aggregation, class maps) reads at once, unless :func:`scan_limit` says otherwise. The CLI
#: derives it from ``--mem-limit`` (:func:`stfusion.tiling.memory_limits`).
DEFAULT_SCAN_VALUES = 6 << 20
_SCAN_VALUES: contextvars.ContextVar[int] = contextvars.ContextVar(
    "stfusion_scan_values", default=DEFAULT_SCAN_VALUES
)


def scan_values() -> int:
    """The current bound on values (pixels x bands) read at once by a scene-wide pass."""
    return _SCAN_VALUES.get()


@contextlib.contextmanager
def scan_limit(values: int) -> Iterator[None]:
    """Bound every scene-wide pass inside the block to ``values`` (pixels x bands) per read."""
    token = _SCAN_VALUES.set(max(1, int(values)))
    try:
        yield
    finally:
        _SCAN_VALUES.reset(token)


def scan_windows(
    grid: Grid, max_pixels: int, align: int = 1, full_rows: bool = False
) -> list[Window]:
    """Row-major windows covering ``grid``, each at most ``max_pixels`` pixels.

    Window offsets and sizes are multiples of ``align`` (the resolution ratio when coarse
    pixels are aggregated), so no ``align x align`` block is split; a window is never smaller
    than ``align x align``, whatever ``max_pixels`` says. ``full_rows`` (striped files, whose
    strips span the whole width) prefers strips as wide as the image, as many rows as fit;
    otherwise windows are square tiles. Either way a window's size depends on the memory
    bound and the image width, never on the image height.
    """
    a = max(1, int(align))
    max_pixels = max(1, int(max_pixels))
    if full_rows:
        tw = min(grid.width, max(a, max_pixels // a // a * a))
        th = max(a, max_pixels // max(tw, 1) // a * a)
    else:
        side = max(a, math.isqrt(max_pixels) // a * a)
        th = tw = side
    out = []
    for r in range(0, grid.height, th):
        for c in range(0, grid.width, tw):
            out.append(Window(c, r, min(tw, grid.width - c), min(th, grid.height - r)))
    return out


def gdal_sample_index(n: int, step: int) -> np.ndarray:
    """The pixels GDAL's nearest-neighbour decimation picks when ``n`` pixels are read into
    ``ceil(n / step)``: ``floor((i + 0.5) * n / ceil(n / step))``. :meth:`FileSource.sample`
    reads these exact pixels block by block, so its sample is the one a decimated whole-image
    read gives (and scene statistics built on it did not change)."""
    m = -(-n // step)
    return np.minimum(np.floor((np.arange(m) + 0.5) * (n / m)).astype(np.int64), n - 1)


class Source:
    """An image on the fine grid, readable window by window.

    ``read(window, halo)`` returns float32 ``(band, h + 2 halo, w + 2 halo)`` in physical units,
    NaN where invalid or outside the scene.
    """

    grid: Grid
    count: int
    band_names: tuple[str, ...]
    label: str

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        raise NotImplementedError

    def scan_windows(self, align: int = 1) -> list[Window]:
        """Bounded windows covering the image, for scene-wide passes (see :func:`scan_values`)."""
        return scan_windows(self.grid, max(1, scan_values() // max(self.count, 1)), align)

    def scan(self, align: int = 1) -> Iterator[tuple[Window, np.ndarray]]:
        """``(window, values)`` over the whole image, window by window (bounded memory)."""
        for w in self.scan_windows(align):
            yield w, self.read(w)

    def sample(self, max_pixels: int = 1 << 20) -> np.ndarray:
        """A decimated ``(band, y, x)`` view of the whole image, for scene-wide checks.

        Every ``step``-th row and column from the top left, ``step`` chosen so that at most
        about ``max_pixels`` pixels are kept; read row by row, each row in pieces of at most
        :func:`scan_values` values, so memory is bounded whatever the image size.
        """
        step = max(1, int(np.ceil(np.sqrt(self.grid.width * self.grid.height / max_pixels))))
        if step == 1:
            return self._assemble()
        rows = range(0, self.grid.height, step)
        cols = np.arange(0, self.grid.width, step)
        out = np.empty((self.count, len(rows), len(cols)), np.float32)
        piece = max(step, scan_values() // max(self.count, 1) // step * step)
        for i, r in enumerate(rows):
            for c0 in range(0, self.grid.width, piece):
                w = min(piece, self.grid.width - c0)
                j0 = c0 // step
                out[:, i, j0 : j0 + -(-w // step)] = self.read(Window(c0, r, w, 1))[:, 0, ::step]
        return out

    def _assemble(self) -> np.ndarray:
        """The whole image, read in bounded windows into one array."""
        out = np.empty((self.count, self.grid.height, self.grid.width), np.float32)
        for w, block in self.scan():
            r, c = int(w.row_off), int(w.col_off)
            out[:, r : r + int(w.height), c : c + int(w.width)] = block
        return out

    def band_stats(self) -> dict[str, np.ndarray]:
        """Count, mean and standard deviation per band over valid pixels.

        Streamed in bounded windows (:meth:`scan`); sums in float64. The result does not
        depend on the windows beyond float64 rounding of the sums (relative ~1e-15).
        """
        n = np.zeros(self.count)
        s1 = np.zeros(self.count)
        s2 = np.zeros(self.count)
        for _w, block in self.scan():
            for b in range(self.count):
                v = block[b][np.isfinite(block[b])].astype(np.float64)
                n[b] += v.size
                s1[b] += v.sum()
                s2[b] += (v * v).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / n
            std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        return {"count": n, "mean": mean, "std": std}

    def _padded(self, window: Window | None, halo: int) -> tuple[np.ndarray, Window, Window]:
        if window is None:
            window = Window(0, 0, self.grid.width, self.grid.height)
        out = np.full(
            (self.count, int(window.height) + 2 * halo, int(window.width) + 2 * halo),
            np.nan,
            dtype=np.float32,
        )
        inside, dest = _clip_window(window, halo, self.grid)
        return out, inside, dest


@dataclass
class ArraySource(Source):
    """An in-memory array, already in physical units."""

    array: np.ndarray
    grid: Grid
    band_names: tuple[str, ...] = ()
    label: str = "<array>"

    def __post_init__(self) -> None:
        arr = np.asarray(self.array, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"{self.label}: expected a (band, y, x) array, got shape {arr.shape}")
        if arr.shape[1:] != self.grid.shape:
            raise ValueError(f"{self.label}: array shape {arr.shape[1:]} != grid {self.grid.shape}")
        self.array = arr
        self.count = arr.shape[0]
        if not self.band_names:
            self.band_names = tuple(f"band{i + 1}" for i in range(self.count))

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        if inside.width and inside.height:
            out[:, dest.row_off : dest.row_off + dest.height,
                dest.col_off : dest.col_off + dest.width] = self.array[
                :, inside.row_off : inside.row_off + inside.height,
                inside.col_off : inside.col_off + inside.width]  # fmt: skip
        return out


def _read_scaled(
    ds: rasterio.DatasetReader, window: Window | None, scale: float, offset: float
) -> np.ndarray:
    data = ds.read(window=window, masked=True)
    arr = data.astype(np.float32).filled(np.nan)
    if scale != 1.0 or offset != 0.0:
        arr = arr * np.float32(scale) + np.float32(offset)
    arr[~np.isfinite(arr)] = np.nan
    # A nodata value written as -3.4e38 but not declared still means nodata.
    arr[np.abs(arr) > 1e30] = np.nan
    return arr


@dataclass
class FileSource(Source):
    """A raster file read on its own grid (which is the fine grid for the fine images)."""

    path: str
    scaling: Scaling = field(default_factory=Scaling)

    def __new__(cls, *args: Any, **kwargs: Any) -> FileSource:
        # MODIS HDF4, single-band files stacked (a glob or a comma list), a band choice
        # (``file.tif:3,4,1``, ``Scaling.bands``): read by stfusion.inputs.BandStack, a
        # FileSource too, so everything that takes a FileSource takes these.
        if cls is FileSource and (args or "path" in kwargs):
            from stfusion.inputs import stack_class

            path = args[0] if args else kwargs["path"]
            scaling = args[1] if len(args) > 1 else kwargs.get("scaling")
            cls = stack_class(str(path), scaling)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        self.path = str(self.path)
        with _open(self.path) as ds:
            self.grid = _grid_of(ds)
            self.count = ds.count
            self.band_names = _band_names(ds)
            self.scale, self.offset, self.scale_source = _resolve_scaling(ds, self.scaling)
        self.label = self.path

    def _striped(self) -> bool:
        """Whether the file is stored in strips as wide as the image (not in tiles)."""
        if not hasattr(self, "_striped_"):
            with _open(self.path) as ds:
                self._striped_ = ds.block_shapes[0][1] >= ds.width
        return self._striped_

    def scan_windows(self, align: int = 1) -> list[Window]:
        # Striped files are read in full-width strips (a strip is decoded once per window
        # that touches it), tiled files in square windows.
        return scan_windows(
            self.grid, max(1, scan_values() // max(self.count, 1)), align, self._striped()
        )

    def scan(self, align: int = 1) -> Iterator[tuple[Window, np.ndarray]]:
        windows = self.scan_windows(align)
        with _open(self.path) as ds:
            for w in windows:
                try:
                    block = _read_scaled(ds, w, self.scale, self.offset)
                except RasterioError as exc:
                    raise _read_error(self.path, w, exc) from None
                yield w, block

    def sample(self, max_pixels: int = 1 << 20) -> np.ndarray:
        """The pixels a nearest-neighbour decimated read of the whole file gives, read window
        by window (at most :func:`scan_values` values at once)."""
        step = max(1, int(np.ceil(np.sqrt(self.grid.width * self.grid.height / max_pixels))))
        if step == 1:
            return self._assemble()
        ri = gdal_sample_index(self.grid.height, step)
        ci = gdal_sample_index(self.grid.width, step)
        out = np.empty((self.count, len(ri), len(ci)), np.float32)
        with _open(self.path) as ds:
            for w in self.scan_windows():
                r0, c0 = int(w.row_off), int(w.col_off)
                rs = np.flatnonzero((ri >= r0) & (ri < r0 + int(w.height)))
                cs = np.flatnonzero((ci >= c0) & (ci < c0 + int(w.width)))
                if not rs.size or not cs.size:
                    continue
                # Only the rows/columns from the first to the last picked one are read.
                sub = Window(
                    int(ci[cs[0]]), int(ri[rs[0]]),
                    int(ci[cs[-1]] - ci[cs[0]]) + 1, int(ri[rs[-1]] - ri[rs[0]]) + 1,
                )  # fmt: skip
                try:
                    data = ds.read(window=sub, masked=True)
                except RasterioError as exc:
                    raise _read_error(self.path, sub, exc) from None
                pick = np.ix_(ri[rs] - ri[rs[0]], ci[cs] - ci[cs[0]])
                data = data[:, pick[0], pick[1]]
                arr = data.astype(np.float32).filled(np.nan) * np.float32(self.scale)
                arr += np.float32(self.offset)
                arr[~np.isfinite(arr) | (np.abs(arr) > 1e30)] = np.nan
                out[:, rs[0] : rs[-1] + 1, cs[0] : cs[-1] + 1] = arr
        return out

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        if inside.width and inside.height:
            with _open(self.path) as ds:
                try:
                    block = _read_scaled(ds, inside, self.scale, self.offset)
                except RasterioError as exc:
                    raise _read_error(self.path, inside, exc) from None
            out[:, dest.row_off : dest.row_off + dest.height,
                dest.col_off : dest.col_off + dest.width] = block  # fmt: skip
        return out


RESAMPLING_CHOICES = ("nearest", "bilinear", "cubic", "average")


@dataclass
class AlignedSource(Source):
    """A coarse image on its own (native) grid, reprojected onto the fine grid per window.

    The native coarse image is small (hundreds of times fewer pixels than the fine one), so it
    is read once (in bounded windows) and kept as float32 in memory: ``4 x bands`` bytes per
    native pixel, e.g. 37 MB for a 1250 x 1250 x 6 MODIS image under a 20000 x 20000
    Landsat scene. Each window is then reprojected from memory. The resampling is the user's
    choice; ``nearest`` keeps every coarse pixel's value unblended.
    """

    native: FileSource
    grid: Grid
    resampling: str = "nearest"

    def __post_init__(self) -> None:
        if self.resampling not in RESAMPLING_CHOICES:
            raise ValueError(
                f"resampling {self.resampling!r} unknown; choose from {RESAMPLING_CHOICES}"
            )
        self.count = self.native.count
        self.band_names = self.native.band_names
        self.label = self.native.label
        self._data: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_data"] = None  # re-read in the worker rather than pickling the array
        state.pop("_gdal", None)
        return state

    def _native_data(self) -> np.ndarray:
        if self._data is None:
            self._data = self.native._assemble()
        return self._data

    def _warp_source(self) -> Any:
        """The native image as ``reproject``'s source: the array wrapped (not copied) in an
        in-memory GDAL dataset, one per thread. Given the array itself, rasterio copied all of
        it for every window (+96 MB per read of a 2000 x 2000 x 6 image, which broke
        ``--mem-limit`` at 20000 x 20000); the warped values are bit-identical."""
        data = self._native_data()
        try:
            from rasterio._io import MemoryDataset  # rasterio's own wrapper (no copy)
        except ImportError:  # pragma: no cover - rasterio moved it: the copying path
            return data
        local = self.__dict__.setdefault("_gdal", threading.local())
        ds = getattr(local, "ds", None)
        if ds is None:
            ds = MemoryDataset(data, transform=self.native.grid.transform,
                               crs=self.native.grid.crs)  # fmt: skip
            local.ds = ds
        return rasterio.band(ds, list(range(1, self.count + 1)))

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        from rasterio.warp import Resampling, reproject

        if window is None:
            window = Window(0, 0, self.grid.width, self.grid.height)
        big = Window(
            window.col_off - halo, window.row_off - halo,
            window.width + 2 * halo, window.height + 2 * halo,
        )  # fmt: skip
        out = np.full((self.count, int(big.height), int(big.width)), np.nan, dtype=np.float32)
        reproject(
            source=self._warp_source(),
            destination=out,
            src_transform=self.native.grid.transform,
            src_crs=self.native.grid.crs,
            dst_transform=self.grid.window_transform(big),
            dst_crs=self.grid.crs,
            resampling=getattr(Resampling, self.resampling),
            src_nodata=np.nan,
            dst_nodata=np.nan,
        )
        # Nothing outside the fine scene: a tiled run must see exactly what a whole run sees.
        _, _inside, dest = self._padded(window, halo)
        mask = np.ones(out.shape[1:], dtype=bool)
        mask[dest.row_off : dest.row_off + dest.height,
             dest.col_off : dest.col_off + dest.width] = False  # fmt: skip
        out[:, mask] = np.nan
        return out


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

    cx, cy = fine.transform * (fine.width / 2.0, fine.height / 2.0)
    (ux,), (uy,) = warp_transform(fine.crs, coarse.crs, [cx], [cy])
    col, row = ~coarse.transform * (ux, uy)
    col, row = np.floor(col), np.floor(row)
    corners = [
        coarse.transform * (col + dx, row + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))
    ]
    xs, ys = warp_transform(coarse.crs, fine.crs, [c[0] for c in corners], [c[1] for c in corners])
    x, y = np.asarray(xs), np.asarray(ys)
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return float(np.sqrt(area / fine_area))

# ----------------------------------------------------------------------------------- writing


def check_output(path: str | os.PathLike[str], overwrite: bool, inputs: Sequence[str] = ()) -> Path:
    """Fail early, before any work, if the output cannot or must not be written."""
    out = Path(path)
    check_name(out, "output")
    for inp in inputs:
        if Path(inp).resolve() == out.resolve():
            raise OutputExistsError(
                f"{out}: the output is one of the inputs; choose another output path "
                "(inputs are never modified)."
            )
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a folder; give the path of the output file.")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists. Pass --overwrite to replace it.")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise InputFileError(f"{out}: output directory {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise InputFileError(f"{out}: output directory {parent} is not writable.")
    return out


PARTIAL_MARK = ".partial"


def umask_mode(base: int = 0o666) -> int:
    """``base`` with the process umask applied: the mode a plain ``open()`` would give."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def partial_name(final: Path, suffix: str = "") -> Path:
    """The hidden temporary name of ``final``'s output: ``.NAME.<pid>-<rand>.partial<suffix>``.

    The PID in the name lets a later run tell an abandoned partial (its process is gone) from
    one another process is still writing (see :func:`remove_stale_partials`).
    """
    rand = os.urandom(4).hex()
    return final.parent / f".{final.name}.{os.getpid()}-{rand}{PARTIAL_MARK}{suffix}"


def remove_stale_partials(final: str | os.PathLike[str]) -> list[Path]:
    """Remove partials of ``final`` left by processes that no longer exist (kill -9, power cut).

    Partials of live processes are kept: another run may be writing the same output.
    Returns what was removed.
    """
    final = Path(final)
    removed: list[Path] = []
    parent = final.parent if str(final.parent) else Path(".")
    try:
        entries = list(parent.glob(f".{glob_escape(final.name)}.*{PARTIAL_MARK}*"))
    except OSError:
        return removed
    for entry in entries:
        rest = entry.name[len(final.name) + 2 :]
        pid_text = rest.split("-", 1)[0].split(".", 1)[0]
        if not pid_text.isdigit() or pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
            log.info("removed %s, left by process %s that no longer exists", entry, pid_text)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (``[``, ``*``, ``?``)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in name)


@contextlib.contextmanager
def atomic_path(
    final: str | os.PathLike[str], *, overwrite: bool = False, suffix: str | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is renamed onto ``final``.

    The one way stfusion writes a file or folder: readers never see a half-written output,
    nothing is left behind on an exception, SIGINT or SIGTERM (the CLI turns SIGTERM into an
    exception), and partials of killed processes are removed by the next run
    (:func:`remove_stale_partials`). The result gets the mode a plain ``open()`` gives (the
    umask is respected: 0666 & ~umask for files, 0777 & ~umask for folders). An existing
    ``final`` is replaced only with ``overwrite=True``; a folder is never replaced by a file
    or the other way round.
    """
    final = Path(final)
    remove_stale_partials(final)
    tmp = partial_name(final, final.suffix if suffix is None else suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise OSError(f"{final}: nothing was written")
        is_dir = tmp.is_dir()
        if final.exists() or final.is_symlink():
            if not overwrite:
                raise OutputExistsError(f"{final}: appeared while writing; not replaced.")
            if final.is_dir() != is_dir:
                kind = "a folder" if final.is_dir() else "a file"
                raise OutputExistsError(f"{final}: is {kind}; choose another output path.")
        os.chmod(tmp, umask_mode(0o777 if is_dir else 0o666))
        if is_dir and final.is_dir():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = partial_name(final, ".old")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            elif tmp.exists() or tmp.is_symlink():
                tmp.unlink()
        raise


#: The scratch GeoTIFF a RasterWriter fills window by window before the COG copy.
GTIFF_PROFILE: dict[str, Any] = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "deflate",
    "predictor": 3,
    "BIGTIFF": "IF_SAFER",
}

#: Creation options of every output (GDAL's COG driver): deflate with the predictor that fits
#: the data type (3 for float), overviews down to one block (averaged, NaN-aware), BigTIFF when
#: the file could pass 4 GB. The block size is :func:`cog_blocksize`'s unless given.
COG_OPTIONS: dict[str, Any] = {
    "compress": "DEFLATE",
    "predictor": "YES",
    "overviews": "AUTO",
    "resampling": "AVERAGE",
    "bigtiff": "IF_SAFER",
}


def cog_blocksize(width: int, height: int) -> int:
    """Tile side of a COG output: 256 px below 512 px (one block for small images), else 512."""
    return 256 if max(width, height) < 512 else 512


def copy_as_cog(
    src: str | os.PathLike[str],
    final: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    blocksize: int | None = None,
    **options: Any,
) -> Path:
    """Copy the finished raster ``src`` into ``final`` as a Cloud-Optimized GeoTIFF.

    Written through :func:`atomic_path` (a partial beside ``final``, renamed on success,
    removed on error, umask respected). GDAL's COG driver streams the copy block by block
    (memory bounded by GDAL's cache, overviews built from a temporary file), keeping band
    descriptions, nodata and tags. ``options`` override :data:`COG_OPTIONS` (e.g.
    ``predictor="NO"``). ``src`` is left in place: the caller removes it.
    """
    from rasterio.shutil import copy as rio_copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        if blocksize is None:
            with rasterio.open(src) as ds:
                blocksize = cog_blocksize(ds.width, ds.height)
        with atomic_path(final, overwrite=overwrite) as tmp:
            rio_copy(str(src), str(tmp), driver="COG", blocksize=blocksize,
                     **{**COG_OPTIONS, **options})  # fmt: skip
    return Path(final)


class RasterWriter:
    """Writes a Cloud-Optimized GeoTIFF window by window, renamed into place on success.

    Windows go into a scratch GeoTIFF beside the output (:data:`GTIFF_PROFILE`); on success it
    is copied as a COG (:func:`copy_as_cog`: tiled, deflate, overviews) and removed. On any
    exception nothing is left behind: no output, no partial, no scratch file. ``cog=False``
    keeps the tiled scratch GeoTIFF as the output (no copy, no overviews: intermediate files).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: Grid,
        count: int,
        *,
        band_names: Sequence[str] | None = None,
        tags: dict[str, Any] | None = None,
        overwrite: bool = False,
        cog: bool = True,
    ) -> None:
        self.path = Path(path)
        self.cog = cog
        self.grid = grid
        self.count = count
        self.band_names = list(band_names) if band_names else None
        self.tags = tags or {}
        self.overwrite = overwrite
        self._ds: rasterio.io.DatasetWriter | None = None
        self._tmp: str | None = None

    def __enter__(self) -> RasterWriter:
        check_output(self.path, self.overwrite)
        remove_stale_partials(self.path)
        self._tmp = str(partial_name(self.path, ".scratch.tif"))
        try:
            self._open()
        except BaseException:
            self._remove_scratch()
            raise
        return self

    def _remove_scratch(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)

    def _open(self) -> None:
        profile = dict(GTIFF_PROFILE)
        profile.update(
            width=self.grid.width,
            height=self.grid.height,
            count=self.count,
            dtype="float32",
            nodata=np.nan,
            crs=self.grid.crs,
            transform=self.grid.transform,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._ds = rasterio.open(self._tmp, "w", **profile)
        if self.band_names:
            for i, name in enumerate(self.band_names, start=1):
                self._ds.set_band_description(i, name)
        if self.tags:
            self._ds.update_tags(
                **{k: v if isinstance(v, str) else json.dumps(v, default=str)
                   for k, v in self.tags.items()}
            )

    def write(self, array: np.ndarray, window: Window | None = None) -> None:
        assert self._ds is not None
        self._ds.write(np.asarray(array, dtype=np.float32), window=window)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._ds is not None and self._tmp is not None
        try:
            self._ds.close()
            if exc_type is None and self.cog:
                copy_as_cog(self._tmp, self.path, overwrite=self.overwrite)
            elif exc_type is None:  # scratch outputs: the tiled GeoTIFF itself, renamed
                with atomic_path(self.path, overwrite=self.overwrite) as tmp:
                    os.replace(self._tmp, tmp)
        finally:
            self._remove_scratch()


def write_raster(
    path: str | os.PathLike[str],
    array: np.ndarray,
    grid: Grid,
    *,
    band_names: Sequence[str] | None = None,
    tags: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a float32 ``(band, y, x)`` array as a Cloud-Optimized GeoTIFF, atomically."""
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    with RasterWriter(
        path, grid, arr.shape[0], band_names=band_names, tags=tags, overwrite=overwrite
    ) as w:
        w.write(arr)
    return Path(path)


# ------------------------------------------------------------------------------ xarray edge


def read_raster(
    path: str | os.PathLike[str], *, scale: float | None = None, offset: float | None = None
) -> Any:
    """Read a raster as an ``xarray.DataArray`` ``(band, y, x)`` float32, NaN = nodata.

    CRS and transform are attached with rioxarray; ``attrs`` records path and scaling.
    """
    src = FileSource(str(path), Scaling(scale, offset))
    return to_dataarray(src.read(), src.grid, src.band_names, attrs={
        "path": str(path), "scale": src.scale, "offset": src.offset,
    })  # fmt: skip


def to_dataarray(
    array: np.ndarray,
    grid: Grid,
    band_names: Sequence[str] | None = None,
    attrs: dict[str, Any] | None = None,
) -> Any:
    """Wrap a ``(band, y, x)`` array as a georeferenced ``xarray.DataArray``."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    arr = np.asarray(array)
    t = grid.transform
    xs = t.c + t.a * (np.arange(grid.width) + 0.5)
    ys = t.f + t.e * (np.arange(grid.height) + 0.5)
    names = list(band_names) if band_names else [f"band{i + 1}" for i in range(arr.shape[0])]
    da = xr.DataArray(
        arr,
        dims=("band", "y", "x"),
        coords={"band": names, "y": ys, "x": xs},
        attrs=dict(attrs or {}),
    )
    da = da.rio.write_transform(t)
    if grid.crs is not None:
        da = da.rio.write_crs(grid.crs)
    return da


def grid_of_dataarray(da: Any) -> Grid:
    """The Grid of a DataArray made by :func:`to_dataarray` or rioxarray."""
    crs = da.rio.crs
    return Grid(crs=crs, transform=da.rio.transform(), width=da.sizes["x"], height=da.sizes["y"])
