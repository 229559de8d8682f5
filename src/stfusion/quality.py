"""The quality layer written beside a prediction (``predict --quality``, ``quality_out=``).

Bands, per fine pixel (docs/commands/predict.md, "The quality layer"):

- ``days_to_pair``: days between the target and the nearest pair that contributed there
  (NaN where none did, or where the dates are unknown);
- ``pairs_used``: how many pairs contributed there. A pair contributes where its fine pixel is
  valid (finite in every band) and the prediction has a value made from the pairs: 0 where the
  prediction is NaN in every band, and 0 where the value is a coarse substitute (the method
  flagged its fallback there and the value is the coarse target's, as STARFM and Fit-FC do
  where no pair has a fine value);
- ``fallback``: bit flags, ``1`` (:data:`FALLBACK_RULE`) the method's documented fallback
  rule made the value, ``2`` (:data:`NO_COARSE_TARGET`) the coarse target has no valid value
  there (masked or nodata in some band), so whatever value the pixel has comes from
  neighbouring coarse pixels or from the pairs alone; 3 both;
- ``uncertainty_<band>``: the method's own spread estimate, NaN where it gives none (every
  method but STARFM and the ensemble) and where the prediction is NaN;
- then the method's extra bands (``quality_extra_names``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.windows import Window

from stfusion.io import removed_if_written
from stfusion.tiling import check_window, plugin_faults

if TYPE_CHECKING:  # base imports this module: annotations only
    from stfusion.methods.base import FusionMethod

QUALITY_BANDS = ("days_to_pair", "pairs_used", "fallback")
#: ``fallback`` bit: the method's documented fallback rule made the value.
FALLBACK_RULE = 1
#: ``fallback`` bit: no valid coarse target value at the pixel.
NO_COARSE_TARGET = 2


def dropped_unless_complete(
    quality_out: str | os.PathLike[str] | None,
) -> contextlib.AbstractContextManager[None]:
    """Entered before the prediction's writer: if that fails or is interrupted after the
    quality layer took its name (its writer closes first), the layer this run wrote is
    removed (:func:`stfusion.io.removed_if_written`): no quality layer stands without its
    prediction, and a rerun is not refused for one."""
    return removed_if_written([Path(quality_out)] if quality_out is not None else [])


def window_budget(method: FusionMethod, mem_limit_mb: float | None) -> float:
    """The memory limit the windows of a prediction with a quality layer are planned with:
    ``mem_limit_mb`` (or the default) shrunk by the quality layer's bytes per pixel (its
    bands, float32, and about one spread array per band) against the method's own. Planned
    without them, STARFM at --mem-limit 300 on 3000 x 3000 x 6 peaked 62 MB higher with
    ``--quality`` (612 MB against a 550 MB target)."""
    from stfusion.tiling import DEFAULT_MEM_LIMIT_MB, MIN_MEM_LIMIT_MB

    limit = float(mem_limit_mb or DEFAULT_MEM_LIMIT_MB)
    bands = method.scene_.count
    own = float(method.bytes_per_pixel(bands, len(method.scene_.pairs)))
    extra = 4.0 * (len(QUALITY_BANDS) + 2 * bands + len(method.quality_extra_names()))
    # not below the least limit a user may give (--mem-limit 0.001 failed every date)
    return max(MIN_MEM_LIMIT_MB, limit * own / (own + extra)) if own > 0 else limit


def quality_band_names(band_names: Sequence[str]) -> list[str]:
    """The generic quality bands' names for images with bands ``band_names``."""
    return [*QUALITY_BANDS, *(f"uncertainty_{b}" for b in band_names)]


def coarse_substitute(pred: np.ndarray, fell: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(h, w)``: where the method flagged its fallback (``fell``) and the value is the coarse
    target's in every band: no pair's fine data made it (STARFM's and Fit-FC's rule where no
    pair has a fine value). Another fallback (FSDAF's ``F1 + C2 - C1``) differs from the
    target and still counts its pair."""
    return fell & np.all(pred == target, axis=0)


def quality_layer(
    method: FusionMethod, window: Window, extra: dict[str, np.ndarray], pred: np.ndarray
) -> np.ndarray:
    """The quality bands of one window (see the module docstring) from the method's
    prediction ``pred`` ``(band, h, w)`` and the fields of its ``predict_window_quality``."""
    nb, h, w = pred.shape
    fine_ok = np.stack([np.isfinite(f.read(window)).all(axis=0) for f, _ in method.scene_.pairs])
    target = method.target_.read(window)
    fell = np.asarray(extra.get("fallback", np.zeros((h, w), np.float32))) > 0
    some = np.isfinite(pred).any(axis=0)  # a value in at least one band
    has = some & ~coarse_substitute(pred, fell, target)
    used = fine_ok & has[None]  # a NaN prediction used no pair, whatever the fine images hold
    days = getattr(method, "pair_days_", None)
    if days is None:
        near = np.full((h, w), np.nan, np.float32)
    else:
        d = np.where(used, np.asarray(days, np.float32)[:, None, None], np.inf).min(axis=0)
        near = np.where(np.isfinite(d), d, np.nan).astype(np.float32)
    # the rule's bit only where it made a value (it flagged all-NaN pixels under a cloud)
    code = (fell & some) * FALLBACK_RULE + ~np.isfinite(target).all(axis=0) * NO_COARSE_TARGET
    unc = np.asarray(extra.get("uncertainty", np.full((nb, h, w), np.nan)), np.float32)
    more = extra.get("bands", np.zeros((0, h, w), np.float32))
    return np.concatenate(
        [
            near[None],
            used.sum(axis=0, dtype=np.float32)[None],
            code.astype(np.float32)[None],
            np.where(np.isfinite(pred), unc, np.float32(np.nan)),
            np.asarray(more, np.float32),
        ]
    )


class WithQuality:
    """Wraps a fitted method so each window yields prediction and quality bands stacked
    (one array, so the local runner and the cluster runner need no change)."""

    def __init__(self, method: FusionMethod) -> None:
        self.method = method

    def predict_window(self, window: Window) -> np.ndarray:
        with plugin_faults(self.method, self.method.name, window):
            pred, extra = self.method.predict_window_quality(window)
        pred = check_window(pred, window, self.method.scene_.count, self.method.name)
        return np.concatenate([pred, quality_layer(self.method, window, extra, pred)])


class SplitSink:
    """Writes the first ``n`` bands to ``main`` and the rest to ``quality``."""

    def __init__(self, main: Any, quality: Any, n: int) -> None:
        self.main, self.quality, self.n = main, quality, n

    def write(self, array: np.ndarray, window: Window | None = None) -> None:
        self.main.write(array[: self.n], window)
        self.quality.write(array[self.n :], window)
