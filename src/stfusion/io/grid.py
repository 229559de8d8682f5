"""Grids (CRS + transform + shape), scaling and the ground resolution ratio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (None when not georeferenced), affine transform and size."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)[:4]

    def same_as(self, other: Grid) -> bool:
        return (
            self.shape == other.shape
            and self.crs == other.crs
            and self.transform.almost_equals(other.transform, precision=1e-6 * max(self.res))
        )

    def pixel_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """x of each column's centre and y of each row's centre (north-up grids)."""
        t = self.transform
        xs = t.c + t.a * (np.arange(self.width) + 0.5)
        ys = t.f + t.e * (np.arange(self.height) + 0.5)
        return xs, ys

    def window_transform(self, window: Window) -> Affine:
        return rasterio.windows.transform(window, self.transform)

    def describe(self) -> str:
        crs = self.crs.to_string() if self.crs else "no CRS"
        return f"{self.width} x {self.height} px, {self.res[0]:g} x {self.res[1]:g}, {crs}"


@dataclass(frozen=True)
class Scaling:
    """How file values become physical values: ``value * scale + offset``.

    ``None`` means "use the file's own scale/offset metadata, else 1 and 0".
    """

    scale: float | None = None
    offset: float | None = None
    #: Which bands to read, in this order: names or 1-based numbers (``--fine-bands`` /
    #: ``--coarse-bands``); ``None`` reads every band. See :mod:`stfusion.inputs`.
    bands: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RasterInfo:
    """What ``stfusion inspect`` shows about one file."""

    path: str
    driver: str
    grid: Grid
    count: int
    dtype: str
    nodata: float | None
    file_scales: tuple[float, ...]
    file_offsets: tuple[float, ...]
    band_names: tuple[str, ...]
    scale: float
    offset: float
    scale_source: str


def resolution_ratio(coarse: Grid, fine: Grid) -> float:
    """The ground ratio: sqrt(coarse pixel area / fine pixel area) at the fine scene's centre.

    Areas are measured in the fine grid's CRS: the corners of the coarse pixel that holds the
    fine scene's centre are transformed into it (a sheared or rotated coarse pixel, such as
    MODIS sinusoidal far from its central meridian, keeps its true area), and the fine pixel's
    area is that of its transform. Pixel sizes in projected units are not ground sizes: the
    sinusoidal grid at 146 E measures 14.3 fine pixels "across" where its pixels cover 9.3 x
    9.3 (463 m MODIS on 50 m Landsat).
    """
    fine_area = abs(fine.transform.determinant)
    if coarse.crs is None or fine.crs is None or coarse.crs == fine.crs:
        return float(np.sqrt(abs(coarse.transform.determinant) / fine_area))
    from rasterio.warp import transform as warp_transform

    cx, cy = fine.transform * (fine.width / 2.0, fine.height / 2.0)
    (ux,), (uy,) = warp_transform(fine.crs, coarse.crs, [cx], [cy])
    col, row = ~coarse.transform * (ux, uy)
    col, row = np.floor(col), np.floor(row)
    corners = [
        coarse.transform * (col + dx, row + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))
    ]
    xs, ys = warp_transform(coarse.crs, fine.crs, [c[0] for c in corners], [c[1] for c in corners])
    x, y = np.asarray(xs), np.asarray(ys)
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return float(np.sqrt(area / fine_area))
