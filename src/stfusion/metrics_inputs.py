"""What ``stfusion.metrics`` makes of its inputs: arrays or DataArrays, as float64
``(band, y, x)`` in physical units, their pixels labelled alike (docs/metrics.md, "Inputs").
The band names a DataArray describes are read here for ``io.dataarray`` (``fit``) too."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stfusion.errors import GridMismatchError, warn

Float64Array = NDArray[np.float64]


def one_band_alike(pred: Any, truth: Any) -> tuple[Any, Any]:
    """One band given with its band axis on one side only (an NDVI ``(y, x)`` truth, a
    ``(1, y, x)`` prediction): that axis dropped, so both are ``(y, x)``."""
    if pred.ndim == truth.ndim + 1 and pred.shape[0] == 1:
        return pred[0], truth
    if truth.ndim == pred.ndim + 1 and truth.shape[0] == 1:
        return pred, truth[0]
    return pred, truth


def check_labels(pred: Any, truth: Any) -> None:
    """Two labelled arrays (xarray DataArrays, duck-typed: ``dims`` and ``coords``) must
    label their pixels alike: the same dimensions in the same order, the same spatial
    coordinates, and named bands not in another order. Scored position by position, a
    truth shifted, flipped or with its bands reordered gave a wrong score silently."""
    if not all(hasattr(a, "dims") and hasattr(a, "coords") for a in (pred, truth)):
        return
    if tuple(pred.dims) != tuple(truth.dims):
        raise GridMismatchError(
            f"pred has dimensions {tuple(pred.dims)} and truth {tuple(truth.dims)}; give "
            "both in one order (e.g. truth.transpose(*pred.dims))."
        )
    for dim in pred.dims:
        if dim not in pred.coords or dim not in truth.coords:
            continue
        a, b = np.asarray(pred[dim].values), np.asarray(truth[dim].values)
        if a.dtype.kind in "iuf" and b.dtype.kind in "iuf":
            if a.dtype.kind == b.dtype.kind == "f" or dim != pred.dims[0]:
                step = float(np.abs(np.diff(a)).min()) if a.size > 1 else 1.0
                if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-3 * step):
                    raise GridMismatchError(
                        f"pred and truth have other {dim} coordinates ({a[0]:g} .. {a[-1]:g} "
                        f"vs {b[0]:g} .. {b[-1]:g}): scored pixel by pixel they would compare "
                        f"different places. Align them first (e.g. truth.sel({dim}=pred.{dim}, "
                        "method='nearest') or truth.sortby(...))."
                    )
        elif a.dtype.kind in "US" and b.dtype.kind in "US":
            if list(a) != list(b) and sorted(a) == sorted(b):
                raise GridMismatchError(
                    f"pred names its {dim}s {', '.join(map(str, a))} and truth "
                    f"{', '.join(map(str, b))}: the same in another order. Give one order "
                    f"(e.g. truth.sel({dim}=pred.{dim}))."
                )
            if list(a) != list(b):  # other names (SR_B4 against red is no mistake): said
                warn(
                    f"pred names its {dim}s {', '.join(map(str, a))} and truth "
                    f"{', '.join(map(str, b))}: scored by position, as if the same."
                )


def _per_band(value: Any, n_bands: int) -> Float64Array | float | None:
    """A scale or offset attribute: one number, or one per band (rioxarray's ``scales``)
    shaped to broadcast over ``(band, y, x)``; None when absent or unusable."""
    if value is None:
        return None
    v = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if v.size == 1:
        return float(v[0])
    return v.reshape(-1, 1, 1) if v.size == n_bands else None


def physical_values(image: Any) -> Float64Array:
    """float64 values; a DataArray's as ``fit`` reads it (docs/inputs.md): its fill value
    (``_FillValue`` or ``nodata`` attribute, as rioxarray's ``open_rasterio`` keeps it) NaN,
    then ``scale_factor``/``add_offset`` (or rioxarray's per-band ``scales``/``offsets``)
    applied. A raw DataArray of reflectance x 10000 scored raw against a prediction in
    reflectance gave RMSE 1349 with a warning."""
    values = np.asarray(image, dtype=np.float64)
    attrs = getattr(image, "attrs", None)
    if not hasattr(image, "dims") or not isinstance(attrs, dict):
        return values
    fill = attrs.get("_FillValue", attrs.get("nodata"))
    if fill is not None and np.ndim(fill) == 0 and np.isfinite(fill):
        values = np.where(values == fill, np.nan, values)
    n = values.shape[0] if values.ndim == 3 else 1
    scale = _per_band(attrs.get("scale_factor", attrs.get("scales")), n)
    offset = _per_band(attrs.get("add_offset", attrs.get("offsets")), n)
    if scale is not None:
        values = values * scale
    if offset is not None:
        values = values + offset
    return np.asarray(values, dtype=np.float64)


def as_pair(pred: ArrayLike, truth: ArrayLike) -> tuple[Float64Array, Float64Array]:
    """Both as float64 (band, y, x) in physical units (:func:`physical_values`), so every metric
    sees the same shapes and precision."""
    if not (hasattr(pred, "ndim") and hasattr(truth, "ndim")):  # lists: arrays first
        pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    pred, truth = one_band_alike(pred, truth)
    check_labels(pred, truth)
    p = physical_values(pred)
    t = physical_values(truth)
    if p.shape != t.shape:
        raise GridMismatchError(
            f"pred and truth must have the same shape (band, y, x); got pred {p.shape} and "
            f"truth {t.shape}. Resample the prediction onto the truth grid first."
        )
    if p.ndim == 2:
        p, t = p[np.newaxis], t[np.newaxis]
    if p.ndim != 3:
        raise GridMismatchError(
            f"pred and truth must be 3-D (band, y, x) or 2-D (y, x); got {p.ndim}-D arrays of "
            f"shape {p.shape}."
        )
    return p, t


def dataarray_band_names(*images: Any) -> list[str] | None:
    """A DataArray's named bands; for rioxarray's numbered bands 1..N, the descriptions it
    keeps in ``long_name`` (the names the file gives), from the first image that has them."""
    for image in images:
        labels = getattr(getattr(image, "coords", {}).get("band"), "values", None)
        if labels is None:
            continue
        labels = np.atleast_1d(labels)
        if labels.dtype.kind in "US":
            return [str(b) for b in labels]
        described = described_band_names(labels, getattr(image, "attrs", {}))
        if described is not None:
            return list(described)
    return None


def described_band_names(labels: np.ndarray, attrs: Any) -> tuple[str, ...] | None:
    """The band descriptions rioxarray keeps in ``attrs["long_name"]`` when it numbers the
    bands ``labels`` 1..N (the names the file gives, as a path would give them); None when
    the labels are not that numbering or the descriptions do not name every band. Shared by
    ``fit``'s and ``evaluate``'s reading of DataArrays."""
    described = attrs.get("long_name")
    if (
        labels.dtype.kind in "iu"
        and labels.tolist() == list(range(1, len(labels) + 1))
        and isinstance(described, tuple | list)
        and len(described) == len(labels)
        and all(isinstance(d, str) and d for d in described)
    ):
        return tuple(described)
    return None
