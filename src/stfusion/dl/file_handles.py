"""Raster handles kept open while training (windows are read at random places, and opening
a GeoTIFF costs more than reading a 64 px window of it) and GDAL's block cache bounded
meanwhile.

Moved out of :mod:`stfusion.dl.datasets`, which still exports these names.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from stfusion.io import FileSource, Source
from stfusion.io.files import _open

__all__ = [
    "GDAL_CACHE_BYTES",
    "MAX_HANDLES",
    "bound_gdal_cache",
    "close_handles",
    "kept_open",
    "streaming",
]

#: Open raster handles kept per process by :class:`_KeptOpenFileSource` (least recently used
#: closed beyond this). Handles, not pixels: a window is read from the file each time. Each
#: open GeoTIFF holds about 3 MB (GDAL's per-dataset buffers): with 64, peak RSS grew from
#: 687 MB (10 dates) to 822 MB (30 dates) of 2000 x 2000 x 6; with 16, 655 and 618 MB at the
#: same epoch time (benchmarks/bench_train.py: reopening costs ~1 ms a window).
MAX_HANDLES = 16
_handles: OrderedDict[str, Any] = OrderedDict()
_handles_pid = [0]


#: GDAL's block cache while training (bytes). Windows are read at random places, so a cached
#: block is seldom read again; GDAL's default (5 % of the RAM) filled with the blocks of every
#: file read, and so grew with the number of dates (measured: +0.9 GB from 10 to 30 dates of
#: 2000 x 2000 x 6 through kept-open handles).
GDAL_CACHE_BYTES = 64 * 2**20


def _handle(path: str) -> Any:
    if _handles_pid[0] != os.getpid():  # a new worker: never share the parent's handles
        _handles.clear()
        _handles_pid[0] = os.getpid()
        _set_gdal_cache(GDAL_CACHE_BYTES)
    ds = _handles.pop(path, None)
    if ds is None:
        ds = _open(path)
        while len(_handles) >= MAX_HANDLES:
            _handles.popitem(last=False)[1].close()
    _handles[path] = ds
    return ds


def _set_gdal_cache(nbytes: Any) -> Any:
    from rasterio.env import get_gdal_config, set_gdal_config

    old = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", nbytes)
    return old


def bound_gdal_cache() -> None:
    """GDAL's block cache bounded to :data:`GDAL_CACHE_BYTES` for the rest of the process (a
    training run's preparation, before :func:`streaming`)."""
    _set_gdal_cache(GDAL_CACHE_BYTES)


def close_handles() -> None:
    """Close the kept-open raster handles of this process."""
    while _handles:
        _handles.popitem()[1].close()


@contextlib.contextmanager
def streaming() -> Iterator[None]:
    """While training: GDAL's block cache bounded to :data:`GDAL_CACHE_BYTES` (restored
    after when it had been set), the kept-open handles closed at the end."""
    old = _set_gdal_cache(GDAL_CACHE_BYTES)
    try:
        yield
    finally:
        close_handles()
        if isinstance(old, int):
            _set_gdal_cache(old)


class _KeptOpenFileSource(FileSource):
    """A :class:`~stfusion.io.FileSource` that reads windows through a kept-open handle
    (opening a GeoTIFF costs more than reading a 64 px window of it)."""

    def _dataset(self) -> contextlib.AbstractContextManager[Any]:
        # FileSource.read as it is (fill values, scaling, read errors): it read without the
        # fill values given with --fine-nodata, so they were trained on as data
        return contextlib.nullcontext(_handle(self.path))


def kept_open(src: Source) -> Source:
    """``src`` with every FileSource inside it (a masked image's image and mask) reading
    through kept-open handles; other Sources unchanged."""
    if type(src) is FileSource:
        new = copy.copy(src)
        new.__class__ = _KeptOpenFileSource
        return new
    inner = getattr(src, "source", None)
    if isinstance(inner, Source) and hasattr(src, "mask_source_"):  # qa.MaskedSource
        masked: Any = copy.copy(src)  # known by its attributes only
        masked.source = kept_open(inner)
        masked.mask_source_ = kept_open(masked.mask_source_)
        return masked
    return src
