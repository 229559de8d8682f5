"""The output grid of a series, and fine images on other grids placed on it.

Real fine scenes rarely share one extent (another WRS path, another clip). The output grid is
the grid most pair fine images share (a tie: the larger grid, then the earliest image's);
every other pair fine image whose pixels are that grid's pixels (same CRS, pixel size and
orientation, an origin whole pixels away) is read through a :class:`.placed.PlacedSource`: its own
values shifted onto the output grid, no resampling, NaN outside its footprint, the part
beyond the grid left out. A pair fine image that would need resampling stops the run before
any date (:func:`choose_grid`), naming the files, their grids and a ``gdalwarp`` command.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from stfusion.errors import InputFileError, STFusionError
from stfusion.io import FileSource, Grid, Scaling
from stfusion.io.grid import short_crs
from stfusion.series.placed import placement
from stfusion.series.planning import SeriesInputs


@dataclass
class GridChoice:
    """The output grid (``ref``: a fine image on it) and the notes about the others."""

    ref: FileSource
    #: Pair fine images on other grids placed on it: date -> (row, col) of their first pixel.
    placed: dict[dt.date, tuple[int, int]] = field(default_factory=dict)


def choose_grid(inputs: SeriesInputs, scaling: Scaling, notes: list[str]) -> GridChoice:
    """The output grid: that of the most pair fine images (module doc); raises
    :class:`InputFileError` naming the pair fine images that cannot be placed on it.

    Only headers are read. A pair fine image that does not open fails at its dates (named
    there); fine images without a coarse image (never used) have no say. ``ref`` is the
    first fine image that opens on the chosen grid, as when all grids had to agree, so runs
    on one grid keep their outputs.
    """
    pairs: dict[dt.date, FileSource] = {}
    for d in inputs.pair_dates:
        try:
            pairs[d] = FileSource(inputs.fine[d].path, scaling)
        except STFusionError:
            continue
    if not pairs:  # nothing to vote: the first fine image that opens (the dates fail)
        return GridChoice(_first_on(inputs, scaling, None, pairs))
    groups: list[list[dt.date]] = []  # pair dates by grid, in date order
    for d in sorted(pairs):
        group = next((g for g in groups if pairs[g[0]].grid.same_as(pairs[d].grid)), None)
        if group is None:
            groups.append([d])
        else:
            group.append(d)
    # the most images, then the most pixels; max keeps the earliest of equals
    best = max(groups, key=lambda g: (len(g), pairs[g[0]].grid.width * pairs[g[0]].grid.height))
    grid = pairs[best[0]].grid
    choice = GridChoice(_first_on(inputs, scaling, grid, pairs))
    refused = []
    for d, src in sorted(pairs.items()):
        if d in best:
            continue
        at = placement(src.grid, grid)
        if at is None:
            refused.append(f"{src.path} ({_where(src.grid)})")
        else:
            choice.placed[d] = at
    if refused:
        raise InputFileError(
            f"{len(refused)} fine image(s) on a grid that is not the output grid and cannot "
            f"be put on it without resampling: {'; '.join(refused)}. The output grid is that "
            f"of {len(best)} of the {len(pairs)} pair fine images (e.g. {pairs[best[0]].path}: "
            f"{_where(grid)}). Resample them onto it first, e.g. gdalwarp {_gdalwarp(grid)} "
            "-r near IN.tif OUT.tif, and give the resampled files instead."
        )
    if choice.placed:
        days = ", ".join(
            f"{d} ({pairs[d].grid.height} x {pairs[d].grid.width} px at row {r}, col {c})"
            for d, (r, c) in sorted(choice.placed.items())
        )
        notes.append(
            f"fine images on other grids placed on the output grid ({_where(grid)}, that of "
            f"{len(best)} of the {len(pairs)} pair fine images) pixel for pixel, without "
            f"resampling, nodata outside their footprint: {days}"
        )
    return choice


def _first_on(
    inputs: SeriesInputs,
    scaling: Scaling,
    grid: Grid | None,
    opened: dict[dt.date, FileSource],
) -> FileSource:
    """The first fine image (date order) that opens and lies on ``grid`` (None: any)."""
    failed: list[tuple[dt.date, STFusionError]] = []
    for d, a in inputs.fine.items():
        src = opened.get(d)
        if src is None:
            try:
                src = FileSource(a.path, scaling)
            except STFusionError as exc:
                failed.append((d, exc))
                continue
        if grid is None or src.grid.same_as(grid):
            return src
    if not failed:
        raise InputFileError("none of the fine images lies on the output grid.")
    # one reason, once (a trial's 10 kB line repeated every date's band file list twice)
    (d0, first), rest = failed[0], failed[1:]
    alike = all(type(e) is type(first) for _, e in rest)
    others = (
        f" The other dates ({', '.join(str(d) for d, _ in rest)}) fail "
        + ("alike." if alike else "too: " + "; ".join(f"{d}: {e}" for d, e in rest))
        if rest
        else ""
    )
    raise InputFileError(f"none of the fine images can be read. {d0}: {first}{others}")


def _where(grid: Grid) -> str:
    """A grid for a message: size, pixel size, CRS and where it lies."""
    left, bottom, right, top = grid.bounds
    return f"{grid.describe()}, bounds {left:.10g} {bottom:.10g} {right:.10g} {top:.10g}"


def _gdalwarp(grid: Grid) -> str:
    """The gdalwarp options that give exactly ``grid``."""
    left, bottom, right, top = grid.bounds
    crs = f"-t_srs '{short_crs(grid.crs)}' " if grid.crs is not None else ""
    return (
        f"{crs}-te {left:.10g} {bottom:.10g} {right:.10g} {top:.10g} "
        f"-tr {grid.res[0]:.10g} {grid.res[1]:.10g}"
    )
