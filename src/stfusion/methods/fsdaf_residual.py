"""FSDAF's per-pixel array steps: the homogeneity index (paper step 5), the residual
distribution into the total change (steps 3 and 5; on ``r x r`` blocks or on native coarse
pixels) and the similar-pixel prediction (step 6), each a thin wrapper over a numba kernel of
:mod:`stfusion.kernels.fsdaf` (native pixels: :mod:`stfusion.kernels.coarse`). FSDAF 2.0
calls the same wrappers.

Moved out of :mod:`stfusion.methods.fsdaf`, which still exports these names.
"""

from __future__ import annotations

import numpy as np

from stfusion.kernels.coarse import distribute_residual_mapped
from stfusion.kernels.fsdaf import (
    FINAL_IDL,
    FINAL_PAPER,
    distribute_residual,
    homogeneity_index,
    similar_smooth,
)

__all__ = ["FINAL_MODES", "homogeneity", "residual_change", "smooth"]

#: ``final`` choices: the paper's similar-pixel rule or the IDL program's.
FINAL_MODES = {"paper": FINAL_PAPER, "idl": FINAL_IDL}


def homogeneity(labels: np.ndarray, half: int) -> np.ndarray:
    """Homogeneity index HI (paper step 5) of every pixel of ``labels`` (window clipped)."""
    lab = np.ascontiguousarray(labels, dtype=np.int32)
    out = np.empty(lab.shape, dtype=np.float32)
    homogeneity_index(lab, half, 0, lab.shape[0], 0, lab.shape[1], out)
    return out


def residual_change(
    f1: np.ndarray,
    labels: np.ndarray,
    hi: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    residual: np.ndarray,
    r: int | np.ndarray,
    lo: np.ndarray,
    hi_allow: np.ndarray,
) -> np.ndarray:
    """Total change ``Delta F`` (paper steps 3 and 5) on arrays covering whole coarse pixels:
    ``r`` x ``r`` blocks from the arrays' origin (``residual`` ``(bh, bw, band)``), or native
    coarse pixels when ``r`` is an index map ``(H, W)`` of each fine pixel's coarse pixel
    (``residual`` ``(n, band)``, :func:`stfusion.kernels.coarse.distribute_residual_mapped`)."""
    out = np.empty(f1.shape, dtype=np.float32)
    args = (
        np.ascontiguousarray(f1, dtype=np.float32),
        np.ascontiguousarray(labels, dtype=np.int32),
        np.ascontiguousarray(hi, dtype=np.float32),
        np.ascontiguousarray(spline, dtype=np.float64),
        np.ascontiguousarray(class_change, dtype=np.float64),
        np.ascontiguousarray(residual, dtype=np.float64),
    )
    allowed = (np.asarray(lo, dtype=np.float64), np.asarray(hi_allow, dtype=np.float64))
    if isinstance(r, np.ndarray):
        distribute_residual_mapped(*args, np.ascontiguousarray(r), *allowed, out)
    else:
        distribute_residual(*args, int(r), *allowed, out)
    return out


def smooth(
    f1: np.ndarray,
    change: np.ndarray,
    labels: np.ndarray,
    half: int,
    n_similar: int,
    thr: np.ndarray,
    final: str = "paper",
    region: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Similar-pixel prediction (paper step 6) for ``region`` = (y0, x0, h, w) of the
    arrays (default: all pixels); windows clipped to the arrays. ``final``: ``paper``
    (same class, eq. 21 ranking, 1/D weights) or ``idl`` (FSDAF.pro's rule, threshold
    ``thr`` per band); see :func:`stfusion.kernels.fsdaf.similar_smooth`."""
    f = np.ascontiguousarray(f1, dtype=np.float32)
    c = np.ascontiguousarray(change, dtype=np.float32)
    lab = np.ascontiguousarray(labels, dtype=np.int32)
    fvalid = np.isfinite(f).all(axis=0)
    assert isinstance(fvalid, np.ndarray)  # f is (band, y, x): a 2-D mask, not a scalar
    cvalid = fvalid & (lab >= 0) & np.isfinite(c).all(axis=0)
    y0, x0, h, w = region if region is not None else (0, 0, f.shape[1], f.shape[2])
    out = np.empty((f.shape[0], h, w))
    mode = FINAL_MODES[final]
    similar_smooth(
        f,
        c,
        lab,
        fvalid,
        cvalid,
        np.asarray(thr, dtype=np.float64),
        int(half),
        int(n_similar),
        mode,
        y0,
        x0,
        out,
    )
    return out
