"""Why a run wrote nothing, and the warnings about its inputs, in words for the user.

A run whose every target date was skipped (every pair fully masked by a QA band read as a
binary mask, every coarse image cloudy) used to end like a good one; :func:`no_output_reason`
says why it made nothing (``stfusion series`` then exits 1), and :func:`input_warnings` turns
stfusion's warnings about the inputs into the run's notes, not only log lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from stfusion.series.images import ImageSet
from stfusion.series.records import DateRecord

#: Warnings about the inputs shown in full among the notes; the rest are counted.
SHOWN_WARNINGS = 3


def input_warnings(warned: Sequence[str]) -> list[str]:
    """stfusion's warnings about the inputs (each once), as notes: the first few in full."""
    unique = list(dict.fromkeys(warned))
    notes = [f"warning: {w}" for w in unique[:SHOWN_WARNINGS]]
    if len(unique) > SHOWN_WARNINGS:
        notes.append(f"and {len(unique) - SHOWN_WARNINGS} more warning(s) of this kind (the log)")
    return notes


def no_output_reason(
    records: Sequence[DateRecord], targets: Sequence[dt.date], images: ImageSet
) -> str:
    """Why no target date has an output ("" when one has): the pairs' valid fractions when
    none is clear, with what to check (the mask kind), else the first target's reason."""
    mine = [r for r in records if r.date in set(targets)]
    if not mine or any(r.status in ("predicted", "gap-filled") for r in mine):
        return ""
    failed = sum(r.status == "failed" for r in mine)
    text = (
        f"no target date was predicted or gap-filled ({len(mine) - failed} skipped, "
        f"{failed} failed): no output written"
    )
    pairs = sorted(set(images.fine) & set(images.coarse))
    if images.clear_pairs() or not pairs:
        first = min(mine, key=lambda r: r.date)
        return f"{text}; e.g. {first.date}: {first.reason}"
    fine = [_valid(images, "fine", d) for d in pairs]
    coarse = [_valid(images, "coarse", d) for d in pairs]
    shown = ", ".join(
        f"{d} fine {_frac(f)} coarse {_frac(c)}"
        for d, f, c in list(zip(pairs, fine, coarse, strict=True))[:6]
    )
    more = f" and {len(pairs) - 6} more" if len(pairs) > 6 else ""
    text += (
        f"; no pair is clear (fine and coarse valid fraction after masking >= --min-valid "
        f"{images.min_valid:g}): {shown}{more}"
    )
    for role, table, values, kind in (
        ("fine", images.fine, fine, images.fine_mask[0]),
        ("coarse", images.coarse, coarse, images.coarse_mask[0]),
    ):
        masked = any(table[d].mask for d in pairs)
        if masked and all(v == 0.0 for v in values):
            text += (
                f". Every {role} image is fully masked: check --{role}-mask and "
                f"--{role}-mask-kind (now {kind}"
                + (
                    ": a QA band read as a binary mask masks every pixel with any bit set"
                    if kind == "binary"
                    else ""
                )
                + ")"
            )
    return text


def _valid(images: ImageSet, role: str, day: dt.date) -> float | None:
    img = images.images.get((role, day))
    return None if img is None else img.valid


def _frac(v: float | None) -> str:
    return "unreadable" if v is None else f"{v:.3f}"
