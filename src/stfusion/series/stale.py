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
from typing import TYPE_CHECKING, Any

from stfusion.dates import in_range
from stfusion.io import Grid
from stfusion.series.outputs import output_path, remove_quality, verify_output
from stfusion.series.records import OFF_STEP_REASON, OUTSIDE_REASON, DateRecord
from stfusion.series.resume import restore_from_tags, stale_reason

if TYPE_CHECKING:
    from stfusion.series.prepare import Prepared
    from stfusion.series.runner import _Series

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
    said: str = "",
) -> str:
    """Remove the output an earlier run left at ``path`` for ``day``, when this run could not
    make it again and it no longer matches (:func:`why_not_current`); the words for the
    date's reason ``said`` so far ("" when there is nothing to add)."""
    state, tags = verify_output(path, grid, count, dtype)  # tags even if pixels fail
    if tags.get("STFUSION_SERIES_DATE") != day.isoformat():
        if state == "foreign" or path.name in said:
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
    off_step: frozenset[dt.date] = frozenset(),
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
        restore_from_tags(rec, tags, OFF_STEP_REASON if day in off_step else OUTSIDE_REASON)
        kept.append(rec)
    return kept, stale


def listed_outside(
    s: _Series, p: Prepared, out: Path, key: str, targets: set[dt.date], notes: list[str]
) -> list[DateRecord]:
    """The dates outside ``--date-range`` whose outputs in the folder are current: listed in
    summary.csv and the cube, so a run on part of the season does not cut them out of either.
    Their pixels are checked only for a cube, which reads them anyway."""
    cfg = p.config
    days = [d for d in p.inputs.targets(None, None) if d not in targets]
    off_step = frozenset(d for d in days if in_range(d, p.start, p.end))
    kept, stale = outputs_outside(
        days,
        out,
        cfg.prefix,
        s.grid,
        s.count,
        cfg.dtype,
        key,
        s.inputs,
        cfg.cube is not None,
        off_step,
    )
    listed = "summary.csv and the cube" if cfg.cube is not None else "summary.csv"
    where = "outside --date-range" + (" or off the --every step" if off_step else "")
    if kept:
        notes.append(
            f"{listed} also {'lists' if cfg.cube is None else 'list'} {len(kept)} date(s) "
            f"{where} whose outputs, made "
            "earlier from the same inputs and settings, are current"
        )
    if stale:
        more = f"; {len(stale) - 1} more" if len(stale) > 1 else ""
        options = "--date-range" + (" and --every" if off_step else "")
        note = (
            f"{len(stale)} output(s) {where} are out of date (e.g. {stale[0]}"
            f"{more}): left as they are and not in {listed}. Run without {options} (or "
            "with one that covers them; --overwrite for other settings) to compute them again."
        )
        log.warning("series: %s", note)
        notes.append(note)
    return kept
