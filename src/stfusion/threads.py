"""Thread limits for a run: numba's kernels and torch, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def numba_threads(threads: int | None) -> Iterator[None]:
    """Within: numba's kernels on at most ``threads`` threads (``--threads``); the previous
    setting is restored afterwards (a notebook stayed at 1 thread after ``threads=1``)."""
    if threads is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import from the environment
    numba.set_num_threads(max(1, min(threads, most)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Within: torch (when a deep method has imported it) runs on at most ``threads`` threads
    (``--threads``, as numba's kernels); the previous setting is restored afterwards."""
    import sys

    torch = sys.modules.get("torch")
    if threads is None or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
