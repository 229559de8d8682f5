"""FSDAF's option parsing (``classes``, ``valid_range``) and class-map input checks.

Moved out of :mod:`stfusion.methods.fsdaf`.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from stfusion.errors import EmptyInputError, InvalidParameterError
from stfusion.io import FileSource, Grid

__all__ = ["class_spec", "class_values", "open_class_map", "parse_range"]


def class_spec(value: Any) -> int | tuple[int, int] | str:
    """``classes`` as a class count (k-means), a range ``(min, max)`` (ISODATA, from
    ``"min-max"``) or the path of a class map."""
    if isinstance(value, bool):
        raise InvalidParameterError(f"fsdaf: classes must be a number or a path, got {value!r}.")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
        if m:
            return int(m.group(1)), int(m.group(2))
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise InvalidParameterError(
        f"fsdaf: classes must be a number of classes or the path of a class map raster, got "
        f"{value!r}."
    )


def parse_range(value: Any) -> tuple[float, float] | str | None:
    """``valid_range``: ``None`` (none), ``"auto"`` or ``(lo, hi)`` (from ``"lo,hi"``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str):
        parts = value.split(",")
    else:
        parts = list(value)
    try:
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"fsdaf: valid_range must be 'auto', 'none' or 'lo,hi', got {value!r}."
        ) from None
    if not lo < hi:
        raise InvalidParameterError(f"fsdaf: valid_range needs lo < hi, got {value!r}.")
    return lo, hi


def open_class_map(path: str, grid: Grid) -> FileSource:
    """The class map raster at ``path``, checked to be one band on the fine ``grid``."""
    src = FileSource(path)
    if src.count != 1:
        raise InvalidParameterError(
            f"fsdaf: class map {path} has {src.count} bands; give a single-band raster of "
            "class labels."
        )
    if src.grid.shape != grid.shape:
        raise InvalidParameterError(
            f"fsdaf: class map {path} is {src.grid.height} x {src.grid.width} pixels (rows x "
            f"columns) but the fine image is {grid.height} x {grid.width}; give a class map on "
            "the fine grid."
        )
    if src.grid.georeferenced and grid.georeferenced and not src.grid.same_as(grid):
        raise InvalidParameterError(
            f"fsdaf: class map {path} ({src.grid.describe()}) is not on the fine grid "
            f"({grid.describe()}); resample it onto the fine grid (nearest neighbour)."
        )
    return src


def class_values(src: FileSource) -> np.ndarray:
    """Sorted distinct labels of a class map (nodata excluded); labels must be integers."""
    values = np.zeros(0)
    for _win, block in src.scan():
        v = block[0]
        v = v[np.isfinite(v)]
        if v.size and np.any(v != np.round(v)):
            raise InvalidParameterError(
                f"fsdaf: class map {src.path} has non-integer values (e.g. "
                f"{v[v != np.round(v)][0]:g}); give integer class labels."
            )
        values = np.union1d(values, np.unique(v))
    if values.size == 0:
        raise EmptyInputError(f"fsdaf: class map {src.path} has no labelled pixel.")
    return values.astype(np.float64)
