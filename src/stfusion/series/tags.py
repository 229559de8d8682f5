"""What a date's output says about itself: its provenance tags and the notes on the methods.

:func:`date_tags` gives the tags of a date's GeoTIFF (docs/commands/series.md, Outputs);
:func:`merge_fitted` one date's fitted tags from the estimators of its pair sets (which
members of an ensemble ran: :func:`stfusion.methods.members_note`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import TYPE_CHECKING, Any

import stfusion
from stfusion.dates import Acquisition, split_listed
from stfusion.io import Source
from stfusion.provenance import code_digest
from stfusion.series.blend import Tier
from stfusion.series.records import DateRecord
from stfusion.series.resume import absolute_spec, inputs_key

if TYPE_CHECKING:
    from stfusion.series.runner import _Series


def merge_fitted(per_set: list[dict[str, Any]]) -> dict[str, Any]:
    """One date's fitted tags from the estimators of its pair sets (a single-pair method
    blends one prediction per pair, each with its own choices): a method's JSON record
    (FSDAF 2.0's change detection, ...) lists each set's value in the order of
    STFUSION_SERIES_PAIRS where they differ; a text tag keeps the first set's (the variable:
    ``evaluate`` reads its kind, which every set shares, from the text)."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for tags in per_set for k in tags):
        values = [tags.get(key) for tags in per_set]
        same = all(v == values[0] for v in values)
        out[key] = values[0] if same or isinstance(values[0], str) else values
    return out


def date_tags(
    s: _Series,
    rec: DateRecord,
    day: dt.date,
    observed: Source | None,
    tiers: list[Tier],
    blend: str,
    settings: dict[str, Any],
    key: str,
    inputs: list[list[Any]],
) -> dict[str, str]:
    """The output's provenance tags (docs/commands/series.md, Outputs)."""
    ratio = s.images.ratio
    coarse = s.coarse.get(day)  # None: a fine date without one, written as observed
    params = settings["params"]
    if s.fallback is not None and rec.method == s.fallback.name:  # the fallback alone
        params = s.fallback().get_params()
    return {
        "STFUSION_VERSION": stfusion.__version__,
        "STFUSION_CODE": code_digest(),
        "STFUSION_METHOD": rec.method,
        "STFUSION_PARAMS": json.dumps(params, default=str),
        "STFUSION_SERIES_DATE": day.isoformat(),
        "STFUSION_SERIES_STATUS": rec.status,
        "STFUSION_SERIES_PAIRS": json.dumps([d.isoformat() for d in rec.pairs]),
        "STFUSION_SERIES_PAIR_FILES": json.dumps(
            [[absolute_spec(s.fine[d].path), absolute_spec(s.coarse[d].path)] for d in rec.pairs]
        ),
        "STFUSION_SERIES_BLEND": blend,
        "STFUSION_SERIES_WEIGHTS": json.dumps(rec.weights),
        "STFUSION_SERIES_FALLBACK": json.dumps(
            [
                {
                    "method": t.method,
                    "pairs": [[d.isoformat() for d in g] for g in t.sets],
                    "alone": t is tiers[0],  # the main method predicted nothing
                }
                for t in tiers
                if t.method != s.cls.name
            ]
        ),
        "STFUSION_SERIES_COARSE": absolute_spec(coarse.path) if coarse else "",
        # as listed (links not followed): whether the image is still there (remove_orphans);
        # the fine image's on a date without a coarse image, written as observed
        "STFUSION_SERIES_COARSE_LISTED": _listed(coarse) if coarse else "",
        "STFUSION_SERIES_FINE_LISTED": "" if coarse else _listed(s.fine[day]),
        "STFUSION_SERIES_COARSE_MASK": _absolute(coarse.mask) if coarse else "",
        "STFUSION_SERIES_FINE": absolute_spec(s.fine[day].path) if observed is not None else "",
        "STFUSION_SERIES_FINE_MASK": _absolute(s.fine[day].mask) if observed is not None else "",
        "STFUSION_SERIES_SETTINGS": json.dumps(settings, default=str),
        "STFUSION_SERIES_KEY": key,
        "STFUSION_SERIES_INPUTS": json.dumps(inputs),
        "STFUSION_SERIES_INPUTS_KEY": inputs_key(inputs),
        "STFUSION_RATIO": "" if ratio is None else f"{ratio:g}",
        "STFUSION_CREATED": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **{
            k: v if isinstance(v, str) else json.dumps(v, default=str)
            for k, v in (tiers[0].fitted if tiers else {}).items()
        },
    }


def _listed(acq: Acquisition) -> str:
    return ",".join(os.path.abspath(p) for p in split_listed(acq.path))


def _absolute(path: str | None) -> str:
    return absolute_spec(path) if path else ""
