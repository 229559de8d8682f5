"""A lock beside an output while a run writes it (``io.OutputLock``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from stfusion.errors import OutputExistsError


class OutputLock:
    """An exclusive ``flock`` on ``.<name>.stfusion-<kind>.lock`` beside ``out`` while a run
    writes there, so two runs into one output never interleave (a prediction of one and the
    quality layer of the other, each reported as written). The kernel drops the lock when
    its process ends, even by SIGKILL, so a killed run never blocks the next. ``busy`` starts
    the refusal (``OutputExistsError``)."""

    def __init__(self, out: Path, kind: str, busy: str) -> None:
        self.path = out.parent / f".{out.name}.stfusion-{kind}.lock"
        self.fd: int | None = None
        try:
            import fcntl
        except ImportError:  # no flock (Windows): unguarded
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputExistsError(
                    f"{busy} is under way (it holds {self.path}): wait for it to end, or stop "
                    "it, or give another --out."
                ) from None
            # the file locked must still be the one at the path: a run ending removes it,
            # and a lock on a removed file would let a third run in beside a second
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
