"""Windows with halos, and the runner that executes a method over them.

Window sizes come from a memory limit and the method's per-pixel footprint; halos come from
the method (its moving window or receptive field). Windows start on multiples of the
resolution ratio, so coarse pixels are never split between windows by the plan itself.
Because every scene-wide quantity comes from ``fit`` or ``prepare``, any plan gives the same
answer as one whole-scene window.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from rasterio.windows import Window

from stfusion.errors import (
    InvalidParameterError,
    MethodOutputError,
    STFusionError,
    warn,
)
from stfusion.io import Grid, scan_limit
from stfusion.io.spill import state_limit

DEFAULT_MEM_LIMIT_MB = 1024.0
#: Share of the memory limit for the windows' arrays; GDAL's block cache gets
#: GDAL_CACHE_SHARE, and the rest is left for the interpreter and libraries.
WINDOW_SHARE = 0.7
GDAL_CACHE_SHARE = 0.1
#: Share of the memory limit for one read of a scene-wide pass (validation, statistics,
#: sampling, coarse aggregation, class maps); those passes run before the windows, so they
#: share the windows' part of the limit. SCAN_BYTES_PER_VALUE covers the read (raw + mask +
#: float32) and the float64 temporaries of the statistics and block means (FSDAF's fit pass
#: measured 54 B per value).
SCAN_SHARE = 0.25
SCAN_BYTES_PER_VALUE = 64
#: Share of the memory limit for scene-wide state a method keeps in memory between windows
#: (FSDAF's per-coarse-pixel tables); past it the state goes to a temporary file
#: (:mod:`stfusion.io.spill`). The windows get what the kept state leaves of their share.
STATE_SHARE = 0.2
MIN_WINDOW = 16
#: glibc's mallopt parameter for the size from which allocations are mapped on their own.
M_MMAP_THRESHOLD = -3

ProgressFn = Callable[[int, int], None]


class WindowPredictor(Protocol):
    def predict_window(self, window: Window) -> np.ndarray: ...


class Sink(Protocol):
    def write(self, array: np.ndarray, window: Window | None = None) -> None: ...


class ArraySink:
    """Collects windows into one in-memory array."""

    def __init__(self, count: int, grid: Grid) -> None:
        self.array = np.full((count, grid.height, grid.width), np.nan, dtype=np.float32)

    def write(self, array: np.ndarray, window: Window | None = None) -> None:
        if window is None:
            self.array[...] = array
            return
        r, c = int(window.row_off), int(window.col_off)
        self.array[:, r : r + int(window.height), c : c + int(window.width)] = array


def window_size_for(
    halo: int,
    bytes_per_pixel: float,
    mem_limit_mb: float | None,
    ratio: float | None = None,
    workers: int = 1,
) -> int:
    """Largest square window (side, fine pixels) whose padded working set fits the limit."""
    limit = WINDOW_SHARE * (mem_limit_mb or DEFAULT_MEM_LIMIT_MB) * 2**20 / max(workers, 1)
    side = int(math.sqrt(limit / max(bytes_per_pixel, 1.0))) - 2 * halo
    step = round(ratio) if ratio and abs(ratio - round(ratio)) < 1e-6 and ratio >= 1 else 1
    side = max(side, MIN_WINDOW, step)
    return max(step, side // step * step)


def gdal_cache_mb(mem_limit_mb: float | None) -> int:
    """GDAL's block cache for a run (by default GDAL takes 5 % of the machine's memory)."""
    return max(32, int(GDAL_CACHE_SHARE * (mem_limit_mb or DEFAULT_MEM_LIMIT_MB)))


def state_bytes_for(mem_limit_mb: float | None) -> int:
    """Bytes of scene-wide state a method may keep in memory under the limit."""
    return int(STATE_SHARE * (mem_limit_mb or DEFAULT_MEM_LIMIT_MB) * 2**20)


def scan_values_for(mem_limit_mb: float | None) -> int:
    """Values (pixels x bands) one read of a scene-wide pass may hold under the limit."""
    limit = SCAN_SHARE * (mem_limit_mb or DEFAULT_MEM_LIMIT_MB) * 2**20
    return max(1 << 12, int(limit / SCAN_BYTES_PER_VALUE))


@functools.cache
def _libc() -> Any:
    """The process's C library through ctypes, None where there is none to load (looked up
    once: ``find_library`` runs ``ldconfig``)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:  # pragma: no cover - no C library to load
        return None


