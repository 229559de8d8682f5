"""Which pairs predict which date: the inputs found by date, the targets, the pair sets.

- A *pair* is a fine date that also has a coarse image. A pair is *clear* when both its fine
  and its coarse image have a valid fraction (pixels valid in every band, after masking)
  of at least ``min_valid``.
- Every coarse date in the date range is a *target*; a target whose coarse image is below
  ``min_valid`` is skipped. So is a fine date without a coarse image between the first and
  the last coarse date (written as observed). The range limits the targets, never the pairs.
- Pairs for a target (never the target's own pair): :func:`choose_pairs`; single-pair
  methods' predictions are blended with :func:`temporal_weights`, or with ``--multi-pair
  vip`` made once from all the chosen pairs by VIPSTF over the method (:func:`vip_sets`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from stfusion.dates import (
    Acquisition,
    acquisitions_from,
    by_date,
    in_range,
    read_catalog,
    split_listed,
)
from stfusion.errors import InvalidParameterError, warn
from stfusion.io import check_name
from stfusion.series.config import SeriesConfig

# ------------------------------------------------------------------------------- choosing


def choose_pairs(
    target: dt.date,
    clear: Sequence[dt.date],
    min_pairs: int,
    max_pairs: int | None,
    per_side: int,
    all_pairs: bool = False,
) -> tuple[list[list[dt.date]], str]:
    """The pair sets (one per prediction to blend) for ``target``, and a note.

    ``clear``: dates of the clear pairs (the target's own date is ignored). Single-pair
    methods get one set per chosen pair; all others one set of up to ``max_pairs`` pairs,
    nearest first, alternating before and after. ``all_pairs`` (a time-series method,
    ``tags.series_all_pairs``): one set of every clear pair, whatever ``per_side``.
    """
    before = sorted((d for d in clear if d < target), reverse=True)
    after = sorted(d for d in clear if d > target)
    if all_pairs and max_pairs != 1:
        per_side = max(len(before), len(after), 1)
    if max_pairs == 1:
        sets = [[d] for d in sorted(before[:per_side] + after[:per_side])]
    else:
        limit = 2 * per_side if max_pairs is None else max_pairs
        chosen: list[dt.date] = []
        for i in range(per_side):
            for side in (before, after):
                if i < len(side) and len(chosen) < limit:
                    chosen.append(side[i])
        if len(chosen) < min_pairs:  # one side is short: the nearest others instead
            rest = sorted(set(before + after) - set(chosen), key=lambda d: abs((d - target).days))
            chosen += rest[: min_pairs - len(chosen)]
        if chosen and len(chosen) < min_pairs:
            return [], f"the method needs {min_pairs} clear pairs, {len(chosen)} available"
        sets = [sorted(chosen)] if chosen else []
    if not sets:
        return [], "no clear pair"
    used = [d for group in sets for d in group]
    one_sided = not (any(d < target for d in used) and any(d > target for d in used))
    return sets, "clear pairs on one side only (extrapolated)" if one_sided else ""


def vip_sets(target: dt.date, sets: Sequence[Sequence[dt.date]]) -> list[list[dt.date]]:
    """The one-pair sets of a one-pair method as one set for VIPSTF over it (``--multi-pair
    vip``): every chosen pair, the nearest :data:`~stfusion.methods.vipstf.MAX_PAIRS` if more."""
    from stfusion.methods.vipstf import MAX_PAIRS

    dates = sorted({d for group in sets for d in group}, key=lambda d: abs((d - target).days))
    return [sorted(dates[:MAX_PAIRS])]


def temporal_weights(target: dt.date, dates: Sequence[dt.date]) -> list[float]:
    """``(1/d_i) / sum_j (1/d_j)`` with ``d`` the distance in days (at least 1)."""
    inv = [1.0 / max(abs((d - target).days), 1) for d in dates]
    total = sum(inv)
    return [v / total for v in inv]


# --------------------------------------------------------------------------------- inputs


@dataclass
class SeriesInputs:
    """The images of a run by date (masks attached), and notes about what was not used."""

    fine: dict[dt.date, Acquisition]
    coarse: dict[dt.date, Acquisition]
    notes: list[str] = field(default_factory=list)

    @property
    def pair_dates(self) -> list[dt.date]:
        """Dates with both a fine and a coarse image."""
        return sorted(set(self.fine) & set(self.coarse))

    def targets(self, start: dt.date | None, end: dt.date | None, every: int = 1) -> list[dt.date]:
        """The dates within ``start..end`` (inclusive; None: open) that get an output: every
        coarse date and every :meth:`observed_only` date, on the step of ``every`` days
        counted from ``start`` (None: the first coarse date in the range)."""
        coarse = sorted(d for d in self.coarse if in_range(d, start, end))
        days = sorted({*coarse, *self.observed_only(start, end)})
        if every > 1 and days:
            anchor = start or (coarse or days)[0]
            days = [d for d in days if (d - anchor).days % every == 0]
        return days

    def observed_only(self, start: dt.date | None, end: dt.date | None) -> list[dt.date]:
        """Fine dates within the range without a coarse image, between the first and the last
        coarse date (of all, not only the range's): a Landsat day MODIS missed, written as
        observed. Fine dates beyond the coarse images stay out (an archive of Landsat years
        beside one season of MODIS)."""
        if not self.coarse:
            return []
        first, last = min(self.coarse), max(self.coarse)
        return sorted(
            d
            for d in self.fine
            if d not in self.coarse and first < d < last and in_range(d, start, end)
        )

    def daily_gaps(self, start: dt.date | None, end: dt.date | None) -> list[dt.date]:
        """The days a daily coarse series (most dates one day apart) lacks between its first
        and last date in the range: a MODIS day missing from the downloads gets no output,
        silently, where a composite's 8-day steps are no gap."""
        days = sorted(d for d in self.coarse if in_range(d, start, end))
        steps = sorted((b - a).days for a, b in pairwise(days))
        if len(steps) < 3 or steps[len(steps) // 2] != 1:
            return []
        have = set(days) | set(self.observed_only(start, end))
        span = (days[-1] - days[0]).days
        return [d for n in range(span) if (d := days[0] + dt.timedelta(n)) not in have]

    def step_gaps(self, start: dt.date | None, end: dt.date | None, every: int) -> list[dt.date]:
        """The days on the step of ``every`` days (as :meth:`targets`) that have no coarse
        image (nor a fine one written as observed), not predicted: from ``start`` (else the
        first coarse date in the range) to the last coarse date, and one step past it within
        ``end`` (a weekly range past the last MODIS day named none of its days)."""
        days = sorted(d for d in self.coarse if in_range(d, start, end))
        if every <= 1 or not days:
            return []
        first = start or days[0]
        # past the last coarse date only up to the range's end or a step after it (a range
        # to 2030 counted a decade of days without MODIS yet)
        last = min(end, days[-1] + dt.timedelta(every)) if end else days[-1]
        steps = range(0, (last - first).days + 1, every)
        observed = set(self.observed_only(start, end))
        return [
            d
            for n in steps
            if (d := first + dt.timedelta(n)) not in self.coarse and d not in observed
        ]

    def fine_only(
        self, start: dt.date | None, end: dt.date | None, every: int = 1
    ) -> list[dt.date]:
        """Fine dates within the range without a coarse image that are not targets (beyond
        the coarse dates, or off the step of ``every``): neither pairs nor targets."""
        targets = set(self.targets(start, end, every))
        return [
            d
            for d in self.fine
            if d not in self.coarse and in_range(d, start, end) and d not in targets
        ]

    def fine_only_reason(self, day: dt.date) -> str:
        """Why :meth:`fine_only` date ``day`` has no output (summary.csv)."""
        inside = day in self.observed_only(None, None)  # a target but for the step
        where = "off the --every step" if inside else f"beyond the coarse dates {span(self.coarse)}"
        return (
            f"fine image without a coarse image on this date ({where}): not a pair and not a target"
        )


def span(table: dict[dt.date, Any]) -> str:
    ds = sorted(table)
    return f"{ds[0]} .. {ds[-1]}" if ds else "none"


def _mask_map(specs: Sequence[str], role: str) -> dict[dt.date, str]:
    masks = by_date(acquisitions_from(specs, role), f"{role} mask") if specs else {}
    return {d: a.path for d, a in masks.items()}


def find_inputs(
    config: SeriesConfig,
    fine_bands: Sequence[str] | None,
    coarse_bands: Sequence[str] | None,
    fine_preset: Any,
    coarse_preset: Any,
) -> SeriesInputs:
    """The fine and coarse images of ``config`` by date, band files stacked, masks attached.

    ``*_bands``/``*_preset``: the resolved band choice and preset of each role
    (:func:`stfusion.inputs.resolve_role`). Raises when a role has no image or no date has a
    pair.
    """
    from stfusion.inputs import stack_band_files

    items: list[Acquisition] = []
    if config.catalog is not None:
        items += read_catalog(config.catalog)
    # a file the catalog dates keeps the catalog's date, also when its folder is given (it
    # was the coarse image of both dates, its name's and the catalog's)
    listed = {(a.sensor, os.path.realpath(a.path)) for a in items}
    items += [
        a
        for a in acquisitions_from(config.fine, "fine") + acquisitions_from(config.coarse, "coarse")
        if (a.sensor, os.path.realpath(a.path)) not in listed
    ]
    for a in items:  # before any work: a name GDAL cannot take failed each of its dates
        for path in split_listed(a.path):
            check_name(path, a.sensor)
    items = stack_band_files(items, "fine", fine_bands, fine_preset, not config.fine_mask)
    items = stack_band_files(items, "coarse", coarse_bands, coarse_preset, not config.coarse_mask)
    fine_by = by_date([a for a in items if a.sensor == "fine"], "fine")
    coarse_by = by_date([a for a in items if a.sensor == "coarse"], "coarse")
    if not fine_by:
        raise InvalidParameterError("no fine images: give --fine DIR_OR_GLOB or a --catalog.")
    if not coarse_by:
        raise InvalidParameterError("no coarse images: give --coarse DIR_OR_GLOB or a --catalog.")
    _warn_composites(coarse_by, fine_by)
    inputs = SeriesInputs(fine_by, coarse_by)
    _attach_masks(inputs, "fine", config.fine_mask, fine_by)
    _attach_masks(inputs, "coarse", config.coarse_mask, coarse_by)
    if not inputs.pair_dates:
        raise InvalidParameterError(
            f"no pairs: no fine date ({span(fine_by)}) has a coarse image ({span(coarse_by)}) "
            "on the same date. Check the dates read from the names (see --catalog)."
        )
    return inputs


#: MODIS products whose file date is the first day of a multi-day compositing period:
#: MOD09A1/Q1 (8 days), MOD13A1/Q1 (16 days), Terra (MOD) and Aqua (MYD).
_COMPOSITE = re.compile(r"(?i)(?:^|[/_.])(M[OY]D(?:09A1|09Q1|13A1|13A2|13Q1))\.A\d{7}")


def _warn_composites(
    coarse_by: dict[dt.date, Acquisition], fine_by: dict[dt.date, Acquisition]
) -> None:
    """Coarse images that are multi-day composites dated by their period's first day: a
    fine image inside a period has no coarse image of its own date, so it is not paired (a
    trial's Landsat 10-17 beside MOD09A1.A2001289: skipped, and the week was extrapolated
    from another pair). Said, with what to do."""
    found = {m.group(1).upper() for a in coarse_by.values() if (m := _COMPOSITE.search(a.path))}
    if not found:
        return
    unpaired = sorted(d.isoformat() for d in fine_by if d not in coarse_by)
    warn(
        f"the coarse images are multi-day composites ({', '.join(sorted(found))}), each dated "
        "by the first day of its period; a fine image is paired only with a coarse image of "
        "its own date"
        + (f", so {', '.join(unpaired)} pair with none" if unpaired else "")
        + ". Fuse with the daily product (MOD09GA, MCD43A4), or give each composite the date "
        "it should stand for in a --catalog."
    )


def _attach_masks(
    inputs: SeriesInputs, role: str, specs: Sequence[str], table: dict[dt.date, Acquisition]
) -> None:
    """Give each image of ``table`` without a mask the mask of its date; note the odd ones."""
    masks = _mask_map(specs, role)
    for d, m in masks.items():
        if d in table and table[d].mask is None:
            a = table[d]
            table[d] = Acquisition(a.path, a.date, a.sensor, m)
    unused = sorted(set(masks) - set(table))
    if unused:
        inputs.notes.append(f"{role} masks without a {role} image: {_dates(unused)}")
    if masks:
        bare = sorted(d for d, a in table.items() if a.mask is None)
        if bare:
            inputs.notes.append(f"{role} images without a mask (used unmasked): {_dates(bare)}")


def _dates(days: Sequence[dt.date], shown: int = 5) -> str:
    """The first ``shown`` of ``days`` and how many more (a year of MODIS with one mask made
    a 4,400-character note)."""
    text = ", ".join(d.isoformat() for d in days[:shown])
    return text + (f" and {len(days) - shown} more" if len(days) > shown else "")
