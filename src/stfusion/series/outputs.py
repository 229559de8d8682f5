"""Files a series run writes: the per-date GeoTIFFs (COG), summary.csv and the cube.

Every output reaches its final name through :func:`stfusion.io.atomic_path` (a hidden
partial beside it, renamed when complete, umask respected): the COG through
:func:`stfusion.io.copy_as_cog`, the summary and the cube directly. Only the scratch GeoTIFF
that :func:`write_date_image` fills window by window lives in the run's scratch folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from stfusion.dates import in_range
from stfusion.errors import InvalidParameterError, MissingDependencyError, OutputExistsError
from stfusion.io import FileSource, Grid, atomic_path, glob_escape, partial_name
from stfusion.series.records import STATUSES, SUMMARY_COLUMNS, DateRecord

log = logging.getLogger("stfusion")

INT16_NODATA = -32768


# ------------------------------------------------------------------------ per-date GeoTIFF


def output_path(out_dir: Path, prefix: str, day: dt.date) -> Path:
    return out_dir / f"{prefix}_{day.isoformat()}.tif"


def read_tags(path: Path) -> dict[str, str]:
    """The dataset tags of ``path``; {} when it cannot be read (then nothing proves that
    this command wrote it)."""
    try:
        with rasterio.open(path) as ds:
            return dict(ds.tags())
    except Exception:
        return {}


def quality_file(output: Path) -> Path:
    """The quality layer beside an output (``--quality``): ``PREFIX_YYYY-MM-DD_quality.tif``."""
    return output.with_name(f"{output.stem}_quality{output.suffix}")


def remove_quality(output: Path, day: dt.date, keep_of: str = "") -> None:
    """Remove the quality layer beside ``output`` when this command wrote it (tagged
    ``STFUSION_SERIES_QUALITY_OF``) and it does not describe the output now there: the one of
    checksum ``keep_of`` just written for ``day``, or none (``""``: the output was removed as
    stale or orphaned). A file under its name that is not provably this command's is left as
    it is, with a warning: it does not describe the output either."""
    q = quality_file(output)
    if not q.exists() and not q.is_symlink():
        return
    tags = read_tags(q) if not q.is_symlink() and q.is_file() else {}
    of = tags.get("STFUSION_SERIES_QUALITY_OF")
    if of is None:
        log.warning(
            "series: %s: %s was not written by stfusion series (no STFUSION_SERIES_QUALITY_OF "
            "tag): left as it is, %s",
            day,
            q.name,
            f"but it does not describe {output.name}" if keep_of else "though its output is gone",
        )
        return
    if keep_of and of == keep_of:
        return  # the same pixels written again: it still describes them
    try:
        q.unlink()
    except OSError as exc:
        log.warning("series: %s: out-of-date %s not removed: %s", day, q.name, exc)
        return
    if keep_of:
        log.info("series: %s removed: it described the output now replaced", q.name)
    else:
        log.info("series: %s removed with its output", q.name)


def _update_hash(h: Any, block: np.ndarray) -> None:
    """Add a ``(band, rows, x)`` block to the pixel checksum, row by row (the same hash for
    any split into row blocks); every NaN counts as one value."""
    if block.dtype.kind == "f":
        block = np.where(np.isnan(block), np.float32(np.nan), block).astype(block.dtype)
    h.update(np.ascontiguousarray(block.transpose(1, 0, 2)).tobytes())


def _valid_pixels(block: np.ndarray) -> int:
    """Pixels of a ``(band, rows, x)`` block with a value in every band, as stored."""
    ok = block != INT16_NODATA if block.dtype == np.int16 else np.isfinite(block)
    return int(ok.all(axis=0).sum())


def _pixels_match(ds: Any, tags: dict[str, str]) -> bool:
    """Decode every pixel of ``ds``; whether they match the checksum and the valid fraction
    recorded when it was written (``STFUSION_SERIES_CHECKSUM``, ``STFUSION_SERIES_VALID``;
    outputs of versions without a checksum are checked on the valid fraction alone)."""
    h = hashlib.sha256()
    valid = 0
    step = max(1, (1 << 22) // max(ds.width * ds.count, 1))
    for r in range(0, ds.height, step):
        block = ds.read(window=Window(0, r, ds.width, min(step, ds.height - r)))
        _update_hash(h, block)
        valid += _valid_pixels(block)
    want = tags.get("STFUSION_SERIES_CHECKSUM")
    if want is not None and want != h.hexdigest():
        return False
    recorded = tags.get("STFUSION_SERIES_VALID")
    frac = valid / float(max(ds.width * ds.height, 1))
    return recorded is None or recorded == f"{frac:.6f}"


def verify_output(
    path: Path, grid: Grid, count: int, dtype: str, read_data: bool = True
) -> tuple[str, dict[str, str]]:
    """``"ok"``, ``"corrupt"`` (unreadable, truncated, incomplete, pixels that no longer match
    the checksum written with them), ``"other"`` (complete, but of another size, band count or
    data type: made with other settings, e.g. ``--bands`` or ``--dtype``) or ``"foreign"`` (a
    sound file that ``stfusion series`` did not write), and the file's tags.

    ``read_data``: also decode every pixel and compare them with the checksum and valid
    fraction recorded when the file was written. A truncated file often opens and may even
    lose its tags, and a damaged one may decode to other values: only reading the pixels
    tells. A ``"corrupt"`` file keeps the tags read before its pixels failed, if any: they
    alone say whose it is.
    """
    tags: dict[str, str] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                tags = ds.tags()
                if read_data:
                    matches = _pixels_match(ds, tags)
                if "STFUSION_SERIES_DATE" not in tags:
                    return "foreign", tags
                if tags.get("STFUSION_SERIES_COMPLETE") != "1":
                    return "corrupt", tags
                if (ds.height, ds.width) != grid.shape or (ds.count, ds.dtypes[0]) != (
                    count,
                    dtype,
                ):
                    return "other", tags
                if read_data and not matches:
                    return "corrupt", tags
                return "ok", tags
    except Exception:  # any read failure means the file is damaged
        return "corrupt", tags


@dataclass
class WrittenImage:
    """What :func:`write_date_image` wrote: the valid fraction (pixels with a value in every
    band), the values clipped to +-32767 (int16) and the checksum of the pixels as stored."""

    valid_fraction: float
    clipped: int
    checksum: str


class DateImage:
    """A date's GeoTIFF open for writing (:func:`date_image`): float32 row blocks in order
    (:meth:`write`), then the tags (:meth:`finish`)."""

    def __init__(self, ds: Any, grid: Grid, dtype: str, int16_scale: float) -> None:
        self.ds, self.grid, self.dtype, self.int16_scale = ds, grid, dtype, int16_scale
        self.valid = self.clipped = 0
        self.hash = hashlib.sha256()

    def write(self, win: Window, out: np.ndarray) -> None:
        """Store the float32 block ``out`` at ``win`` (int16: scaled, clipped, nodata)."""
        self.valid += int(np.isfinite(out).all(axis=0).sum())
        if self.dtype == "int16":
            ok = np.isfinite(out)
            q = np.rint(np.where(ok, out, 0) / self.int16_scale)
            self.clipped += int((ok & (np.abs(q) > 32767)).sum())
            stored = np.where(ok, np.clip(q, -32767, 32767), INT16_NODATA).astype(np.int16)
        else:
            stored = np.asarray(out, np.float32)
        self.ds.write(stored, window=win)
        _update_hash(self.hash, stored)

    def finish(
        self, tags: Mapping[str, str] | Callable[[WrittenImage], Mapping[str, str]]
    ) -> WrittenImage:
        """Write the tags, once every block is written (see :func:`write_date_image`)."""
        g = self.grid
        done = WrittenImage(
            self.valid / float(g.width * g.height), self.clipped, self.hash.hexdigest()
        )
        final = dict(tags(done) if callable(tags) else tags)
        # written last: a file with these tags has all its data
        self.ds.update_tags(
            **final,
            STFUSION_SERIES_VALID=f"{done.valid_fraction:.6f}",
            STFUSION_SERIES_CHECKSUM=done.checksum,
            STFUSION_SERIES_COMPLETE="1",
        )
        return done


@contextlib.contextmanager
def date_image(
    dest: Path, grid: Grid, band_names: Sequence[str], dtype: str, int16_scale: float
) -> Iterator[DateImage]:
    """``dest`` open as a :class:`DateImage` (the file :func:`write_date_image` writes), so
    that two images can be filled in one pass over the blocks; closed on exit."""
    count = len(band_names)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "crs": grid.crs,
        "transform": grid.transform,
        "compress": "deflate",
        "nodata": INT16_NODATA if dtype == "int16" else np.nan,
        "BIGTIFF": "IF_SAFER",
    }
    if grid.width >= 256 and grid.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(dest, "w", **profile) as ds:
            for i, name in enumerate(band_names, start=1):
                ds.set_band_description(i, name)
            if dtype == "int16":
                ds.scales = (int16_scale,) * count
                ds.offsets = (0.0,) * count
            yield DateImage(ds, grid, dtype, int16_scale)


def write_date_image(
    dest: Path,
    blocks: Iterable[tuple[Window, np.ndarray]],
    grid: Grid,
    band_names: Sequence[str],
    dtype: str,
    int16_scale: float,
    tags: Mapping[str, str] | Callable[[WrittenImage], Mapping[str, str]],
) -> WrittenImage:
    """Write the float32 ``blocks`` (row windows, in order) into the GeoTIFF ``dest``.

    float32 keeps NaN as nodata; int16 stores ``round(value / int16_scale)`` clipped to
    +-32767 with nodata -32768 and the scale in the file's metadata. The tags (a mapping, or
    a function of what was written, called once every block is written) go in last, with
    ``STFUSION_SERIES_VALID``, ``STFUSION_SERIES_CHECKSUM`` (SHA-256 of the stored pixels, row
    by row) and ``STFUSION_SERIES_COMPLETE``, so a file carrying them has all its data.
    """
    with date_image(dest, grid, band_names, dtype, int16_scale) as img:
        for win, out in blocks:
            img.write(win, out)
        return img.finish(tags)


ORPHAN_REASON = "earlier output removed (its coarse image is no longer an input)"


def remove_orphans(
    out: Path, prefix: str, targets: set[dt.date], start: dt.date | None, end: dt.date | None
) -> set[dt.date]:
    """Delete this series' earlier outputs of dates in ``start..end`` that are no longer
    targets (their coarse image was removed), so every output matches the current inputs.
    Only files ``stfusion series`` wrote (tagged with their date) are removed."""
    removed: set[dt.date] = set()
    for path in out.glob(f"{glob_escape(prefix)}_*.tif"):
        try:
            day = dt.date.fromisoformat(path.name[len(prefix) + 1 : -len(".tif")])
        except ValueError:
            continue
        if day in targets or not in_range(day, start, end) or path.is_symlink():
            continue
        if read_tags(path).get("STFUSION_SERIES_DATE") == day.isoformat():  # provably ours
            with contextlib.suppress(OSError):
                path.unlink()
                removed.add(day)
                log.info("series: %s: %s", path.name, ORPHAN_REASON)
            remove_quality(path, day)
    return removed


# ------------------------------------------------------------------------------- summary


def is_series_summary(path: Path) -> bool:
    """Whether ``path`` is a summary.csv ``stfusion series`` wrote: a plain file whose header
    is :data:`SUMMARY_COLUMNS` (the same in every version)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return header == list(SUMMARY_COLUMNS)


