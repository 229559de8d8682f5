"""Sources: picklable descriptions of images (array, file, or coarse on the fine grid).

Each read opens the file, scales values (``value * scale + offset``), turns nodata into NaN
and returns float32 ``(band, y, x)``, so any thread or process can read any window.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from stfusion.errors import InvalidParameterError, warn
from stfusion.io.files import (
    _band_names,
    _clip_window,
    _grid_of,
    _open,
    _read_error,
    _resolve_scaling,
    local_absolute,
    metadata_fill,
)
from stfusion.io.grid import Grid, RasterInfo, Scaling
from stfusion.io.scan import gdal_sample_index, scan_values, scan_windows

if TYPE_CHECKING:
    from stfusion.io.dataarray import Layout


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

    def plain(self) -> bool:
        """Whether the image is a plain in-memory array, or one wrapped (masked): no grid, no
        DataArray layout, unlike files, DataArrays and anything with a place on Earth."""
        return False

    def scan_windows(self, align: int = 1) -> list[Window]:
        """Bounded windows covering the image, for scene-wide passes (see :func:`scan_values`)."""
        return scan_windows(self.grid, max(1, scan_values() // max(self.count, 1)), align)

    def scan(self, align: int = 1) -> Iterator[tuple[Window, np.ndarray]]:
        """``(window, values)`` over the whole image, window by window (bounded memory)."""
        for w in self.scan_windows(align):
            yield w, self.read(w)

    def sample(self, max_pixels: int = 1 << 20) -> np.ndarray:
        """A decimated ``(band, y, x)`` view of the whole image, for scene-wide checks.

        The rows and columns GDAL's nearest-neighbour decimation picks
        (:func:`gdal_sample_index`), as :meth:`FileSource.sample` reads them, so an array or
        DataArray gives the sample (and FSDAF the classes) of the same image as a file (every
        ``step``-th from the top left differed: BOREAS by FSDAF, up to 0.029); ``step`` chosen
        so that at most about ``max_pixels`` pixels are kept; read in strips of
        :meth:`sample_blocks` rows (one row, or a row of warp blocks), each in pieces of at most
        :func:`scan_values` values (one block at least), so memory is bounded whatever the size.
        """
        step = max(1, int(np.ceil(np.sqrt(self.grid.width * self.grid.height / max_pixels))))
        if step == 1:
            return self._assemble()
        height, width = self.grid.height, self.grid.width
        rows, cols = gdal_sample_index(height, step), gdal_sample_index(width, step)
        out = np.empty((self.count, len(rows), len(cols)), np.float32)
        bh, bw = self.sample_blocks()
        piece = max(bw, scan_values() // max(self.count * bh, 1) // bw * bw)
        for r0 in sorted({int(r) // bh * bh for r in rows}):
            rs = np.flatnonzero((rows >= r0) & (rows < r0 + bh))
            for c0 in range(0, width, piece):
                cs = np.flatnonzero((cols >= c0) & (cols < c0 + piece))
                if cs.size:
                    w = Window(c0, r0, min(piece, width - c0), min(bh, height - r0))
                    data = self.read(w)
                    out[:, rs[:, None], cs[None, :]] = data[:, rows[rs, None] - r0, cols[cs] - c0]
        return out

    def sample_blocks(self) -> tuple[int, int]:
        """``(rows, columns)`` that cost as much to read as one pixel: :meth:`sample` reads
        whole strips of them. One pixel here; a warped coarse image's VRT blocks."""
        return 1, 1

    def _assemble(self) -> np.ndarray:
        """The whole image, read in bounded windows into one array."""
        out = np.empty((self.count, self.grid.height, self.grid.width), np.float32)
        for w, block in self.scan():
            r, c = int(w.row_off), int(w.col_off)
            out[:, r : r + int(w.height), c : c + int(w.width)] = block
        return out

    def band_stats(self) -> dict[str, np.ndarray]:
        """Count, mean, standard deviation, minimum and maximum per band over valid pixels.

        Streamed in bounded windows (:meth:`scan`); sums in float64. The result does not
        depend on the windows beyond float64 rounding of the sums (relative ~1e-15).
        """
        n = np.zeros(self.count)
        s1 = np.zeros(self.count)
        s2 = np.zeros(self.count)
        lo = np.full(self.count, np.nan)
        hi = np.full(self.count, np.nan)
        for _w, block in self.scan():
            for b in range(self.count):
                v = block[b][np.isfinite(block[b])].astype(np.float64)
                n[b] += v.size
                s1[b] += v.sum()
                s2[b] += (v * v).sum()
                if v.size:
                    lo[b], hi[b] = np.fmin(lo[b], v.min()), np.fmax(hi[b], v.max())
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / n
            std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        return {"count": n, "mean": mean, "std": std, "min": lo, "max": hi}

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
    #: The scale and offset that made the caller's values physical (as a FileSource knows
    #: its own), so a message can give a value as the caller stores it.
    scale: float = 1.0
    offset: float = 0.0
    #: A DataArray's dimension names and coordinates, given back on the prediction
    #: (:func:`stfusion.io.to_dataarray`); None for plain arrays.
    layout: Layout | None = None

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

    def plain(self) -> bool:
        # a DataArray without spatial coordinates is in array order, as a numpy array
        no_coords = self.layout is None or (self.layout.y is None and self.layout.x is None)
        return no_coords and not self.grid.georeferenced

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        if inside.width and inside.height:
            out[
                :,
                dest.row_off : dest.row_off + dest.height,
                dest.col_off : dest.col_off + dest.width,
            ] = self.array[
                :,
                inside.row_off : inside.row_off + inside.height,
                inside.col_off : inside.col_off + inside.width,
            ]
        return out


