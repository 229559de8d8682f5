"""Acquisition dates of the images of a time series: from file names, or from a CSV catalog.

Rules for a date in a file name (only the file's own name is read, never its folders):

- ``YYYY-MM-DD`` (e.g. ``CIA_Landsat7_2001-10-08.tif``);
- a run of exactly 8 digits that is a valid ``YYYYMMDD`` date (e.g.
  ``LC08_L2SP_191028_20200308_20200822_02_T1_SR.tif``);
- a run of exactly 7 digits that is a valid ``YYYYDDD`` (year and day of year 001-366,
  e.g. Kranj's ``2020068_191-28_kranj.tif`` or MODIS' ``MOD09GA.A2020068.h18v04...``).

The first ``YYYY-MM-DD`` is the acquisition date; without one, the leftmost digit run:
Landsat, Sentinel-2 and MODIS names put it before a processing date (until 2026-12-06 an
8-digit run won over an earlier 7-digit one, so ``MOD09GA_A2020068_processed_20200310`` was
read as 2020-03-10). A name whose first date of another kind differs gets a warning, once
per folder or glob.
A "run" is bounded by non-digits (or the ends of the name), so ``20200308`` is never read as
``2020030`` plus an ``8``, and longer numbers (``2020070031530``, a MODIS production time) are
ignored. Years must lie in 1950-2100 so that other numbers are not mistaken for dates. Names
that do not follow these rules need a catalog (:func:`read_catalog`).
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stfusion.errors import InputFileError, InvalidParameterError, STFusionWarning, warn

#: Years accepted in names; other numbers of the right length are not taken for dates.
MIN_YEAR = 1950
MAX_YEAR = 2100

#: Extensions listed when a folder is given (case-insensitive). ENVI headers are left out
#: because GDAL opens the data file beside them.
RASTER_EXTENSIONS = (".tif", ".tiff", ".vrt", ".img", ".dat", ".bin", ".jp2", ".envi", ".hdf")

#: Sensor names accepted in a catalog, and the role each stands for.
SENSOR_ALIASES: dict[str, str] = {
    "fine": "fine",
    "landsat": "fine",
    "sentinel2": "fine",
    "sentinel-2": "fine",
    "s2": "fine",
    "coarse": "coarse",
    "modis": "coarse",
    "sentinel3": "coarse",
    "sentinel-3": "coarse",
    "s3": "coarse",
    "viirs": "coarse",
}

_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_DIGITS = re.compile(r"\d+")


class DateNotFoundError(InvalidParameterError):
    """No acquisition date could be read from a file name or catalog cell."""


@dataclass(frozen=True)
class Acquisition:
    """One image of a series: its path, date, role (``fine`` or ``coarse``) and mask."""

    path: str
    date: dt.date
    sensor: str
    mask: str | None = None


def _valid_ymd(y: int, m: int, d: int) -> dt.date | None:
    if not MIN_YEAR <= y <= MAX_YEAR:
        return None
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def _valid_yd(y: int, doy: int) -> dt.date | None:
    if not MIN_YEAR <= y <= MAX_YEAR or doy < 1:
        return None
    first = dt.date(y, 1, 1)
    day = first + dt.timedelta(days=doy - 1)
    return day if day.year == y else None


def date_candidates(text: str) -> list[tuple[int, dt.date, int]]:
    """Every date in ``text`` by the module's rules, leftmost first: where it starts, the
    date and its kind (its digit count: 10 ``YYYY-MM-DD``, 8 ``YYYYMMDD``, 7 ``YYYYDDD``)."""
    found = [
        (m.start(), day, 10)
        for m in _ISO.finditer(text)
        if (day := _valid_ymd(int(m.group(1)), int(m.group(2)), int(m.group(3)))) is not None
    ]
    for m in _DIGITS.finditer(text):  # a run is bounded by non-digits: none inside an ISO date
        run = m.group(0)
        if len(run) == 8:
            day = _valid_ymd(int(run[:4]), int(run[4:6]), int(run[6:]))
        elif len(run) == 7:
            day = _valid_yd(int(run[:4]), int(run[4:]))
        else:
            continue
        if day is not None:
            found.append((m.start(), day, len(run)))
    return sorted(found, key=lambda item: item[0])


def _chosen(found: list[tuple[int, dt.date, int]]) -> tuple[dt.date, int] | None:
    """The acquisition date among ``date_candidates``: the first ``YYYY-MM-DD`` (written for
    people, unambiguous), else the leftmost digit run (acquisition before processing)."""
    iso = [c for c in found if c[2] == 10]
    first = iso[0] if iso else (found[0] if found else None)
    return None if first is None else (first[1], first[2])


def parse_date_text(text: str) -> dt.date | None:
    """The acquisition date in ``text`` by the module's rules, or None."""
    chosen = _chosen(date_candidates(text))
    return None if chosen is None else chosen[0]