def return_freed_memory() -> None:
    """Have glibc serve allocations of 1 MB and more with their own mappings, so a freed
    array goes back to the system. By default glibc raises that threshold after the first
    large free (up to 32 MB), and freed arrays below it stay in the heap and in the
    process's resident memory: measured 70-130 MB after FSDAF's scene-wide steps at
    20000 x 20000. Results do not change; other C libraries: nothing happens."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)


_MEM_LIMIT_MB: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "stfusion_mem_limit_mb", default=None
)


#: The methods already warned of cramped windows in the run in progress (memory_limits).
_CRAMPED_SAID: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "stfusion_cramped_said", default=None
)


#: The caller's report of a run's steps before its windows (the command line's progress): a
#: method that runs for minutes in ``fit``/``prepare`` (an ensemble's members, VIPSTF's base,
#: FSDAF's classes) says where it is rather than nothing.
StageFn = Callable[[str], None]
_STAGE: contextvars.ContextVar[StageFn | None] = contextvars.ContextVar(
    "stfusion_stage", default=None
)


@contextlib.contextmanager
def reporting_stages(report: StageFn | None) -> Iterator[None]:
    """Hand each :func:`stage` of the runs inside to ``report`` (a short text, e.g. ``member
    fsdaf (2 of 3), window 4 of 9``); None: silent."""
    token = _STAGE.set(report)
    try:
        yield
    finally:
        _STAGE.reset(token)


@contextlib.contextmanager
def stage(text: str, *, said: bool = True) -> Iterator[None]:
    """Say ``text`` to the reporter of :func:`reporting_stages`, if any; the stages said
    inside are said after it (``member fsdaf (2 of 3), classes``). ``said=False``: only
    those (a series' date before a stage of its run, not alone)."""
    report = _STAGE.get()
    if report is None:
        yield
        return
    if said:
        report(text)
    token = _STAGE.set(lambda inner: report(f"{text}, {inner}"))
    try:
        yield
    finally:
        _STAGE.reset(token)


def say_stage(text: str) -> None:
    """Say ``text`` (a step with nothing inside it) to the reporter, if any."""
    report = _STAGE.get()
    if report is not None:
        report(text)


def windows_said(done: int, total: int) -> None:
    """A ``predict(progress=...)`` callback saying each window as a stage (a series' date:
    ``2020-03-17, window 4 of 9``), from the first, where there are several."""
    if total > 1 and done < total:
        say_stage(f"window {done + 1} of {total}")


def current_mem_limit_mb() -> float | None:
    """The ``--mem-limit`` of the run in progress (:func:`memory_limits`), else None: what a
    method that runs other methods over the scene in ``prepare`` (the ensemble) plans them
    with."""
    return _MEM_LIMIT_MB.get()


#: ``--mem-limit`` bounds, MB: below a kilobyte nothing fits (5e-324 came out as no limit);
#: above a petabyte GDAL's cache setting overflows (a traceback).
MIN_MEM_LIMIT_MB = 1e-3
MAX_MEM_LIMIT_MB = 1e9


def check_mem_limit(mem_limit_mb: object) -> None:
    """InvalidParameterError unless ``mem_limit_mb`` is None or a finite number of MB from
    :data:`MIN_MEM_LIMIT_MB` to :data:`MAX_MEM_LIMIT_MB`."""
    if mem_limit_mb is not None and not (
        isinstance(mem_limit_mb, int | float)
        and not isinstance(mem_limit_mb, bool)
        and math.isfinite(mem_limit_mb)
        and MIN_MEM_LIMIT_MB <= mem_limit_mb <= MAX_MEM_LIMIT_MB
    ):
        raise InvalidParameterError(
            f"mem_limit_mb={mem_limit_mb!r}: give a number of megabytes from "
            f"{MIN_MEM_LIMIT_MB:g} to {MAX_MEM_LIMIT_MB:g} (or None for the default)."
        )


def warn_if_cramped(
    method: str, side: object, halo: int, count: int, mem_limit_mb: float | None
) -> None:
    """A warning when ``--mem-limit`` leaves room for windows so small that the run crawls
    (at ``--mem-limit 1``: 15625 windows of 16 px on a 2000 px scene, minutes instead of
    seconds) while saving nothing: the process needs ~150 MB besides the limit anyway."""
    if isinstance(side, int) and count > 64 and side <= max(MIN_WINDOW, 2 * halo):
        said = _CRAMPED_SAID.get()
        if said is not None:  # once per run: with --quality the windows are planned again
            if method in said:  # with the quality layer's share taken off the limit
                return
            said.add(method)
        # the run's own --mem-limit: the quality layer's reduced share said "1.65116 MB"
        limit = current_mem_limit_mb() or mem_limit_mb or DEFAULT_MEM_LIMIT_MB
        warn(
            f"{method}: --mem-limit {limit:g} MB (mem_limit_mb) leaves room for "
            f"windows of {side} px only, each read with a {halo} px halo: {count} windows, "
            "slow. The process needs about 150 MB besides the limit in any case "
            "(docs/parallel.md, 'Small limits'); give --mem-limit 100 or more."
        )


@contextlib.contextmanager
def memory_limits(mem_limit_mb: float | None) -> Iterator[None]:
    """Everything a command does under ``--mem-limit``: GDAL's block cache (read and write),
    the read size of the scene-wide passes and the scene-wide state kept in memory (and
    freed arrays returned to the system: :func:`return_freed_memory`). Enter it before the
    first read: GDAL's default cache is 5 % of the machine's memory, whatever the limit."""
    import rasterio

    return_freed_memory()
    token = _MEM_LIMIT_MB.set(mem_limit_mb)
    outer = _CRAMPED_SAID.get()  # nested (predict within the command's): the command's
    said = _CRAMPED_SAID.set(set() if outer is None else outer)
    try:
        with (
            rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb(mem_limit_mb) * 2**20),
            scan_limit(scan_values_for(mem_limit_mb)),
            state_limit(state_bytes_for(mem_limit_mb)),
        ):
            yield
    finally:
        _MEM_LIMIT_MB.reset(token)
        _CRAMPED_SAID.reset(said)