#: numpy dtype kinds an image's values may have: integers and floats (an object array of
#: numbers converts); booleans, complex numbers, dates and text are no measurements.
NUMERIC_KINDS = "iufO"


def numeric_values(values: Any, what: str) -> np.ndarray:
    """``values`` (array-like, masked or not) as float32, masked values NaN: refused by name
    when its dtype is no number (complex lost its imaginary part quietly, booleans read as
    0/1 reflectance, text '0.5' parsed)."""
    raw = np.ma.asarray(values)
    if raw.dtype.kind not in NUMERIC_KINDS:
        kind = _KIND_NAMES.get(raw.dtype.kind, "no numbers")
        raise InvalidParameterError(
            f"{what}: an array of dtype {raw.dtype} ({kind}); "
            "give the measured values as integers or floats (e.g. a.astype('float32'); "
            "a mask goes to the mask options, not in place of an image)."
        )
    return np.ma.filled(raw.astype(np.float32), np.nan)


_KIND_NAMES = {
    "b": "booleans",
    "c": "complex numbers",
    "M": "dates",
    "m": "time spans",
    "U": "text",
    "S": "bytes",
}


def physical(arr: np.ndarray, scaling: Scaling | None, nodata: Any = None) -> np.ndarray:
    """``arr`` (float32, stored values) as ``(band, y, x)`` physical values: the declared
    ``nodata``, ``scaling.nodata`` and infinities NaN, then ``value * scale + offset``."""
    if arr.ndim not in (2, 3):
        raise InvalidParameterError(
            f"an image must be a (band, y, x) or (y, x) array; got {arr.ndim} dimension(s), "
            f"shape {arr.shape}."
        )
    if arr.ndim == 2:
        arr = arr[None]
    for fill in (nodata, None if scaling is None else scaling.nodata):  # declared, given
        if fill is not None and np.isfinite(fill):
            arr = np.where(arr == np.float32(fill), np.float32(np.nan), arr)
    arr = np.where(np.isfinite(arr), arr, np.float32(np.nan))
    if scaling is not None and (scaling.scale is not None or scaling.offset is not None):
        # None is "not given" (1 and 0); Scaling refuses 0, so no ``or 1.0`` here
        scale = 1.0 if scaling.scale is None else scaling.scale
        offset = 0.0 if scaling.offset is None else scaling.offset
        arr = arr * np.float32(scale) + np.float32(offset)
    return arr.astype(np.float32, copy=False)


def stored_as(scaling: Scaling | None) -> tuple[float, float]:
    """ArraySource's ``scale`` and ``offset`` for values made physical with ``scaling``."""
    if scaling is None:
        return 1.0, 0.0
    scale = 1.0 if scaling.scale is None else float(scaling.scale)
    return scale, 0.0 if scaling.offset is None else float(scaling.offset)


def without_fill(arr: np.ndarray, fill: float | Sequence[float] | None) -> np.ndarray:
    """``arr`` (stored values, float32) with the undeclared fill value(s) ``fill`` NaN."""
    fills = () if fill is None else (fill,) if isinstance(fill, int | float) else fill
    for value in fills:
        arr[arr == np.float32(value)] = np.nan
    return arr


