"""Bounded scene scans: windows that keep every scene-wide pass under the memory limit."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import numpy as np
from rasterio.windows import Window

from stfusion.io.grid import Grid

# ------------------------------------------------------------------------ bounded scene scans

#: Values (pixels x bands) a scene-wide pass (validation, statistics, sampling, coarse
#: aggregation, class maps) reads at once, unless :func:`scan_limit` says otherwise. The CLI
#: derives it from ``--mem-limit`` (:func:`stfusion.tiling.memory_limits`).
DEFAULT_SCAN_VALUES = 6 << 20
_SCAN_VALUES: contextvars.ContextVar[int] = contextvars.ContextVar(
    "stfusion_scan_values", default=DEFAULT_SCAN_VALUES
)


def scan_values() -> int:
    """The current bound on values (pixels x bands) read at once by a scene-wide pass."""
    return _SCAN_VALUES.get()


@contextlib.contextmanager
def scan_limit(values: int) -> Iterator[None]:
    """Bound every scene-wide pass inside the block to ``values`` (pixels x bands) per read."""
    token = _SCAN_VALUES.set(max(1, int(values)))
    try:
        yield
    finally:
        _SCAN_VALUES.reset(token)


def scan_windows(
    grid: Grid, max_pixels: int, align: int = 1, full_rows: bool = False
) -> list[Window]:
    """Row-major windows covering ``grid``, each at most ``max_pixels`` pixels.

    Window offsets and sizes are multiples of ``align`` (the resolution ratio when coarse
    pixels are aggregated), so no ``align x align`` block is split; a window is never smaller
    than ``align x align``, whatever ``max_pixels`` says. ``full_rows`` (striped files, whose
    strips span the whole width) prefers strips as wide as the image, as many rows as fit;
    otherwise windows are square tiles. Either way a window's size depends on the memory
    bound and the image width, never on the image height.
    """
    a = max(1, int(align))
    max_pixels = max(1, int(max_pixels))
    if full_rows:
        tw = min(grid.width, max(a, max_pixels // a // a * a))
        th = max(a, max_pixels // max(tw, 1) // a * a)
    else:
        side = max(a, math.isqrt(max_pixels) // a * a)
        th = tw = side
    out = []
    for r in range(0, grid.height, th):
        for c in range(0, grid.width, tw):
            out.append(Window(c, r, min(tw, grid.width - c), min(th, grid.height - r)))
    return out


def gdal_sample_index(n: int, step: int) -> np.ndarray:
    """The pixels GDAL's nearest-neighbour decimation picks when ``n`` pixels are read into
    ``ceil(n / step)``: ``floor((i + 0.5) * n / ceil(n / step))``. :meth:`FileSource.sample`
    reads these exact pixels block by block, so its sample is the one a decimated whole-image
    read gives (and scene statistics built on it did not change)."""
    m = -(-n // step)
    return np.minimum(np.floor((np.arange(m) + 0.5) * (n / m)).astype(np.int64), n - 1)