def plan_windows(grid: Grid, size: int | tuple[int, int]) -> list[Window]:
    """Row-major windows of ``size`` (rows, cols) covering the grid; edge windows are smaller."""
    return windows_covering((grid.height, grid.width), size)


def windows_covering(shape: tuple[int, int], size: int | tuple[int, int]) -> list[Window]:
    """Row-major windows of ``size`` anchored at the origin, clipped to ``shape`` (rows, cols)."""
    rows, cols = (size, size) if isinstance(size, int) else size
    h, w = shape
    return [
        Window(c, r, min(cols, w - c), min(rows, h - r))
        for r in range(0, h, rows)
        for c in range(0, w, cols)
    ]


def check_window(arr: object, window: Window, bands: int, method: str) -> np.ndarray:
    """``arr``, what ``method``'s ``predict_window`` returned for ``window``, as float32
    ``(bands, h, w)``; MethodOutputError otherwise. Rasterio resampled a window of another
    shape into the file, and numpy copied one band into all: wrong numbers, exit 0."""
    want = (bands, int(window.height), int(window.width))
    shape = getattr(arr, "shape", None)
    if not isinstance(arr, np.ndarray) or shape != want:
        raise MethodOutputError(
            f"{method}: predict_window returned {type(arr).__name__} of shape {shape} for a "
            f"window of {want[1]} x {want[2]} px; it must be (bands, rows, cols) = {want}: "
            "the halo cropped, rows before columns (window.height, window.width), every band."
        )
    if arr.dtype != np.float32:
        if not np.issubdtype(arr.dtype, np.floating):
            raise MethodOutputError(
                f"{method}: predict_window returned {arr.dtype} values; it must return float32 "
                "in the images' physical units (as read: reflectance, not x 10000), NaN "
                "where it predicts nothing."
            )
        arr = arr.astype(np.float32)
    return arr


