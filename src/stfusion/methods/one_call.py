"""``fuse``: fit and predict in one call."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, overload

import xarray as xr

from stfusion.methods.base import FusionMethod
from stfusion.scene import ImageLike, as_source, scene_keywords


@overload
def fuse(
    method: FusionMethod,
    pairs: Sequence[tuple[ImageLike, ImageLike]],
    coarse_target: ImageLike,
    *,
    out: None = None,
    **kw: Any,
) -> xr.DataArray: ...


@overload
def fuse(
    method: FusionMethod,
    pairs: Sequence[tuple[ImageLike, ImageLike]],
    coarse_target: ImageLike,
    *,
    out: str | os.PathLike[str],
    **kw: Any,
) -> str | os.PathLike[str]: ...


def fuse(
    method: FusionMethod,
    pairs: Sequence[tuple[ImageLike, ImageLike]],
    coarse_target: ImageLike,
    *,
    out: str | os.PathLike[str] | None = None,
    **kw: Any,
) -> xr.DataArray | str | os.PathLike[str]:
    """One call: fit on ``pairs``, predict at ``coarse_target``; returns a DataArray, or
    with ``out`` the path written. ``kw``: :meth:`FusionMethod.fit`'s scene keywords
    (``ratio``, ``fine_scaling``, ``coarse_scaling``, ``resampling``, ``pair_dates``,
    ``target_date``, ``check``: :func:`stfusion.scene.scene_keywords`) go to ``fit``, the
    others (``mem_limit_mb``, ...) to ``predict``."""
    fit_kw = {k: kw.pop(k) for k in list(kw) if k in scene_keywords() and k != "target"}
    target = (
        as_source(coarse_target)
        if not isinstance(coarse_target, str | os.PathLike)
        else coarse_target
    )
    fitted = method.fit(pairs, **fit_kw)
    if out is None:
        return fitted.predict(target, **kw)
    return fitted.predict(target, out=out, **kw)
