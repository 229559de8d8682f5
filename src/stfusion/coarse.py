"""The virtual coarse grid: coarse pixels rebuilt on the fine grid from the resolution ratio.

FSDAF and Fit-FC work on coarse pixels. Inputs arrive on the fine grid (resampled by the
user, or aligned by :mod:`stfusion.scene`), so coarse pixels are rebuilt as ``R x R`` blocks
anchored at the fine grid's origin; partial blocks at the right and bottom edges are allowed
(their means use the pixels that exist). Anchoring at the origin, never at a window, is what
keeps tiled runs identical to whole-scene runs.
"""

from __future__ import annotations

import math

import numpy as np

from stfusion.errors import InvalidParameterError


def integer_ratio(ratio: float | None, method: str) -> int:
    """The ratio as an integer block size, or a clear error."""
    if ratio is None:
        raise InvalidParameterError(
            f"{method} needs the resolution ratio (coarse pixel size / fine pixel size). The "
            "inputs are on one grid, so give it: --param ratio=16 (Python: fit(pairs, ratio=16))."
        )
    if not (ratio >= 1 and math.isfinite(ratio)) or abs(ratio - round(ratio)) > 1e-6 * max(
        1.0, ratio
    ):
        raise InvalidParameterError(
            f"{method}: the resolution ratio must be a positive integer to rebuild coarse "
            f"pixels on the fine grid, got {ratio}. Resample the fine image so that the ratio "
            "is an integer (e.g. 480 m / 30 m = 16)."
        )
    return round(ratio)


def block_shape(shape: tuple[int, int], r: int) -> tuple[int, int]:
    return (-(-shape[0] // r), -(-shape[1] // r))


def block_mean(arr: np.ndarray, r: int) -> np.ndarray:
    """Mean over ``r x r`` blocks anchored at (0, 0) of ``(..., y, x)``, NaN-aware.

    A block with no valid pixel is NaN. Edge blocks may be partial.
    """
    a = np.asarray(arr, dtype=np.float64)
    *lead, h, w = a.shape
    bh, bw = block_shape((h, w), r)
    pad = np.full((*lead, bh * r, bw * r), np.nan)
    pad[..., :h, :w] = a
    blocks = pad.reshape(*lead, bh, r, bw, r)
    ok = np.isfinite(blocks)
    n = ok.sum(axis=(-3, -1))
    s = np.where(ok, blocks, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / n
    out[n == 0] = np.nan
    return out.astype(np.float32)


def upsample_blocks(coarse: np.ndarray, r: int, shape: tuple[int, int]) -> np.ndarray:
    """Each coarse pixel repeated over its ``r x r`` block, cropped to the fine ``shape``."""
    up = np.repeat(np.repeat(coarse, r, axis=-2), r, axis=-1)
    return up[..., : shape[0], : shape[1]]


def block_index(shape: tuple[int, int], r: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index of the coarse block of every fine pixel."""
    rows = np.arange(shape[0]) // r
    cols = np.arange(shape[1]) // r
    return np.broadcast_to(rows[:, None], shape), np.broadcast_to(cols[None, :], shape)