@contextlib.contextmanager
def plugin_faults(method: object, name: str, window: Window) -> Iterator[None]:
    """A plugin method's own exception (not stfusion's errors) as a one-line
    :class:`MethodOutputError` naming the method, its package and the window: the CLI
    printed a traceback with nothing to say whose fault it was. Built-in methods' faults
    keep their tracebacks (bug reports need them)."""
    module = type(method).__module__
    if module.startswith("stfusion.") or module == "stfusion":
        yield
        return
    try:
        yield
    except STFusionError:
        raise
    except Exception as exc:
        w = f"rows {int(window.row_off)}-{int(window.row_off + window.height)}, columns "
        w += f"{int(window.col_off)}-{int(window.col_off + window.width)}"
        raise MethodOutputError(
            f"{name} (a plugin from {module.partition('.')[0]}) failed on the window of {w}: "
            f"{type(exc).__name__}: {exc}. A fault in the plugin: report it to its authors "
            "(--debug shows the traceback)."
        ) from exc


@dataclass(frozen=True)
class CheckedWindows:
    """``method``'s windows, each checked with :func:`check_window` (picklable: it travels
    to the workers of a Dask cluster with the method)."""

    method: WindowPredictor
    bands: int
    name: str

    def predict_window(self, window: Window) -> np.ndarray:
        with plugin_faults(self.method, self.name, window):
            arr = self.method.predict_window(window)
        return check_window(arr, window, self.bands, self.name)


def _set_threads(n: int) -> None:
    import numba

    numba.set_num_threads(n)


def _results(
    method: WindowPredictor, windows: list[Window], workers: int
) -> Iterator[tuple[Window, np.ndarray]]:
    if workers <= 1 or len(windows) == 1:
        for w in windows:
            yield w, method.predict_window(w)
        return
    import numba

    # numba's thread count is per calling thread: give each worker its share of the caller's
    # threads, so N workers do not start N x cores threads.
    share = max(1, numba.get_num_threads() // workers)
    with ThreadPoolExecutor(
        max_workers=workers, initializer=_set_threads, initargs=(share,)
    ) as pool:
        # Bounded look-ahead: at most 2 x workers windows in memory at once.
        pending: list = []
        it: Iterable[Window] = iter(windows)
        for w in it:
            pending.append((w, pool.submit(method.predict_window, w)))
            if len(pending) >= 2 * workers:
                w0, f0 = pending.pop(0)
                yield w0, f0.result()
        for w0, f0 in pending:
            yield w0, f0.result()


def run(
    method: WindowPredictor,
    windows: list[Window],
    sink: Sink,
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
) -> None:
    """Predict every window and hand it to ``sink`` as soon as it is done (streamed);
    ``progress(0, total)`` when the windows begin, then ``progress(done, total)``."""
    total = len(windows)
    if progress is not None:
        progress(0, total)  # the windows began (a whole scene as one window said "fitting")
    for i, (w, arr) in enumerate(_results(method, windows, workers), start=1):
        sink.write(arr, w)
        if progress is not None:
            progress(i, total)


def release_freed_memory(*, collect: bool = True) -> None:
    """Hand the heap a finished run freed back to the system before the next run in the
    same process (an ensemble's members, a series' dates): glibc keeps it otherwise, and
    the runs' peaks add up under ``--mem-limit``. ``collect`` first frees the objects kept
    alive only by reference cycles. Other C libraries (macOS, Windows, musl): only that.
    (:func:`return_freed_memory` keeps large arrays out of the heap; this trims the rest.)"""
    import gc

    if collect:
        gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
