"""A lock beside an output while a run writes it (``io.OutputLock``)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from stfusion.errors import OutputExistsError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class OutputLock:
    """An exclusive ``flock`` on ``.<name>.stfusion-<kind>.lock`` beside ``out`` while a run
    writes there, so two runs into one output never interleave (a prediction of one and the
    quality layer of the other, each reported as written). The kernel drops the lock when
    its process ends, even by SIGKILL, so a killed run never blocks the next. ``busy`` starts
    the refusal (``OutputExistsError``).

    A signal that stops the run (its handler raises) is held off while the lock is taken and
    let go, and a lock its holder never let go (the signal came between the lock and the
    ``with`` that would release it) is let go at exit: a stopped run leaves no lock file."""

    def __init__(self, out: Path, kind: str, busy: str) -> None:
        self.path = lock_path(out, kind)
        self.fd: int | None = None
        self.pid = os.getpid()
        if fcntl is None:  # no flock (Windows): unguarded
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _signals_deferred():
            self.fd = _locked(self.path, busy)
            _HELD.add(self)

    def release(self) -> None:
        with _signals_deferred():
            if self.fd is not None:
                with contextlib.suppress(OSError):
                    self.path.unlink()
                os.close(self.fd)
                self.fd = None
            _HELD.discard(self)

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


#: Locks taken and not yet let go, let go at exit (by the process that took them: a forked
#: child that exits normally must not remove its parent's).
_HELD: set[OutputLock] = set()


@atexit.register
def _release_held() -> None:
    for lock in list(_HELD):
        if lock.pid == os.getpid():
            lock.release()


#: The signals that stop a run (their handlers raise).
_STOPS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait: noted while this runs, raised again at its end for
    their own handlers. Handlers, not the signal mask: a process's other threads (BLAS,
    numba) do not block a signal masked in this one, and the kernel gave it to them (a
    CI run left a lock file so). Python runs handlers in the main thread only, so elsewhere
    there is nothing to defer."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    before = {s: h for s in _STOPS if (h := signal.getsignal(s)) is not None}
    for s in before:
        signal.signal(s, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        for s in came:
            signal.raise_signal(s)


def _locked(path: Path, busy: str) -> int:
    """The descriptor of ``path``, created if need be, locked; ``OutputExistsError`` if
    another process holds it."""
    assert fcntl is not None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _busy_error(busy, path) from None
        # the file locked must still be the one at the path: a run ending removes it,
        # and a lock on a removed file would let a third run in beside a second
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def check_not_locked(out: Path, kind: str, busy: str) -> None:
    """Refuse, before any work, an output whose :class:`OutputLock` another process holds
    now (a trial: a second training run trained its autoencoder for 52 s, then met the
    lock). The run still takes the lock itself before it writes."""
    path = lock_path(out, kind)
    if fcntl is None or not path.exists():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise _busy_error(busy, path) from None
    finally:
        os.close(fd)  # closing lets a shared lock of ours go


def lock_path(out: Path, kind: str) -> Path:
    """The lock file of ``out`` for runs of ``kind`` (``train``, ``series``, ...)."""
    return out.parent / f".{out.name}.stfusion-{kind}.lock"


def _busy_error(busy: str, path: Path) -> OutputExistsError:
    return OutputExistsError(
        f"{busy} is under way (it holds {path}): wait for it to end, or stop it, or give "
        "another --out."
    )
