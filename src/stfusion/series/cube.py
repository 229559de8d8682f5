"""The cube of a series run (``--cube zarr|netcdf``): every output with a time axis.

Written from the per-date GeoTIFFs once the dates are done, chunk by chunk with dask (memory:
a few chunks), under a temporary name and renamed into place (:func:`stfusion.io.atomic_path`).
A cube is recognised by its global ``source`` attribute (:data:`CUBE_SOURCE`): a file of
another's at its name is never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

import stfusion
from stfusion.errors import InvalidParameterError, MissingDependencyError, OutputExistsError
from stfusion.io import FileSource, Grid, atomic_path, partial_name, write_errors
from stfusion.series.config import SeriesConfig
from stfusion.series.outputs import INT16_NODATA, check_summary, quality_file, read_tags
from stfusion.series.quality import BANDS as QUALITY_BANDS
from stfusion.series.quality import FLAGS as QUALITY_FLAGS
from stfusion.series.quality import UNITS as QUALITY_UNITS
from stfusion.series.quality import quality_problem
from stfusion.series.records import OFF_STEP_REASON, OUTSIDE_REASON, STATUSES, DateRecord

log = logging.getLogger("stfusion")


#: The first xarray whose ``to_zarr`` takes ``zarr_format`` (the cube is written in format 2).
ZARR_XARRAY = (2024, 10)


def _version(text: str) -> tuple[int, ...]:
    """The leading numbers of a version string (``2024.10.0`` -> (2024, 10, 0))."""
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


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
        import xarray

        if _version(xarray.__version__) < ZARR_XARRAY:  # its to_zarr has no zarr_format
            raise MissingDependencyError(
                f"--cube zarr needs xarray {'.'.join(map(str, ZARR_XARRAY))} or later (this "
                f"is {xarray.__version__}): pip install 'stfusion[cube]' (or pip install -U "
                "xarray), or use --cube netcdf."
            )
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


def check_not_foreign(out: Path, prefix: str, cube: str | None, grid: Grid | None = None) -> None:
    """Before any work: stop when summary.csv, or the cube asked for, is a file of another's
    (:func:`check_summary`, :func:`check_cube`), or ``grid`` is rotated, rather than fail at
    the end of the run."""
    check_summary(out / "summary.csv")
    if cube is not None:
        check_cube(cube_file(out, prefix, cube))
    t = grid.transform if grid is not None else None
    if cube is not None and t is not None and (t.b or t.d):
        raise InvalidParameterError(
            f"--cube {cube}: the fine grid is rotated (transform {tuple(t)[:6]}), and a cube's "
            "x and y coordinates are one-dimensional: GDAL would read it north-up (a trial: "
            "2.2 km off at the far corner of 250 px). Run without --cube (each date's GeoTIFF "
            "keeps the rotation), or warp the fine images north-up first (gdalwarp)."
        )


def cube_items(records: Sequence[DateRecord], out: Path) -> list[tuple[dt.date, Path, str]]:
    """``(date, output, status)`` of the predicted and gap-filled dates, in date order."""
    return [
        (r.date, out / r.output, r.status)
        for r in sorted(records, key=lambda r: r.date)
        if r.status in ("predicted", "gap-filled") and r.output
    ]


def cube_quality(
    items: list[tuple[dt.date, Path, str]], grid: Grid, notes: list[str], listed: set[dt.date]
) -> list[Path | None]:
    """Each cube date's quality layer, None (NaN in the cube, and a note) where it has no
    current one: a date outside --date-range kept from a run without --quality. Only the
    ``listed`` dates (not computed nor kept by this run, whose layers --quality verified)
    are checked here."""
    layers: list[Path | None] = []
    for day, path, _ in items:
        current = day not in listed or not quality_problem(path, read_tags(path), grid)
        layers.append(quality_file(path) if current else None)
    missing = [d.isoformat() for (d, _, _), q in zip(items, layers) if q is None]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        notes.append(
            f"{len(missing)} date(s) of the cube have no current quality layer ({missing[0]}"
            f"{more}: kept from a run without --quality): their quality is NaN in the cube. "
            "Run with --quality over their dates to add it."
        )
    return layers


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


def _chunk_side(grid: Grid) -> tuple[int, int]:
    return (min(CUBE_CHUNK, grid.height), min(CUBE_CHUNK, grid.width))


def _lazy_image(p: Path | None, count: int, grid: Grid) -> Any:
    """The ``(1, count, y, x)`` image at ``p`` (None: all NaN) as a dask array read chunk by
    chunk (memory: a few chunks, not one image per date); the whole image without dask."""
    try:
        import dask.array as dsa
    except ImportError:
        if p is None:
            return np.full((1, count, *grid.shape), np.nan, np.float32)
        return FileSource(str(p)).read()[None]
    chunks = (1, count, *_chunk_side(grid))
    if p is None:
        return dsa.full((1, count, *grid.shape), np.nan, np.float32, chunks=chunks)
    meta = np.empty((0, 0, 0, 0), np.float32)  # no empty read for dask's metadata
    return dsa.from_array(_ImageChunks(p, count, grid.shape), chunks=chunks, meta=meta)


def _date_dataset(
    day: dt.date, status: str, data: Any, quality: Any, grid: Grid, band_names: Sequence[str]
) -> Any:
    """One date of the cube: ``fused`` (``data``), its ``status`` and, unless ``quality`` is
    None, its ``quality`` layer; georeferenced as CF."""
    import rioxarray  # noqa: F401
    import xarray as xr

    xs, ys = grid.pixel_centers()
    da = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={"time": [np.datetime64(day, "ns")], "band": list(band_names), "y": ys, "x": xs},
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
    if quality is not None:
        # CF flags are per variable: each flag band's as "<band>_flag_..." attributes
        flags = {
            f"{band}_{kind}": np.array(values, np.int8)
            for band, (kind, values, _) in QUALITY_FLAGS.items()
        } | {f"{band}_flag_meanings": words for band, (_, _, words) in QUALITY_FLAGS.items()}
        ds["quality"] = xr.DataArray(
            quality,
            dims=("time", "quality_band", "y", "x"),
            coords={
                "quality_band": list(QUALITY_BANDS),
                "quality_units": ("quality_band", list(QUALITY_UNITS)),
            },
            attrs={"long_name": "quality layer (docs/commands/series.md)", **flags},
        )
    if grid.crs is not None:
        # CF georeferencing GDAL and xarray read: spatial_ref (CRS + GeoTransform), the
        # variable's grid_mapping, x/y as projection coordinates
        ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
        ds = ds.rio.write_coordinate_system()
    return ds


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
    quality: Sequence[Path | None] | None = None,
) -> Path:
    """Stack the outputs ``(date, path, status)`` into one cube with a ``time`` axis.

    Variable ``fused`` ``(time, band, y, x)`` in physical units (int16 outputs are stored as
    int16 with ``scale_factor`` and ``_FillValue``, decoded on read), a ``status`` coordinate
    per date, CRS as a CF ``spatial_ref``. With dask installed each output is read chunk by
    chunk (``CUBE_CHUNK`` px) as the cube is written (memory: a few chunks); without it, one
    image per date (Zarr, written one date at a time) or all of them (NetCDF).
    ``quality``: each date's quality layer (None: the date has none; NaN in the cube), as
    variable ``quality`` ``(time, quality_band, y, x)``; None: no such variable.
    Written under a temporary name and renamed into place; a file or folder at ``path``
    that is not a cube of this command's (:func:`check_cube`) stops it before any read.
    """
    check_cube(path)
    import rioxarray  # noqa: F401
    import xarray as xr

    # source: the mark the next run recognises it by; Conventions: CF, as tools look for it
    attrs = {**attrs, "source": CUBE_SOURCE, "Conventions": "CF-1.8"}

    engine = check_cube_backend(fmt)
    enc = _cube_encoding(dtype, int16_scale, grid.crs is not None)

    side = _chunk_side(grid)

    def dataset(i: int) -> Any:
        day, p, status = items[i]
        q = None if quality is None else _lazy_image(quality[i], len(QUALITY_BANDS), grid)
        data = _lazy_image(p, len(band_names), grid)
        return _date_dataset(day, status, data, q, grid, band_names)

    # one chunk: a date, every band, a square of pixels (Zarr's chunks, NetCDF-4's too)
    by_var = {"fused": (1, len(band_names), *side), "quality": (1, len(QUALITY_BANDS), *side)}
    qenc = {"dtype": "float32", "_FillValue": np.float32(np.nan)}
    if grid.crs is not None:
        qenc["grid_mapping"] = "spatial_ref"
    encoding = {"fused": enc} | ({"quality": qenc} if quality is not None else {})
    if engine in ("netcdf4", "h5netcdf"):  # NetCDF-4: deflate in the Zarr cube's chunks
        # (uncompressed, 3 int16 dates of 1000 x 1000 x 6 with quality took 92 MB, 25 as COGs)
        for name in encoding:
            encoding[name] |= {"zlib": True, "complevel": 4, "chunksizes": by_var[name]}

    # coordinates are never missing: no _FillValue (CF)
    names = ("x", "y", "band", "time") + (("quality_band",) if quality is not None else ())
    plain = {name: {"_FillValue": None} for name in names}
    suffix = ".zarr" if fmt == "zarr" else ".nc"
    # the pool is waited for before atomic_path removes the partial store (innermost exits first)
    with atomic_path(path, overwrite=True, suffix=suffix) as tmp, _writers_stopped():
        if fmt == "zarr":
            for i in range(len(items)):
                ds = dataset(i)
                ds.attrs.update(attrs)
                if i == 0:
                    # Zarr format 2: strings (band names) and readers beyond zarr-python
                    ds.to_zarr(
                        tmp,
                        mode="w",
                        encoding={
                            **{k: {**e, "chunks": by_var[k]} for k, e in encoding.items()},
                            **plain,
                        },
                        zarr_format=2,
                        consolidated=True,
                    )
                else:
                    ds.to_zarr(tmp, append_dim="time", zarr_format=2, consolidated=True)
        else:
            ds = xr.concat([dataset(i) for i in range(len(items))], dim="time")
            ds.attrs.update(attrs)
            # written in a folder of its own, removed on failure: netCDF4 kept a failed
            # write's file open (a full disk) and wrote it back when it closed, later, at
            # its name; in a removed folder it cannot reappear
            work = partial_name(path, ".dir")
            work.mkdir()
            try:
                ds.to_netcdf(
                    work / path.name,
                    engine=engine,
                    encoding={**encoding, **plain},
                )
                os.replace(work / path.name, tmp)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return path


def write_series_cube(
    records: list[DateRecord],
    out: Path,
    cfg: SeriesConfig,
    grid: Grid,
    band_names: Sequence[str],
    method: str,
    settings: dict[str, Any],
    notes: list[str],
) -> Path | None:
    """Stack the run's predicted and gap-filled dates into its cube (None, and a note, if
    there is none)."""
    assert cfg.cube is not None
    done = cube_items(records, out)
    if not done:
        notes.append("no date was predicted: no cube written")
        return None
    path = cube_file(out, cfg.prefix, cfg.cube)
    listed = {r.date for r in records if r.reason.startswith((OUTSIDE_REASON, OFF_STEP_REASON))}
    quality = cube_quality(done, grid, notes, listed) if cfg.quality else None
    with write_errors(path, also=(RuntimeError,)):  # netCDF4's error on a full disk
        return write_cube(
            done,
            path,
            cfg.cube,
            grid=grid,
            band_names=band_names,
            dtype=cfg.dtype,
            int16_scale=cfg.int16_scale,
            attrs={
                "stfusion_version": stfusion.__version__,
                "method": method,
                "params": json.dumps(settings["params"], default=str),
            },
            quality=quality,
        )
