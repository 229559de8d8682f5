"""Writing outputs: refused without overwrite, PID-named partials, atomic renames, COGs."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from stfusion.errors import (
    InputFileError,
    InvalidParameterError,
    OutputExistsError,
    OutputWriteError,
)
from stfusion.io.files import check_name, check_typo, is_gdal_name, same_file
from stfusion.io.grid import Grid
from stfusion.io.partials import OLD_SUFFIX, partial_name, remove_stale_partials, umask_mode
from stfusion.io.write_failures import (  # re-exported: writing.<name> was their home
    WRITE_ERRORS,
    check_room,
    write_failed,
)

log = logging.getLogger("stfusion")


# ----------------------------------------------------------------------------------- writing


#: Names whose extension promises another format than the GeoTIFF stfusion writes, and the
#: GDAL driver that converts to it.
OTHER_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jp2": "JP2OpenJPEG",
    ".nc": "netCDF",
    ".hdf": "HDF4",
    ".h5": "HDF5",
    ".img": "HFA",
    ".vrt": "VRT",
    ".zarr": "Zarr",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".hdr": "ENVI",
    ".dat": "ENVI",
    ".bil": "ENVI",
    ".bsq": "ENVI",
    ".bip": "ENVI",
    ".envi": "ENVI",
    ".gpkg": "GPKG",
    ".hdf5": "HDF5",
    ".he5": "HDF5",
    ".kea": "KEA",
    ".asc": "AAIGrid",
    ".ers": "ERS",
    ".rst": "RST",
    ".sdat": "SAGA",
    ".grd": "GSBG",
    ".mrf": "MRF",
    ".ntf": "NITF",
}

#: Names no raster goes by: a prediction written there hid a GeoTIFF under an archive's,
#: a table's or a trained network's name (``--out w.ckpt --overwrite`` replaced the weights).
NOT_RASTER = (
    ".zip",
    ".gz",
    ".tar",
    ".7z",
    ".json",
    ".csv",
    ".txt",
    ".toml",
    ".yaml",
    ".yml",
    ".ckpt",
    ".pt",
    ".pth",
    ".py",
    ".md",
    ".html",
    ".pdf",
)


_VSI_PREFIX = re.compile(r"^/vsi[a-z0-9_]+/", re.IGNORECASE)


def _named_files(spec: str) -> list[str]:
    """The files on disk an input spec names: the files of a comma list or glob, with or
    without ``:BANDS``; the archive or compressed file under ``/vsizip/``, ``/vsigzip/``...;
    the file inside ``DRIVER:...:FILE`` forms (``NETCDF:"f.nc":var``, ``GTIFF_DIR:1:f.tif``).
    Only the plain path was compared with the output: ``--overwrite`` with ``-o c2.tif``
    replaced the input ``c2.tif:1,2,3``, a band file of a list, or the zip of a /vsizip/."""
    from stfusion.io.stacks import split_spec

    if not is_gdal_name(spec):
        try:
            return split_spec(spec)[0]
        except Exception:  # not a list, glob or FILE:BANDS: the other forms below
            pass
    found = []
    inner = spec
    while (m := _VSI_PREFIX.match(inner)) is not None:  # /vsizip/a.zip: a.zip, relative
        inner = inner[m.end() :]
    if inner.startswith("{") and "}" in inner:  # GDAL's braces: an archive of any name
        found.append(inner[1 : inner.index("}")])
    elif inner != spec:  # the longest leading part that is a file: the archive itself
        parts = Path(inner).parts
        for i in range(len(parts), 0, -1):
            with contextlib.suppress(OSError):
                if Path(*parts[:i]).is_file():
                    found.append(str(Path(*parts[:i])))
                    break
    for token in re.split(r"[:\"']", spec):
        with contextlib.suppress(OSError):
            if token and token != spec and Path(token).is_file():
                found.append(token)
    return found


def _input_files(spec: str) -> list[Path]:
    """The files an input names (:func:`_named_files`, or the spec itself) and, for a file
    GDAL opens, every file of its dataset (an ENVI header, a world file, .aux.xml), resolved."""
    found: list[Path] = []
    for name in _named_files(spec) or [spec]:
        try:
            found.append(Path(name).resolve())
            is_file = Path(name).is_file()
        except OSError:  # a folder on the way that may not be entered: the read says so
            found.append(Path(os.path.abspath(name)))
            continue
        if is_file:
            try:
                with (
                    rasterio.Env(CPL_LOG="/dev/null"),
                    warnings.catch_warnings(),
                ):
                    warnings.simplefilter("ignore")  # NotGeoreferencedWarning: the read says
                    with rasterio.open(name) as ds:
                        found += [Path(f).resolve() for f in ds.files if not f.startswith("/vsi")]
            except Exception:  # not a raster: the read reports it, with its name
                pass
    return found


def check_output(path: str | os.PathLike[str], overwrite: bool, inputs: Sequence[str] = ()) -> Path:
    """Fail early, before any work, if the output cannot or must not be written."""
    if not os.fspath(path).strip():
        raise InvalidParameterError(
            "the output path is empty: give a file name, e.g. --out pred.tif."
        )
    if os.fspath(path).endswith(("/", os.sep)):
        raise InvalidParameterError(
            f"{os.fspath(path)}: ends with a slash, so it names a folder; give the path of the "
            "output file, e.g. --out fused/pred.tif."
        )
    check_typo(os.fspath(path))
    out = Path(path)
    check_name(out, "output")
    if os.fspath(path).startswith("/vsi"):
        raise InvalidParameterError(
            f"{os.fspath(path)}: a GDAL virtual path cannot be an output (stfusion writes a "
            "file atomically); write a .tif and copy or upload it afterwards."
        )
    if out.suffix.lower() in NOT_RASTER:
        raise InvalidParameterError(
            f"{out}: a {out.suffix} name is not a raster's, and stfusion writes a GeoTIFF "
            "(Cloud Optimized): give a .tif name."
        )
    driver = OTHER_FORMATS.get(out.suffix.lower())
    if driver is not None:
        raise InvalidParameterError(
            f"{out}: stfusion writes GeoTIFF (Cloud Optimized), so a {out.suffix} name would "
            f"hide a GeoTIFF; give a .tif name and convert it afterwards if you need "
            f"{driver} (gdal_translate -of {driver} OUT.tif {out.name})."
        )
    for inp in inputs:
        files = _input_files(str(inp))
        # same path, or the same file by another path (a bind mount, a hard link)
        same = [f for f in files if f == out.resolve() or same_file(out, f)]
        if same:
            what = "one of the inputs" if same[0] == files[0] else f"a file of input {inp}"
            raise OutputExistsError(
                f"{out}: the output is {what}; choose another output path (inputs are never "
                "modified)."
            )
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a folder; give the path of the output file.")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputExistsError(
            f"{out}: already exists. Pass --overwrite (overwrite=True in Python) to replace it."
        )
    check_replaceable(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise InputFileError(f"{out}: output directory {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise InputFileError(f"{out}: output directory {parent} is not writable.")
    why = cannot_create_in(parent)
    if why:
        raise InputFileError(
            f"{out}: cannot create files in {parent} ({why}); choose another output folder."
        )
    _check_name_length(out, parent)
    return out


def cannot_create_in(folder: Path) -> str:
    """Why no file can be created in ``folder`` ("" when one can). Tried, not ``os.access``:
    root passes that and still cannot create files in /proc or /sys."""
    try:
        probe = tempfile.mkdtemp(prefix=".stfusion-probe-", dir=folder)
    except OSError as exc:
        return str(exc.strerror or exc)
    with contextlib.suppress(OSError):
        os.rmdir(probe)
    return ""


def check_replaceable(out: Path) -> None:
    """Refuse to replace anything but a regular file (or a link to one): ``--overwrite`` on
    /dev/full or a FIFO turned the device into a GeoTIFF."""
    if out.exists() and not out.is_dir() and not stat.S_ISREG(os.stat(out).st_mode):
        raise OutputExistsError(
            f"{out}: is a device, FIFO or socket (or a link to one), not a regular file; "
            "stfusion replaces only files. Choose another output path."
        )


#: The characters a partial's name adds to the output's (".", ".<pid>-<8 hex>.partial" and
#: the longest suffix, ".scratch.tif" or ".tif.ovr.tmp").
PARTIAL_EXTRA = 1 + 1 + 10 + 1 + 8 + len(".partial") + len(".scratch.tif") + 4


def _check_name_length(out: Path, parent: Path) -> None:
    """A name the file system takes, but whose partial (the name plus ~45 characters) it
    does not, failed only after the work, naming a hidden file."""
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    length = len(os.fsencode(out.name)) + PARTIAL_EXTRA
    if length > limit:
        raise InvalidParameterError(
            f"{out}: the file name is too long ({len(os.fsencode(out.name))} bytes; its "
            f"temporary name while writing adds {PARTIAL_EXTRA}, and this file system takes at "
            f"most {limit}); give a name of at most {limit - PARTIAL_EXTRA} bytes."
        )


def file_stamp(path: str | os.PathLike[str] | None) -> tuple[int, int, int, int] | None:
    """What changes when ``path`` is written (atomically: a new inode): its device, inode,
    mtime and size; None when it is missing."""
    try:
        st = os.stat(path) if path is not None else None
    except OSError:
        return None
    return None if st is None else (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


#: The stamp of each file this process placed with :func:`atomic_path` (its absolute path):
#: what a failed run may take back is what it wrote, not what another process wrote there.
_PLACED: dict[str, tuple[int, int, int, int] | None] = {}
_PLACED_LOCK = threading.Lock()


def _record_placed(final: Path, stamp: tuple[int, int, int, int] | None) -> None:
    with _PLACED_LOCK:
        _PLACED[os.path.abspath(final)] = stamp


def placed_here(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is, unchanged, a file this process placed with :func:`atomic_path`."""
    now = file_stamp(path)
    with _PLACED_LOCK:
        return now is not None and _PLACED.get(os.path.abspath(path)) == now


