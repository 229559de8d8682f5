"""Earlier outputs this run does not make: removed when they no longer match, listed when they do.

When a date ends without a new output (skipped, or failed: a method error, a full disk) the
file an earlier run left under its name is removed if it no longer matches this run's inputs,
settings and stfusion version (damaged, made from changed inputs, with other settings under
``--overwrite``), so every ``PREFIX_*.tif`` in the folder still matches the current inputs.
Only files ``stfusion series`` wrote for that date (tagged with it) are ever removed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stfusion.io import Grid
from stfusion.series.outputs import output_path, remove_quality, verify_output
from stfusion.series.records import DateRecord
from stfusion.series.resume import OUTSIDE_REASON, restore_from_tags, stale_reason

log = logging.getLogger("stfusion")


def why_not_current(state: str, tags: dict[str, str], key: str, inputs: list[list[Any]]) -> str:
    """Why an output (``verify_output``'s ``state`` and tags) does not match this run's
    settings ``key``, ``inputs`` and stfusion version; "" when it does."""
    if state == "corrupt":
        return "damaged or incomplete"
    if state != "ok" or tags.get("STFUSION_SERIES_KEY") != key:
        return "made with other settings"
    return stale_reason(tags, inputs)


def drop_earlier_output(
    path: Path,
    day: dt.date,
    grid: Grid,
    count: int,
    dtype: str,
    key: str,
    inputs: list[list[Any]],
) -> str:
    """Remove the output an earlier run left at ``path`` for ``day``, when this run could not
    make it again and it no longer matches (:func:`why_not_current`); the words for the
    date's reason ("" when there is nothing to say)."""
    state, tags = verify_output(path, grid, count, dtype)
    if not tags:  # pixels that failed to decode: the tags alone may still say whose it is
        tags = verify_output(path, grid, count, dtype, read_data=False)[1]
    if tags.get("STFUSION_SERIES_DATE") != day.isoformat():
        if state == "foreign":
            return ""  # the user's file: the date's error already names it
        # unreadable: nothing proves stfusion series wrote it, so it stays
        return f"{path.name} left as it is: damaged, not readable as an output of this command"
    why = why_not_current(state, tags, key, inputs)
    if not why:  # only under --overwrite: the earlier output is this run's result anyway
        return "earlier output kept (same inputs, settings and version; verified)"
    try:
        path.unlink()
    except OSError as exc:
        return f"earlier output {path.name} ({why}) could not be removed: {exc.strerror or exc}"
    log.info("series: %s: earlier output removed (%s)", path.name, why)
    remove_quality(path, day)
    return f"earlier output removed ({why})"


def outputs_outside(
    days: Sequence[dt.date],
    out: Path,
    prefix: str,
    grid: Grid,
    count: int,
    dtype: str,
    key: str,
    inputs_of: Callable[[dt.date], list[list[Any]]],
    read_data: bool,
) -> tuple[list[DateRecord], list[str]]:
    """The outputs of ``days`` (targets outside ``--date-range``) an earlier run left: records
    of those still current (this run's settings ``key``, the inputs ``inputs_of(day)`` and
    stfusion version; pixels checked with ``read_data``), listed in summary.csv and the cube
    as if kept, and ``"DATE: why"`` for the others, left as they are."""
    kept: list[DateRecord] = []
    stale: list[str] = []
    for day in days:
        path = output_path(out, prefix, day)
        if not path.is_file():
            continue
        state, tags = verify_output(path, grid, count, dtype, read_data=read_data)
        if state == "corrupt" and not tags:
            stale.append(f"{day}: damaged or incomplete")
            continue
        if tags.get("STFUSION_SERIES_DATE") != day.isoformat():
            continue  # not provably this command's output of the date: none of its business
        why = why_not_current(state, tags, key, inputs_of(day))
        if why:
            stale.append(f"{day}: {why}")
            continue
        rec = DateRecord(day, output=path.name)
        restore_from_tags(rec, tags, OUTSIDE_REASON)
        kept.append(rec)
    return kept, stale
