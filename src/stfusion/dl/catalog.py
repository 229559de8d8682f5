"""Training catalogs: the pairs of ``site,date,fine,coarse[,mask]`` CSVs, grouped by site,
with optional per-row scale columns (``fine_scale``, ``fine_offset``, ``coarse_scale``,
``coarse_offset``). Paths only: no pixel is read and torch is not needed here.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stfusion.dates import DateNotFoundError, catalog_path, catalog_rows, parse_date
from stfusion.errors import InputFileError, InvalidParameterError, ScaleMismatchError, warn
from stfusion.io import Scaling
from stfusion.scene import ImageLike


@dataclass
class PairSpec:
    """One dated pair as given: a fine and a coarse image, its date and an optional mask."""

    fine: ImageLike
    coarse: ImageLike
    date: str | None = None
    mask: str | None = None
    #: The row's own scale/offset of each image (catalog columns ``fine_scale`` ...): None
    #: takes the run's (``--fine-scale`` ...), then the file's metadata.
    fine_scale: float | None = None
    fine_offset: float | None = None
    coarse_scale: float | None = None
    coarse_offset: float | None = None
    #: Where the pair was given (``cat.csv, line 3``; None: ``--pair``), for messages.
    where: str | None = None

    def scaling(self, role: str, run: Scaling | None) -> Scaling | None:
        """The Scaling of this pair's ``role`` image: the row's values over the run's."""
        scale, offset = getattr(self, f"{role}_scale"), getattr(self, f"{role}_offset")
        if scale is None and offset is None:
            return run
        base = run or Scaling()
        return Scaling(
            scale if scale is not None else base.scale,
            offset if offset is not None else base.offset,
            base.bands,
            base.nodata,
        )


#: The catalog's optional columns of numbers: a row's own scaling.
SCALE_COLUMNS = ("fine_scale", "fine_offset", "coarse_scale", "coarse_offset")


#: Every column a training catalog reads.
COLUMNS = ("site", "date", "fine", "coarse", "mask", *SCALE_COLUMNS)


def _warn_unknown_columns(path: Path, fieldnames: Sequence[str]) -> None:
    """Columns the catalog does not read, said (a trial's misspelt ``fine_scal`` trained on
    raw numbers without a word), with the known name each is close to."""
    import difflib

    unknown = [f for f in fieldnames if f and f not in COLUMNS]
    if not unknown:
        return
    close = {f: difflib.get_close_matches(f, COLUMNS, n=1, cutoff=0.75) for f in unknown}
    said = ", ".join(f + (f" (did you mean {close[f][0]}?)" if close[f] else "") for f in unknown)
    warn(f"{path}: column(s) {said} are not read; a training catalog reads {', '.join(COLUMNS)}.")


def read_catalog(path: str | os.PathLike[str]) -> dict[str, list[PairSpec]]:
    """The pairs of a catalog CSV (``site,date,fine,coarse[,mask]``), grouped by site.

    Relative paths are relative to the CSV's folder; an empty ``mask`` means none; a line
    whose first cell starts with ``#`` is a comment.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: catalog not found. Give a CSV with site,date,fine,coarse.")
    # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark; headers in any case
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows, lines = [], []
        for line, row in catalog_rows(reader, p):
            rows.append({(k or "").strip().lower(): v for k, v in row.items()})
            lines.append(line)
        fieldnames = [(k or "").strip().lower() for k in reader.fieldnames or []]
    need = {"site", "date", "fine", "coarse"}
    if not rows or not need <= set(fieldnames):
        header = p.read_text(encoding="utf-8-sig").splitlines()[:1]
        other = [d for d in ";\t" if header and d in header[0] and "," not in header[0]]
        raise InvalidParameterError(
            f"{p}: a catalog needs the columns site,date,fine,coarse[,mask] (a header row and "
            f"one row per pair); found {','.join(fieldnames) or 'no rows'}."
            + (
                f" Its columns are separated by {other[0]!r}: write them with commas."
                if other
                else ""
            )
        )
    _warn_unknown_columns(p, fieldnames)
    out: dict[str, list[PairSpec]] = {}
    for i, row in zip(lines, rows, strict=True):
        row = {k: (v or "").strip() for k, v in row.items()}
        for column in ("fine", "coarse"):
            if not row[column]:
                raise InvalidParameterError(
                    f"{p}, line {i}: the {column} column is empty; give the {column} "
                    "image's path (relative to the catalog's folder), or delete the line."
                )
        try:  # the forms a file name may use, so a name's date can be copied over
            date = parse_date(row["date"]).isoformat() if row["date"] else ""
        except DateNotFoundError:
            raise InvalidParameterError(
                f"{p}, line {i}: date {row['date']!r} is not a date; write YYYY-MM-DD, "
                "YYYYMMDD or YYYYDDD (day of year), or leave it empty to read it from the file "
                "name."
            ) from None

        def resolve(value: str, i: int = i) -> str:
            given = catalog_path(p.parent, value)  # each file of a list, as series's
            path = Path(given)
            special = any(ch in value for ch in "*?[,:")  # globs, band lists, FILE:BANDS
            if not special and not path.exists():
                raise InputFileError(
                    f"{p}, line {i}: {value} not found (as {path}: paths in a catalog are "
                    "relative to the catalog's folder)."
                )
            return given

        mask = row.get("mask") or None
        numbers = {k: _number(row.get(k, ""), k, p, i) for k in SCALE_COLUMNS}
        out.setdefault(row["site"] or "site", []).append(
            PairSpec(
                resolve(row["fine"]),
                resolve(row["coarse"]),
                date,
                resolve(mask) if mask else None,
                **numbers,
                where=f"{p}, line {i}",
            )
        )
    return out


def _number(text: str, column: str, path: Path, line: int) -> float | None:
    """A scale/offset cell: empty is None; a scale must be finite and > 0."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (column.endswith("scale") and value <= 0):
        raise InvalidParameterError(
            f"{path}, line {line}: {column} {text!r} is not a "
            f"{'positive ' if column.endswith('scale') else ''}finite number (leave it empty "
            "for the run's --fine-scale/--coarse-scale, or the file's metadata)."
        )
    return value


def with_catalog_columns(
    exc: ScaleMismatchError, site: str, specs: Sequence[PairSpec]
) -> Exception:
    """``exc`` for a catalog site: the run's options it names set every row's scales, and a
    row's own are its columns (a trial's catalog of x10000 and 0-1 sites was sent from
    --fine-scale to --coarse-scale and back, the columns never named)."""
    rows = [s.where for s in specs if s.where]
    if not rows:  # --pair images: the options are the way
        return exc
    return ScaleMismatchError(
        f"{exc} In a catalog (site {site}: {rows[0]}{', ...' if len(rows) > 1 else ''}) those "
        "options set every row; a row's own scales are its columns fine_scale, coarse_scale "
        "(and fine_offset, coarse_offset), for sites stored in other units."
    )