def _read_scaled(
    ds: rasterio.DatasetReader,
    window: Window | None,
    scale: float,
    offset: float,
    fill: float | Sequence[float] | None = None,
) -> np.ndarray:
    data = ds.read(window=window, masked=True)
    arr = without_fill(data.astype(np.float32).filled(np.nan), fill)
    if scale != 1.0 or offset != 0.0:
        arr = arr * np.float32(scale) + np.float32(offset)
    arr[~np.isfinite(arr)] = np.nan
    # A nodata value written as -3.4e38 but not declared still means nodata.
    arr[np.abs(arr) > 1e30] = np.nan
    return arr


def _warn_alpha(ds: Any, label: str) -> None:
    """An alpha band among the bands read is fused as data (its transparent pixels too):
    said, with the way round it (a messy-inputs trial)."""
    from rasterio.enums import ColorInterp

    alpha = [i + 1 for i, c in enumerate(ds.colorinterp) if c == ColorInterp.alpha]
    if alpha and len(alpha) < ds.count:
        data = [str(b) for b in range(1, ds.count + 1) if b not in alpha]
        warn(
            f"{label}: band {', '.join(map(str, alpha))} is an alpha band (0 = transparent), "
            f"read as data like the others. Choose the data bands ({label}:{','.join(data)}, "
            "or --fine-bands / --coarse-bands) and mask the transparent pixels (a mask file "
            "that is nonzero there, --fine-mask / --coarse-mask, or a nodata value)."
        )


@dataclass
class FileSource(Source):
    """A raster file read on its own grid (which is the fine grid for the fine images)."""

    path: str
    scaling: Scaling = field(default_factory=Scaling)

    def __new__(cls, *args: Any, **kwargs: Any) -> FileSource:
        # MODIS HDF4, single-band files stacked (a glob or a comma list), a band choice
        # (``file.tif:3,4,1``, ``Scaling.bands``): read by stfusion.io.stacks.BandStack, a
        # FileSource too, so everything that takes a FileSource takes these.
        if cls is FileSource and (args or "path" in kwargs):
            from stfusion.io.stacks import stack_class

            path = args[0] if args else kwargs["path"]
            scaling = args[1] if len(args) > 1 else kwargs.get("scaling")
            cls = stack_class(str(path), scaling)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        given = str(self.path)
        with _open(given) as ds:  # by the name as given: messages name it so
            self.path = local_absolute(given)  # opened from here after the folder changes
            self.grid = _grid_of(ds)
            self.count = ds.count
            self.band_names = _band_names(ds)
            self.scale, self.offset, self.scale_source = _resolve_scaling(ds, self.scaling)
            #: the fill values read as NaN besides GDAL's nodata: the one given, and a
            #: _FillValue tag GDAL does not apply
            self.fill_ = tuple(v for v in (self.scaling.nodata, metadata_fill(ds)) if v is not None)
            #: the nodata value the file declares (GDAL's, as stored), or None
            self.nodata_ = ds.nodata
            _warn_alpha(ds, given)
        self.label = given  # messages and provenance name the file as the user did

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
                    block = _read_scaled(ds, w, self.scale, self.offset, self.fill_)
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
                    int(ci[cs[0]]),
                    int(ri[rs[0]]),
                    int(ci[cs[-1]] - ci[cs[0]]) + 1,
                    int(ri[rs[-1]] - ri[rs[0]]) + 1,
                )
                try:
                    data = ds.read(window=sub, masked=True)
                except RasterioError as exc:
                    raise _read_error(self.path, sub, exc) from None
                pick = np.ix_(ri[rs] - ri[rs[0]], ci[cs] - ci[cs[0]])
                data = data[:, pick[0], pick[1]]
                arr = without_fill(data.astype(np.float32).filled(np.nan), self.fill_)
                arr *= np.float32(self.scale)
                arr += np.float32(self.offset)
                arr[~np.isfinite(arr) | (np.abs(arr) > 1e30)] = np.nan
                out[:, rs[0] : rs[-1] + 1, cs[0] : cs[-1] + 1] = arr
        return out

    def _dataset(self) -> contextlib.AbstractContextManager[Any]:
        """The open file to read a window from (training keeps handles open instead)."""
        return _open(self.path)

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        if inside.width and inside.height:
            with self._dataset() as ds:
                try:
                    block = _read_scaled(ds, inside, self.scale, self.offset, self.fill_)
                except RasterioError as exc:
                    raise _read_error(self.path, inside, exc) from None
            out[
                :,
                dest.row_off : dest.row_off + dest.height,
                dest.col_off : dest.col_off + dest.width,
            ] = block
        return out


