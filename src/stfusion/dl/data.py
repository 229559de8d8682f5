"""Dates, ordered date pairs and the spatial validation block of the deep methods' training.

From pairs (fine + coarse) at dates ``d_1 .. d_n`` every *ordered* pair of distinct dates
``(r, t)`` is one example: inputs ``F_r, C_r, C_t``, label ``F_t`` (so two dates give two
examples, ``d_1 -> d_2`` and ``d_2 -> d_1``). Dates come from ``--dates`` or the file names.

Validation cannot hold out a date (two dates are the common case), so it holds out space: a
block in the bottom-right corner with the scene's aspect ratio and ``val_fraction`` of its
area. The patches themselves are read from the files by :mod:`stfusion.dl.datasets`, which
keeps training patches off this block.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stfusion.errors import InvalidParameterError, warn

_DATE_RES = (
    (re.compile(r"(?<!\d)((?:19|20)\d{2})-(\d{2})-(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)((?:19|20)\d{2})[-_]?(\d{3})(?!\d)"), "yd"),
)


def parse_date(text: str) -> str | None:
    """The date in a file name as ``YYYY-MM-DD``: YYYY-MM-DD, YYYYMMDD or YYYYDDD (day of year).

    The last valid date in the name wins (folders may carry other numbers).
    """
    name = Path(text).name
    found: list[tuple[int, str]] = []
    for rx, kind in _DATE_RES:
        for m in rx.finditer(name):
            try:
                if kind == "ymd":
                    d = _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                else:
                    doy = int(m.group(2))
                    if not 1 <= doy <= 366:
                        continue
                    d = _dt.date(int(m.group(1)), 1, 1) + _dt.timedelta(days=doy - 1)
                    if d.year != int(m.group(1)):
                        continue
            except ValueError:
                continue
            found.append((m.start(), d.isoformat()))
    return max(found)[1] if found else None


def resolve_dates(
    pairs: Sequence[tuple[object, object]],
    dates: Sequence[str] | None,
    where: Sequence[str | None] = (),
) -> list[str] | None:
    """ISO dates of the pairs: from ``dates`` (validated), else from the file names, else None.
    ``where``: per pair, where its date was given (a catalog's file and line; None or absent:
    ``--dates``)."""
    if dates:
        if len(dates) != len(pairs):
            raise InvalidParameterError(
                f"--dates gives {len(dates)} date(s) for {len(pairs)} pair(s); give one per pair."
            )
        from stfusion.dates import parse_date as user_date

        out = []
        for d in dates:
            try:  # the forms file names and catalogs take
                out.append(user_date(str(d)).isoformat())
            except InvalidParameterError:
                raise InvalidParameterError(
                    f"--dates: {d!r} is not a date; write YYYY-MM-DD (or YYYYMMDD, YYYYDDD)."
                ) from None
        named = [parse_date(str(f)) if isinstance(f, str | Path) else None for f, _ in pairs]
        clash = [k for k, (n, d) in enumerate(zip(named, out)) if n and n != d]
        source = [*where, *[None] * len(pairs)]
        if clash and source[clash[0]]:  # a catalog's date column: name the row
            k = clash[0]
            name = Path(str(pairs[k][0])).name
            more = f" (and {len(clash) - 1} more row(s))" if len(clash) > 1 else ""
            warn(
                f"{source[k]}: date {out[k]} contradicts the file name {name} ({named[k]})"
                f"{more}; the catalog's date is used: check the date column."
            )
        elif clash:
            k = clash[0]
            more = f" (and {len(clash) - 1} more pair(s))" if len(clash) > 1 else ""
            warn(
                f"--dates {','.join(out)} contradicts the file names: pair {k + 1}'s fine "
                f"image {Path(str(pairs[k][0])).name} is named {named[k]}, --dates gives "
                f"{out[k]}{more}; the dates given are used: check their order (one per --pair, "
                "in the same order)."
            )
        return out
    found = []
    for fine, coarse in pairs:
        named = [parse_date(str(x)) if isinstance(x, str | Path) else None for x in (fine, coarse)]
        if named[0] and named[1] and named[0] != named[1]:
            warn(
                f"pair {fine} + {coarse}: the file names give different dates ({named[0]}, "
                f"{named[1]}); a pair is a fine and a coarse image of one date. Using "
                f"{named[0]}."
            )
        day = named[0] or named[1]
        if day is None:
            return None
        found.append(day)
    return found


def ordered_pairs(n: int) -> list[tuple[int, int]]:
    """Every (reference, target) pair of distinct dates, in a fixed order."""
    return [(r, t) for r in range(n) for t in range(n) if r != t]


@dataclass(frozen=True)
class Block:
    """A rectangle of pixels: rows ``row .. row + height``, columns ``col .. col + width``."""

    row: int
    col: int
    height: int
    width: int

    def intersects(self, row: int, col: int, height: int, width: int) -> bool:
        return (
            row < self.row + self.height
            and self.row < row + height
            and col < self.col + self.width
            and self.col < col + width
        )


def validation_block(shape: tuple[int, int], fraction: float, multiple: int = 1) -> Block:
    """The bottom-right block with the scene's aspect and ``fraction`` of its area."""
    if not 0.0 < fraction < 1.0:
        raise InvalidParameterError(f"val_fraction must be in (0, 1), got {fraction}.")
    h, w = shape
    s = float(np.sqrt(fraction))
    bh = max(multiple, round(h * s) // multiple * multiple)
    bw = max(multiple, round(w * s) // multiple * multiple)
    return Block(h - bh, w - bw, bh, bw)


def warn_site_scales(sites: Sequence[Any]) -> None:
    """Warn when the sites' fine images differ 20x or more in scale (reflectance x10000
    against 0-1 in one catalog): the networks do not mind, but the validation RMSE that picks
    the best epoch is then dominated by the x10000 sites. The catalog's scale columns (or
    the files themselves) make them agree."""
    from stfusion.scene_checks import SCALE_WARN_FACTOR

    if len(sites) < 2:
        return
    medians = {}
    for s in sites:
        v = np.abs(s.scene.pairs[0][0].sample(1 << 14))
        v = v[np.isfinite(v)]
        if v.size:
            medians[s.name] = float(np.median(v))
    if len(medians) < 2 or min(medians.values()) <= 0:
        return
    big, small = max(medians, key=medians.__getitem__), min(medians, key=medians.__getitem__)
    if medians[big] / medians[small] >= SCALE_WARN_FACTOR:
        warn(
            f"sites {big} (median {medians[big]:.4g}) and {small} (median "
            f"{medians[small]:.4g}) differ {medians[big] / medians[small]:.0f}x in scale; "
            "give each row its scale (catalog columns fine_scale, coarse_scale; e.g. 0.0001 "
            "for x10000 files) or the files in one unit: the validation RMSE mixes them "
            "otherwise."
        )


def warn_idle_dates(sites: Sequence[Any], examples: Sequence[Any], held: Sequence[str]) -> None:
    """Say which dates of sites that do train give no example under --max-gap (a trial:
    such a date was dropped silently, yet listed among the training dates, so predicting
    it later was said to be "trained on the target date")."""
    used = {(e.site, k) for e in examples for k in (e.ref, e.tgt)}
    busy = {e.site for e in examples}
    idle = [
        f"{d} ({site.name})"
        for s, site in enumerate(sites)
        if s in busy
        for k, d in enumerate(site.dates or [])
        if (s, k) not in used and d not in held
    ]
    if idle:
        warn(
            f"{', '.join(idle)}: no other date within --max-gap, so no training example; "
            "still listed among the checkpoint's training dates (predicting them is said to "
            "be no honest test). Leave them out of the pairs, or give a larger --max-gap."
        )


def warn_idle_sites(sites: Sequence[Any], busy: set[int], max_gap: float) -> None:
    """Say which sites give no training example (one date, or no pair within --max-gap):
    they are listed in the checkpoint's sites but teach the network nothing."""
    idle = [s.name for i, s in enumerate(sites) if i not in busy]
    if idle:
        why = f"no two of its dates within --max-gap {max_gap:g} days" if max_gap else "one date"
        warn(
            f"site(s) {', '.join(idle)}: no training example ({why}, apart from held-out "
            "dates); they do not train the network."
        )


def warn_masked_out(sites: Sequence[Any]) -> None:
    """Say which dates have no valid fine pixel once their catalog mask is applied (a trial:
    a mask covering a whole date was taken without a word and the date listed among the
    training dates, though no patch of it can be valid)."""
    from stfusion.qa import MaskedSource

    empty = [
        f"{site.dates[k] if site.dates else k + 1} ({site.name})"
        for site in sites
        for k, (fine, _) in enumerate(site.scene.pairs)
        if isinstance(fine, MaskedSource) and not np.isfinite(fine.sample(1 << 14)).any()
    ]
    if empty:
        warn(
            f"{', '.join(empty)}: no valid fine pixel once masked (the mask covers the whole "
            "image): no training patch can use it; leave it out of the catalog."
        )