def check_summary(path: Path) -> None:
    """Raise :class:`OutputExistsError` when a file at ``path`` is not a summary.csv of this
    command's: it is never replaced, ``--overwrite`` or not."""
    if (path.exists() or path.is_symlink()) and not is_series_summary(path):
        raise OutputExistsError(
            f"{path}: exists and is not a summary stfusion series wrote; it is not replaced. "
            "Move it away, or choose another --out-dir."
        )


def write_summary(path: Path, records: Sequence[DateRecord]) -> None:
    """Write ``summary.csv``, one row per record in date order (atomically); a file of
    another's at its name stops the run (:func:`check_summary`)."""
    check_summary(path)  # the header only: cheap enough for every date
    with atomic_path(path, overwrite=True, suffix=".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(SUMMARY_COLUMNS))
            w.writeheader()
            for r in sorted(records, key=lambda r: r.date):
                w.writerow(r.row())


def read_summary(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a ``summary.csv`` written by :func:`run_series`."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------------- cube


def check_cube_backend(fmt: str | None) -> str | None:
    """The xarray engine for ``fmt``, or a clear error if its package is missing."""
    if fmt is None:
        return None
    if fmt == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "--cube zarr needs the zarr package: pip install 'stfusion[cube]' "
                "(or pip install zarr), or use --cube netcdf."
            ) from None
        return "zarr"
    if fmt == "netcdf":
        for module, engine in (
            ("netCDF4", "netcdf4"),
            ("h5netcdf", "h5netcdf"),
            ("scipy.io", "scipy"),
        ):
            try:
                __import__(module)
                return engine
            except ImportError:
                continue
        raise MissingDependencyError(
            "--cube netcdf needs netCDF4 (pip install 'stfusion[cube]' or pip install "
            "netCDF4), h5netcdf or scipy."
        )
    raise InvalidParameterError(f"--cube {fmt}: choose zarr or netcdf.")


def cube_file(out: Path, prefix: str, fmt: str) -> Path:
    """The cube's path: ``PREFIX_cube.zarr`` or ``PREFIX_cube.nc``."""
    return out / f"{prefix}_cube{'.zarr' if fmt == 'zarr' else '.nc'}"


#: The cube's global ``source`` attribute: the mark every version's cube carries.
CUBE_SOURCE = "stfusion series; one GeoTIFF per date beside this cube"


def _cube_attrs(path: Path) -> dict[str, Any]:
    """The global attributes of the cube at ``path`` (metadata only; {} when unreadable)."""
    if path.is_dir():  # Zarr format 2 (as written), else 3
        for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
            try:
                data = json.loads((path / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            data = data.get(key) if key and isinstance(data, dict) else data
            return data if isinstance(data, dict) else {}
        return {}
    try:
        import xarray as xr

        with xr.open_dataset(path, decode_cf=False, decode_times=False) as ds:
            return dict(ds.attrs)
    except Exception:  # not a dataset any installed backend reads
        return {}


def is_series_cube(path: Path) -> bool:
    """Whether ``path`` is a cube ``stfusion series`` wrote (:data:`CUBE_SOURCE`)."""
    if path.is_symlink():
        return False
    return _cube_attrs(path).get("source") == CUBE_SOURCE


def check_cube(path: Path) -> None:
    """Raise :class:`OutputExistsError` when a file or folder at ``path`` is not a cube of
    this command's: it is never replaced nor removed, ``--overwrite`` or not."""
    if (path.exists() or path.is_symlink()) and not is_series_cube(path):
        raise OutputExistsError(
            f"{path}: exists and is not a cube stfusion series wrote (no global attribute "
            f"source = {CUBE_SOURCE!r}); it is not replaced. Move it away, or name the "
            "outputs otherwise (--prefix)."
        )


def check_not_foreign(out: Path, prefix: str, cube: str | None) -> None:
    """Before any work: stop when summary.csv, or the cube asked for, is a file of another's
    (:func:`check_summary`, :func:`check_cube`) rather than fail at the end of the run."""
    check_summary(out / "summary.csv")
    if cube is not None:
        check_cube(cube_file(out, prefix, cube))


def cube_items(records: Sequence[DateRecord], out: Path) -> list[tuple[dt.date, Path, str]]:
    """``(date, output, status)`` of the predicted and gap-filled dates, in date order."""
    return [
        (r.date, out / r.output, r.status)
        for r in sorted(records, key=lambda r: r.date)
        if r.status in ("predicted", "gap-filled") and r.output
    ]


def warn_stale_cubes(
    out: Path, prefix: str, changed: Sequence[dt.date], rebuilt: Path | None
) -> list[str]:
    """Warn about each cube an earlier run left in ``out`` (other than ``rebuilt``, this run's)
    when this run wrote or removed outputs (``changed`` dates): it no longer matches them.
    Returns the warnings (the run's notes)."""
    notes: list[str] = []
    if not changed:
        return notes
    for fmt in ("zarr", "netcdf"):
        cube = cube_file(out, prefix, fmt)
        if cube == rebuilt or not cube.exists() or not is_series_cube(cube):
            continue  # a file of another's under the name says nothing about the outputs
        days = sorted(changed)
        more = f" and {len(days) - 1} more" if len(days) > 1 else ""
        note = (
            f"{cube.name} is from an earlier run and is now out of date: this run wrote or "
            f"removed the output of {days[0]}{more}, which the cube does not show. Run again "
            f"with --cube {fmt} to rebuild it (outputs that are unchanged are kept)."
        )
        log.warning("series: %s", note)
        notes.append(note)
    return notes


#: Side (pixels) of the cube's chunks, and of the blocks read from each output to write them.
CUBE_CHUNK = 512


class _ImageChunks:
    """A ``(1, band, y, x)`` float32 view of an output file for ``dask.array.from_array``:
    each chunk is one windowed read (physical units, NaN where invalid)."""

    def __init__(self, path: Path, count: int, shape: tuple[int, int]) -> None:
        self.path = path
        self.shape = (1, count, *shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 4

    def __getitem__(self, key: Any) -> np.ndarray:
        t, b, ys, xs = (
            k.indices(n) if isinstance(k, slice) else (k, k + 1, 1) for k, n in zip(key, self.shape)
        )
        window = Window(xs[0], ys[0], xs[1] - xs[0], ys[1] - ys[0])
        block = FileSource(str(self.path)).read(window)[None]
        return block[slice(0, t[1] - t[0]), slice(*b)][..., :: ys[2], :: xs[2]]


@contextlib.contextmanager
def _writers_stopped() -> Iterator[None]:
    """Make sure nothing writes into the partial cube once the write has failed or was
    interrupted, before atomic_path removes it: Ctrl-C stops the main thread only, and a
    chunk or metadata file written after the removal brings the store back, left behind.

    dask reads and writes in a pool of this write's own, waited for; zarr finishes its own
    event loop's writes (those the main thread was waiting for when the signal came)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(os.cpu_count() or 1)  # the size of dask's default pool
    try:
        import dask.config

        uses: Any = dask.config.set(pool=pool)
    except ImportError:
        uses = contextlib.nullcontext()
    try:
        with uses:
            yield
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        _zarr_idle()
        raise
    finally:
        pool.shutdown(wait=True)


def _zarr_idle(timeout: float = 10.0) -> None:
    """Wait (``timeout`` s at most) for the writes zarr's event loop thread still runs."""
    sync_module = sys.modules.get("zarr.core.sync")  # zarr 3; never imported just for this
    if sync_module is None:
        return

    async def others() -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    with contextlib.suppress(Exception):  # never hides the error that stopped the write
        sync_module.sync(others())


def _cube_encoding(dtype: str, int16_scale: float, georeferenced: bool) -> dict[str, Any]:
    """How the cube's ``fused`` variable is stored (int16 with its scale, or float32)."""
    enc: dict[str, Any]
    if dtype == "int16":
        enc = {
            "dtype": "int16",
            "scale_factor": np.float32(int16_scale),  # decodes to float32, not float64
            "_FillValue": INT16_NODATA,
        }
    else:
        enc = {"dtype": "float32", "_FillValue": np.float32(np.nan)}
    if georeferenced:
        enc["grid_mapping"] = "spatial_ref"  # an encoding given to the writer replaces rio's
    return enc


def write_cube(
    items: Sequence[tuple[dt.date, Path, str]],
    path: Path,
    fmt: str,
    *,
    grid: Grid,
    band_names: Sequence[str],
    dtype: str,
    int16_scale: float,
    attrs: dict[str, Any],
) -> Path:
    """Stack the outputs ``(date, path, status)`` into one cube with a ``time`` axis.

    Variable ``fused`` ``(time, band, y, x)`` in physical units (int16 outputs are stored as
    int16 with ``scale_factor`` and ``_FillValue``, decoded on read), a ``status`` coordinate
    per date, CRS as a CF ``spatial_ref``. With dask installed each output is read chunk by
    chunk (``CUBE_CHUNK`` px) as the cube is written (memory: a few chunks); without it, one
    image per date (Zarr, written one date at a time) or all of them (NetCDF).
    Written under a temporary name and renamed into place; a file or folder at ``path``
    that is not a cube of this command's (:func:`check_cube`) stops it before any read.
    """
    check_cube(path)
    import rioxarray  # noqa: F401
    import xarray as xr

    attrs = {**attrs, "source": CUBE_SOURCE}  # the mark the next run recognises it by

    engine = check_cube_backend(fmt)
    t = grid.transform
    xs, ys = grid.pixel_centers()
    enc = _cube_encoding(dtype, int16_scale, grid.crs is not None)

    def one(day: dt.date, p: Path, status: str, data: Any) -> Any:
        da = xr.DataArray(
            data,
            dims=("time", "band", "y", "x"),
            coords={
                "time": [np.datetime64(day, "ns")],
                "band": list(band_names),
                "y": ys,
                "x": xs,
            },
            name="fused",
        )
        ds = da.to_dataset()
        # CF flags rather than strings: every backend stores small integers the same way
        ds["status"] = xr.DataArray(
            np.array([STATUSES.index(status) + 1], np.int8),
            dims=("time",),
            attrs={
                "flag_values": np.arange(1, len(STATUSES) + 1, dtype=np.int8),
                "flag_meanings": " ".join(x.replace("-", "_") for x in STATUSES),
            },
        )
        ds["fused"].attrs["long_name"] = "fused fine image"
        if grid.crs is not None:
            # CF georeferencing GDAL and xarray read: spatial_ref (CRS + GeoTransform), the
            # variable's grid_mapping, x/y as projection coordinates
            ds = ds.rio.write_crs(grid.crs).rio.write_transform(t).rio.write_coordinate_system()
        return ds

    def read(p: Path) -> np.ndarray:
        return FileSource(str(p)).read()[None]

    chunks = (1, len(band_names), min(CUBE_CHUNK, grid.height), min(CUBE_CHUNK, grid.width))

    def lazy(p: Path) -> Any:
        """The output as a dask array read chunk by chunk (memory: a few chunks, not one
        image per date); the whole image when dask is not installed."""
        try:
            import dask.array as dsa
        except ImportError:
            return read(p)
        meta = np.empty((0, 0, 0, 0), np.float32)  # no empty read for dask's metadata
        return dsa.from_array(
            _ImageChunks(p, len(band_names), grid.shape), chunks=chunks, meta=meta
        )

    # coordinates are never missing: no _FillValue (CF)
    plain = {name: {"_FillValue": None} for name in ("x", "y", "band", "time")}
    suffix = ".zarr" if fmt == "zarr" else ".nc"
    # the pool is waited for before atomic_path removes the partial store (innermost exits first)
    with atomic_path(path, overwrite=True, suffix=suffix) as tmp, _writers_stopped():
        if fmt == "zarr":
            for i, (day, p, status) in enumerate(items):
                ds = one(day, p, status, lazy(p))
                ds.attrs.update(attrs)
                if i == 0:
                    # Zarr format 2: strings (band names) and readers beyond zarr-python
                    ds.to_zarr(
                        tmp,
                        mode="w",
                        encoding={"fused": {**enc, "chunks": chunks}, **plain},
                        zarr_format=2,
                        consolidated=True,
                    )
                else:
                    ds.to_zarr(tmp, append_dim="time", zarr_format=2, consolidated=True)
        else:
            arrays = [lazy(p) for _, p, _ in items]
            ds = xr.concat([one(day, p, s, a) for (day, p, s), a in zip(items, arrays)], dim="time")
            ds.attrs.update(attrs)
            # written in a folder of its own, removed on failure: netCDF4 kept a failed
            # write's file open (a full disk) and wrote it back when it closed, later, at
            # its name; in a removed folder it cannot reappear
            work = partial_name(path, ".dir")
            work.mkdir()
            try:
                ds.to_netcdf(work / path.name, engine=engine, encoding={"fused": enc, **plain})
                os.replace(work / path.name, tmp)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return path