def remove_changed(paths: Sequence[Path], before: Sequence[Any], *, ours: bool = False) -> None:
    """Remove each of ``paths`` whose :func:`file_stamp` is not its stamp in ``before``: the
    files a run wrote (a missing one stays missing). ``ours``: only those this process
    placed (:func:`placed_here`), so a file another run wrote there meanwhile is kept."""
    for path, was in zip(paths, before, strict=True):
        if _written(path, was, ours):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _written(path: Path, was: Any, ours: bool) -> bool:
    """Whether ``path`` changed since its stamp ``was`` (``ours``: and this process placed it)."""
    return file_stamp(path) not in (None, was) and (not ours or placed_here(path))


@contextlib.contextmanager
def removed_if_written(
    paths: Sequence[Path], before: Sequence[Any] | None = None
) -> Iterator[None]:
    """If the block raises, each of ``paths`` this process wrote since ``before`` (their
    stamps when the run began; by default when the block is entered) is taken back: the
    earlier file put back, or removed when there was none. An output whose companion was
    not finished would otherwise stand alone, and a rerun be refused for it; an
    ``--overwrite`` run that failed after one of them took its name lost the earlier one
    (a prediction's quality layer). The earlier file is kept aside as a hard link from the
    block's start (``.NAME.<pid>-<rand>.partial.old``, which a later run puts back if this
    process is killed before its file returns); where hard links fail, it is removed as
    before."""
    before = [file_stamp(p) for p in paths] if before is None else before
    aside = [_kept_aside(p, was) for p, was in zip(paths, before, strict=True)]
    try:
        yield
    except BaseException:
        for path, was, old in zip(paths, before, aside, strict=True):
            if _written(path, was, ours=True):
                with contextlib.suppress(OSError):
                    if old is not None:
                        os.replace(old, path)
                    else:
                        os.unlink(path)
        raise
    finally:
        for old in aside:
            if old is not None:
                with contextlib.suppress(OSError):
                    os.unlink(old)


