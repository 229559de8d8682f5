"""The numba kernels of the classical methods, compiled once and cached on disk.

numba caches a compiled function beside its source (``__pycache__``) or in the user's cache
folder (``$NUMBA_CACHE_DIR``, else ``~/.cache``), and refuses to load a ``cache=True``
function when it can write to neither: a read-only shared installation with HOME read-only
or unset made every classical method fail at import ("cannot cache function"). Then the
kernels are cached in a folder of the user's own under the temporary directory instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from typing import Any

log = logging.getLogger("stfusion")


def _cache_where_writable() -> None:
    try:
        from numba.core import caching, config
    except ImportError:  # numba's layout changed: its own error, if any, stands
        return

    def probe() -> None:  # where numba would cache a function of this package
        return None

    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "starfm.py")
    locators: Any = getattr(caching.CacheImpl, "_locator_classes", ())
    try:
        if any(c.from_function(probe, source) for c in locators):
            return
    except Exception:  # a private API: leave numba's behaviour alone if it moved
        return
    folder = _private_folder()
    log.info("numba cannot cache beside the package or in the user's cache; using %s", folder)
    settings: Any = config
    settings.CACHE_DIR = folder


def _private_folder() -> str:
    """``$TMPDIR/stfusion-numba-cache-UID``, made ``0700``, when it is this user's and no one
    else may write it; else a fresh folder of this process. The cache holds pickles numba
    loads: a folder another user could plant would run their code as this user."""
    tmp = tempfile.gettempdir()
    if hasattr(os, "getuid"):  # POSIX owners to check
        folder = os.path.join(tmp, f"stfusion-numba-cache-{os.getuid()}")
        with contextlib.suppress(OSError):
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
            st = os.lstat(folder)
            mine = st.st_uid == os.getuid() and stat.S_ISDIR(st.st_mode)
            if mine and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return folder
    return tempfile.mkdtemp(prefix="stfusion-numba-cache-", dir=tmp)


_cache_where_writable()
