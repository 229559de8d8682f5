"""Resume: an existing output is kept only when everything that determines it is unchanged.

Each output records a hash of the run's settings (``STFUSION_SERIES_KEY``), the identity
``[resolved path, size, mtime_ns, inode]`` of every input file that can change it
(``STFUSION_SERIES_INPUTS`` and its hash) and the stfusion version; :func:`resume_record`
keeps a verified output whose inputs and version match, and says why otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import stfusion
from stfusion.dates import split_listed
from stfusion.errors import OutputExistsError
from stfusion.io import Grid
from stfusion.io.files import file_stat
from stfusion.provenance import code_digest
from stfusion.series.outputs import verify_output
from stfusion.series.quality import quality_problem
from stfusion.series.records import KEPT_REASON, DateRecord, restore_record

log = logging.getLogger("stfusion")


def settings_key(settings: dict[str, Any]) -> str:
    """The short hash of a run's settings (``STFUSION_SERIES_KEY``)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def file_identity(path: str | None) -> list[Any] | None:
    """``[resolved path, size, mtime_ns, inode]`` (None but the path when the file is missing).

    A comma list of band files gives ``[paths, sizes, mtimes, inodes]`` over its files, and an HDF
    field or band choice (``file:NAME``) the identity of its file: a band file or an HDF file
    changed in place changes the key (their specs were not files, so nothing was seen)."""
    if not path:
        return None
    parts = [x for part in split_listed(path) if part for x in _with_sidecars(part)]
    if len(parts) == 1:
        return parts[0]
    return [list(column) for column in zip(*parts, strict=True)]


def _with_sidecars(path: str) -> list[list[Any]]:
    """``file_stat`` of ``path`` and of every other file GDAL reads for it (its file list:
    ``.aux.xml`` offsets and scales, an external ``.msk``, an ENVI ``.hdr``, a VRT's sources):
    a change there changes the pixels, and outputs were kept as verified over it."""
    main = file_stat(path, inode=True)
    if not Path(path).is_file():
        return [main]
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as ds:
                files = list(ds.files)
    except (RasterioError, OSError):
        return [main]
    extra = [file_stat(f, inode=True) for f in files]
    return [main, *sorted((x for x in extra if x[0] != main[0]), key=lambda x: str(x[0]))]


def param_files(params: dict[str, Any]) -> list[str]:
    """The existing files the method's parameters name (nested ones too: a base's or a
    member's ``weights``)."""
    found: list[str] = []
    for value in params.values():
        if isinstance(value, dict):
            found += param_files(value)
        elif isinstance(value, str | os.PathLike) and value and os.path.isfile(value):
            found.append(os.fspath(value))
    return found


def absolute_spec(path: str) -> str:
    """An input's path made absolute (resolved), each file of a comma list of band files."""
    return ",".join(str(Path(p).resolve()) for p in split_listed(path))


def inputs_key(identities: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(identities).encode()).hexdigest()[:16]


def changed_inputs(old: Any, new: Sequence[Any]) -> str:
    """A short account of what differs between two identity lists."""
    if not isinstance(old, list):
        return "the earlier output records no input files"
    was, now = _per_file(old), _per_file(new)
    changed = [Path(p).name for p in now if p in was and was[p] != now[p]]
    added = [Path(p).name for p in now if p not in was]
    gone = [Path(p).name for p in was if p not in now]
    parts = []
    for label, names in (("modified", changed), ("new", added), ("no longer used", gone)):
        if names:
            more = f" and {len(names) - 2} more" if len(names) > 2 else ""
            parts.append(f"{label}: {', '.join(names[:2])}{more}")
    return "; ".join(parts) or "input files differ"


def _per_file(identities: Sequence[Any]) -> dict[str, list[Any]]:
    """``{path: [path, size, mtime, inode]}`` over identity lists, a band-file stack's
    ``[paths, sizes, mtimes, inodes]`` split into its files (its paths are a list: no dict
    key)."""
    files: dict[str, list[Any]] = {}
    for x in identities:
        if not isinstance(x, list) or len(x) not in (3, 4):  # 3: before the inode
            continue
        if isinstance(x[0], list):
            for path, *rest in zip(*x, strict=False):
                files[str(path)] = [path, *rest]
        else:
            files[str(x[0])] = x
    return files


