"""The xarray edge: georeferenced DataArrays in and out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from stfusion.io.grid import Grid, Scaling
from stfusion.io.sources import FileSource

# ------------------------------------------------------------------------------ xarray edge


def read_raster(
    path: str | os.PathLike[str], *, scale: float | None = None, offset: float | None = None
) -> Any:
    """Read a raster as an ``xarray.DataArray`` ``(band, y, x)`` float32, NaN = nodata.

    CRS and transform are attached with rioxarray; ``attrs`` records path and scaling.
    """
    src = FileSource(str(path), Scaling(scale, offset))
    return to_dataarray(
        src.read(),
        src.grid,
        src.band_names,
        attrs={
            "path": str(path),
            "scale": src.scale,
            "offset": src.offset,
        },
    )


def to_dataarray(
    array: np.ndarray,
    grid: Grid,
    band_names: Sequence[str] | None = None,
    attrs: dict[str, Any] | None = None,
) -> Any:
    """Wrap a ``(band, y, x)`` array as a georeferenced ``xarray.DataArray``."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    arr = np.asarray(array)
    t = grid.transform
    xs, ys = grid.pixel_centers()
    names = list(band_names) if band_names else [f"band{i + 1}" for i in range(arr.shape[0])]
    da = xr.DataArray(
        arr,
        dims=("band", "y", "x"),
        coords={"band": names, "y": ys, "x": xs},
        attrs=dict(attrs or {}),
    )
    da = da.rio.write_transform(t)
    if grid.crs is not None:
        da = da.rio.write_crs(grid.crs)
    return da


def grid_of_dataarray(da: Any) -> Grid:
    """The Grid of a DataArray made by :func:`to_dataarray` or rioxarray."""
    crs = da.rio.crs
    try:  # from the coordinates: a stored transform goes stale when the array is re-sorted
        transform = da.rio.transform(recalc=True)
    except Exception:  # coordinates that do not define one (a single row or column)
        transform = da.rio.transform()
    return Grid(crs=crs, transform=transform, width=da.sizes["x"], height=da.sizes["y"])
