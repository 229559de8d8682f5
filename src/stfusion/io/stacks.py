"""Inputs as GDAL does not give them: MODIS HDF4 fields, single-band files stacked in band
order, a choice of bands (the ``:BANDS`` suffix of a spec, ``Scaling.bands``).

:class:`FileSource` hands such a spec to :class:`BandStack`, a FileSource subclass read
window by window from each member file (nothing is copied). The spec syntax, presets and the
command line's band options are documented in :mod:`stfusion.inputs`.
"""

from __future__ import annotations

import glob
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from stfusion import hdf
from stfusion.dates import split_listed
from stfusion.errors import (
    GridMismatchError,
    InputFileError,
    InvalidParameterError,
    warn,
)
from stfusion.io.files import (
    file_stat,
    given_or_file,
    is_gdal_name,
    local_absolute,
    metadata_fill,
    metadata_scaling,
    unreadable,
)
from stfusion.io.grid import Grid, RasterInfo, Scaling
from stfusion.io.sources import FileSource, Source, without_fill

_GLOB_CHARS = "*?["


def parse_bands(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``'3,4,1'`` or ``['SR_B2', 'SR_B3']`` -> a tuple of band names/numbers (None if empty)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else [str(t) for t in text]
    out = tuple(t.strip() for t in items if t.strip())
    twice = sorted({b for b in out if out.count(b) > 1})
    if twice:
        warn(
            f"bands {','.join(out)}: {', '.join(twice)} given more than once, so the same band "
            "is fused in two places; check the band list."
        )
    return out or None


def natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _is_file(path: str) -> bool:
    """Whether ``path`` is a file; False where it cannot be told (a folder on the way that
    may not be entered, a name too long): opening it then says which."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def _expand(text: str) -> list[str] | None:
    """Files named by a comma list of files and globs, or None if any item names nothing.
    The longest run of items that names a file, or a glob that matches one, is one item: a
    comma may be part of a folder's name (``Smith, J/``; :func:`stfusion.dates.split_listed`)."""
    found: dict[str, list[str] | None] = {}

    def names(item: str) -> bool:
        found[item] = _files_of(item.strip())
        return found[item] is not None

    out: list[str] = []
    for item in split_listed(text, names=names):
        files = found[item] if item in found else _files_of(item.strip())
        if files is None:
            return None
        out += files
    return out or None


def _files_of(item: str) -> list[str] | None:
    """The files one item names ([] for an empty one), None if it names none."""
    if not item:
        return []
    if _is_file(item):
        return [item]
    if any(c in item for c in _GLOB_CHARS):
        found = [
            f for f in glob.glob(item) if Path(f).is_file() and not Path(f).name.startswith(".")
        ]
        return sorted(found, key=lambda f: natural_key(Path(f).name)) or None
    return None


#: A band list after a colon: names or numbers, comma-separated; no "/" (a URL's port) and
#: no "." (the rest of a name with a time in it, ``T10:30:00.tif``).
_BAND_LIST = re.compile(r"[\w\-]+(?:,[\w\-]+)*")
#: What a file named before ``:BANDS`` ends with: an extension (``.tif``), not ``T10``.
_FILE_END = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")


def split_spec(spec: str) -> tuple[list[str], tuple[str, ...] | None]:
    """The files of a spec and its ``:BANDS`` choice (None when not given). A GDAL name is
    one file: a virtual path (``/vsizip/a.zip/f.tif``, which may end in ``:BANDS``) or a
    driver's subdataset name (``NETCDF:"f.nc":var``, whose colons are its own); with a band
    choice they were "file not found"."""
    if is_gdal_name(spec):
        head, sep, tail = spec.rpartition(":")
        if (
            spec.startswith("/vsi")
            and sep
            and "/" in head
            and _FILE_END.search(head)
            and _BAND_LIST.fullmatch(tail)
        ):
            return [head], parse_bands(tail)
        return [spec], None
    files = _expand(spec)
    if files is not None:
        return files, None
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and not re.fullmatch(r"[A-Za-z]", head):
        files = _expand(head)
        if files is not None:
            return files, parse_bands(tail)
    if re.match(r"(https?|ftp|s3|gs)://", spec, re.IGNORECASE):
        raise InputFileError(
            f"{spec}: a URL, not a file. Download it, or give it to GDAL's network reader as "
            f"/vsicurl/{spec} (s3:// as /vsis3/BUCKET/KEY, gs:// as /vsigs/BUCKET/KEY)."
        )
    what = "no file matches the glob" if any(c in spec for c in _GLOB_CHARS) else "file not found"
    for text in ([head] if sep and head else []) + [spec]:
        missing, total = _missing_items(text)
        if missing:  # a comma list of which some items exist: name the others
            raise InputFileError(
                f"{spec}: {', '.join(missing)} found nothing ({len(missing)} of the list's "
                f"{total} items). Check those names."
            )
    raise InputFileError(
        f"{spec}: {what}. Give a file, a glob or a comma list of single-band files, "
        "optionally followed by :BANDS (e.g. MOD09GA.hdf:sur_refl_b01_1,sur_refl_b02_1)."
    )


def _missing_items(text: str) -> tuple[list[str], int]:
    """The items of a comma list that name no file, and how many items it has; no items
    unless some of the list's exist (a single name, or a list naming nothing, is not one)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    found = [bool(_expand(t)) for t in items]
    if len(items) < 2 or not any(found):
        return [], len(items)
    return [t for t, ok in zip(items, found) if not ok], len(items)


def stack_class(path: str, scaling: Scaling | None) -> type[FileSource]:
    """The FileSource class that reads ``path``: FileSource itself for a plain raster file."""
    if scaling is not None and getattr(scaling, "bands", None):
        return BandStack
    if _is_file(path):
        return BandStack if hdf.is_hdf(path) else FileSource
    if is_gdal_name(path):
        return BandStack if split_spec(path)[1] is not None else FileSource  # /vsi...:BANDS
    if any(c in path for c in (*_GLOB_CHARS, ",", ":")):
        return BandStack
    return FileSource


# ----------------------------------------------------------------------------- members


@dataclass(frozen=True)
class _Member:
    """One band of the stack: a band of a GDAL raster, or a field of an HDF4 file."""

    path: str
    name: str  # what names match against: file stem, band description, HDF field
    short: str  # the band name shown and written (descriptions, roles)
    band: int = 1  # 1-based, for GDAL rasters
    field: hdf.HDFField | None = None  # for HDF4 read with pyhdf


def _open_gdal(path: str) -> rasterio.DatasetReader:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as exc:
        raise unreadable(path, exc, is_gdal_name(path)) from None


def _common_prefix(names: Sequence[str]) -> str:
    """The characters every name starts with (not path components)."""
    first = min(names)
    last = max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _short_names(stems: Sequence[str]) -> list[str]:
    """Stems without the prefix and suffix they share (cut at ``_``, ``-`` or ``.``)."""
    if len(stems) < 2:
        return list(stems)
    pre = _common_prefix(stems)
    cut = max(pre.rfind(c) for c in "_-.") + 1
    # keep the product words before the band: SR_B4 and ST_B10 (Landsat), sur_refl_b01
    # (MODIS), not just B4 or refl_b01, whose band roles nothing can tell
    m = re.search(r"(?:^|[_.-])((?:[A-Za-z]{1,4}[_-]){1,2})$", pre[:cut])
    if m:
        cut -= len(m.group(1))
    suf = _common_prefix([s[::-1] for s in stems])[::-1]
    cuts = [i for i in (suf.find(c) for c in "_-.") if i >= 0]
    end = len(suf) - min(cuts) if cuts else 0
    out = [s[cut : len(s) - end] if len(s) - end > cut else s for s in stems]
    return out if all(out) and len(set(out)) == len(out) else list(stems)


def _gdal_members(files: Sequence[str]) -> list[_Member]:
    stems = [Path(f).stem for f in files]
    shorts = _short_names(stems)
    members: list[_Member] = []
    for f, stem, short in zip(files, stems, shorts):
        if hdf.is_hdf(f):
            members += _hdf_members(f)
            continue
        with _open_gdal(f) as ds:
            if ds.count == 1:
                desc = ds.descriptions[0]
                members.append(_Member(f, stem, short if len(files) > 1 else desc or stem, 1))
            else:
                for i, desc in enumerate(ds.descriptions, start=1):
                    nm = desc or f"band{i}"
                    members.append(_Member(f, nm if len(files) == 1 else f"{stem}:{nm}", nm, i))
    return members


def _hdf_members(path: str) -> list[_Member]:
    how = hdf.require_reader(path)
    if how == "gdal":
        return [_Member(sub, name, name, 1) for name, sub in hdf.gdal_fields(path)]
    info = hdf.read_info(path)
    return [_Member(path, f.name, f.name, 1, f) for f in info.fields]


def word_match(token: str, name: str) -> bool:
    return (
        re.search(rf"(?:^|[^a-z0-9]){re.escape(token.lower())}(?:$|[^a-z0-9])", name.lower())
        is not None
    )


#: A band number in a name: ``B4``, ``SR_B4``, ``B04``, ``sur_refl_b04_1``, ``Band4`` (not
#: ``B8A``, which is another band than ``B08``).
_BAND_NUMBER = re.compile(r"(?:^|[^a-z0-9])(?:b|band)_?0*(\d+)(?![a-z0-9])", re.IGNORECASE)


def band_number(name: str) -> int | None:
    """The band number a name carries (its last one), or None."""
    found = _BAND_NUMBER.findall(name)
    return int(found[-1]) if found else None


def _numbered(members: Sequence[_Member], k: int, label: str, available: str) -> _Member:
    """Band ``k`` of a stack of files or HDF fields, whose order is only that of their names:
    the member whose name carries the band number ``k`` (position ``k`` only when no name
    carries a number). Picking by position would take ``QA_PIXEL`` for band 2 of a Landsat
    glob that holds it."""
    numbers = [band_number(m.name) for m in members]
    if all(n is None for n in numbers):
        if not 1 <= k <= len(members):
            raise InvalidParameterError(
                f"{label}: band {k} asked for, but it has {len(members)} band(s) ({available})."
            )
        return members[k - 1]
    found = [m for m, n in zip(members, numbers) if n == k]
    if len(found) == 1:
        return found[0]
    why = (
        f"no band's name carries the number {k}"
        if not found
        else "several bands' names carry it (" + ", ".join(m.name for m in found) + ")"
    )
    raise InvalidParameterError(
        f"{label}: band {k}: a number picks the band whose name carries it (B{k}, SR_B{k}, "
        f"sur_refl_b0{k}_1, ...) in a stack of files or HDF fields, and {why}; its "
        f"bands are {available}. Give band names instead (--fine-bands / --coarse-bands, or "
        "FILE:BANDS)."
    )


def _separate(members: Sequence[_Member]) -> bool:
    """Whether ``members`` are band files or HDF fields (numbers: the band number of a name),
    not the bands of one raster (numbers: positions)."""
    paths = [m.path for m in members]
    return len(set(paths)) == len(paths) > 1 or any(m.field is not None for m in members)


def select_members(members: Sequence[_Member], bands: Sequence[str], label: str) -> list[_Member]:
    """The members named by ``bands`` (names or numbers), in that order.

    A number is a position among a single raster's bands; among files or HDF fields it is the
    band number their names carry (:func:`_numbered`).
    """
    out = []
    available = ", ".join(m.short if m.short == m.name else m.name for m in members)
    paths = [m.path for m in members]
    separate = _separate(members)
    for item in bands:
        if item.isdigit():
            k = int(item)
            if separate:
                out.append(_numbered(members, k, label, available))
                continue
            if not 1 <= k <= len(members):
                raise InvalidParameterError(
                    f"{label}: band {k} asked for, but it has {len(members)} band(s) ({available})."
                )
            out.append(members[k - 1])
            continue
        exact = [m for m in members if item.lower() in (m.name.lower(), m.short.lower())]
        found = exact or [m for m in members if word_match(item, m.name)]
        if len(found) != 1:
            if not found and separate and len(set(paths)) > 1:  # a band file not downloaded
                raise InvalidParameterError(
                    f"{Path(paths[0]).parent}: no file of band {item!r} among the "
                    f"{len(set(paths))} band files of {Path(paths[0]).name} and the others "
                    f"(bands {available}): is its {item} file missing?"
                )
            why = (
                "matches no band"
                if not found
                else ("matches several bands (" + ", ".join(m.name for m in found) + ")")
            )
            several = (
                f" A glob of one resolution (Sentinel-2: the R20m folder, or '*_20m.jp2', "
                f"which the sentinel2-l2a preset reads) or full names ({found[-1].short}, ...) "
                "choose among them."
                if found
                else ""
            )
            raise InvalidParameterError(
                f"{label}: band {item!r} {why}; its bands are {available}. Choose with names "
                f"or 1-based numbers (--fine-bands / --coarse-bands, or FILE:BANDS).{several}"
            )
        out.append(found[0])
    return out


# ---------------------------------------------------------------------------- the stack


def spec_file_stats(spec: str) -> list[list[Any]]:
    """``[resolved path, size, mtime_ns]`` of each file an image ``spec`` names (a file, a
    comma list or glob of band files, an HDF file or ``FILE:BANDS``: its files): what a
    training checkpoint records of its inputs."""
    files = [spec]
    if not Path(spec).exists():
        try:
            files = split_spec(spec)[0]
        except Exception:  # not a spec of files (an array's label): recorded as given
            files = [spec]
    return [file_stat(name) for name in files]


class BandStack(FileSource):
    """Bands from one or more files (GDAL rasters or HDF4 fields), read as one image.

    A FileSource (so alignment, masks and every method take it), built by ``FileSource(spec,
    scaling)``. Each read opens the files and reads the window from each: no copy is made.
    """

    def __post_init__(self) -> None:
        self.path = str(self.path)
        self.label = self.path
        files, chosen = split_spec(self.path)
        files = [local_absolute(f) for f in files]  # read by the same files after os.chdir
        chosen = chosen or self.scaling.bands
        try:
            members = _gdal_members(files)
        except InputFileError as exc:
            if len(files) < 2 or not any(c in self.path for c in _GLOB_CHARS):
                raise
            raise InputFileError(  # a Landsat folder's MTL.txt, ANG.txt beside its bands
                f"{exc} The glob {self.path} matched it among {len(files)} files, read as "
                "the bands of one image: give a glob that matches only the band files "
                "(e.g. LC08_*_SR_B*.TIF), or list them with commas."
            ) from None
        if chosen:
            members = select_members(members, chosen, self.path)
        elif any(m.field is not None for m in members):
            members = self._default_hdf(members)
        self._members = members
        grids = [self._member_grid(m) for m in members]
        for m, g in zip(members, grids):
            if not g.same_as(grids[0]):
                raise GridMismatchError(
                    f"{self.path}: band {m.name} is on another grid ({g.describe()}) than "
                    f"{members[0].name} ({grids[0].describe()}); stacked bands must share one "
                    "grid. Choose bands of one resolution (e.g. the 20 m bands of Sentinel-2)."
                )
        self._check_one_date(files)
        self.grid = grids[0]
        self.count = len(members)
        self.band_names = tuple(m.short for m in members)
        self.scale, self.offset, self.scale_source = self._resolve()
        #: the fill values read as NaN besides the files' nodata, as FileSource's: the one
        #: given, and _FillValue tags GDAL does not apply (evaluate reports them)
        paths = {m.path for m in members if m.field is None}
        fills = sorted(f for f in {self._file_fill(p) for p in paths} if f is not None)
        self.fill_ = tuple(v for v in (self.scaling.nodata, *fills) if v is not None)

    def band_spec(self, order: Sequence[int]) -> list[str]:
        """What ``--*-bands`` (``Scaling.bands``) takes to read the bands at ``order``
        (0-based positions among the bands read now) from the files: field or file names,
        or a single raster's band numbers. Positions alone re-read other bands where bands
        were chosen (MOD09GA given 1,2,3,4,6,7: position 5 is field b06, number 5 field b05)."""
        separate = _separate(self._members)
        chosen = [self._members[j] for j in order]
        return [m.short if separate else str(m.band) for m in chosen]

    # -- description

    def _default_hdf(self, members: list[_Member]) -> list[_Member]:
        shapes = {m.field.shape for m in members if m.field is not None}
        if len(shapes) == 1:
            return members
        by: dict[str, list[str]] = {}
        for m in members:
            assert m.field is not None
            by.setdefault(m.field.grid or f"{m.field.shape[1]} x {m.field.shape[0]}", []).append(
                m.name
            )
        listing = "; ".join(f"{g}: {', '.join(n)}" for g, n in by.items())
        raise InvalidParameterError(
            f"{self.path}: its fields lie on {len(shapes)} grids ({listing}). Choose the bands: "
            f"{self.path}:NAME,NAME,... or --coarse-bands (--fine-bands for a fine image), "
            "or a preset (--coarse-preset mod09ga or mcd43a4)."
        )

    def _member_grid(self, m: _Member) -> Grid:
        if m.field is not None:
            info = self._hdf_info(m.path)
            g = info.grids.get(m.field.grid or "")
            if g is None:
                raise InputFileError(
                    f"{m.path}: field {m.name} has no grid in StructMetadata.0, so it cannot be "
                    "georeferenced. Is this an HDF-EOS grid file (MODIS level 2G/3)?"
                )
            return Grid(crs=g.crs, transform=g.transform, width=g.width, height=g.height)
        with _open_gdal(m.path) as ds:
            return Grid(
                crs=ds.crs or None, transform=ds.transform, width=ds.width, height=ds.height
            )

    def _hdf_info(self, path: str) -> hdf.HDFInfo:
        cache = self.__dict__.setdefault("_infos", {})
        if path not in cache:
            cache[path] = hdf.read_info(path)
        return cache[path]

    def _check_one_date(self, files: Sequence[str]) -> None:
        if len(files) < 2:
            return
        from stfusion.dates import parse_date_text

        days = {parse_date_text(Path(f).name) for f in files}
        days.discard(None)
        if len(days) > 1:
            raise InvalidParameterError(
                f"{self.path}: the files are of {len(days)} dates "
                f"({', '.join(sorted(str(d) for d in days))}); band files stacked into one image "
                "must be of one scene. Narrow the glob to one date."
            )

    def _file_fill(self, path: str) -> float | None:
        with _open_gdal(path) as ds:
            return metadata_fill(ds)

    def _file_scales(self) -> list[tuple[float, float, bool]]:
        out = []
        for m in self._members:
            if m.field is not None:
                out.append((m.field.scale, m.field.offset, m.field.has_scale))
                continue
            with _open_gdal(m.path) as ds:
                s, o = float(ds.scales[m.band - 1]), float(ds.offsets[m.band - 1])
                # scale_factor/add_offset tags (a GeoTIFF converted from MODIS HDF) or an
                # ENVI reflectance scale factor, as a whole file read alone would use them
                stated = metadata_scaling(ds) if (s, o) == (1.0, 0.0) else None
            if stated is not None:
                s, o = stated[0], stated[1]
            out.append((s, o, s != 1.0 or o != 0.0))
        return out

    def _resolve(self) -> tuple[float, float, str]:
        fs = self._file_scales()
        declared = any(h for _, _, h in fs)
        uniform = len({(s, o) for s, o, _ in fs}) == 1
        chosen = given_or_file(self.scaling, fs[0][:2] if declared and uniform else None)
        if chosen is not None:
            return chosen
        if not declared:
            return 1.0, 0.0, "default"
        if not uniform:
            pairs = ", ".join(
                f"{m.short} x {s:g} + {o + 0.0:g}" for m, (s, o, _) in zip(self._members, fs)
            )
            raise InputFileError(
                f"{self.path}: bands have different scale/offset metadata ({pairs}); choose "
                "bands of one kind or give the scale explicitly."
            )
        return fs[0][0], fs[0][1], "file metadata"

    def info(self) -> RasterInfo:
        """What ``stfusion inspect`` shows."""
        first = self._members[0]
        if first.field is not None:
            driver, dtype, nodata = "HDF4-EOS (pyhdf)", first.field.dtype, first.field.fill
        else:
            with _open_gdal(first.path) as ds:
                driver, dtype, nodata = ds.driver, ds.dtypes[first.band - 1], ds.nodata
            files = len({m.path for m in self._members})
            if files > 1:
                driver = f"{driver}, {files} files stacked"
        fs = self._file_scales()
        return RasterInfo(
            path=self.path,
            driver=driver,
            grid=self.grid,
            count=self.count,
            dtype=dtype,
            nodata=nodata,
            file_scales=tuple(s for s, _, _ in fs),
            file_offsets=tuple(o for _, o, _ in fs),
            band_names=self.band_names,
            scale=self.scale,
            offset=self.offset,
            scale_source=self.scale_source,
        )

    # -- reading

    def _raw(self, window: Window, step: int = 1) -> np.ndarray:
        """Stored values of every band in ``window`` (every ``step``-th pixel, as
        FileSource.sample reads) as float32, NaN where invalid."""
        h, w = -(-int(window.height) // step), -(-int(window.width) // step)
        arr = np.empty((self.count, h, w), dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(self._members):
            groups.setdefault(m.path, []).append(i)
        for path, idx in groups.items():
            ms = [self._members[i] for i in idx]
            if ms[0].field is not None:
                rows = slice(int(window.row_off), int(window.row_off + window.height))
                cols = slice(int(window.col_off), int(window.col_off + window.width))
                for i, m in zip(idx, ms):
                    assert m.field is not None
                    data = hdf.read_field(path, m.field, rows, cols)
                    arr[i] = data[::step, ::step]
                continue
            with _open_gdal(path) as ds:
                kw: dict[str, Any] = {"window": window, "masked": True}
                if step > 1:
                    kw["out_shape"] = (len(ms), h, w)
                data = ds.read([m.band for m in ms], **kw)
            arr[idx] = data.astype(np.float32).filled(np.nan)
        return arr

    def _scaled(self, arr: np.ndarray) -> np.ndarray:
        # As io._read_scaled, so a stack reads exactly what one stacked file would.
        arr = without_fill(arr, self.fill_)
        if self.scale != 1.0 or self.offset != 0.0:
            arr = arr * np.float32(self.scale) + np.float32(self.offset)
        arr[~np.isfinite(arr)] = np.nan
        arr[np.abs(arr) > 1e30] = np.nan
        return arr

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        out, inside, dest = self._padded(window, halo)
        if inside.width and inside.height:
            block = self._scaled(self._raw(inside))
            out[
                :,
                dest.row_off : dest.row_off + dest.height,
                dest.col_off : dest.col_off + dest.width,
            ] = block
        return out

    def scan_windows(self, align: int = 1) -> list[Window]:
        # Several files (or HDF fields): FileSource's strip test reads one file's layout.
        return Source.scan_windows(self, align)

    def scan(self, align: int = 1) -> Iterator[tuple[Window, np.ndarray]]:
        return Source.scan(self, align)

    def sample(self, max_pixels: int = 1 << 20) -> np.ndarray:
        step = max(1, int(np.ceil(np.sqrt(self.grid.width * self.grid.height / max_pixels))))
        if step == 1:
            return self.read()
        whole = Window(0, 0, self.grid.width, self.grid.height)
        return self._scaled(self._raw(whole, step))
