"""Opening raster files: names, errors that name the file, metadata, scaling from tags."""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from stfusion.dates import gdal_local_file, is_gdal_name
from stfusion.errors import InputFileError, InvalidParameterError, UnreadableInputError
from stfusion.io.grid import Grid, Scaling


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` printable in a message: undecodable bytes of the name appear as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (``hashlib.file_digest`` needs 3.11)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are one file, by whatever paths (a bind mount, a hard link);
    False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def file_stat(path: str, inode: bool = False) -> list[Any]:
    """``[resolved path, size, mtime_ns]`` of a file (None but the path when it is missing);
    ``FILE:BANDS`` or ``MOD09GA.hdf:state_1km_1``: its file's. What a resume compares to tell
    a file changed in place (series outputs, training runs). ``inode``: its inode too, which
    tells two files swapped by ``mv`` (same size and time, as unpacked from one archive);
    series outputs take it, training runs not (their checkpoints recorded three fields, and
    a run must resume on mounts whose inodes change)."""
    p = Path(path)
    if not p.exists() and ":" in path:
        head = Path(path.rpartition(":")[0])
        if head.is_file():
            p = head
    if not p.exists() and is_gdal_name(path):  # /vsizip/a.zip/f.tif: the archive's
        p = gdal_local_file(path) or p
    try:
        st = p.stat()
        found = [str(p.resolve()), st.st_size, st.st_mtime_ns]
        return [*found, st.st_ino] if inode else found
    except OSError:
        return [str(p.absolute()), None, None] + ([None] if inode else [])


def check_typo(text: str) -> None:
    """Refuse an output name that is a typo more often than a name: ``-``, one that starts
    or ends with a space, a Windows path off Windows (each was written as a file of that
    literal name)."""
    windows = os.name != "nt" and ("\\" in text or re.match(r"[A-Za-z]:[\\/]", text))
    why = (
        "'-' is no standard output here"
        if text == "-"
        else "it starts or ends with a space"
        if text != text.strip()
        else "a Windows path, which this system takes as one file's name"
        if windows
        else ""
    )
    if why:
        raise InvalidParameterError(
            f"{text!r}: not an output file name ({why}); give a plain path, e.g. --out "
            "fused/pred.tif."
        )


def check_name(path: str | os.PathLike[str], role: str = "input") -> None:
    """Refuse a file name GDAL cannot take: it needs UTF-8, and a name with bytes that are
    not UTF-8 (``b'\\xff'``, decoded by Python as lone surrogates) cannot be passed to it."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        try:
            os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # UTF-8 on disk, read through an ASCII locale
            raise InputFileError(
                f"{shown(path)}: the {role} file name is UTF-8, but this Python reads file "
                f"names as {sys.getfilesystemencoding()} (a C/POSIX locale without UTF-8 "
                "mode). Run with PYTHONUTF8=1 (or LC_ALL=C.UTF-8)."
            ) from None
        raise InputFileError(
            f"{shown(path)}: the {role} file name is not valid UTF-8, which GDAL cannot open. "
            "Rename the file (or its folder) with UTF-8 characters only."
        ) from None


_ARCHIVES = (".zip", ".gz", ".tgz", ".tar")

#: GDAL's words for a TIFF cut short (its directory, stored at the end, is missing).
_CUT_SHORT = re.compile(r"TIFFReadDirectory|TIFFFetchDirectory|Read error|Cannot read TIFF header")


def local_absolute(path: str) -> str:
    """``path`` made absolute when it names a local file by a relative path, so a source
    reads the same file after the working directory changes; GDAL names, URLs and missing
    paths as given (the open names them)."""
    if os.path.isabs(path) or is_gdal_name(path) or not os.path.isfile(path):
        return path
    return os.path.abspath(path)


def _has_driver(name: str) -> bool:
    with rasterio.Env() as env:
        return name in env.drivers()


def unreadable(name: str | Path, exc: Exception, virtual: bool = False) -> InputFileError:
    """The error for a file (or GDAL name) GDAL fails to open, saying why it may be: a
    subdataset or JPEG 2000 driver this GDAL lacks, a TIFF cut short, or no raster at all."""
    why = (
        "GDAL cannot open it ({}). Check the archive or URL and the path inside it."
        if virtual
        else "not a raster GDAL can read ({}). Give a GeoTIFF, ENVI (with its .hdr) or "
        "another GDAL format."
    )
    if virtual and not str(name).startswith("/vsi"):  # a driver's subdataset name
        why = (
            "GDAL cannot open this subdataset ({}). Check its name against the list `gdalinfo "
            "FILE` gives; a band choice goes in --fine-bands / --coarse-bands, not after it."
        )
    hdf4 = re.match(r'(?i)HDF4(?:_EOS)?:[A-Z_]*:"?([^":]+)"?(?::[^:]*)*?:([^:]+)$', str(name))
    if hdf4 and not _has_driver("HDF4"):  # rasterio's wheels come without it
        file, field = hdf4.groups()
        spec = f"{file}:{'FIELD' if field.isdigit() else field}"
        why = (
            "this GDAL has no HDF4 driver, so it cannot read a HDF4 subdataset name ({}). "
            f"stfusion reads HDF4 itself: give {spec} (the file and its field's name; "
            "pip install 'stfusion[hdf]' for pyhdf)."
        )
    elif (
        not virtual
        and Path(name).suffix.lower() in (".jp2", ".j2k")
        and not any(_has_driver(d) for d in ("JP2OpenJPEG", "JP2KAK", "JP2ECW", "JPEG2000"))
    ):  # a Sentinel-2 trial: the file was taken for damaged
        why = (
            "a JPEG 2000 file, and this GDAL has no JPEG 2000 driver (JP2OpenJPEG) to read "
            "it ({}). Convert it where GDAL has one (gdal_translate FILE.jp2 FILE.tif), or "
            "use a GDAL built with OpenJPEG (rasterio's wheels and conda's gdal have it)."
        )
    elif not virtual and str(name).lower().endswith(_ARCHIVES):
        kind = "vsigzip" if str(name).lower().endswith(".gz") else "vsizip"
        kind = "vsitar" if ".tar" in str(name).lower() or str(name).endswith(".tgz") else kind
        inside = "" if kind == "vsigzip" else "/IMAGE.tif"
        why = (
            "an archive, not a raster ({}). Unpack it, or give the image inside it by GDAL's "
            f"name for it: /{kind}/{name}{inside}."
        )
    elif not virtual and _CUT_SHORT.search(str(exc)):  # a TIFF whose directory is missing
        why = (
            "a TIFF GDAL cannot read to the end ({}): the file looks damaged or incomplete "
            "(a truncated download or copy?); check it with `gdalinfo -checksum` and copy "
            "or download it again."
        )
    return InputFileError(f"{name}: {why.format(exc)}")