#: What to do about a name's date, said by :func:`date_from_name` where no caller says better.
LIST_IN_CATALOG = "list it in a --catalog CSV (path,date,sensor)"


def date_from_name(path: str | os.PathLike[str], remedy: str | None = LIST_IN_CATALOG) -> dt.date:
    """The acquisition date in a file's name (rules in the module docstring). ``remedy``: the
    way out said besides renaming the file (a catalog row: its date column; predict, which
    has no catalog: None, renaming only)."""
    rename = "rename the file" + (f" or {remedy}" if remedy else "")
    name = Path(path).name
    found = date_candidates(name)
    chosen = _chosen(found)
    day = None if chosen is None else chosen[0]
    # the first date of another kind differs (a processing date appended to a MODIS name):
    # said, as the choice may be wrong; a Landsat product ID's two YYYYMMDD dates are not
    firsts = {kind: d for _, d, kind in reversed(found)}
    others = sorted({d for kind, d in firsts.items() if chosen and kind != chosen[1]} - {day})
    if others:
        warn(
            f"{path}: the file name holds dates of two kinds ({day}, taken for the "
            f"acquisition date, and {', '.join(str(d) for d in others)}). If that is wrong, "
            f"{remedy or 'rename the file'}."
        )
    if day is None and (bad := _ISO.search(name)):
        raise DateNotFoundError(
            f"{path}: {bad.group(0)} in the file name is not a date (month 01-12, a day the "
            f"month has, year {MIN_YEAR}-{MAX_YEAR}); {rename}."
        )
    near = [
        r
        for r in (m.group(0) for m in _DIGITS.finditer(name))
        if len(r) in (7, 8) and MIN_YEAR <= int(r[:4]) <= MAX_YEAR
    ]
    if day is None and near:  # a date's shape, not a date: 2019366, 20190229
        what = "YYYYDDD (day 001-365, 366 in leap years)" if len(near[0]) == 7 else "YYYYMMDD"
        raise DateNotFoundError(
            f"{path}: {near[0]} in the file name is not a date as {what}; {rename}."
        )
    if day is None:
        raise DateNotFoundError(
            f"{path}: no acquisition date in the file name. Names need YYYY-MM-DD, YYYYMMDD "
            f"or YYYYDDD (day of year), e.g. scene_2020-03-08.tif or 2020068_kranj.tif; {rename}."
        )
    return day


def parse_date(text: str) -> dt.date:
    """A date given by the user (``YYYY-MM-DD``, ``YYYYMMDD``, ``YYYYDDD`` or ``YYYY-DDD``, the
    day of the year as in Landsat and MODIS names), nothing else."""
    t = text.strip()
    if re.fullmatch(r"\d{4}-\d{3}", t):
        t = t.replace("-", "")
    day = parse_date_text(t)
    if day is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{7,8}", t):
        raise DateNotFoundError(
            f"{text!r}: not a date; write YYYY-MM-DD (or YYYYMMDD, YYYYDDD, YYYY-DDD)."
        )
    return day


def parse_date_range(
    text: str | None, option: str = "--dates"
) -> tuple[dt.date | None, dt.date | None]:
    """``START:END`` (inclusive; either side may be empty), or one date for a single day.

    ``option``: the option's name in error messages.
    """
    if text is None or not text.strip():
        return None, None
    if "," in text:
        raise InvalidParameterError(
            f"{option} {text}: one range START:END (or one date), not a list. For separate "
            "days run once per day, or give --coarse only those days' images (a glob or a "
            "comma list)."
        )
    if ":" not in text:
        day = parse_date(text)
        return day, day
    a, b = text.split(":", 1)
    start = parse_date(a) if a.strip() else None
    end = parse_date(b) if b.strip() else None
    if start is not None and end is not None and end < start:
        raise InvalidParameterError(f"{option} {text}: the end is before the start.")
    return start, end


