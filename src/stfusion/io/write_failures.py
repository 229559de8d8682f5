"""The error for an output that could not be written: the file, GDAL's or the system's
reason, the free space left and the file-size limit (a full disk says nothing clearer)."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from rasterio._err import CPLE_BaseError  # GDAL's errors (rasterio has no public name)
from rasterio.errors import RasterioError

from stfusion.errors import OutputWriteError, warn

#: What GDAL and the system raise when a raster cannot be written or read back.
WRITE_ERRORS: tuple[type[BaseException], ...] = (RasterioError, CPLE_BaseError, OSError)


def write_failed(final: Path, exc: BaseException, how: str = "") -> OutputWriteError:
    """The error for an output that could not be written: the file, GDAL's or the system's
    reason, the free space left (a full disk says nothing clearer), and that nothing was
    left under the output's name."""
    parent = final.parent if str(final.parent) else Path(".")
    text = _reason(exc)
    full = said_full = disk_full(exc)
    try:
        free = shutil.disk_usage(parent).free / 2**20
        space = f"; {free:.1f} MB free on the output's file system"
        full = said_full or free < FULL_BELOW_MB
        if said_full:  # the space measured after it may look ample: the partials are freed
            space += (
                " (it filled up while writing? The output needs room for itself and a "
                "temporary copy, about twice its size: free some space or choose another "
                "folder)"
            )
        elif free < 64:
            space += " (full? free some space or choose another folder)"
    except OSError:
        space = ""
    space += _file_size_limit()
    error = OutputWriteError(
        f"{final}: could not be written completely ({how}{text}){space}. Nothing was "
        "written under that name."
    )
    error.disk_full = full  # type: ignore[attr-defined]  # read by disk_full()
    return error


#: A write that failed with less than this left on its file system (MB) failed for want
#: of room (measured before its partial files are removed).
FULL_BELOW_MB = 1.0
#: What GDAL and libtiff say of a write the file system refused (no errno reaches Python).
FULL_WORDS = ("No space left", "Disk quota exceeded", "Write error", "write error")


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from is a full disk (or a quota) refusing a
    write: every later write to that file system fails alike. :func:`write_failed` marks
    its error so where the disk had less than :data:`FULL_BELOW_MB` left when the write
    failed: GDAL may only say it could not read back what it wrote short."""
    return any(
        getattr(e, "disk_full", False)
        or getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        or any(w in str(e) for w in FULL_WORDS)
        for e in _chain(exc)
    )


def not_run_when_full(day: object) -> OutputWriteError:
    """The error of a date a series did not compute after ``day``'s output filled the disk."""
    return OutputWriteError(
        f"not run: the output's file system was full when {day} was written; free some "
        "space and run again (finished dates are kept)"
    )


def _reason(exc: BaseException) -> str:
    """The first line of ``exc``'s message; rasterio's "Write failed. See previous exception
    for details." with that exception's (GDAL's ``Write error at scanline 0``), which the
    user never sees."""
    text = _first_line(exc) or type(exc).__name__
    if "previous exception" in text:
        for inner in _chain(exc):
            said = _first_line(inner)
            if said and said != text and "previous exception" not in said:
                return f"{text.split('. See previous')[0]}: {said}"
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from or during, each once."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        yield inner
        inner = inner.__cause__ or inner.__context__


def _file_size_limit() -> str:
    """The process's file-size limit (``ulimit -f``) when it has one: a write past it fails
    as a full disk would, with space left ("74039 MB free")."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (ImportError, OSError, ValueError):
        return ""
    if soft == resource.RLIM_INFINITY:
        return ""
    return (
        f"; this process may write files of at most {soft / 2**20:.1f} MB (ulimit -f): raise "
        "the limit or give smaller outputs"
    )


#: Folders whose lack of room has been warned about (a series writes a date at a time).
_WARNED_ROOM: set[Path] = set()


def check_room(final: Path, need: int) -> None:
    """Before any work: refuse an output whose file system is full (under
    :data:`FULL_BELOW_MB` left and less than twice the output's ``need`` bytes uncompressed),
    and warn, once per folder, when it has less than that: a prediction into a full disk
    computed every window, then failed at the write (a trial). Compression may make an
    output fit in less (an image mostly without data), so only a full one is refused."""
    parent = final.parent if str(final.parent) else Path(".")
    try:
        free = shutil.disk_usage(parent).free
    except OSError:  # a folder not made yet, or a file system that does not say
        return
    if free >= 2 * need:  # the scratch GeoTIFF and its COG copy, both on disk for a while
        return
    mb = f"{need / 2**20:.1f} MB uncompressed, twice that while its COG copy is made"
    if free < FULL_BELOW_MB * 2**20:
        error = OutputWriteError(
            f"{final}: its file system is full ({free / 2**20:.2f} MB free; the output needs "
            f"up to {mb}): free some space or choose another folder. Nothing was computed."
        )
        error.disk_full = True  # type: ignore[attr-defined]  # read by disk_full()
        raise error
    if parent.resolve() not in _WARNED_ROOM:
        _WARNED_ROOM.add(parent.resolve())
        warn(
            f"{final}: {free / 2**20:.1f} MB free on its file system, and the output may need "
            f"up to {mb}: it may not fit (compression decides)."
        )