def stale_reason(tags: dict[str, str], inputs: Sequence[Any]) -> str:
    """Why an output with ``tags`` was not made from ``inputs`` by this stfusion (its inputs
    changed, the version, or the code within a version: :func:`code_digest`); "" when it
    was."""
    if tags.get("STFUSION_SERIES_INPUTS_KEY") != inputs_key(inputs):
        try:
            old = json.loads(tags.get("STFUSION_SERIES_INPUTS", ""))
        except ValueError:
            old = None
        return f"inputs changed ({changed_inputs(old, inputs)})"
    if tags.get("STFUSION_VERSION") != stfusion.__version__:
        return (
            f"stfusion version changed ({tags.get('STFUSION_VERSION') or '?'} -> "
            f"{stfusion.__version__})"
        )
    if tags.get("STFUSION_CODE") != code_digest():
        return (
            f"stfusion code changed ({tags.get('STFUSION_CODE') or 'not recorded'} -> "
            f"{code_digest()}, same version {stfusion.__version__})"
        )
    return ""


def restore_from_tags(rec: DateRecord, tags: dict[str, str], kept: str) -> None:
    """Fill ``rec`` from the tags of the earlier output it keeps; its reason is ``kept``, then
    the reason the run that made the output recorded."""
    rec.status = tags.get("STFUSION_SERIES_STATUS", "predicted")
    rec.pairs = [
        dt.date.fromisoformat(d) for d in json.loads(tags.get("STFUSION_SERIES_PAIRS", "[]"))
    ]
    rec.weights = json.loads(tags.get("STFUSION_SERIES_WEIGHTS", "[]"))
    v = tags.get("STFUSION_SERIES_VALID")
    rec.valid_fraction = float(v) if v else None
    # what the run that made it recorded: method, coarse/fine valid, its reason
    earlier = restore_record(rec, tags.get("STFUSION_SERIES_RECORD"))
    rec.reason = f"{kept}; {earlier}" if earlier else kept


def made_with(path: Path, grid: Grid, count: int, dtype: str, key: str) -> bool:
    """Whether ``path`` is a complete output of this command made with the settings of
    ``key`` (``STFUSION_SERIES_KEY``; tags only, no pixels read). Under ``--overwrite`` such
    an output is resumed like any other, since computing it again would write the same
    pixels: an interrupted ``--overwrite`` run goes on where it stopped."""
    state, tags = verify_output(path, grid, count, dtype, read_data=False)
    return state == "ok" and tags.get("STFUSION_SERIES_KEY") == key


def resume_record(
    rec: DateRecord,
    path: Path,
    grid: Grid,
    count: int,
    dtype: str,
    inputs: list[list[Any]],
    quality: bool = False,
) -> tuple[bool, str]:
    """Fill ``rec`` from a verified earlier output made from the same inputs and return
    ``(True, "")``; ``(False, why)`` to compute it again. With ``quality`` (``--quality``)
    the output's quality layer must be there and current too (:func:`quality_problem`).

    Raises :class:`OutputExistsError` for a file that is not provably this command's output
    of the date: not written by ``stfusion series``, or unreadable without a tag naming the
    date (a truncated GeoTIFF of anyone's, a text file: outputs are renamed into place
    whole, so such a file need not be one).
    """
    state, tags = verify_output(path, grid, count, dtype)
    if state == "ok":
        stale = stale_reason(tags, inputs)
        if not stale and quality:
            stale = quality_problem(path, tags, grid)
        if stale:
            why = f"recomputed: {stale}"
            log.info("series: %s: %s", path.name, why)
            return False, why
        restore_from_tags(rec, tags, KEPT_REASON)
        return True, ""
    if state == "other":  # other settings (with --overwrite only), or a grid the inputs moved
        return False, "recomputed: earlier output of another size, band count or data type"
    if state == "foreign":
        raise OutputExistsError(
            f"{path.name} exists and was not written by stfusion series; not replaced "
            "(pass --overwrite)"
        )
    if tags.get("STFUSION_SERIES_DATE") != rec.date.isoformat():
        raise OutputExistsError(
            f"{path.name} exists and cannot be read as an output of stfusion series (damaged, "
            "or not a GeoTIFF it wrote); not replaced (pass --overwrite)"
        )
    log.info("series: %s is damaged or incomplete; computing it again", path)
    return False, "earlier output was damaged or incomplete: computed again"
