"""The output folder's lock, and the leftovers of killed runs.

A run holds ``LOCK_NAME`` in the output folder while it writes there (created with
``O_CREAT | O_EXCL``; JSON: pid, host, started, pid_start, command), so two runs never write
into one folder at once. A lock whose process is gone (on this host) is stale and taken over;
PID-named partials of dead processes are removed before a run starts (docs/commands/series.md,
"Lock, interruption and cleanup").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shlex
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from stfusion.errors import InputFileError, STFusionError
from stfusion.io import PARTIAL_MARK, partial_name, pid_alive, remove_stale_partials

log = logging.getLogger("stfusion")

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
        "command": shlex.join(sys.argv),  # the process's command line (a script's, in Python)
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
