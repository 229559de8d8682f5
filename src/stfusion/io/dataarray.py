"""The xarray edge: georeferenced DataArrays in and out.

A DataArray input keeps its dimension names (``y``/``x``, ``lat``/``lon``,
``latitude``/``longitude`` or those rioxarray finds by CF attributes), its coordinates and
its band labels: :class:`Layout` records them on the input's Source, and
:func:`to_dataarray` gives them back on the prediction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine

from stfusion.errors import GridMismatchError, InputFileError, InvalidParameterError
from stfusion.io.grid import Grid, Scaling
from stfusion.io.sources import ArraySource, FileSource, numeric_values, physical, stored_as
from stfusion.metrics_inputs import described_band_names

#: Spatial dimension names taken without rioxarray's help, (y, x): rioxarray itself knows
#: ``y``/``x`` and ``latitude``/``longitude`` (and CF ``axis`` attributes), not ``lat``/``lon``.
SPATIAL_NAMES = (("y", "x"), ("latitude", "longitude"), ("lat", "lon"))
#: Coordinates further than this (in pixels) from an even spacing are refused: the grid's
#: transform is computed from the first and last coordinate, so every pixel between would
#: be georeferenced that far off.
UNEVEN_PIXELS = 0.1

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


@dataclass(eq=False)
class Layout:
    """A DataArray input's dimension names ``(band, y, x)`` and coordinate values (None
    where it had none), so the prediction comes back labelled as the input was."""

    dims: tuple[str, str, str] = ("band", "y", "x")
    band: np.ndarray | None = None
    y: np.ndarray | None = None
    x: np.ndarray | None = None
    #: attributes of the y and x coordinates
    attrs: tuple[dict[str, Any], dict[str, Any]] = field(default_factory=lambda: ({}, {}))
    #: a 2-D ``(y, x)`` input: a one-band prediction comes back 2-D too
    two_d: bool = False

    def coords(self, count: int, ys: np.ndarray, xs: np.ndarray, names: list[str]) -> dict:
        """Coordinates of a ``(count, len(ys), len(xs))`` output: the input's where they fit
        (the same number of bands, rows, columns), else ``names``, ``ys``, ``xs``."""
        band_dim, y_dim, x_dim = self.dims
        band = self.band if self.band is not None and len(self.band) == count else names
        y = self.y if self.y is not None and len(self.y) == len(ys) else ys
        x = self.x if self.x is not None and len(self.x) == len(xs) else xs
        # an ``axis`` attribute lets rioxarray find lat/lon again on any later copy
        y_attrs = {"axis": "Y", **self.attrs[0]}
        x_attrs = {"axis": "X", **self.attrs[1]}
        return {band_dim: band, y_dim: (y_dim, y, y_attrs), x_dim: (x_dim, x, x_attrs)}


def spatial_dims(da: Any) -> tuple[str, str] | None:
    """``(y, x)``: the spatial dimension names of ``da`` (those rioxarray recognises, else
    one of :data:`SPATIAL_NAMES`), or None."""
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)

        y, x = str(da.rio.y_dim), str(da.rio.x_dim)
        if y in da.dims and x in da.dims:
            return y, x
    except Exception:  # rioxarray missing, or it found no spatial dimensions
        pass
    dims = {str(d) for d in da.dims}
    return next(((y, x) for y, x in SPATIAL_NAMES if {y, x} <= dims), None)


def to_dataarray(
    array: np.ndarray,
    grid: Grid,
    band_names: Sequence[str] | None = None,
    attrs: dict[str, Any] | None = None,
    layout: Layout | None = None,
) -> Any:
    """Wrap a ``(band, y, x)`` array as a georeferenced ``xarray.DataArray``; ``layout``:
    the dimension names and coordinates of the input it was made from."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    arr = np.asarray(array)
    xs, ys = grid.pixel_centers()
    names = list(band_names) if band_names else [f"band{i + 1}" for i in range(arr.shape[0])]
    if layout is None:
        layout = Layout()
        coords: dict[str, Any] = {"band": names, "y": ys, "x": xs}
    else:
        coords = layout.coords(arr.shape[0], ys, xs, names)
    _, y_dim, x_dim = layout.dims
    da = xr.DataArray(arr, dims=layout.dims, coords=coords, attrs=dict(attrs or {}))
    if layout.two_d and arr.shape[0] == 1:  # `.plot()` draws an image, not a histogram
        da = da.squeeze(layout.dims[0], drop=True)
    if (y_dim, x_dim) != ("y", "x"):
        da.rio.set_spatial_dims(x_dim=x_dim, y_dim=y_dim, inplace=True)
    da = da.rio.write_transform(grid.transform)
    if grid.crs is not None:
        da = da.rio.write_crs(grid.crs)
    if arr.dtype.kind == "f":  # NaN is nodata: .rio.to_raster() then says so in the file
        da = da.rio.write_nodata(np.nan, encoded=False)
    return da


