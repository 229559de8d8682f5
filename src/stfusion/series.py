"""Fusing a whole season: one fine image for every coarse date, through clouds.

:func:`run_series` is ``stfusion series``. Images are dated by their names
(:mod:`stfusion.dates`) or a catalog; masks (:mod:`stfusion.qa`) turn cloudy pixels into NaN,
which every method treats as invalid.

Rules (docs/commands/series.md has the user's version):

- A *pair* is a fine date that also has a coarse image. A pair is *clear* when both its fine
  and its coarse image have a valid fraction (pixels valid in every band, after masking)
  of at least ``min_valid``.
- Every coarse date in the date range is a *target*; a target whose coarse image is below
  ``min_valid`` is skipped. The range limits the targets, never the pairs.
- Pairs for a target (never the target's own pair): the ``pairs_per_side`` nearest clear pairs
  before it and after it. Methods that take several pairs (``tags.max_pairs`` None or > 1,
  e.g. STARFM) are fitted on them together, up to ``max_pairs`` (nearest first, alternating sides);
  two-pair methods (ESTARFM) get the nearest before and the nearest after. Where one side has
  none, the nearest pairs on the other side are used (extrapolation, noted in the summary).
  Single-pair methods (``tags.max_pairs == 1``: Fit-FC, FSDAF) predict from each chosen pair
  separately and the predictions are blended with temporal weights ``w_i = (1/d_i) / sum_j
  (1/d_j)``, ``d`` the distance in days, renormalised per pixel over the predictions valid
  there; so the series moves smoothly from one base pair to the next instead of jumping.
- A target that is also a fine date is *gap-filled*: the fine image where it is valid, the
  prediction from the other pairs where it is masked or NaN.
- One estimator is fitted per set of pairs and reused for every target that uses that set.

Outputs: ``<prefix>_YYYY-MM-DD.tif`` (Cloud Optimized GeoTIFF, float32 with NaN nodata or int16
with a scale factor and nodata -32768; band names; provenance tags), ``summary.csv``
(rewritten after every date), and optionally a Zarr or NetCDF cube with a time axis. Every
file is written to a temporary name and renamed into place, so an interrupted run leaves only
complete files, and running again keeps an output only when it verifies and was made from the
same input files (path, size, mtime), settings and stfusion version; otherwise it is computed
again (or, for other settings, the run refuses). A run holds a lock file in the output folder
while it writes there; leftovers of killed runs are removed by the next run.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

import stfusion
from stfusion.dates import (
    Acquisition,
    acquisitions_from,
    by_date,
    in_range,
    parse_date_range,
    read_catalog,
)
from stfusion.errors import (
    InputFileError,
    InvalidParameterError,
    MissingDependencyError,
    OutputExistsError,
    STFusionError,
)
from stfusion.io import (
    PARTIAL_MARK,
    FileSource,
    Grid,
    Scaling,
    Source,
    atomic_path,
    copy_as_cog,
    partial_name,
    pid_alive,
    remove_stale_partials,
)
from stfusion.methods import FusionMethod, get_method
from stfusion.qa import MASK_KINDS, MaskedSource, check_flags
from stfusion.scene import _align, check_scales, open_scene

log = logging.getLogger("stfusion")

STATUSES = ("predicted", "gap-filled", "skipped", "failed")
DTYPES = ("float32", "int16")
CUBE_FORMATS = ("zarr", "netcdf")
INT16_NODATA = -32768
#: Pixels sampled to measure an image's valid fraction (all pixels of smaller images).
VALID_SAMPLE = 1 << 16
#: Fitted estimators kept for reuse; targets run in date order, so a few suffice.
ESTIMATOR_CACHE = 4
SUMMARY_COLUMNS = (
    "date",
    "status",
    "method",
    "pairs",
    "weights",
    "valid_fraction",
    "coarse_valid",
    "fine_valid",
    "seconds",
    "output",
    "reason",
)

ProgressCallback = Callable[[int, int, "DateRecord"], None]


@dataclass
class DateRecord:
    """What happened at one date (one row of summary.csv)."""

    date: dt.date
    status: str = "skipped"
    method: str = ""
    pairs: list[dt.date] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    valid_fraction: float | None = None
    coarse_valid: float | None = None
    fine_valid: float | None = None
    seconds: float = 0.0
    output: str = ""
    reason: str = ""

    def row(self) -> dict[str, str]:
        def frac(v: float | None) -> str:
            return "" if v is None else f"{v:.4f}"

        return {
            "date": self.date.isoformat(),
            "status": self.status,
            "method": self.method,
            "pairs": " ".join(d.isoformat() for d in self.pairs),
            "weights": " ".join(f"{w:.4f}" for w in self.weights),
            "valid_fraction": frac(self.valid_fraction),
            "coarse_valid": frac(self.coarse_valid),
            "fine_valid": frac(self.fine_valid),
            "seconds": f"{self.seconds:.2f}",
            "output": self.output,
            "reason": self.reason,
        }


@dataclass
class SeriesResult:
    """Everything ``run_series`` did: one record per date, where the outputs are."""

    records: list[DateRecord]
    out_dir: Path
    summary_path: Path
    cube_path: Path | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.records) for s in STATUSES}

    @property
    def failed(self) -> list[DateRecord]:
        return [r for r in self.records if r.status == "failed"]


@dataclass
class _Image:
    """One input image, opened on the fine grid (masked), or the reason it could not be."""

    acq: Acquisition
    source: Source | None = None
    error: str = ""
    valid: float | None = None


# ------------------------------------------------------------------------------- choosing


def choose_pairs(
    target: dt.date,
    clear: Sequence[dt.date],
    min_pairs: int,
    max_pairs: int | None,
    per_side: int,
) -> tuple[list[list[dt.date]], str]:
    """The pair sets (one per prediction to blend) for ``target``, and a note.

    ``clear``: dates of the clear pairs (the target's own date is ignored). Single-pair
    methods get one set per chosen pair; all others one set of up to ``max_pairs`` pairs,
    nearest first, alternating before and after.
    """
    before = sorted((d for d in clear if d < target), reverse=True)
    after = sorted(d for d in clear if d > target)
    if max_pairs == 1:
        sets = [[d] for d in sorted(before[:per_side] + after[:per_side])]
    else:
        limit = 2 * per_side if max_pairs is None else max_pairs
        chosen: list[dt.date] = []
        for i in range(per_side):
            for side in (before, after):
                if i < len(side) and len(chosen) < limit:
                    chosen.append(side[i])
        if len(chosen) < min_pairs:  # one side is short: the nearest others instead
            rest = sorted(set(before + after) - set(chosen), key=lambda d: abs((d - target).days))
            chosen += rest[: min_pairs - len(chosen)]
        if chosen and len(chosen) < min_pairs:
            return [], f"the method needs {min_pairs} clear pairs, {len(chosen)} available"
        sets = [sorted(chosen)] if chosen else []
    if not sets:
        return [], "no clear pair"
    used = [d for group in sets for d in group]
    one_sided = not (any(d < target for d in used) and any(d > target for d in used))
    return sets, "clear pairs on one side only (extrapolated)" if one_sided else ""


def temporal_weights(target: dt.date, dates: Sequence[dt.date]) -> list[float]:
    """``(1/d_i) / sum_j (1/d_j)`` with ``d`` the distance in days (at least 1)."""
    inv = [1.0 / max(abs((d - target).days), 1) for d in dates]
    total = sum(inv)
    return [v / total for v in inv]


# -------------------------------------------------------------------------- output files


def output_path(out_dir: Path, prefix: str, day: dt.date) -> Path:
    return out_dir / f"{prefix}_{day.isoformat()}.tif"


def _settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def verify_output(
    path: Path, grid: Grid, count: int, dtype: str, read_data: bool = True
) -> tuple[str, dict[str, str]]:
    """``"ok"``, ``"corrupt"`` (unreadable, truncated, wrong shape/bands, incomplete) or
    ``"foreign"`` (a sound file that ``stfusion series`` did not write), and the file's tags.

    ``read_data``: also decode every pixel. A truncated file often opens and may even lose
    its tags; only reading the pixels tells it from a foreign file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                tags = ds.tags()
                if read_data:
                    step = max(1, (1 << 22) // max(ds.width * ds.count, 1))
                    for r in range(0, ds.height, step):
                        ds.read(window=Window(0, r, ds.width, min(step, ds.height - r)))
                if "STFUSION_SERIES_DATE" not in tags:
                    return "foreign", tags
                if (
                    tags.get("STFUSION_SERIES_COMPLETE") != "1"
                    or (ds.height, ds.width) != grid.shape
                    or ds.count != count
                    or ds.dtypes[0] != dtype
                ):
                    return "corrupt", tags
                return "ok", tags
    except Exception:  # any read failure means the file is damaged
        return "corrupt", {}


def _write_summary(path: Path, records: Sequence[DateRecord]) -> None:
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


# ------------------------------------------------------------- lock, leftovers, input keys

#: Held in the output folder while a run writes there (JSON: pid, host, started, pid_start).
LOCK_NAME = ".stfusion-series.lock"
#: The run's scratch folder is ``partial_name(out / SCRATCH_NAME)``: hidden, named with the PID.
SCRATCH_NAME = "stfusion-series"
#: An unreadable (empty) lock older than this was left by a process killed while creating it.
LOCK_EMPTY_GRACE_S = 60.0
_PARTIAL_RE = re.compile(r"^\.(?P<final>.+)\.(?P<pid>\d+)-[0-9a-f]+" + re.escape(PARTIAL_MARK))
_LEGACY_SCRATCH_RE = re.compile(r"^\.stfusion-series-[A-Za-z0-9_]{8}$")


class OutDirLockedError(STFusionError, RuntimeError):
    """Another ``stfusion series`` run holds the output folder's lock."""

    def __init__(self, lock: Path, holder: dict[str, Any]) -> None:
        self.lock, self.holder = lock, holder
        if holder.get("pid"):
            who = (
                f"process {holder['pid']} on {holder.get('host', '?')}, started "
                f"{holder.get('started', '?')}"
            )
        else:
            who = "a process that has not written its name into the lock yet"
        super().__init__(
            f"{lock.parent}: another stfusion series run is writing into this folder ({who}; "
            f"lock file {lock}). Wait for it to finish or choose another --out-dir; if no such "
            f"process is running, delete {lock}."
        )


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux ``/proc``), to tell a reused PID; else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, starttime


def _read_lock(lock: Path) -> dict[str, Any] | None:
    """The lock's contents; ``{}`` if unreadable or half-written; None if it is gone."""
    try:
        text = lock.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _lock_is_stale(lock: Path, holder: dict[str, Any]) -> str:
    """Why the lock's process is gone (``""``: it may be alive, leave the lock alone)."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        try:
            age = time.time() - lock.stat().st_mtime
        except OSError:
            return ""
        return f"empty lock {age:.0f} s old" if age > LOCK_EMPTY_GRACE_S else ""
    if holder.get("host") != socket.gethostname():
        return ""  # another machine's process: cannot be checked from here
    if not pid_alive(pid):
        return f"process {pid} no longer exists"
    start = holder.get("pid_start")
    now = _process_start(pid)
    if start is not None and now is not None and start != now:
        return f"process {pid} no longer exists (its PID now belongs to another process)"
    return ""


def acquire_lock(out: Path) -> Path:
    """Create ``out/LOCK_NAME`` (O_CREAT | O_EXCL) holding this process's PID, host and start.

    A lock of a dead process on this host is removed (with a warning) and taken over; a live
    one raises :class:`OutDirLockedError`. Other write failures mean the folder is not writable.
    """
    lock = out / LOCK_NAME
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "pid_start": _process_start(os.getpid()),
        "command": "stfusion series",
    }
    holder: dict[str, Any] | None = {}
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            holder = _read_lock(lock)
            if holder is None:
                continue  # released meanwhile: try again
            why = _lock_is_stale(lock, holder)
            if not why:
                raise OutDirLockedError(lock, holder) from None
            _remove_stale_lock(lock, holder, why)
            continue
        except OSError as exc:
            raise InputFileError(
                f"{out}: cannot write into the output folder ({exc.strerror or exc}). Choose a "
                "writable --out-dir."
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                lock.unlink()
            if isinstance(exc, OSError):
                raise InputFileError(
                    f"{out}: cannot write into the output folder ({exc.strerror or exc}). "
                    "Choose a writable --out-dir."
                ) from None
            raise
        return lock
    raise OutDirLockedError(lock, holder or {})


def _remove_stale_lock(lock: Path, holder: dict[str, Any], why: str) -> None:
    """Move the stale lock aside and delete it, unless it changed since it was judged stale."""
    grave = partial_name(lock, ".stale")
    try:
        os.rename(lock, grave)
    except FileNotFoundError:
        return  # another run took it over first
    if _read_lock(grave) != holder:  # a live run's new lock: put it back
        with contextlib.suppress(OSError):
            os.link(grave, lock)
        with contextlib.suppress(OSError):
            grave.unlink()
        return
    with contextlib.suppress(OSError):
        grave.unlink()
    log.warning(
        "series: removed the stale lock %s (%s; it was written at %s)",
        lock,
        why,
        holder.get("started", "?"),
    )


def release_lock(lock: Path) -> None:
    """Remove the lock if it is still this process's."""
    holder = _read_lock(lock)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        with contextlib.suppress(OSError):
            lock.unlink()


def remove_leftovers(out: Path) -> list[Path]:
    """Remove temporary files and folders that dead processes left in ``out``.

    PID-named partials (:func:`io.partial_name`: scratch folders, outputs, summary, cube,
    stale locks) whose process no longer exists, and unnamed ``.stfusion-series-XXXXXXXX``
    scratch folders of older versions (call only while holding the lock).
    """
    removed: list[Path] = []
    finals: set[str] = set()
    try:
        entries = list(out.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _PARTIAL_RE.match(entry.name)
        if m is not None:
            finals.add(m.group("final"))
        elif _LEGACY_SCRATCH_RE.match(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                log.info("removed %s, left by an interrupted series run", entry)
                removed.append(entry)
    for name in sorted(finals):
        removed += remove_stale_partials(out / name)
    return removed


def file_identity(path: str | None) -> list[Any] | None:
    """``[resolved path, size, mtime_ns]`` (size and mtime None when the file is missing)."""
    if not path:
        return None
    p = Path(path)
    try:
        st = p.stat()
        return [str(p.resolve()), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(p.absolute()), None, None]


def _inputs_key(identities: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(identities).encode()).hexdigest()[:16]


def _changed_inputs(old: Any, new: Sequence[Any]) -> str:
    """A short account of what differs between two identity lists."""
    if not isinstance(old, list):
        return "the earlier output records no input files"
    was = {x[0]: x for x in old if isinstance(x, list) and x}
    now = {x[0]: x for x in new if x}
    changed = [Path(p).name for p in now if p in was and was[p] != now[p]]
    added = [Path(p).name for p in now if p not in was]
    gone = [Path(p).name for p in was if p not in now]
    parts = []
    for label, names in (("modified", changed), ("new", added), ("no longer used", gone)):
        if names:
            more = f" and {len(names) - 2} more" if len(names) > 2 else ""
            parts.append(f"{label}: {', '.join(names[:2])}{more}")
    return "; ".join(parts) or "input files differ"


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
    per date, CRS as a CF ``spatial_ref``. Zarr is written one date at a time (memory: one
    image); NetCDF is written from a dask graph when dask is installed, else in memory.
    Written under a temporary name and renamed into place.
    """
    import rioxarray  # noqa: F401
    import xarray as xr

    engine = check_cube_backend(fmt)
    t = grid.transform
    xs = t.c + t.a * (np.arange(grid.width) + 0.5)
    ys = t.f + t.e * (np.arange(grid.height) + 0.5)
    enc: dict[str, Any]
    if dtype == "int16":
        enc = {
            "dtype": "int16",
            "scale_factor": np.float32(int16_scale),  # decodes to float32, not float64
            "_FillValue": INT16_NODATA,
        }
    else:
        enc = {"dtype": "float32", "_FillValue": np.float32(np.nan)}

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
        ds["fused"].attrs.update({"long_name": "fused fine image", "grid_mapping": "spatial_ref"})
        if grid.crs is not None:
            ds = ds.rio.write_crs(grid.crs).rio.write_transform(t)
        return ds

    def read(p: Path) -> np.ndarray:
        return FileSource(str(p)).read()[None]

    suffix = ".zarr" if fmt == "zarr" else ".nc"
    with atomic_path(path, overwrite=True, suffix=suffix) as tmp:
        if fmt == "zarr":
            for i, (day, p, status) in enumerate(items):
                ds = one(day, p, status, read(p))
                ds.attrs.update(attrs)
                if i == 0:
                    chunks = (1, len(band_names), min(512, grid.height), min(512, grid.width))
                    # Zarr format 2: strings (band names) and readers beyond zarr-python
                    ds.to_zarr(
                        tmp,
                        mode="w",
                        encoding={"fused": {**enc, "chunks": chunks}},
                        zarr_format=2,
                        consolidated=True,
                    )
                else:
                    ds.to_zarr(tmp, append_dim="time", zarr_format=2, consolidated=True)
        else:
            try:
                import dask
                import dask.array as dsa

                arrays = [
                    dsa.from_delayed(
                        dask.delayed(read)(p), (1, len(band_names), *grid.shape), dtype=np.float32
                    )
                    for _, p, _ in items
                ]
            except ImportError:
                arrays = [read(p) for _, p, _ in items]
            ds = xr.concat([one(day, p, s, a) for (day, p, s), a in zip(items, arrays)], dim="time")
            ds.attrs.update(attrs)
            ds.to_netcdf(tmp, engine=engine, encoding={"fused": enc})
    return path


# ----------------------------------------------------------------------------- the runner


def _valid_fraction(source: Source) -> float:
    s = source.sample(VALID_SAMPLE)
    if s.size == 0:
        return 0.0
    return float(np.isfinite(s).all(axis=0).mean())


def _fully_valid(source: Source, rows: int = 256) -> bool:
    g = source.grid
    for r in range(0, g.height, rows):
        block = source.read(Window(0, r, g.width, min(rows, g.height - r)))
        if not np.isfinite(block).all():
            return False
    return True


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text if isinstance(exc, STFusionError) else f"{type(exc).__name__}: {text}"


def _mask_map(specs: Sequence[str], role: str) -> dict[dt.date, str]:
    masks = by_date(acquisitions_from(specs, role), f"{role} mask") if specs else {}
    return {d: a.path for d, a in masks.items()}


@dataclass
class _Series:
    """State of one run: the inputs, their opened images, the fitted estimators."""

    cls: type[FusionMethod]
    kwargs: dict[str, Any]
    ratio: float | None
    fine: dict[dt.date, Acquisition]
    coarse: dict[dt.date, Acquisition]
    ref: FileSource
    fine_scaling: Scaling
    coarse_scaling: Scaling
    resampling: str
    fine_mask: tuple[str, tuple[str, ...]]
    coarse_mask: tuple[str, tuple[str, ...]]
    min_valid: float
    pairs_per_side: int
    notes: list[str] = field(default_factory=list)
    images: dict[tuple[str, dt.date], _Image] = field(default_factory=dict)
    fallback: type[FusionMethod] | None = None
    aligned: int = 0  # coarse images reprojected onto the fine grid
    cache: OrderedDict[tuple[str, tuple[dt.date, ...]], FusionMethod] = field(
        default_factory=OrderedDict
    )
    _clear: list[dt.date] | None = None
    #: ``file_identity`` of every input path, taken before any was read
    identity: dict[str, list[Any] | None] = field(default_factory=dict)

    def inputs(self, day: dt.date) -> list[list[Any]]:
        """Identities of every file that can change the output at ``day``.

        The grid's fine image, the fine and coarse image (and masks) of every pair (their
        valid fractions decide which pairs are clear), the target's coarse image and the
        fine image at the target (gap-filling), with their masks.
        """
        paths = [str(self.ref.path)]
        for d in sorted(set(self.fine) & set(self.coarse)):
            for a in (self.fine[d], self.coarse[d]):
                paths += [a.path, a.mask]
        for a in (self.coarse.get(day), self.fine.get(day)):
            if a is not None:
                paths += [a.path, a.mask]
        seen: list[list[Any]] = []
        for p in dict.fromkeys(x for x in paths if x):
            ident = self.identity.get(p) or file_identity(p)
            if ident is not None:
                seen.append(ident)
        return seen

    @property
    def grid(self) -> Grid:
        return self.ref.grid

    @property
    def count(self) -> int:
        return self.ref.count

    @property
    def band_names(self) -> tuple[str, ...]:
        return self.ref.band_names

    def open_image(self, acq: Acquisition) -> _Image:
        """The image on the fine grid, masked, with its valid fraction (cached)."""
        key = (acq.sensor, acq.date)
        if key in self.images:
            return self.images[key]
        img = _Image(acq)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.source = self._source(acq)
                img.valid = _valid_fraction(img.source)
        except Exception as exc:  # a broken file is reported and the series goes on
            text = _describe_error(exc)
            img.source, img.error = None, text if acq.path in text else f"{acq.path}: {text}"
            log.warning("series: %s", img.error)
        self.images[key] = img
        return img

    def _source(self, acq: Acquisition) -> Source:
        if acq.sensor == "fine":
            src: Source = FileSource(acq.path, self.fine_scaling)
            if not src.grid.same_as(self.grid):
                raise InputFileError(
                    f"on another grid ({src.grid.describe()}) than the first fine image "
                    f"({self.grid.describe()}); all fine images must share one grid."
                )
            kind, flags = self.fine_mask
        else:
            native = FileSource(acq.path, self.coarse_scaling)
            src, ratio = _align(native, self.ref, self.resampling, [])
            if ratio is not None:
                self.aligned += 1
                if self.ratio is None:
                    self.ratio = ratio
            kind, flags = self.coarse_mask
        if src.count != self.count:
            raise InputFileError(
                f"{src.count} bands, but the fine images have {self.count}; every image needs "
                "the same bands in the same order (choose them with --fine-bands/--coarse-bands "
                "or a preset; docs/inputs.md)."
            )
        if acq.mask:
            src = MaskedSource(src, acq.mask, kind, flags or None)
        return src

    def clear_pairs(self) -> list[dt.date]:
        """Dates of the clear pairs: fine and coarse both at least ``min_valid`` valid."""
        if self._clear is None:
            clear = []
            for d in sorted(set(self.fine) & set(self.coarse)):
                f, c = self.open_image(self.fine[d]), self.open_image(self.coarse[d])
                if f.source is None or c.source is None:
                    continue
                assert f.valid is not None and c.valid is not None
                if f.valid >= self.min_valid and c.valid >= self.min_valid:
                    clear.append(d)
            self._clear = clear
        return self._clear

    def estimator(self, cls: type[FusionMethod], dates: tuple[dt.date, ...]) -> FusionMethod:
        """``cls`` fitted on the pairs of ``dates`` (fitted once per set, then reused).

        The main method gets the user's parameters, the fallback its defaults.
        """
        key = (cls.name, dates)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        pairs = []
        for d in dates:
            f, c = self.open_image(self.fine[d]).source, self.open_image(self.coarse[d]).source
            assert f is not None and c is not None
            pairs.append((f, c))
        scene = open_scene(pairs, ratio=self.ratio, check=False)
        est = cls(**self.kwargs) if cls is self.cls else cls()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            est.fit(scene)
        self.cache[key] = est
        while len(self.cache) > ESTIMATOR_CACHE:
            self.cache.popitem(last=False)
        return est


def _predict_component(
    est: FusionMethod, target: Source, out: Path, mem_limit_mb: float | None, workers: int
) -> Path:
    """One fusion prediction into a float32 GeoTIFF (the unit the resume test counts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.prepare(target)
        est.predict(
            out=out, overwrite=True, mem_limit_mb=mem_limit_mb, workers=workers, cog=False
        )
    return out


@dataclass
class _Tier:
    """Predictions blended with weights; a later tier fills only where earlier ones are NaN."""

    paths: list[Path]
    weights: list[float]
    method: str = ""
    sets: list[list[dt.date]] = field(default_factory=list)

    def blend(self, win: Window) -> np.ndarray | None:
        if not self.paths:
            return None
        num: np.ndarray | None = None
        den: np.ndarray | None = None
        for path, wi in zip(self.paths, self.weights):
            p = FileSource(str(path), Scaling(1.0, 0.0)).read(win).astype(np.float64)
            ok = np.isfinite(p)
            num = (0.0 if num is None else num) + np.where(ok, p, 0.0) * wi
            den = (0.0 if den is None else den) + ok * wi
        assert num is not None and den is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan).astype(np.float32)


def _row_blocks(grid: Grid, count: int, layers: int) -> list[Window]:
    rows = max(1, min(grid.height, (64 << 20) // max(grid.width * count * 8 * (layers + 3), 1)))
    return [
        Window(0, r, grid.width, min(rows, grid.height - r)) for r in range(0, grid.height, rows)
    ]


def _holes(tier: _Tier, target: Source, observed: Source | None, grid: Grid, count: int) -> int:
    """Pixels (all bands) the tier leaves NaN although the coarse target has values there."""
    n = 0
    for win in _row_blocks(grid, count, len(tier.paths)):
        b = tier.blend(win)
        t = np.isfinite(target.read(win)).all(axis=0)
        hole = ~np.isfinite(b).all(axis=0) if b is not None else np.ones(t.shape, bool)
        if observed is not None:
            hole &= ~np.isfinite(observed.read(win)).all(axis=0)
        n += int((hole & t).sum())
    return n


def _combine(
    tiers: Sequence[_Tier],
    observed: Source | None,
    dest: Path,
    grid: Grid,
    band_names: Sequence[str],
    dtype: str,
    int16_scale: float,
    tags: dict[str, str],
) -> tuple[float, int]:
    """Blend each tier, fill the observation's gaps, write ``dest``.

    Returns the valid fraction (pixels with a value in every band) and how many pixels the
    tiers after the first filled (in at least one band).
    """
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
    valid = filled = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(dest, "w", **profile) as ds:
            for i, name in enumerate(band_names, start=1):
                ds.set_band_description(i, name)
            if dtype == "int16":
                ds.scales = (int16_scale,) * count
                ds.offsets = (0.0,) * count
            layers = sum(len(t.paths) for t in tiers) + 1
            for win in _row_blocks(grid, count, layers):
                out = np.full((count, int(win.height), grid.width), np.nan, np.float32)
                later = np.zeros(out.shape, bool)
                for k, tier in enumerate(tiers):
                    b = tier.blend(win)
                    if b is None:
                        continue
                    fill = ~np.isfinite(out) & np.isfinite(b)
                    later |= fill if k > 0 else False
                    out[fill] = b[fill]
                if observed is not None:
                    obs = observed.read(win)
                    seen = np.isfinite(obs)
                    out = np.where(seen, obs, out)
                    later &= ~seen
                filled += int(later.any(axis=0).sum())
                valid += int(np.isfinite(out).all(axis=0).sum())
                if dtype == "int16":
                    ok = np.isfinite(out)
                    q = np.clip(np.rint(np.where(ok, out, 0) / int16_scale), -32767, 32767)
                    ds.write(np.where(ok, q, INT16_NODATA).astype(np.int16), window=win)
                else:
                    ds.write(out, window=win)
            frac = valid / float(grid.width * grid.height)
            # written last: a file with these tags has all its data
            ds.update_tags(
                **tags, STFUSION_SERIES_VALID=f"{frac:.6f}", STFUSION_SERIES_COMPLETE="1"
            )
    return frac, filled


def run_series(
    out_dir: str | os.PathLike[str],
    *,
    fine: Sequence[str] = (),
    coarse: Sequence[str] = (),
    catalog: str | os.PathLike[str] | None = None,
    method: str = "starfm",
    params: Sequence[str] = (),
    dates: str | tuple[dt.date | None, dt.date | None] | None = None,
    fine_scale: float | None = None,
    fine_offset: float | None = None,
    coarse_scale: float | None = None,
    coarse_offset: float | None = None,
    resampling: str = "nearest",
    fine_mask: Sequence[str] = (),
    fine_mask_kind: str = "binary",
    fine_mask_flags: Sequence[str] | None = None,
    coarse_mask: Sequence[str] = (),
    coarse_mask_kind: str = "binary",
    coarse_mask_flags: Sequence[str] | None = None,
    min_valid: float = 0.5,
    pairs_per_side: int = 1,
    dtype: str = "float32",
    int16_scale: float = 1e-4,
    cube: str | None = None,
    prefix: str = "fused",
    fallback: str | None = "starfm",
    workers: int = 1,
    mem_limit_mb: float | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    fine_bands: Sequence[str] | None = None,
    coarse_bands: Sequence[str] | None = None,
    fine_preset: str | None = None,
    coarse_preset: str | None = None,
) -> SeriesResult:
    """Predict the fine image at every coarse date of a series (rules in the module doc).

    ``fine``/``coarse``/``fine_mask``/``coarse_mask``: folders or glob patterns, dated by file
    name; ``catalog``: a CSV (``path,date,sensor[,mask]``) used in addition. ``params``:
    ``name=value`` method parameters (``ratio=R`` sets the resolution ratio when all images
    share one grid). ``progress(done, total, record)`` is called after every date.
    ``fine_bands``/``coarse_bands`` (names or 1-based numbers) and ``fine_preset``/
    ``coarse_preset`` choose bands, scaling and QA masks; band files of one date are then
    stacked (docs/inputs.md).
    """
    from stfusion.api import split_ratio
    from stfusion.inputs import preset_mask_kind, resolve_role, stack_band_files

    fine_scaling, fpreset = resolve_role(fine_scale, fine_offset, fine_bands, fine_preset)
    coarse_scaling, cpreset = resolve_role(coarse_scale, coarse_offset, coarse_bands,
                                           coarse_preset)  # fmt: skip
    fine_scale, fine_offset = fine_scaling.scale, fine_scaling.offset
    coarse_scale, coarse_offset = coarse_scaling.scale, coarse_scaling.offset
    fine_mask_kind = preset_mask_kind(fpreset, fine_mask, fine_mask_kind)
    coarse_mask_kind = preset_mask_kind(cpreset, coarse_mask, coarse_mask_kind)

    t_start = time.monotonic()
    # ---- options, checked before any work
    if dtype not in DTYPES:
        raise InvalidParameterError(f"--dtype {dtype}: choose float32 or int16.")
    if not int16_scale > 0:
        raise InvalidParameterError(f"--int16-scale must be > 0, got {int16_scale}.")
    if not 0.0 <= min_valid <= 1.0:
        raise InvalidParameterError(f"--min-valid must be within 0..1, got {min_valid}.")
    if pairs_per_side < 1:
        raise InvalidParameterError(f"--pairs-per-side must be >= 1, got {pairs_per_side}.")
    if not prefix or os.sep in prefix:
        raise InvalidParameterError(f"--prefix {prefix!r}: give a plain file-name prefix.")
    for kind in (fine_mask_kind, coarse_mask_kind):
        if kind not in MASK_KINDS:
            raise InvalidParameterError(f"mask kind {kind!r}: choose from {MASK_KINDS}.")
    fflags = check_flags(fine_mask_kind, fine_mask_flags)
    cflags = check_flags(coarse_mask_kind, coarse_mask_flags)
    engine = check_cube_backend(cube)
    cls = get_method(method)
    rest, given_ratio = split_ratio(params)
    kwargs = cls.parse_params(rest)
    cls(**kwargs)  # invalid values fail here, not at the first date
    fb_cls = None if fallback in (None, "none", cls.name) else get_method(str(fallback))
    start, end = dates if isinstance(dates, tuple) else parse_date_range(dates)

    # ---- inputs
    items: list[Acquisition] = []
    if catalog is not None:
        items += read_catalog(catalog)
    items += acquisitions_from(fine, "fine") + acquisitions_from(coarse, "coarse")
    items = stack_band_files(items, "fine", fine_scaling.bands, fpreset, not fine_mask)
    items = stack_band_files(items, "coarse", coarse_scaling.bands, cpreset, not coarse_mask)
    fine_by = by_date([a for a in items if a.sensor == "fine"], "fine")
    coarse_by = by_date([a for a in items if a.sensor == "coarse"], "coarse")
    if not fine_by:
        raise InvalidParameterError("no fine images: give --fine DIR_OR_GLOB or a --catalog.")
    if not coarse_by:
        raise InvalidParameterError("no coarse images: give --coarse DIR_OR_GLOB or a --catalog.")
    notes: list[str] = []
    for role, specs, table in (("fine", fine_mask, fine_by), ("coarse", coarse_mask, coarse_by)):
        masks = _mask_map(specs, role)
        for d, m in masks.items():
            if d in table and table[d].mask is None:
                a = table[d]
                table[d] = Acquisition(a.path, a.date, a.sensor, m)
        unused = sorted(set(masks) - set(table))
        if unused:
            notes.append(
                f"{role} masks without a {role} image: {', '.join(d.isoformat() for d in unused)}"
            )
        if masks:
            bare = sorted(d for d, a in table.items() if a.mask is None)
            if bare:
                notes.append(
                    f"{role} images without a mask (used unmasked): "
                    + ", ".join(d.isoformat() for d in bare)
                )
    pair_dates = sorted(set(fine_by) & set(coarse_by))
    if not pair_dates:
        raise InvalidParameterError(
            f"no pairs: no fine date ({_span(fine_by)}) has a coarse image ({_span(coarse_by)}) "
            "on the same date. Check the dates read from the names (see --catalog)."
        )

    # ---- input files as they are now, before anything reads them: the resume key
    identity: dict[str, list[Any] | None] = {}
    for table in (fine_by, coarse_by):
        for acq in table.values():
            for path in (acq.path, acq.mask):
                if path and path not in identity:
                    identity[path] = file_identity(path)

    # ---- output folder, locked while this run writes into it
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(
            f"{out}: cannot write into the output folder ({exc.strerror or exc}). Choose a "
            "writable --out-dir."
        ) from None
    lock = acquire_lock(out)
    try:
        remove_leftovers(out)
        return _run_locked(
            out,
            lock,
            t_start=t_start,
            fine_by=fine_by,
            coarse_by=coarse_by,
            identity=identity,
            pair_dates=pair_dates,
            notes=notes,
            cls=cls,
            kwargs=kwargs,
            given_ratio=given_ratio,
            fb_cls=fb_cls,
            start=start,
            end=end,
            dates=dates,
            fine_scaling=fine_scaling,
            coarse_scaling=coarse_scaling,
            resampling=resampling,
            fine_mask_kind=fine_mask_kind,
            fflags=fflags,
            coarse_mask_kind=coarse_mask_kind,
            cflags=cflags,
            min_valid=min_valid,
            pairs_per_side=pairs_per_side,
            dtype=dtype,
            int16_scale=int16_scale,
            cube=cube,
            engine=engine,
            prefix=prefix,
            workers=workers,
            mem_limit_mb=mem_limit_mb,
            overwrite=overwrite,
            progress=progress,
        )
    finally:
        release_lock(lock)


def _run_locked(
    out: Path,
    lock: Path,
    *,
    t_start: float,
    fine_by: dict[dt.date, Acquisition],
    coarse_by: dict[dt.date, Acquisition],
    identity: dict[str, list[Any] | None],
    pair_dates: list[dt.date],
    notes: list[str],
    cls: type[FusionMethod],
    kwargs: dict[str, Any],
    given_ratio: float | None,
    fb_cls: type[FusionMethod] | None,
    start: dt.date | None,
    end: dt.date | None,
    dates: Any,
    fine_scaling: Scaling,
    coarse_scaling: Scaling,
    resampling: str,
    fine_mask_kind: str,
    fflags: tuple[str, ...],
    coarse_mask_kind: str,
    cflags: tuple[str, ...],
    min_valid: float,
    pairs_per_side: int,
    dtype: str,
    int16_scale: float,
    cube: str | None,
    engine: str | None,
    prefix: str,
    workers: int,
    mem_limit_mb: float | None,
    overwrite: bool,
    progress: ProgressCallback | None,
) -> SeriesResult:
    """The part of :func:`run_series` that runs while this process holds ``lock``."""
    fine_scale, fine_offset = fine_scaling.scale, fine_scaling.offset
    coarse_scale, coarse_offset = coarse_scaling.scale, coarse_scaling.offset
    # ---- the fine grid: that of the first fine image that opens
    ref: FileSource | None = None
    for a in fine_by.values():
        try:
            ref = FileSource(a.path, fine_scaling)
            break
        except STFusionError as exc:
            notes.append(f"{a.path}: {exc}")
    if ref is None:
        raise InputFileError("none of the fine images can be read: " + "; ".join(notes))

    settings = {
        "method": cls.name,
        "params": cls(**kwargs).get_params(),
        "ratio": given_ratio,
        "dtype": dtype,
        "int16_scale": int16_scale if dtype == "int16" else None,
        "min_valid": min_valid,
        "pairs_per_side": pairs_per_side,
        "fine_scaling": [fine_scale, fine_offset],
        "coarse_scaling": [coarse_scale, coarse_offset],
        "resampling": resampling,
        "fine_mask": [fine_mask_kind, list(fflags)],
        "coarse_mask": [coarse_mask_kind, list(cflags)],
        "fallback": fb_cls.name if fb_cls is not None else None,
    }
    if fine_scaling.bands or coarse_scaling.bands:  # key unchanged for runs without a choice
        settings["bands"] = [list(fine_scaling.bands or ()), list(coarse_scaling.bands or ())]
    key = _settings_key(settings)
    s = _Series(
        cls=cls,
        kwargs=kwargs,
        ratio=given_ratio,
        fine=fine_by,
        coarse=coarse_by,
        ref=ref,
        fine_scaling=fine_scaling,
        coarse_scaling=coarse_scaling,
        resampling=resampling,
        fine_mask=(fine_mask_kind, fflags),
        coarse_mask=(coarse_mask_kind, cflags),
        min_valid=min_valid,
        pairs_per_side=pairs_per_side,
        notes=notes,
        fallback=fb_cls,
        identity=identity,
    )

    targets = [d for d in coarse_by if in_range(d, start, end)]
    fine_only = [d for d in fine_by if d not in coarse_by and in_range(d, start, end)]
    if not targets:
        raise InvalidParameterError(
            f"no coarse date in the range {dates}: the coarse images span {_span(coarse_by)}."
        )

    # ---- existing outputs from other settings are never replaced silently
    if not overwrite:
        clash = []
        for d in targets:
            p = output_path(out, prefix, d)
            if p.exists():
                state, tags = verify_output(p, s.grid, s.count, dtype, read_data=False)
                if state == "ok" and tags.get("STFUSION_SERIES_KEY") != key:
                    clash.append(p.name)
        if clash:
            raise OutputExistsError(
                f"{out}: {len(clash)} output(s) (e.g. {clash[0]}) were made with other "
                "settings (method, parameters, masks, dtype or scaling). Pass --overwrite to "
                "replace them, or choose another --out-dir."
            )

    # ---- one scale check before any work: x10000 against 0-1 ruins everything silently
    for d in pair_dates:
        f, c = s.open_image(fine_by[d]), s.open_image(coarse_by[d])
        if f.source is not None and c.source is not None:
            check_scales(f.source, c.source)
            break

    records: list[DateRecord] = [
        DateRecord(
            d,
            "skipped",
            cls.name,
            reason="fine image without a coarse image on this date: not a pair and not a target",
        )
        for d in fine_only
    ]
    summary_path = out / "summary.csv"
    scratch = partial_name(out / SCRATCH_NAME)  # hidden, PID-named: removed if left behind
    scratch.mkdir()
    total = len(targets)
    try:
        for i, day in enumerate(targets, start=1):
            rec = _run_date(
                s,
                day,
                out,
                prefix,
                scratch,
                key,
                settings,
                overwrite=overwrite,
                dtype=dtype,
                int16_scale=int16_scale,
                mem_limit_mb=mem_limit_mb,
                workers=workers,
            )
            records.append(rec)
            _write_summary(summary_path, records)
            if progress is not None:
                progress(i, total, rec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _write_summary(summary_path, records)
    if s.aligned:
        notes.append(
            f"{s.aligned} coarse image(s) reprojected onto the fine grid with {resampling} "
            f"resampling (ratio {s.ratio:.3f})"
        )

    cube_path = None
    if cube is not None:
        assert engine is not None
        done = [
            (r.date, out / r.output, r.status)
            for r in sorted(records, key=lambda r: r.date)
            if r.status in ("predicted", "gap-filled") and r.output
        ]
        if done:
            cube_path = out / f"{prefix}_cube{'.zarr' if cube == 'zarr' else '.nc'}"
            write_cube(
                done,
                cube_path,
                cube,
                grid=s.grid,
                band_names=s.band_names,
                dtype=dtype,
                int16_scale=int16_scale,
                attrs={
                    "stfusion_version": stfusion.__version__,
                    "method": cls.name,
                    "params": json.dumps(settings["params"], default=str),
                    "source": "stfusion series; one GeoTIFF per date beside this cube",
                },
            )
        else:
            notes.append("no date was predicted: no cube written")
    return SeriesResult(records, out, summary_path, cube_path, time.monotonic() - t_start, notes)


def _span(table: dict[dt.date, Any]) -> str:
    ds = sorted(table)
    return f"{ds[0]} .. {ds[-1]}" if ds else "none"


def _run_date(
    s: _Series,
    day: dt.date,
    out: Path,
    prefix: str,
    scratch: Path,
    key: str,
    settings: dict[str, Any],
    *,
    overwrite: bool,
    dtype: str,
    int16_scale: float,
    mem_limit_mb: float | None,
    workers: int,
) -> DateRecord:
    """Everything for one target date; never raises for a problem of this date's inputs."""
    t0 = time.monotonic()
    rec = DateRecord(day, method=s.cls.name)
    path = output_path(out, prefix, day)
    rec.output = path.name
    inputs = s.inputs(day)
    redo = stale = ""
    try:
        if path.exists() and not overwrite:
            kept, redo = _resume(rec, path, s, dtype, inputs)
            if kept:
                return rec
            stale = redo if redo.startswith("recomputed") else ""
        _predict_date(
            s,
            rec,
            day,
            path,
            scratch,
            key,
            settings,
            inputs,
            dtype=dtype,
            int16_scale=int16_scale,
            mem_limit_mb=mem_limit_mb,
            workers=workers,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # this date fails, the series goes on
        log.debug("series: %s failed", day, exc_info=True)
        rec.status, rec.output = "failed", ""
        rec.reason = _describe_error(exc)
    finally:
        rec.seconds = time.monotonic() - t0
    if redo and rec.status in ("predicted", "gap-filled"):
        rec.reason = "; ".join(x for x in (redo, rec.reason) if x)
    elif stale and path.exists():
        # made from other inputs and not made again: it must not pass for this run's result
        with contextlib.suppress(OSError):
            path.unlink()
        rec.reason = "; ".join(
            x for x in (rec.reason, f"earlier output removed ({stale[len('recomputed: ') :]})") if x
        )
    return rec


def _resume(
    rec: DateRecord, path: Path, s: _Series, dtype: str, inputs: list[list[Any]]
) -> tuple[bool, str]:
    """Fill ``rec`` from a verified earlier output made from the same inputs and return
    ``(True, "")``; ``(False, why)`` to compute it again."""
    state, tags = verify_output(path, s.grid, s.count, dtype)
    if state == "ok":
        if tags.get("STFUSION_SERIES_INPUTS_KEY") != _inputs_key(inputs):
            try:
                old = json.loads(tags.get("STFUSION_SERIES_INPUTS", ""))
            except ValueError:
                old = None
            why = f"recomputed: inputs changed ({_changed_inputs(old, inputs)})"
            log.info("series: %s: %s", path.name, why)
            return False, why
        if tags.get("STFUSION_VERSION") != stfusion.__version__:
            why = (
                f"recomputed: stfusion version changed ({tags.get('STFUSION_VERSION') or '?'} "
                f"-> {stfusion.__version__})"
            )
            log.info("series: %s: %s", path.name, why)
            return False, why
        rec.status = tags.get("STFUSION_SERIES_STATUS", "predicted")
        rec.pairs = [
            dt.date.fromisoformat(d) for d in json.loads(tags.get("STFUSION_SERIES_PAIRS", "[]"))
        ]
        rec.weights = json.loads(tags.get("STFUSION_SERIES_WEIGHTS", "[]"))
        v = tags.get("STFUSION_SERIES_VALID")
        rec.valid_fraction = float(v) if v else None
        rec.reason = "kept from an earlier run (inputs unchanged, output verified)"
        return True, ""
    if state == "foreign":
        raise OutputExistsError(
            f"{path.name} exists and was not written by stfusion series; not replaced "
            "(pass --overwrite)"
        )
    log.info("series: %s is damaged or incomplete; computing it again", path)
    return False, "earlier output was damaged or incomplete: computed again"


def _predict_date(
    s: _Series,
    rec: DateRecord,
    day: dt.date,
    path: Path,
    scratch: Path,
    key: str,
    settings: dict[str, Any],
    inputs: list[list[Any]],
    *,
    dtype: str,
    int16_scale: float,
    mem_limit_mb: float | None,
    workers: int,
) -> None:
    coarse = s.open_image(s.coarse[day])
    rec.coarse_valid = coarse.valid
    if coarse.source is None:
        rec.status, rec.output = "failed", ""
        rec.reason = f"coarse image unreadable: {coarse.error}"
        return
    assert coarse.valid is not None
    if coarse.valid < s.min_valid:
        rec.status, rec.output = "skipped", ""
        rec.reason = f"coarse valid fraction {coarse.valid:.3f} < --min-valid {s.min_valid}"
        return

    notes: list[str] = []
    observed: Source | None = None
    full = False
    if day in s.fine:
        fimg = s.open_image(s.fine[day])
        rec.fine_valid = fimg.valid
        if fimg.source is None:
            notes.append(f"fine image unreadable, predicted instead: {fimg.error}")
        else:
            observed = fimg.source
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = _fully_valid(observed)

    clear = [d for d in s.clear_pairs() if d != day]
    tiers: list[_Tier] = []
    used: list[dt.date] = []
    blend = "none"
    if not full:
        sets, note = choose_pairs(day, clear, s.cls.tags.min_pairs, s.cls.tags.max_pairs,
                                  s.pairs_per_side)
        if sets:
            tiers.append(
                _predict_tier(
                    s, s.cls, sets, day, coarse.source, scratch, "main", mem_limit_mb, workers
                )
            )
            used += [d for group in sets for d in group]
            rec.weights = tiers[0].weights
            blend = (
                "temporal weights 1/days, normalised per pixel"
                if len(sets) > 1
                else "one prediction from all its pairs"
            )
            if note:
                notes.append(note)
        fb = s.fallback
        if (
            fb is not None
            and clear
            and (not tiers or _holes(tiers[0], coarse.source, observed, s.grid, s.count) > 0)
        ):
            fsets, _ = choose_pairs(day, clear, fb.tags.min_pairs, fb.tags.max_pairs,
                                     s.pairs_per_side)
            if fsets:
                if not tiers:
                    notes.append(f"{s.cls.name}: {note}; predicted with {fb.name} instead")
                tiers.append(
                    _predict_tier(
                        s, fb, fsets, day, coarse.source, scratch, "fallback", mem_limit_mb, workers
                    )
                )
                used += [d for group in fsets for d in group]
        if not tiers and observed is None:
            rec.status, rec.output = "skipped", ""
            rec.reason = f"no pair to predict from ({note})"
            return
        if not tiers:
            notes.append(f"no other clear pair to predict from ({note}): gaps left empty")

    rec.status = "gap-filled" if observed is not None else "predicted"
    if full:
        notes.append("fine image fully valid: written as observed")
    rec.pairs = sorted(set(used))
    tags = {
        "STFUSION_VERSION": stfusion.__version__,
        "STFUSION_METHOD": s.cls.name,
        "STFUSION_PARAMS": json.dumps(settings["params"], default=str),
        "STFUSION_SERIES_DATE": day.isoformat(),
        "STFUSION_SERIES_STATUS": rec.status,
        "STFUSION_SERIES_PAIRS": json.dumps([d.isoformat() for d in rec.pairs]),
        "STFUSION_SERIES_PAIR_FILES": json.dumps(
            [[s.fine[d].path, s.coarse[d].path] for d in rec.pairs]
        ),
        "STFUSION_SERIES_BLEND": blend,
        "STFUSION_SERIES_WEIGHTS": json.dumps(rec.weights),
        "STFUSION_SERIES_FALLBACK": json.dumps(
            [
                {"method": t.method, "pairs": [[d.isoformat() for d in g] for g in t.sets]}
                for t in tiers[1:]
            ]
        ),
        "STFUSION_SERIES_COARSE": s.coarse[day].path,
        "STFUSION_SERIES_COARSE_MASK": s.coarse[day].mask or "",
        "STFUSION_SERIES_FINE": s.fine[day].path if observed is not None else "",
        "STFUSION_SERIES_FINE_MASK": (s.fine[day].mask or "") if observed is not None else "",
        "STFUSION_SERIES_SETTINGS": json.dumps(settings, default=str),
        "STFUSION_SERIES_KEY": key,
        "STFUSION_SERIES_INPUTS": json.dumps(inputs),
        "STFUSION_SERIES_INPUTS_KEY": _inputs_key(inputs),
        "STFUSION_RATIO": "" if s.ratio is None else f"{s.ratio:g}",
        "STFUSION_CREATED": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = scratch / f"{day.isoformat()}_combined.tif"
    try:
        valid, filled = _combine(
            tiers, observed, tmp, s.grid, s.band_names, dtype, int16_scale, tags
        )
        rec.valid_fraction = valid
        if filled and s.fallback is not None:
            frac = filled / float(s.grid.width * s.grid.height)
            notes.append(
                f"{s.fallback.name} filled {frac:.1%} of the pixels that {s.cls.name} left empty"
            )
        copy_as_cog(tmp, path, overwrite=True)
    finally:
        for p in [tmp, *(p for t in tiers for p in t.paths)]:
            with contextlib.suppress(OSError):
                p.unlink()
    rec.reason = "; ".join(notes)


def _predict_tier(
    s: _Series,
    cls: type[FusionMethod],
    sets: list[list[dt.date]],
    day: dt.date,
    target: Source,
    scratch: Path,
    role: str,
    mem_limit_mb: float | None,
    workers: int,
) -> _Tier:
    weights = [1.0] if len(sets) == 1 else temporal_weights(day, [g[0] for g in sets])
    paths = []
    for group in sets:
        est = s.estimator(cls, tuple(group))
        name = "+".join(d.isoformat() for d in group)
        comp = scratch / f"{day.isoformat()}_{role}_{name}.tif"
        _predict_component(est, target, comp, mem_limit_mb, workers)
        paths.append(comp)
    return _Tier(paths, weights, cls.name, sets)