RESAMPLING_CHOICES = ("nearest", "bilinear", "cubic", "average")


@dataclass
class AlignedSource(Source):
    """A coarse image on its own (native) grid, reprojected onto the fine grid per window.

    The native coarse image is small (hundreds of times fewer pixels than the fine one), so it
    is read once (in bounded windows) and kept as float32 in memory: ``4 x bands`` bytes per
    native pixel, e.g. 37 MB for a 1250 x 1250 x 6 MODIS image under a 20000 x 20000
    Landsat scene. Windows are then read from one warped VRT over it, block by block. The
    resampling is the user's choice; ``nearest`` keeps every coarse pixel's value unblended.
    """

    native: Source  # a FileSource, or a masked one (series: masked on its own grid)
    grid: Grid
    resampling: str = "nearest"
    #: the fraction of the fine scene its bounds cover (where below 1, warned as such)
    covered_: float = 1.0
    #: Whether the native pixels are the coarse sensor's (FSDAF and Fit-FC then use them).
    native_pixels: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.resampling not in (*RESAMPLING_CHOICES, "max"):  # max: masks (stfusion.qa)
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

    def release(self) -> None:
        """Drop the native image kept in memory (read again at the next read): the windows
        are done, and the output's COG copy should not run on top of it."""
        self._data = None
        self.__dict__.pop("_gdal", None)

    def _native_data(self) -> np.ndarray:
        if self._data is None:
            self._data = self.native._assemble()
        return self._data

    def _warped(self) -> Any:
        """The native image warped onto the fine grid: a GDAL warped VRT over the array
        wrapped (not copied) in an in-memory dataset, one per thread, read block by block
        (:func:`_read_by_blocks`). Warping each window on its own (``reproject``) chose other
        nearest neighbours along the window's edges for a coarse image in another CRS, and
        copied the whole array for every window (+96 MB per read of a 2000 x 2000 x 6 image,
        which broke ``--mem-limit``)."""
        local = self.__dict__.setdefault("_gdal", threading.local())
        vrt = getattr(local, "vrt", None)
        if vrt is not None:
            return vrt
        from rasterio._io import MemoryDataset  # rasterio's own wrapper (no copy)
        from rasterio.errors import RasterioDeprecationWarning
        from rasterio.vrt import WarpedVRT
        from rasterio.warp import Resampling

        with warnings.catch_warnings():
            # a MemoryDataset is writable; the VRT only reads it
            warnings.simplefilter("ignore", RasterioDeprecationWarning)
            data = self._native_data()
            ds = MemoryDataset(
                data, transform=self.native.grid.transform, crs=self.native.grid.continuous_crs()
            )
            vrt = WarpedVRT(
                ds,
                crs=self.grid.continuous_crs(),
                transform=self.grid.transform,
                width=self.grid.width,
                height=self.grid.height,
                resampling=getattr(Resampling, self.resampling),
                src_nodata=np.nan,
                nodata=np.nan,
                dtype="float32",
            )
        local.ds, local.vrt = ds, vrt
        return vrt

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        if inside.width and inside.height:
            # Nothing outside the fine scene: a tiled run sees exactly what a whole run sees.
            _read_by_blocks(
                self._warped(),
                inside,
                out[
                    :,
                    dest.row_off : dest.row_off + dest.height,
                    dest.col_off : dest.col_off + dest.width,
                ],
            )
        return out

    def sample_blocks(self) -> tuple[int, int]:
        # each read warps the whole VRT blocks it touches: sampled row by row, that was 66x
        # the scene at 2000 x 2000 (11x at 12000 x 12000) per sample; by strips, once
        bh, bw = self._warped().block_shapes[0]
        return int(bh), int(bw)