def _check_even(values: np.ndarray, dim: str, label: str) -> None:
    """Refuse coordinates that are not evenly spaced (a column dropped by ``isel`` with a
    list): a grid's transform would put the pixels between somewhere else, silently."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3 or not np.issubdtype(np.asarray(values).dtype, np.number):
        return
    step = (v[-1] - v[0]) / (v.size - 1)
    off = np.abs(v - (v[0] + step * np.arange(v.size)))
    worst = int(np.argmax(off))
    if step != 0 and np.isfinite(off).all() and off[worst] <= UNEVEN_PIXELS * abs(step):
        return
    steps = np.diff(v)
    raise GridMismatchError(
        f"{label}: the {dim} coordinates are not evenly spaced (steps from {steps.min():g} to "
        f"{steps.max():g}; the largest deviation from an even spacing is {off[worst]:g} at "
        f"{dim} index {worst}, {off[worst] / abs(step or 1):.2g} pixels), so they make no "
        "grid. Was a row or column dropped (isel with a list)? Select a contiguous range "
        f"(.isel({dim}=slice(a, b))), or resample onto a regular grid (.interp or "
        ".rio.reproject)."
    )


def grid_of_dataarray(
    da: Any, label: str = "DataArray", dims: tuple[str, str] | None = None
) -> Grid:
    """The Grid of a DataArray made by :func:`to_dataarray` or rioxarray; ``dims``: its
    ``(y, x)`` dimension names (default: :func:`spatial_dims`, else ``y``/``x``).

    Coordinates that are not evenly spaced are refused (GridMismatchError)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    y_dim, x_dim = dims or spatial_dims(da) or ("y", "x")
    for dim in (y_dim, x_dim):
        if dim in da.coords:
            _check_even(da[dim].values, dim, label)
    try:
        known = (str(da.rio.y_dim), str(da.rio.x_dim)) == (y_dim, x_dim)
    except Exception:  # rioxarray finds no spatial dimensions (lat/lon)
        known = False
    if not known:
        da = da.copy(deep=False)  # a new accessor, told the names; the data is not copied
        da.rio.set_spatial_dims(x_dim=x_dim, y_dim=y_dim, inplace=True)
    crs = da.rio.crs
    try:  # from the coordinates: a stored transform goes stale when the array is re-sorted
        transform = da.rio.transform(recalc=True)
    except Exception:  # coordinates that do not define one (a single row or column)
        transform = da.rio.transform()
    return Grid(crs=crs, transform=transform, width=da.sizes[x_dim], height=da.sizes[y_dim])


def _one_per_band(values: Any, attr: str, label: str) -> float | None:
    """rioxarray's ``scales``/``offsets`` attribute (one per band, written when the bands
    differ): their one value, or None when absent; bands that differ are refused, as the
    same file given as a path is."""
    if values is None:
        return None
    found = sorted({float(v) for v in np.atleast_1d(values)})
    if len(found) > 1:
        raise InputFileError(
            f"{label}: its bands have different {attr} ({', '.join(f'{v:g}' for v in found)}, "
            f"rioxarray's attrs['{attr}']); choose bands of one kind, or scale the array "
            "yourself and drop the attribute."
        )
    return found[0] if found else None


def _physical(magnitude: float) -> bool:
    """A typical |value| of reflectance or an index (0.002 .. 1.5) or of kelvin (180 .. 350)."""
    return 0.002 <= magnitude <= 1.5 or 180.0 <= magnitude <= 350.0


