"""What a series run did: one :class:`DateRecord` per date (a row of summary.csv), the result."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: The reason recorded for an output kept from an earlier run (summary.csv, the CLI's count).
KEPT_REASON = "kept from an earlier run (inputs unchanged, output verified)"
#: The reason of a date outside ``--date-range`` listed because its output is current.
OUTSIDE_REASON = "outside --date-range, not computed: output of an earlier run, still current"
#: The reason of a date in the range but off the ``--every`` step, listed as ``OUTSIDE_REASON``.
OFF_STEP_REASON = "off the --every step, not computed: output of an earlier run, still current"

STATUSES = ("predicted", "gap-filled", "skipped", "failed")
SUMMARY_COLUMNS = (
    "date",
    "status",
    "method",
    "pairs",
    "weights",
    "valid_fraction",
    "coarse_valid",
    "fine_valid",
    "seconds",
    "output",
    "reason",
)


@dataclass
class DateRecord:
    """What happened at one date (one row of summary.csv)."""

    date: dt.date
    status: str = "skipped"
    method: str = ""
    pairs: list[dt.date] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    valid_fraction: float | None = None
    coarse_valid: float | None = None
    fine_valid: float | None = None
    seconds: float = 0.0
    output: str = ""
    reason: str = ""

    def row(self) -> dict[str, str]:
        def frac(v: float | None) -> str:
            return "" if v is None else f"{v:.4f}"

        return {
            "date": self.date.isoformat(),
            "status": self.status,
            "method": self.method,
            "pairs": " ".join(d.isoformat() for d in self.pairs),
            "weights": " ".join(f"{w:.4f}" for w in self.weights),
            "valid_fraction": frac(self.valid_fraction),
            "coarse_valid": frac(self.coarse_valid),
            "fine_valid": frac(self.fine_valid),
            "seconds": f"{self.seconds:.2f}",
            "output": self.output,
            "reason": self.reason,
        }


#: The fields of a record an output carries (``STFUSION_SERIES_RECORD``), restored when the
#: output is kept by a later run; status, pairs and the valid fraction have tags of their own.
RECORD_FIELDS = ("method", "weights", "coarse_valid", "fine_valid", "reason")


def record_tag(rec: DateRecord) -> str:
    """What the run that writes an output recorded about its date, as JSON (a tag)."""
    return json.dumps({name: getattr(rec, name) for name in RECORD_FIELDS})


def restore_record(rec: DateRecord, text: str | None) -> str:
    """Fill ``rec`` from a :func:`record_tag` (missing or unreadable: left as it is) and return
    the reason recorded then ("" if none)."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get("method"), str) and data["method"]:
        rec.method = data["method"]
    if isinstance(data.get("weights"), list):
        rec.weights = [float(w) for w in data["weights"]]
    for name in ("coarse_valid", "fine_valid"):
        if isinstance(data.get(name), (int, float)):
            setattr(rec, name, float(data[name]))
    reason = data.get("reason")
    return reason if isinstance(reason, str) else ""


#: ``progress(done, total, record)``, called after every target date.
ProgressCallback = Callable[[int, int, DateRecord], None]


@dataclass
class SeriesResult:
    """Everything ``run_series`` did: one record per date, where the outputs are."""

    #: The rows of summary.csv, in date order: the dates of the date range and, outside it,
    #: those whose output in the folder is current (reason ``outside --date-range, ...``).
    records: list[DateRecord]
    out_dir: Path
    summary_path: Path
    cube_path: Path | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: Why no target date has an output (every one skipped or failed); "" when one has.
    #: ``stfusion series`` then exits 1 (3 when some failed).
    no_output: str = ""

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.records) for s in STATUSES}

    @property
    def failed(self) -> list[DateRecord]:
        return [r for r in self.records if r.status == "failed"]