def _open(path: str | os.PathLike[str]) -> rasterio.DatasetReader:
    virtual = is_gdal_name(path)
    # a GDAL name as given: Path() would fold the // of /vsicurl/https://
    name: str | Path = os.fspath(path) if virtual else Path(path)
    if not virtual:
        p = Path(path)
        try:
            found = p.exists()
        except PermissionError:  # a folder on the way that may not be entered
            raise UnreadableInputError(
                f"{shown(p)}: cannot be read: a folder on its path may not be entered "
                "(permission denied). Give yourself access (chmod u+x FOLDER), or run as a "
                "user who may read it."
            ) from None
        except OSError as exc:  # a name or path too long, a loop of links
            raise InputFileError(f"{shown(p)}: cannot be opened ({exc.strerror}).") from None
        if not found:
            raise InputFileError(f"{shown(p)}: file not found. Check the path.")
        if p.is_dir():
            raise InputFileError(
                f"{shown(p)}: is a folder, not a raster file. Give one of its files (a folder "
                "of dates is what `stfusion series --fine/--coarse` takes)."
            )
        check_name(p)
        if not os.access(p, os.R_OK):
            raise UnreadableInputError(
                f"{shown(p)}: cannot be read (permission denied). Give yourself read access "
                "(chmod u+r FILE, or its folder's owner can), or run as a user who may read it."
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(name)
    except RasterioIOError as exc:
        raise unreadable(name, exc, virtual) from None
    if ds.count == 0:  # a container (netCDF with several variables, GeoPackage tables)
        subs = list(ds.subdatasets)
        ds.close()
        shown_subs = ", ".join(subs[:4]) + (f" and {len(subs) - 4} more" if len(subs) > 4 else "")
        raise InputFileError(
            f"{name}: holds no raster of its own but {len(subs)} subdatasets"
            + (f" ({shown_subs})" if subs else "")
            + ": give one of them as the input, or stack them into one file first "
            "(gdalbuildvrt -separate stack.vrt SUBDATASET ...)."
        )
    return ds


def _read_error(path: str, window: Window | None, exc: Exception) -> InputFileError:
    """A failed read of a file that opened: the file is damaged or incomplete (truncated
    download, copy still running, disk error)."""
    where = (
        "the whole image"
        if window is None
        else f"rows {int(window.row_off)}-{int(window.row_off + window.height) - 1}, columns "
        f"{int(window.col_off)}-{int(window.col_off + window.width) - 1}"
    )
    # rasterio says "Read failed. See previous exception"; GDAL's own message is the cause.
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    detail = " ".join(str(cause).split()) or type(cause).__name__
    return InputFileError(
        f"{shown(path)}: reading {where} failed ({detail}). The file looks damaged or "
        "incomplete (a truncated download or copy?); check it with `gdalinfo -checksum` and "
        "copy or download it again."
    )


def _grid_of(ds: rasterio.DatasetReader) -> Grid:
    crs = ds.crs if ds.crs else None
    if crs is None and ds.transform.is_identity and ds.gcps[0]:
        # read as ungeoreferenced, its output lost the georeferencing without a word
        raise InputFileError(
            f"{ds.name}: georeferenced only by {len(ds.gcps[0])} ground control points (no "
            "geotransform), which stfusion does not read. Warp it onto a grid first, e.g. "
            f"gdalwarp -t_srs {ds.gcps[1].to_string() if ds.gcps[1] else 'EPSG:XXXX'} -r near "
            f"{ds.name} OUT.tif."
        )
    return Grid(crs=crs, transform=ds.transform, width=ds.width, height=ds.height)


def _band_names(ds: rasterio.DatasetReader) -> tuple[str, ...]:
    names = []
    for i, desc in enumerate(ds.descriptions, start=1):
        names.append(desc if desc else f"band{i}")
    return tuple(names)


def given_or_file(
    scaling: Scaling, file: tuple[float, float] | None
) -> tuple[float, float, str] | None:
    """Scale and offset when the user gave either (the other from the file's metadata
    ``file`` when it has any, else 1 or 0: a file's ``scale 2.75e-5, offset -0.2`` keeps its
    offset under ``--fine-scale 2.75e-5``), with where they came from; None when neither."""
    if scaling.scale is None and scaling.offset is None:
        return None
    if scaling.scale is not None and scaling.offset is not None:
        return float(scaling.scale), float(scaling.offset), "given"
    if scaling.scale is not None:
        offset = 0.0 if file is None else file[1]
        how = "given" if offset == 0.0 else "scale given, offset from file metadata"
        return float(scaling.scale), offset, how
    scale = 1.0 if file is None else file[0]
    how = "given" if scale == 1.0 else "offset given, scale from file metadata"
    return scale, float(scaling.offset or 0.0), how


def _tag_float(tags: dict[str, str], key: str) -> float | None:
    try:
        value = float(str(tags[key]).strip().strip("{}").split(",")[0])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def metadata_scaling(ds: rasterio.DatasetReader) -> tuple[float, float, str] | None:
    """Scale and offset that a file's metadata states but GDAL does not apply: an ENVI
    header's ``reflectance scale factor`` (values = reflectance x factor), or the HDF-style
    ``scale_factor``/``add_offset`` tags of a GeoTIFF converted from MODIS HDF (per band, else
    the dataset's; ``value = scale_factor x (stored - add_offset)``, as :mod:`stfusion.hdf`
    reads them). None when there are none; an error when the bands' tags differ (as GDAL's
    own scales that differ are)."""
    envi = ds.tags(ns="ENVI") if "ENVI" in ds.tag_namespaces() else {}
    factor = _tag_float(envi, "reflectance_scale_factor")
    if factor is not None and factor > 0 and factor != 1.0:
        return 1.0 / factor, 0.0, f"file metadata (ENVI reflectance scale factor {factor:g})"
    dataset = ds.tags()
    found = set()
    for b in range(1, ds.count + 1):
        tags = ds.tags(b)
        if "scale_factor" not in tags and "add_offset" not in tags:
            tags = dataset  # tags on the dataset apply to every band
        found.add((_tag_float(tags, "scale_factor"), _tag_float(tags, "add_offset")))
    if len(found) > 1:
        raise InputFileError(
            f"{ds.name}: bands have different scale_factor/add_offset tags "
            f"({', '.join(f'{sf} {ao}' for sf, ao in sorted(found, key=str))}); give the "
            "scale explicitly (--fine-scale/--coarse-scale, --fine-offset/--coarse-offset)."
        )
    sf, ao = found.pop()
    if sf is None and ao is None:
        return None
    scale = 1.0 if sf is None else sf
    if scale <= 0 or (scale == 1.0 and not ao):
        return None
    return scale, -scale * (ao or 0.0), "file metadata (scale_factor/add_offset tags)"


def metadata_fill(ds: rasterio.DatasetReader) -> float | None:
    """A ``_FillValue`` tag (HDF/netCDF style) that GDAL's nodata does not already say."""
    values = {_tag_float(ds.tags(b), "_FillValue") for b in range(1, ds.count + 1)}
    values.add(_tag_float(ds.tags(), "_FillValue"))
    values.discard(None)
    if ds.nodata is not None:
        values.discard(float(ds.nodata))
    return values.pop() if len(values) == 1 else None


def _resolve_scaling(ds: rasterio.DatasetReader, scaling: Scaling) -> tuple[float, float, str]:
    file_scales = tuple(float(s) for s in ds.scales)
    file_offsets = tuple(float(o) for o in ds.offsets)
    declared = any(s != 1.0 for s in file_scales) or any(o != 0.0 for o in file_offsets)
    if not declared and (scaling.scale is None or scaling.offset is None):
        stated = metadata_scaling(ds)
        if stated is not None:
            chosen = given_or_file(scaling, stated[:2])
            return chosen if chosen is not None else stated
    uniform = len(set(file_scales)) == 1 and len(set(file_offsets)) == 1
    chosen = given_or_file(
        scaling, (file_scales[0], file_offsets[0]) if declared and uniform else None
    )
    if chosen is not None:
        return chosen
    if declared:
        if not uniform:
            raise InputFileError(
                f"{ds.name}: bands have different scale/offset metadata ({file_scales}, "
                f"{file_offsets}); give the scale explicitly."
            )
        return file_scales[0], file_offsets[0], "file metadata"
    return 1.0, 0.0, "default"


def _clip_window(window: Window, halo: int, grid: Grid) -> tuple[Window, Window]:
    """The part of ``window`` grown by ``halo`` that lies inside the grid, and where it goes
    in the padded output array."""
    r0 = int(window.row_off) - halo
    c0 = int(window.col_off) - halo
    h = int(window.height) + 2 * halo
    w = int(window.width) + 2 * halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + h, grid.height), min(c0 + w, grid.width)
    inside = Window(cc0, rr0, max(cc1 - cc0, 0), max(rr1 - rr0, 0))
    dest = Window(cc0 - c0, rr0 - r0, inside.width, inside.height)
    return inside, dest