def _kept_aside(path: Path, was: Any) -> Path | None:
    """A hard link to ``path`` beside it, if it is still the file stamped ``was``."""
    if was is None or file_stamp(path) != was:
        return None
    old = partial_name(path, OLD_SUFFIX)
    try:
        os.link(path, old)
    except OSError:  # no hard links here (FAT, some network file systems)
        return None
    return old


def _place_new(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` onto ``final`` only if nothing is there: a hard link fails when
    ``final`` exists, so of two runs writing one new output at once the second is refused
    instead of replacing the first's (``os.replace`` after the check let both through).
    File systems without hard links fall back to the rename."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise OutputExistsError(f"{final}: appeared while writing; not replaced.") from None
    except OSError:  # no hard links here (FAT, some network file systems)
        os.replace(tmp, final)
        return
    os.unlink(tmp)


#: GDAL's files beside a raster (QGIS's histogram statistics, ``gdaladdo -ro`` pyramids).
GDAL_SIDECARS = (".aux.xml", ".ovr", ".msk")


@contextlib.contextmanager
def atomic_path(
    final: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    suffix: str | None = None,
    verify: Callable[[Path], None] | None = None,
    keep: os.stat_result | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is renamed onto ``final``.

    The one way stfusion writes a file or folder: readers never see a half-written output,
    nothing is left behind on an exception, SIGINT or SIGTERM (the CLI turns SIGTERM into an
    exception), and partials of killed processes are removed by the next run
    (:func:`remove_stale_partials`). The result gets the mode a plain ``open()`` gives (the
    umask is respected: 0666 & ~umask for files, 0777 & ~umask for folders); one that
    replaces an existing ``final`` keeps its permission bits and group (a user's shared,
    setgid folder turned world-readable ``root:root`` when a bench replaced it), as does
    one given ``keep``, the ``os.stat`` of an output the caller moved aside. An existing
    ``final`` is replaced only with ``overwrite=True``; a folder is never replaced by a file
    or the other way round. ``verify(tmp)`` runs before the rename and raises when what was
    written is not whole (:func:`check_written`). GDAL's sidecars of a file replaced go.
    """
    final = Path(final)
    remove_stale_partials(final)
    tmp = partial_name(final, final.suffix if suffix is None else suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise OSError(f"{final}: nothing was written")
        is_dir = tmp.is_dir()
        if final.exists() or final.is_symlink():
            if not overwrite:
                raise OutputExistsError(f"{final}: appeared while writing; not replaced.")
            if final.is_dir() != is_dir:
                kind = "a folder" if final.is_dir() else "a file"
                raise OutputExistsError(f"{final}: is {kind}; choose another output path.")
            check_replaceable(final)
        if verify is not None:
            verify(tmp)
        if keep is None and final.exists() and not final.is_symlink():
            keep = final.stat()
        if keep is None:
            os.chmod(tmp, umask_mode(0o777 if is_dir else 0o666))
        else:
            os.chmod(tmp, stat.S_IMODE(keep.st_mode))
            with contextlib.suppress(OSError):  # only the owner or root may change the group
                os.chown(tmp, -1, keep.st_gid)
        # Recorded before the rename, which keeps the inode, size and mtime: a signal right
        # after it (a Ctrl-C as the output took its name) must find it recorded as ours.
        _record_placed(final, file_stamp(tmp))
        if is_dir and final.is_dir():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = partial_name(final, OLD_SUFFIX)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        elif not overwrite and not is_dir:
            _place_new(tmp, final)
        else:
            os.replace(tmp, final)
        for side in () if is_dir else GDAL_SIDECARS:  # they describe the file replaced:
            with contextlib.suppress(FileNotFoundError):  # its statistics, pyramids, mask
                os.unlink(f"{final}{side}")
    except BaseException as exc:
        with contextlib.suppress(OSError):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            elif tmp.exists() or tmp.is_symlink():
                tmp.unlink()
        if isinstance(exc, OSError):
            _name_the_output(exc, tmp, final)
        raise


def _name_the_output(exc: OSError, tmp: Path, final: Path) -> None:
    """An error met writing ``tmp`` names ``final`` (the file the user asked for), not the
    temporary name, which is gone; or names it at all: a full disk under matplotlib's
    ``savefig`` said only "[Errno 28] No space left on device" (a trial)."""
    if exc.errno is None:  # a message of its own, which names what it means
        return
    if exc.filename is None:
        exc.filename = str(final)
        return
    try:
        rel = Path(os.fsdecode(exc.filename)).relative_to(tmp)
    except (TypeError, ValueError):
        return
    exc.filename = str(final / rel) if rel.parts else str(final)


#: The scratch GeoTIFF a RasterWriter fills window by window before the COG copy.
GTIFF_PROFILE: dict[str, Any] = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "deflate",
    "predictor": 3,
    "BIGTIFF": "IF_SAFER",
}

#: Creation options of every output (GDAL's COG driver): deflate with the predictor that fits
#: the data type (3 for float), overviews down to one block (averaged, NaN-aware), BigTIFF when
#: the file could pass 4 GB. The block size is :func:`cog_blocksize`'s unless given.
COG_OPTIONS: dict[str, Any] = {
    "compress": "DEFLATE",
    "predictor": "YES",
    "overviews": "AUTO",
    "resampling": "AVERAGE",
    "bigtiff": "IF_SAFER",
}


def cog_blocksize(width: int, height: int) -> int:
    """Tile side of a COG output: 256 px below 512 px (one block for small images), else 512."""
    return 256 if max(width, height) < 512 else 512


def copy_as_cog(
    src: str | os.PathLike[str],
    final: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    blocksize: int | None = None,
    **options: Any,
) -> Path:
    """Copy the finished raster ``src`` into ``final`` as a Cloud-Optimized GeoTIFF.

    Written through :func:`atomic_path` (a partial beside ``final``, renamed on success,
    removed on error, umask respected). GDAL's COG driver streams the copy block by block
    (memory bounded by GDAL's cache, overviews built from a temporary file), keeping band
    descriptions, nodata and tags. ``options`` override :data:`COG_OPTIONS` (e.g.
    ``predictor="NO"``). ``src`` is left in place: the caller removes it.
    """
    from rasterio.shutil import copy as rio_copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        if blocksize is None:
            with write_errors(final), rasterio.open(src) as ds:  # a scratch cut short
                blocksize = cog_blocksize(ds.width, ds.height)
        verify = functools.partial(check_written, final=Path(final))
        with atomic_path(final, overwrite=overwrite, verify=verify) as tmp:
            with write_errors(final):
                rio_copy(
                    str(src),
                    str(tmp),
                    driver="COG",
                    blocksize=blocksize,
                    **{**COG_OPTIONS, **options},
                )
    return Path(final)


@contextlib.contextmanager
def write_errors(
    final: str | os.PathLike[str], also: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """GDAL's and the system's errors while writing ``final`` (or its partial) as one
    :class:`OutputWriteError` naming ``final``, with the free space left; ``also``: other
    errors of the writer (netCDF's "RuntimeError: NetCDF: HDF error" on a full disk)."""
    try:
        yield
    except (*WRITE_ERRORS, *also) as exc:
        if isinstance(exc, OutputWriteError):
            raise
        raise write_failed(Path(final), exc) from exc


def check_written(path: Path, final: Path | None = None) -> None:
    """Read every block of the raster at ``path`` back: GDAL reports some write errors (a
    full disk while flushing) only on stderr, and the truncated file would be renamed into
    place as if whole. Raises :class:`OutputWriteError` naming ``final`` (default ``path``)."""
    try:
        with rasterio.open(path) as ds:
            # a COG's full-resolution tiles come last in the file, after its overviews
            for _, window in ds.block_windows(1):
                ds.read(window=window)
    except WRITE_ERRORS as exc:
        raise write_failed(final or path, exc, "reading it back failed: ") from exc


class RasterWriter:
    """Writes a Cloud-Optimized GeoTIFF window by window, renamed into place on success.

    Windows go into a scratch GeoTIFF beside the output (:data:`GTIFF_PROFILE`); on success it
    is copied as a COG (:func:`copy_as_cog`: tiled, deflate, overviews) and removed. On any
    exception nothing is left behind: no output, no partial, no scratch file. ``cog=False``
    keeps the tiled scratch GeoTIFF as the output (no copy, no overviews: intermediate files).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: Grid,
        count: int,
        *,
        band_names: Sequence[str] | None = None,
        tags: dict[str, Any] | None = None,
        overwrite: bool = False,
        cog: bool = True,
    ) -> None:
        self.path = Path(path)
        self.cog = cog
        self.grid = grid
        self.count = count
        self.band_names = list(band_names) if band_names else None
        self.tags = tags or {}
        self.overwrite = overwrite
        self._ds: rasterio.io.DatasetWriter | None = None
        self._tmp: str | None = None

    def __enter__(self) -> RasterWriter:
        check_output(self.path, self.overwrite)
        remove_stale_partials(self.path)
        check_room(self.path, self.grid.height * self.grid.width * self.count * 4)
        self._tmp = str(partial_name(self.path, ".scratch.tif"))
        try:
            self._open()
        except BaseException:
            self._remove_scratch()
            raise
        return self

    def _overviews(self) -> dict[str, Any]:
        """A quality layer (tagged ``STFUSION_QUALITY_OF``) holds flags and counts, which an
        average turns into values no pixel has (fallback 2.25): its overviews are nearest."""
        return {"resampling": "NEAREST"} if "STFUSION_QUALITY_OF" in self.tags else {}

    def _remove_scratch(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)

    def _open(self) -> None:
        profile = dict(GTIFF_PROFILE)
        profile.update(self.grid.profile(), count=self.count, dtype="float32", nodata=np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._ds = rasterio.open(self._tmp, "w", **profile)
        if self.band_names:
            for i, name in enumerate(self.band_names, start=1):
                self._ds.set_band_description(i, name)
        if self.tags:
            self._ds.update_tags(
                **{
                    k: v if isinstance(v, str) else json.dumps(v, default=str)
                    for k, v in self.tags.items()
                }
            )

    def write(self, array: np.ndarray, window: Window | None = None) -> None:
        assert self._ds is not None
        with write_errors(self.path):
            self._ds.write(np.asarray(array, dtype=np.float32), window=window)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._ds is not None and self._tmp is not None
        try:
            try:
                self._ds.close()
            except WRITE_ERRORS as err:
                if exc_type is None:
                    raise write_failed(self.path, err) from err
            if exc_type is None:
                check_written(Path(self._tmp), self.path)  # before the copy: sooner
            if exc_type is None and self.cog:
                copy_as_cog(self._tmp, self.path, overwrite=self.overwrite, **self._overviews())
            elif exc_type is None:  # scratch outputs: the tiled GeoTIFF itself, renamed
                with atomic_path(self.path, overwrite=self.overwrite) as tmp:
                    os.replace(self._tmp, tmp)
        finally:
            self._remove_scratch()


def write_raster(
    path: str | os.PathLike[str],
    array: np.ndarray,
    grid: Grid,
    *,
    band_names: Sequence[str] | None = None,
    tags: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a float32 ``(band, y, x)`` array as a Cloud-Optimized GeoTIFF, atomically."""
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    with RasterWriter(
        path, grid, arr.shape[0], band_names=band_names, tags=tags, overwrite=overwrite
    ) as w:
        w.write(arr)
    return Path(path)