def in_range(day: dt.date, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


#: Names GDAL opens that are not local files: virtual file systems (``/vsizip/``,
#: ``/vsicurl/``, ``/vsis3/``) and driver-prefixed subdatasets.
GDAL_PREFIXES = ("/vsi", "HDF4_EOS:", "HDF5:", "NETCDF:", "HDF4_SDS:", "GTIFF_DIR:")


def is_gdal_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a GDAL virtual or subdataset name, not a local file's (drivers'
    names in any case: GDAL lists netCDF's subdatasets as ``netcdf:f.nc:var``)."""
    return os.fspath(path).upper().startswith(tuple(p.upper() for p in GDAL_PREFIXES))


def gdal_local_file(name: str) -> Path | None:
    """The local file a GDAL name reads, None if none (``/vsicurl/``): the archive of
    ``/vsizip/a.zip/f.tif`` (also ``/vsigzip/``, ``/vsitar/``, nested), the file of
    ``NETCDF:"f.nc":var``. A change there is a change of the input."""
    if name.startswith("/vsi"):
        rest = name
        while rest.startswith("/vsi"):
            rest = rest[1:].partition("/")[2]
        rest = rest.replace("{", "").replace("}", "")
        p = Path()
        for part in Path(rest).parts:
            p = p / part
            if p.is_file():
                return p
        return None
    for piece in name.split(":")[1:]:
        p = Path(piece.strip('"'))
        if piece and p.is_file():
            return p
    return None


def split_listed(
    text: str,
    base: str | os.PathLike[str] | None = None,
    names: Callable[[str], bool] | None = None,
) -> list[str]:
    """A comma list of paths split only where a comma parts two names: the longest run of
    items that names an existing file or link (relative to ``base``, if given; or for which
    ``names`` is true) is one path, so ``Smith, J/x.tif`` stays one (it was two names that
    exist nowhere: a series kept outputs made from changed inputs, and a band choice said
    "file not found")."""
    names = names or (lambda candidate: _lexists(candidate, base))
    items = text.split(",")
    out: list[str] = []
    i = 0
    while i < len(items):
        j = next(
            (j for j in range(len(items), i + 1, -1) if names(",".join(items[i:j]))),
            i + 1,
        )
        out.append(",".join(items[i:j]))
        i = j
    return out


def _lexists(path: str, base: str | os.PathLike[str] | None) -> bool:
    p = Path(path.strip()).expanduser()
    try:
        return os.path.lexists(p if base is None or p.is_absolute() else Path(base) / p)
    except (OSError, ValueError):
        return False


#: Files beside images that are not images: a glob over a download folder matched them
#: (LP DAAC's ``.hdf.xml``, GDAL's ``.aux.xml``, an ENVI header, Landsat's ``MTL.txt``).
NOT_IMAGES: tuple[str, ...] = (".xml", ".hdr", ".ovr", ".msk", ".txt", ".md5", ".json", ".csv")
NOT_IMAGES += (".html", ".htm", ".pdf", ".prj", ".tfw", ".wld", ".qml", ".sld", ".log", ".py")


def list_images(spec: str | os.PathLike[str]) -> list[str]:
    """Files named by a folder (its rasters, by extension) or a glob pattern, sorted; a GDAL
    name (``/vsizip/a.zip/f.tif``) as given. ``~`` is expanded (a quoted glob, and
    ``--out-dir=~/x``, reach stfusion as typed).

    Hidden files (names starting with ``.``, e.g. partial outputs) are never listed, nor
    are a glob's metadata files (:data:`NOT_IMAGES`). Files that look meant but cannot be
    listed (a link to nowhere, ``x.tif `` with a trailing space) are said.
    """
    text = os.path.expanduser(os.fspath(spec))
    p = Path(text)
    if is_gdal_name(text) and not any(c in text for c in "*?["):
        return [text]
    if p.is_dir():
        entries = [f for f in p.iterdir() if not f.name.startswith(".")]
        names = {f.name for f in entries}
        files = [
            str(f)
            for f in entries
            if f.is_file() and (f.suffix.lower() in RASTER_EXTENSIONS or _envi_image(f, names))
        ]
        listed = set(files)  # a folder of ten years of daily MODIS: no n^2 test
        _warn_unlisted(spec, [f for f in entries if str(f) not in listed])
        if not files:
            raise InputFileError(
                f"{spec}: folder has no raster files ({', '.join(RASTER_EXTENSIONS)})."
                + _hint_below(p)
            )
        return sorted(files)
    if p.is_file():
        return [str(p)]
    if is_gdal_name(text):
        raise InputFileError(
            f"{spec}: a glob inside a GDAL name is not listed. Name each file, or list "
            "them in a --catalog CSV."
        )
    matched = [f for f in glob.glob(text) if not Path(f).name.startswith(".")]
    files = [f for f in matched if Path(f).is_file()]
    images = [f for f in files if not f.lower().endswith(NOT_IMAGES)]
    listed = set(files)
    _warn_unlisted(spec, [Path(f) for f in matched if f not in listed])
    if images:
        return sorted(images)
    if files:
        raise InputFileError(
            f"{spec}: matches only files that are not images ({Path(files[0]).name}"
            f"{' and others' if len(files) > 1 else ''}). Give a glob of the images, e.g. "
            f"'{Path(text).parent / '*.tif'}'."
        )
    folders = [f for f in matched if Path(f).is_dir()]
    if folders:  # a glob of folders (a SAFE's R20m): series lists files, not folders
        raise InputFileError(
            f"{spec}: matches {len(folders)} folder(s) but no file; a glob names the "
            f"files, e.g. '{Path(text) / '*.jp2'}' (or '*.tif')."
        )
    raise InputFileError(
        f"{spec}: no such folder or file, and no file matches it as a glob.{_glob_hint(text)}"
    )


def _envi_image(f: Path, names: set[str]) -> bool:
    """Whether ``f`` is an ENVI image by its header beside it (``X.hdr`` for ``X`` or
    ``X.bsq``, or ``X.bsq.hdr``): ENVI images often have no raster extension (BOREAS, LGC)."""
    if f.name.lower().endswith(NOT_IMAGES):
        return False
    return f"{f.name}.hdr" in names or (bool(f.suffix) and f"{f.stem}.hdr" in names)


def _hint_below(folder: Path) -> str:
    """What to give for a folder without raster files: a glob of the folders below it
    (scene folders, as USGS or a SAFE unpacks), or of its ENVI images (no extension)."""
    below = _first_raster_below(folder)
    if below is not None:
        glob_below = _glob_for(folder, below)
        return f" Its files are in folders below it: give a quoted glob, e.g. '{glob_below}'."
    if any(f.suffix.lower() == ".hdr" for f in folder.iterdir()):
        return (
            f" It has ENVI headers (.hdr): give its images as a quoted glob, e.g. '{folder / '*'}'."
        )
    return ""


def _glob_hint(text: str) -> str:
    """Why a glob may have matched nothing: a folder named with ``[ ]`` (a glob's character
    class), or ``{a,b}`` (not a glob)."""
    if "{" in text and "}" in text:
        return " Braces {a,b} are not glob syntax: give one glob for each."
    if "[" in text and "]" in text:
        return " [ ] in a name is a glob's character set: write [[] for a [ in a name."
    return ""


def _warn_unlisted(spec: str | os.PathLike[str], entries: Sequence[Path]) -> None:
    """Say the entries of a folder or glob that look like images but are not listed: a
    link to nowhere, a name whose extension ends in a space or a dot."""
    said = []
    for f in entries:
        if f.is_symlink() and not f.exists():
            said.append(f"{f.name} (a link to {os.readlink(f)}, which does not exist)")
        elif f.is_file() and _ends_in_extension(f.name.rstrip(" .")) and f.name[-1] in " .":
            said.append(f"{f.name!r} (its name ends in a space or a dot: rename it)")
    if said:
        more = f" and {len(said) - 3} more" if len(said) > 3 else ""
        warn(f"{spec}: not read: {'; '.join(said[:3])}{more}.")


def _ends_in_extension(name: str) -> bool:
    return Path(name).suffix.lower() in RASTER_EXTENSIONS


def _first_raster_below(folder: Path, depth: int = 6) -> Path | None:
    """The first raster file (by name) in the folders below ``folder``, up to ``depth``
    levels down, or None."""
    level = [folder]
    for _ in range(depth):
        level = sorted(d for f in level for d in f.iterdir() if d.is_dir())
        for d in level:
            found = sorted(
                f for f in d.iterdir() if f.is_file() and f.suffix.lower() in RASTER_EXTENSIONS
            )
            if found:
                return found[0]
        if not level:
            return None
    return None


def _glob_for(folder: Path, file: Path) -> Path:
    """A glob from ``folder`` to files like ``file``: each folder level a ``*``, the name
    ``*`` with its extension as written (``.TIF`` or ``.tif``)."""
    levels = len(file.relative_to(folder).parts) - 1
    return folder.joinpath(*(["*"] * levels), f"*{file.suffix}")


def acquisitions_from(specs: Iterable[str | os.PathLike[str]], sensor: str) -> list[Acquisition]:
    """Acquisitions of the files named by folders/globs, dated by their names."""
    out = []
    files = [f for spec in specs for f in list_images(spec)]  # what it says, said apart
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", STFusionWarning)
        for f in files:
            out.append(Acquisition(f, date_from_name(f), sensor))
    names = [str(w.message) for w in said if issubclass(w.category, STFusionWarning)]
    for w in said:  # others as they came
        if not issubclass(w.category, STFusionWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if names:  # once for the folder, not once per file (a year of MODIS: 365 lines)
        more = f" ({len(names) - 1} more file(s) alike)" if len(names) > 1 else ""
        warn(f"{names[0]}{more}")
    return out


def _sensor(value: str, where: str) -> str:
    key = value.strip().lower()
    if key not in SENSOR_ALIASES:
        raise InvalidParameterError(
            f"{where}: sensor {value!r} unknown; use fine or coarse (aliases: "
            f"{', '.join(k for k in SENSOR_ALIASES if k not in ('fine', 'coarse'))})."
        )
    return SENSOR_ALIASES[key]


def read_catalog(path: str | os.PathLike[str]) -> list[Acquisition]:
    """Read a CSV catalog with columns ``path,date,sensor`` and an optional ``mask``.

    Paths (and masks) relative to the CSV are taken relative to the CSV's folder. ``date`` is
    ``YYYY-MM-DD`` (``YYYYMMDD`` and ``YYYYDDD`` work too); empty means "from the file name".
    ``sensor`` is ``fine`` or ``coarse``, or one of the aliases in ``SENSOR_ALIASES``. A line
    whose first cell starts with ``#`` is a comment.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: catalog file not found.")
    base = p.parent
    out: list[Acquisition] = []
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        missing = [c for c in ("path", "date", "sensor") if c not in fields]
        if missing:
            raise InvalidParameterError(
                f"{p}: catalog lacks column(s) {', '.join(missing)}; the header must be "
                "path,date,sensor[,mask]."
            )
        for line, raw in catalog_rows(reader, p):
            where = f"{p}, line {line}"
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            if not row.get("path"):
                raise InvalidParameterError(f"{where}: empty path.")
            given = catalog_path(base, row["path"])  # a GDAL name's // kept (not Path's)
            fp = Path(given)
            if row.get("date"):
                try:
                    day = parse_date(row["date"])
                except DateNotFoundError:
                    raise DateNotFoundError(
                        f"{where}: date {row['date']!r} is not YYYY-MM-DD (or YYYYMMDD, YYYYDDD)."
                    ) from None
            else:
                try:  # in a catalog the way out is the row's date column, not "a --catalog"
                    day = date_from_name(fp, "fill this row's date")
                except DateNotFoundError as exc:
                    if not fp.exists() and not any(c in row["path"] for c in "*?[,:"):
                        # no date to read, but the first problem is the missing file (a
                        # missing file with a dated name fails its date, later)
                        raise InputFileError(
                            f"{where}: {row['path']} not found (as {fp}: paths in a catalog "
                            "are relative to the catalog's folder)."
                        ) from None
                    if fp.is_dir():
                        raise InputFileError(
                            f"{where}: {row['path']} is a folder; a row names one image (a "
                            "file, a quoted glob or list of its band files)."
                        ) from None
                    raise DateNotFoundError(f"{where}: {exc}") from None
            mask = row.get("mask") or None
            if mask is not None and not Path(mask).is_absolute():
                mask = str(base / mask)
            out.append(Acquisition(given, day, _sensor(row["sensor"], where), mask))
    if not out:
        raise InvalidParameterError(f"{p}: catalog has no rows.")
    return out


def catalog_rows(reader: csv.DictReader[str], path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a catalog CSV (series' and training's): a line whose first
    cell starts with ``#`` is a comment (unless it names a file: ``#10_2020-03-10.tif`` was
    dropped without a word), one of empty cells (a spreadsheet's blank line) is
    skipped; empty fields beyond the header (a spreadsheet's trailing commas) are dropped,
    others refused (csv puts them under the key None: a traceback, once)."""
    for raw in reader:
        first = next(iter(raw.values()), None)
        if isinstance(first, str) and first.lstrip().startswith("#"):
            if not _lexists(first, path.parent):
                continue
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)) and not any(
            (v or "").strip() for v in raw.get(None) or []
        ):
            continue  # a row of empty cells: a spreadsheet's blank line (",,,,")
        if any((v or "").strip() for v in raw.pop(None, None) or []):
            raise InvalidParameterError(
                f"{path}, line {reader.line_num}: more fields than the header's "
                f"{len(reader.fieldnames or [])}; quote a path that holds commas (a list of "
                'band files, FILE:B1,B2): "a.tif,b.tif".'
            )
        yield reader.line_num, raw