def _refuse_scaled_twice(image: Any, scale: Any, offset: Any, label: str) -> None:
    """xarray keeps ``attrs`` through arithmetic, so ``da * 1e-4`` still says
    ``scale_factor=1e-4`` and was scaled again: predictions 10^4 too small, and scores of
    them against a truth scaled the same way near perfect, without a word. Stored values are
    integers (also as floats, with masked=True); values not integers whose typical size is
    a physical one (reflectance, an index, kelvin) that the scaling would make implausible
    were scaled already (a fill of 0 is left out of both tests)."""
    sc = 1.0 if scale is None else float(scale)
    off = 0.0 if offset is None else float(offset)
    if (sc == 1.0 and off == 0.0) or not np.issubdtype(image.dtype, np.floating):
        return
    flat = np.asarray(image.values).ravel()
    sample = flat[:: max(1, flat.size // 100_000)].astype(np.float64)
    sample = sample[np.isfinite(sample) & (sample != 0)]
    if sample.size == 0 or float(np.mean(sample != np.round(sample))) <= 0.5:
        return
    raw = float(np.median(np.abs(sample)))
    again = float(np.median(np.abs(sample * sc + off)))
    if _physical(raw) and not _physical(again):
        raise InputFileError(
            f"{label}: attrs['scale_factor'] is {sc:g}"
            + (f" and attrs['add_offset'] {off:g}" if off else "")
            + f", but its values already look scaled (not integers, typically {raw:.4g}; "
            f"scaled again {again:.4g}): xarray keeps the attributes through arithmetic "
            "such as da * 1e-4. Drop them (da.attrs.pop('scale_factor'); "
            "da.attrs.pop('add_offset', None)), or give this image's scaling as 1 "
            "(fine_scaling=Scaling(1.0) or coarse_scaling=Scaling(1.0))."
        )


def dataarray_source(image: Any, scaling: Scaling | None, label: str = "") -> ArraySource:
    """An ``xarray.DataArray`` as a Source in physical units, ``(band, y, x)`` by its
    dimension names, on the grid its coordinates and CRS give (see ``scene.as_source``);
    its layout is kept for the prediction (:class:`Layout`)."""
    label = label or str(image.name or "<DataArray>")
    found = spatial_dims(image)
    names_in = [str(d) for d in image.dims]
    if found is None and image.ndim >= 2:  # no known names: (band, y, x) order, as arrays
        found_dims = (names_in[-2], names_in[-1])
    else:
        found_dims = found or ("y", "x")
    y_dim, x_dim = found_dims
    others = [d for d in names_in if d not in found_dims]
    if image.ndim >= 2 and len(others) > 1:
        raise InvalidParameterError(
            f"{label}: a DataArray with dimensions ({', '.join(names_in)}); an image has "
            f"(band, {y_dim}, {x_dim}). Select one {others[0]} (e.g. .isel({others[0]}=0)) or "
            "drop dimensions of length 1 (.squeeze())."
        )
    if image.ndim >= 2:
        image = image.transpose(*others, y_dim, x_dim)
    if scaling is None or (scaling.scale is None and scaling.offset is None):
        scale, offset = image.attrs.get("scale_factor"), image.attrs.get("add_offset")
        # rioxarray's per-band form, written when the bands differ
        if scale is None:
            scale = _one_per_band(image.attrs.get("scales"), "scales", label)
            scale = None if scale == 1.0 else scale
        if offset is None:
            offset = _one_per_band(image.attrs.get("offsets"), "offsets", label)
            offset = None if offset == 0.0 else offset
        if scale is not None or offset is not None:
            _refuse_scaled_twice(image, scale, offset, label)
            scaling = Scaling(scale, offset, nodata=None if scaling is None else scaling.nodata)
    try:
        nodata = image.rio.nodata
    except Exception:  # no rioxarray accessor
        nodata = None
    arr = physical(numeric_values(image.values, label or "a DataArray"), scaling, nodata)
    if found is not None:
        grid = grid_of_dataarray(image, label, found)
    else:  # no georeferencing: pixel indices, as for arrays
        grid = Grid(None, Affine.identity(), arr.shape[2], arr.shape[1])
    band_dim = others[0] if others else "band"
    band = np.atleast_1d(image[band_dim].values) if band_dim in image.coords else None
    y, x = (image[d] if d in image.coords else None for d in (y_dim, x_dim))
    layout = Layout(
        (band_dim, y_dim, x_dim),
        band,
        None if y is None else y.values,
        None if x is None else x.values,
        ({} if y is None else dict(y.attrs), {} if x is None else dict(x.attrs)),
        two_d=image.ndim == 2,
    )
    names = () if band is None else tuple(str(b) for b in band)
    # rioxarray numbers the bands 1..N and keeps the file's band descriptions in long_name:
    # the names a path would give (STARFM's red and NIR choice, the band-order check)
    described = None if band is None else described_band_names(band, image.attrs)
    if described is not None:
        names = described
    scale, offset = stored_as(scaling)
    return ArraySource(arr, grid, names, label, scale=scale, offset=offset, layout=layout)
