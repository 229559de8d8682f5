"""Partial files: the hidden, PID-named temporary names outputs are written under, and the
removal of those left by processes that no longer exist (kill -9, a power cut)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger("stfusion")


PARTIAL_MARK = ".partial"
#: Suffix of an earlier output moved aside while a folder is replaced (``.NAME.<pid>-<rand>
#: .partial.old``): a stale one is put back where the new output never arrived.
OLD_SUFFIX = ".old"


def umask_mode(base: int = 0o666) -> int:
    """``base`` with the process umask applied: the mode a plain ``open()`` would give."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and can still run: a zombie (killed, not yet reaped by
    its parent) counts as gone, so its lock and partials are not taken for a live run's."""
    if pid == os.getpid():
        return True
    if not 0 < pid < 2**31:  # no such PID (a damaged lock's); os.kill raised OverflowError
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:  # Linux: the state after the command name in /proc/PID/stat; Z zombie, X dead
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


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
    # Exactly partial_name's pattern: the partial of "res" must not match the live partial of
    # "res.2020" (".res.2020.<pid>-<hex>.partial") and read 2020 as a dead PID.
    own = re.compile(rf"\.{re.escape(final.name)}\.(\d+)-[0-9a-f]{{8}}{re.escape(PARTIAL_MARK)}")
    for entry in entries:
        match = own.match(entry.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        pid_text = match.group(1)
        if entry.name.endswith(PARTIAL_MARK + OLD_SUFFIX) and not (
            final.exists() or final.is_symlink()
        ):
            # killed while swapping a folder: the earlier output, moved aside, is the only
            # copy (the new one never got its name), so it goes back, it is not deleted
            with contextlib.suppress(OSError):
                os.replace(entry, final)
                log.warning(
                    "%s: put back the earlier output that process %s had moved aside to "
                    "replace it when it was stopped",
                    final,
                    pid_text,
                )
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
