"""Fine images whose pixels are pixels of the output grid, read on it (:class:`PlacedSource`):
the same values shifted, no resampling, NaN outside their footprint (:mod:`.grids` chooses
the output grid)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.windows import Window

from stfusion.io import Grid, Source

#: How far (in pixels) a grid's origin may lie from a whole-pixel offset and still be placed.
PIXEL_TOLERANCE = 1e-3


def placement(own: Grid, grid: Grid) -> tuple[int, int] | None:
    """``(row, col)`` of ``grid`` where the first pixel of ``own`` lies when the pixels of
    ``own`` are pixels of ``grid`` (equivalent CRS, same pixel size and orientation, origins
    whole pixels apart); None when ``own`` would have to be resampled."""
    if own.crs is None or grid.crs is None:
        return None  # without georeferencing nothing says where one lies on the other
    col, row = ~grid.transform * (own.transform.c, own.transform.f)
    r, c = round(row), round(col)
    if abs(row - r) > PIXEL_TOLERANCE or abs(col - c) > PIXEL_TOLERANCE:
        return None
    # same_as: the pixel size, rotation and CRS (equal or equivalent) too
    moved = Grid(grid.crs, grid.transform * Affine.translation(c, r), own.width, own.height)
    return (int(r), int(c)) if moved.same_as(own) else None


@dataclass
class PlacedSource(Source):
    """``source`` (on its own grid) read on ``grid``, its first pixel at ``(row, col)``:
    the same values, NaN where it has none; picklable (it holds the source, not a handle)."""

    source: Source
    grid: Grid
    row: int
    col: int

    def __post_init__(self) -> None:
        self.count = self.source.count
        self.band_names = self.source.band_names
        self.label = self.source.label

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        own = self.source.grid
        r0, c0 = int(inside.row_off), int(inside.col_off)
        # the part of the request (within the output grid) that the source covers
        top, left = max(r0, self.row), max(c0, self.col)
        bottom = min(r0 + int(inside.height), self.row + own.height)
        right = min(c0 + int(inside.width), self.col + own.width)
        if bottom > top and right > left:
            block = self.source.read(
                Window(left - self.col, top - self.row, right - left, bottom - top)
            )
            y, x = int(dest.row_off) + top - r0, int(dest.col_off) + left - c0
            out[:, y : y + bottom - top, x : x + right - left] = block
        return out