#: GDAL's handlers of a local archive, whose path follows them.
_ARCHIVE_HANDLERS = ("vsizip", "vsigzip", "vsitar", "vsi7z", "vsirar")


def catalog_path(base: Path, spec: str) -> str:
    """A catalog row's image (a file, a glob or a comma list of them, perhaps with
    ``:BANDS``) with each file relative to the catalog's folder ``base`` (``~`` expanded):
    a list once had only its first file so, the others relative to the working folder. The
    series' and the training catalogs both read their paths so. An archive named inside a
    GDAL name (``/vsizip/a.zip/f.tif``) is relative to ``base`` too (it was to the working
    folder)."""
    handler, _, inner = spec[1:].partition("/")
    if spec.startswith("/") and handler in _ARCHIVE_HANDLERS and inner[:1] not in ("", "/", "{"):
        return f"/{handler}/{catalog_path(base, inner)}"
    driver = re.match(r'([A-Za-z0-9_]+:)("?)([^":]+)\2(:.*)?$', spec)
    if driver and driver[1].upper() in ("NETCDF:", "HDF5:") and not Path(driver[3]).is_absolute():
        file = base / Path(driver[3]).expanduser()  # NETCDF:"f.nc":var beside the catalog
        return f"{driver[1]}{driver[2]}{file}{driver[2]}{driver[4] or ''}"
    if is_gdal_name(spec):  # as written: Path() made /vsicurl/https:// a https:/
        return spec
    head, sep, tail = spec.rpartition(":")
    if sep and head and "/" not in tail and not Path(tail).suffix:  # FILE:BANDS
        return f"{catalog_path(base, head)}:{tail}"
    parts = [Path(x.strip()).expanduser() for x in split_listed(spec, base)]
    return ",".join(str(q if q.is_absolute() else base / q) for q in parts)


def by_date(items: Sequence[Acquisition], what: str) -> dict[dt.date, Acquisition]:
    """Index acquisitions by date; two different files on one date is an error."""
    out: dict[dt.date, Acquisition] = {}
    for a in items:
        prev = out.get(a.date)
        if prev is not None and Path(prev.path).resolve() != Path(a.path).resolve():
            raise InvalidParameterError(
                f"two {what} images on {a.date}: {prev.path} and {a.path}. Keep one, list the "
                "one to use in a --catalog, or, for the band files of one scene, choose the "
                f"bands (--{what}-bands or --{what}-preset) to have them stacked."
            )
        if prev is None or (prev.mask is None and a.mask is not None):
            out[a.date] = a
    return dict(sorted(out.items()))
