"""The quality layer of each date (``--quality``): ``PREFIX_YYYY-MM-DD_quality.tif``.

Written after the date's output from the same component predictions, window by window
(:meth:`stfusion.series.blend.Combination.quality_blocks`), through the run's scratch folder
and :func:`stfusion.io.copy_as_cog` (atomic, as the outputs). It records the checksum of the
output it describes (``STFUSION_SERIES_QUALITY_OF``): a kept output whose quality layer is
missing, damaged or of another output is computed again when ``--quality`` is given
(:func:`quality_problem`); a run without ``--quality`` neither requires nor removes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window

from stfusion.errors import OutputExistsError
from stfusion.io import Grid, copy_as_cog, write_errors
from stfusion.series.outputs import quality_file, verify_output, write_date_image

#: The bands, in order (docs/commands/series.md, "The quality layer").
BANDS = ("observed", "days_to_pair", "pairs_used", "fallback", "tier")


def write_quality(
    output: Path,
    day: dt.date,
    blocks: Iterable[tuple[Window, np.ndarray]],
    grid: Grid,
    scratch: Path,
) -> Path:
    """Write the quality layer of ``output`` (just written) from ``blocks``; its path."""
    with rasterio.open(output) as ds:
        of = ds.tags().get("STFUSION_SERIES_CHECKSUM", "")
    final = quality_file(output)
    if final.exists() and "STFUSION_SERIES_QUALITY_OF" not in _tags(final):
        raise OutputExistsError(
            f"{final}: exists and is not a quality layer stfusion series wrote; it is not "
            "replaced. Move it away, or name the outputs otherwise (--prefix)."
        )
    tmp = scratch / f"{day.isoformat()}_quality.tif"
    tags = {"STFUSION_SERIES_DATE": day.isoformat(), "STFUSION_SERIES_QUALITY_OF": of}
    try:
        with write_errors(final):
            write_date_image(tmp, blocks, grid, BANDS, "float32", 1.0, tags)
        copy_as_cog(tmp, final, overwrite=True)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return final


def _tags(path: Path) -> dict[str, str]:
    try:
        with rasterio.open(path) as ds:
            return dict(ds.tags())
    except rasterio.errors.RasterioIOError:
        return {}


def quality_problem(output: Path, output_tags: dict[str, str], grid: Grid) -> str:
    """Why the quality layer of ``output`` (its tags ``output_tags``) cannot be kept with
    it: missing, damaged, or describing another output; "" when it is current."""
    q = quality_file(output)
    if not q.is_file():
        return "quality layer missing"
    state, tags = verify_output(q, grid, len(BANDS), "float32")
    if state != "ok" or "STFUSION_SERIES_QUALITY_OF" not in tags:
        return "quality layer damaged or not written by stfusion series"
    of = output_tags.get("STFUSION_SERIES_CHECKSUM")
    if not of or tags["STFUSION_SERIES_QUALITY_OF"] != of:
        return "quality layer out of date"
    return ""
