"""The quality layer of each date (``--quality``): ``PREFIX_YYYY-MM-DD_quality.tif``.

Computed in the same pass over the component predictions as the date's output
(:meth:`stfusion.series.blend.Combination.blocks`, each window handed to
:meth:`QualityLayer.write`) into the run's scratch folder, then copied beside the output with
:func:`stfusion.io.copy_as_cog` once the output is in place (atomic, as the outputs). It
records the checksum of the output it describes (``STFUSION_SERIES_QUALITY_OF``): a kept
output whose quality layer is missing, damaged or of another output is computed again when
``--quality`` is given (:func:`quality_problem`). A run without ``--quality`` does not require
it, but an output it writes or removes takes along a layer of this command's that no longer
describes it (:func:`stfusion.series.outputs.remove_quality`), so no layer is left describing
other pixels than those beside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from stfusion.errors import OutputExistsError
from stfusion.io import Grid, copy_as_cog, write_errors
from stfusion.series.outputs import (
    DateImage,
    date_image,
    quality_file,
    read_tags,
    remove_quality,
    verify_output,
)

#: The bands, in order (docs/commands/series.md, "The quality layer").
BANDS = ("observed", "days_to_pair", "pairs_used", "fallback", "tier")
#: Each band's unit (UDUNITS; "1": a count or flags), as the cube records it.
UNITS = ("1", "days", "1", "1", "1")
#: The flag bands' values (CF flag_values / flag_masks) and meanings, as the cube records them.
FLAGS = {
    "observed": ("flag_values", (0, 1), "predicted observed"),
    "fallback": ("flag_masks", (1, 2), "method_fallback_rule no_valid_coarse_target"),
    "tier": ("flag_masks", (1, 2), "main_method fallback_method"),
}


class QualityLayer:
    """The quality layer of the output ``output`` of ``day``, filled window by window in the
    pass that computes the output (:meth:`write`), published once the output is in place
    (:meth:`publish`). A context manager: the scratch file is closed and removed on exit.
    ``wanted`` False (no ``--quality``): nothing is written."""

    def __init__(self, output: Path, day: dt.date, grid: Grid, scratch: Path, wanted: bool) -> None:
        self.output, self.day, self.grid, self.wanted = output, day, grid, wanted
        self.final = quality_file(output)
        self.tmp = scratch / f"{day.isoformat()}_quality.tif"
        self._stack = contextlib.ExitStack()
        self._img: DateImage | None = None

    def __enter__(self) -> QualityLayer:
        if not self.wanted:
            return self
        # before any work: the output is not replaced for a layer that cannot be written
        if self.final.exists() and "STFUSION_SERIES_QUALITY_OF" not in read_tags(self.final):
            raise OutputExistsError(
                f"{self.final}: exists and is not a quality layer stfusion series wrote; it is "
                "not replaced. Move it away, or name the outputs otherwise (--prefix)."
            )
        with write_errors(self.final):
            self._img = self._stack.enter_context(
                date_image(self.tmp, self.grid, BANDS, "float32", 1.0)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._img = None
        try:
            self._stack.close()
        finally:
            with contextlib.suppress(OSError):
                self.tmp.unlink()

    @property
    def sink(self) -> Callable[[Window, np.ndarray], None] | None:
        """:meth:`write`, or None when no layer is wanted (the blend then skips it)."""
        return self.write if self._img is not None else None

    def write(self, win: Window, block: np.ndarray) -> None:
        """Store one window of the layer, ``(5, h, w)`` float32 (:data:`BANDS`)."""
        assert self._img is not None
        with write_errors(self.final):
            self._img.write(win, block)

    def drop_stale(self, checksum: str) -> None:
        """Remove a layer of this command's beside the output that does not describe the
        output of ``checksum`` about to replace it, ``--quality`` or not (a user's file
        stays: :func:`stfusion.series.outputs.remove_quality`)."""
        remove_quality(self.output, self.day, keep_of=checksum)

    def publish(self, of: str) -> None:
        """Tag the layer with ``of``, the checksum of the output now in place (its
        ``STFUSION_SERIES_CHECKSUM``), and copy it beside it."""
        if self._img is None:
            return
        tags = {"STFUSION_SERIES_DATE": self.day.isoformat(), "STFUSION_SERIES_QUALITY_OF": of}
        with write_errors(self.final):
            self._img.finish(tags)
            self._img = None
            self._stack.close()  # the scratch file complete and closed
        copy_as_cog(self.tmp, self.final, overwrite=True, resampling="NEAREST")  # flags


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
