"""Files a series run writes: the per-date GeoTIFFs (COG) and summary.csv (the cube: ``cube``).

Every output reaches its final name through :func:`stfusion.io.atomic_path` (a hidden
partial beside it, renamed when complete, umask respected): the COG through
:func:`stfusion.io.copy_as_cog`, the summary directly. Only the scratch GeoTIFF
that :func:`write_date_image` fills window by window lives in the run's scratch folder.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from stfusion.dates import gdal_local_file, in_range, is_gdal_name, split_listed
from stfusion.errors import OutputExistsError
from stfusion.io import Grid, atomic_path, glob_escape
from stfusion.series.records import SUMMARY_COLUMNS, DateRecord

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


#: Fewer steps of ``--int16-scale`` than this across a date's values is a precision loss
#: worth a warning (reflectance 0-0.5 at the default 1e-4 spans 5000).
MIN_INT16_STEPS = 100


@dataclass
class WrittenImage:
    """What :func:`write_date_image` wrote: the valid fraction (pixels with a value in every
    band), the values clipped to +-32767 (int16) and the checksum of the pixels as stored."""

    valid_fraction: float
    clipped: int
    checksum: str
    #: int16: how many steps of the scale the stored values span (max - min); float32: None.
    steps: int | None = None
    #: int16: the span of the values before storing (max - min over bands); else 0.
    span: float = 0.0
    #: int16: the largest |value| before storing; else 0.
    peak: float = 0.0

    def int16_notes(self, int16_scale: float) -> list[str]:
        """What storing as int16 lost: clipped values, and precision when the values span
        fewer than :data:`MIN_INT16_STEPS` steps of the scale (reflectance at scale 1 stores
        every pixel as 0)."""
        notes = []
        better = int16_scale_for(self.span, self.peak)
        advice = (
            f"give --int16-scale {better:g} (or --dtype float32)"
            if better
            else ("give --dtype float32 (no int16 scale keeps both the values and their precision)")
        )
        if self.clipped:
            notes.append(
                f"{self.clipped} value(s) beyond +-{32767 * int16_scale:g} clipped to fit int16 "
                f"(--int16-scale {int16_scale:g}): {advice}"
            )
        if self.steps is not None and self.span > 0 and self.steps < MIN_INT16_STEPS:
            notes.append(
                f"the values span {self.span:.4g} but only {self.steps} step(s) of "
                f"--int16-scale {int16_scale:g} as stored: most precision is lost; {advice}"
            )
        return notes


def int16_scale_for(span: float, peak: float) -> float | None:
    """The smallest scale 10^k (else 2 or 5 x 10^k) that stores values up to ``peak`` (|value|;
    twice that when it can, for other dates) within int16's +-32767 and, when it can, in 1000
    steps over ``span``, else in at least
    :data:`MIN_INT16_STEPS`; None when none does (kelvin 300 spanning 0.1 K). The advice for
    precision alone was 10^k over the span, which clipped hot land surface temperature
    (0.01: 327.67 K at most)."""
    if peak <= 0 or span <= 0:
        return None  # nothing to store, or one value: any scale keeps it
    for steps, room in ((1000, 2.0), (1000, 1.0), (MIN_INT16_STEPS, 1.0)):
        least, top = room * peak / 32767, span / steps  # room: for other dates' values
        k = math.floor(math.log10(least))
        for mults in ((1,), (2, 5)):  # a power of ten first (reflectance's 1e-4)
            for scale in (m * 10.0**e for e in range(k - 1, k + 3) for m in mults):
                if least <= scale <= top:
                    return float(f"{scale:.6g}")
    return None


class DateImage:
    """A date's GeoTIFF open for writing (:func:`date_image`): float32 row blocks in order
    (:meth:`write`), then the tags (:meth:`finish`)."""

    def __init__(self, ds: Any, grid: Grid, dtype: str, int16_scale: float) -> None:
        self.ds, self.grid, self.dtype, self.int16_scale = ds, grid, dtype, int16_scale
        self.valid = self.clipped = 0
        self.lo, self.hi = np.inf, -np.inf  # int16 only: the values, and as stored
        self.qlo, self.qhi = np.inf, -np.inf
        self.hash = hashlib.sha256()

    def write(self, win: Window, out: np.ndarray) -> None:
        """Store the float32 block ``out`` at ``win`` (int16: scaled, clipped, nodata)."""
        ok = np.isfinite(out)
        self.valid += int(ok.all(axis=0).sum())
        if self.dtype == "int16":
            q = np.rint(np.where(ok, out, 0) / self.int16_scale)
            self.clipped += int((ok & (np.abs(q) > 32767)).sum())
            if ok.any():  # the span of the values and of the stored steps (int16_notes)
                self.lo, self.hi = min(self.lo, out[ok].min()), max(self.hi, out[ok].max())
                self.qlo, self.qhi = min(self.qlo, q[ok].min()), max(self.qhi, q[ok].max())
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
        stored = np.clip([self.qlo, self.qhi], -32767, 32767)
        done = WrittenImage(
            self.valid / float(g.width * g.height),
            self.clipped,
            self.hash.hexdigest(),
            int(stored[1] - stored[0]) if self.dtype == "int16" and self.hi >= self.lo else None,
            float(self.hi - self.lo) if self.hi >= self.lo else 0.0,
            float(max(abs(self.lo), abs(self.hi))) if self.hi >= self.lo else 0.0,
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
        **grid.profile(),
        "count": count,
        "dtype": dtype,
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


ORPHAN_REASON = "earlier output removed (the image it was made from is no longer an input)"


def remove_orphans(
    out: Path,
    prefix: str,
    targets: set[dt.date],
    start: dt.date | None,
    end: dt.date | None,
    notes: list[str],
) -> set[dt.date]:
    """Delete this series' earlier outputs of dates in ``start..end`` that are no longer
    targets because their coarse image was removed, so every output matches the current
    inputs. Only files ``stfusion series`` wrote (tagged with their date) are removed, and
    only when the coarse image they were made from is gone: one that still exists was only
    left out of this run's ``--coarse`` (a glob of some days), and its output is left as it
    is, with a note in ``notes``. Returns the dates removed."""
    removed: set[dt.date] = set()
    left: set[dt.date] = set()
    for path in out.glob(f"{glob_escape(prefix)}_*.tif"):
        try:
            day = dt.date.fromisoformat(path.name[len(prefix) + 1 : -len(".tif")])
        except ValueError:
            continue
        if day in targets or not in_range(day, start, end) or path.is_symlink():
            continue
        tags = read_tags(path)
        if tags.get("STFUSION_SERIES_DATE") != day.isoformat():  # not provably ours
            continue
        # the image as the run listed it: a link removed from a folder of links is gone,
        # although the file it led to is still there
        made_from = tags.get("STFUSION_SERIES_COARSE_LISTED") or tags.get(
            "STFUSION_SERIES_FINE_LISTED", ""
        )
        if made_from and all(_still_there(f) for f in split_listed(made_from)):
            left.add(day)
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.add(day)
            log.info("series: %s: %s", path.name, ORPHAN_REASON)
        remove_quality(path, day)
    if left:
        days = sorted(left)
        note = (
            f"{len(days)} output(s) made from images that exist but are not among this "
            f"run's inputs (e.g. {days[0]}) are left as they are and not in summary.csv: give "
            "those images too (or a --date-range without them) to list them"
        )
        log.warning("series: %s", note)
        notes.append(note)
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


def _still_there(path: str) -> bool:
    """Whether an input listed by an earlier run is still there (a GDAL name: its archive)."""
    return os.path.lexists(path) or (is_gdal_name(path) and gdal_local_file(path) is not None)
