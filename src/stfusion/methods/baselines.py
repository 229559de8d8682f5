"""The two baselines every method is compared with.

- ``nochange``: the fine image of the pair(s), i.e. nothing happened (mean over pairs).
- ``additive``: ``F_k + (C_0 - C_k)``, the coarse change added to the fine image; with several
  pairs the mean of the per-pair predictions (one image), as the named cases define it.

A pixel invalid in one pair is predicted from the others; invalid in all, it is NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
from rasterio.windows import Window

from stfusion.methods.base import FusionMethod
from stfusion.methods.params import MethodTags


def _nanmean(stack: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stack, axis=0).astype(np.float32)


class NoChange(FusionMethod):
    """Baseline: the pair's fine image (mean over pairs)."""

    name = "nochange"
    title = "No change (baseline)"
    paper = "baseline: F_k"
    tags = MethodTags(exact=("unchanged",))

    def __init__(self) -> None:
        super().__init__()

    def predict_window(self, window: Window) -> np.ndarray:
        fines = [f.read(window) for f, _ in self.scene_.pairs]
        return _nanmean(np.stack(fines))

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # measured (tracemalloc, 6 bands): 156, 234, 312 B per pixel for 1, 2, 3 pairs
        return 13.0 * bands * (pairs + 1) + 64.0


class Additive(FusionMethod):
    """Baseline: F_k + (C_0 - C_k), mean over pairs."""

    name = "additive"
    title = "Additive (baseline)"
    paper = "baseline: F_k + C_0 - C_k"
    tags = MethodTags(exact=("unchanged", "uniform_change"))

    def __init__(self) -> None:
        super().__init__()

    def predict_window(self, window: Window) -> np.ndarray:
        fines, coarses, target = self.read_inputs(window, 0)
        return _nanmean(np.stack([f + target - c for f, c in zip(fines, coarses)]))

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # measured (tracemalloc, 6 bands): 204, 306, 408 B per pixel for 1, 2, 3 pairs, where
        # the default said 160, 208, 256: --mem-limit 1000 peaked at 1411 MB (a trial)
        return 17.0 * bands * (pairs + 1) + 64.0