def _read_by_blocks(vrt: Any, window: Window, out: np.ndarray | None = None) -> np.ndarray:
    """``window`` of a warped VRT, read one whole VRT block at a time: GDAL warps a request
    spanning several blocks in one go, along scanlines of the request's width, and its
    approximate transformer then picks other source pixels than for those blocks alone (a
    coarse image in another CRS differed by up to 0.18 between --mem-limit values). Block by
    block, every pixel has the value of its block, whatever window reads it. ``out``: the
    array (a view) to fill, rather than a new one copied there."""
    bh, bw = vrt.block_shapes[0]
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    if out is None:
        out = np.empty((vrt.count, h, w), np.float32)
    for br in range(r0 // bh, (r0 + h - 1) // bh + 1):
        for bc in range(c0 // bw, (c0 + w - 1) // bw + 1):
            block = Window(
                bc * bw, br * bh, min(bw, vrt.width - bc * bw), min(bh, vrt.height - br * bh)
            )
            data = vrt.read(window=block, out_dtype="float32")
            # the part of the block inside the window
            ys, xs = max(r0, br * bh), max(c0, bc * bw)
            ye = min(r0 + h, br * bh + int(block.height))
            xe = min(c0 + w, bc * bw + int(block.width))
            out[:, ys - r0 : ye - r0, xs - c0 : xe - c0] = data[
                :, ys - br * bh : ye - br * bh, xs - bc * bw : xe - bc * bw
            ]
    return out


@dataclass
class NorthUpSource(Source):
    """``source`` (a grid without rotation whose rows run south-up or columns west-left)
    seen on the equivalent north-up, east-right grid: the same pixels, rows or columns in
    reverse order. Coarse images on their own grid are read through it, so scene-wide
    state built in native pixel order (FSDAF's local splines) is the same whichever way the
    file stores its rows (see :func:`north_up`)."""

    source: Source

    def __post_init__(self) -> None:
        t = self.source.grid.transform
        g = self.source.grid
        self.flip_y, self.flip_x = t.e > 0, t.a < 0
        c = t.c + t.a * g.width if self.flip_x else t.c
        f = t.f + t.e * g.height if self.flip_y else t.f
        self.grid = Grid(g.crs, Affine(abs(t.a), 0.0, c, 0.0, -abs(t.e), f), g.width, g.height)
        self.count = self.source.count
        self.band_names = self.source.band_names
        self.label = self.source.label

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        if window is None:
            window = Window(0, 0, self.grid.width, self.grid.height)
        r, c = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        # the mirrored window of the stored grid (its halo mirrored with it)
        row = self.grid.height - r - h if self.flip_y else r
        col = self.grid.width - c - w if self.flip_x else c
        data = self.source.read(Window(col, row, w, h), halo)
        return np.ascontiguousarray(
            data[:, :: -1 if self.flip_y else 1, :: -1 if self.flip_x else 1]
        )


def north_up(src: Source) -> Source:
    """``src`` on its north-up grid (:class:`NorthUpSource`) when its grid is unrotated but
    stored south-up or west-left; ``src`` itself otherwise."""
    t = src.grid.transform
    if t.b == 0 and t.d == 0 and (t.e > 0 or t.a < 0) and src.grid.georeferenced:
        return NorthUpSource(src)
    return src


class FineSizedSource(AlignedSource):
    """A coarse image delivered already resampled to pixels of about the fine pixels' size,
    but on another grid (shifted, another CRS): reprojected onto the fine grid like any
    coarse image, but its pixels are not the sensor's, so no method takes them for native
    coarse pixels (the resolution ratio is then ``ratio=R``, as for coarse images on the fine
    grid)."""

    native_pixels: ClassVar[bool] = False


def wrapped(src: Source) -> Iterator[Source]:
    """``src`` and the sources it wraps, outermost first: an aligned coarse image's native
    one, a masked image's own (``source``), down to the file (or the in-memory array)."""
    node: Any = src
    while isinstance(node, Source):
        yield node
        node = node.native if isinstance(node, AlignedSource) else getattr(node, "source", None)


def underlying_source(src: Source) -> Source:
    """The source a wrapper reads, down to the file (or the in-memory array)."""
    *_, innermost = wrapped(src)
    return innermost


def inspect_raster(path: str | os.PathLike[str], scaling: Scaling | None = None) -> RasterInfo:
    """Describe how a file would be read (grid, bands, nodata, scaling)."""
    src = FileSource(str(path), scaling or Scaling())
    if type(src) is not FileSource:  # HDF4, band files, a band choice: io.stacks
        return src.info()  # type: ignore[attr-defined]  # a BandStack (FileSource.__new__)
    with _open(path) as ds:
        scale, offset, source = _resolve_scaling(ds, scaling or Scaling())
        return RasterInfo(
            path=str(path),
            driver=ds.driver,
            grid=_grid_of(ds),
            count=ds.count,
            dtype=ds.dtypes[0],
            nodata=ds.nodata if ds.nodata is not None else metadata_fill(ds),
            file_scales=tuple(float(s) for s in ds.scales),
            file_offsets=tuple(float(o) for o in ds.offsets),
            band_names=_band_names(ds),
            scale=scale,
            offset=offset,
            scale_source=source,
        )
