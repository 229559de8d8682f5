"""FSDAF 2.0: FSDAF with change detection and an optimised model for changed pixels.

Guo, D., Shi, W., Hao, M., Zhu, X. (2020). FSDAF 2.0: Improving the performance of retrieving
land cover changes and preserving spatial details. Remote Sensing of Environment 248, 111973.

The paper (abstract): FSDAF 2.0 "excludes changed pixels and boundary pixels for unmixing
calculation, and establishes a model to optimize the changed pixels". Its full text and the
authors' IDL program could not be consulted here; this module is stfusion's reading, built on
FSDAF's steps (:mod:`stfusion.methods.fsdaf`: classification, unmixing, spline, residual
distribution, similar pixels are FSDAF's own code, unchanged):

1. FSDAF's classification, first unmixing ``Delta F(c)`` and residuals
   ``R = Delta C - (1/m) sum (F2_TP - F1)`` per coarse pixel.
2. Change detection on the coarse grid: change index ``CI = sqrt(mean_b (R_b / s_b)^2)``
   (``s_b``: scene standard deviation of F1 in band b; land-cover change is what the class
   changes do not explain). Changed coarse pixels: ``CI > T``, ``T`` from Otsu's method on
   the CI of all coarse pixels (``change_threshold="auto"``, at least :data:`CHANGE_FLOOR`)
   or given.
3. Second unmixing without the changed coarse pixels (the paper's exclusion of changed
   pixels); residuals recomputed with the new ``Delta F(c)``.
4. Changed pixels (model for changed areas): in a changed coarse pixel each fine pixel gets
   a change weight ``P = e^2 / (e^2 + (k T)^2)``, ``e = sqrt(mean_b ((F2_SP - F2_TP)_b /
   s_b)^2)`` (how far the spline prediction is from the class-based one, in CI's units),
   ``k = change_scale`` (4); elsewhere ``P = 0``. Its temporal prediction becomes
   ``F2_TP' = F2_TP + P (F2_SP - F2_TP)``.
5. Residual distribution with the change weights: FSDAF's step 5 on ``F2_TP'``, with the
   coarse residual ``R' = R - mean P (F2_SP - F2_TP)`` over the coarse pixel's labelled
   pixels (so the fine changes still sum to ``m Delta C``), ``E_ho = F2_SP - F2_TP'``.
6. FSDAF's similar-pixel smoothing of ``Delta F``.

Without changed coarse pixels (``P = 0`` everywhere) the prediction is FSDAF's bit for bit.
Memory: the change flags are one coarse-grid array; the weights ``P`` live per window, as
FSDAF's spline and residual distribution do.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from rasterio.windows import Window

from stfusion.methods.base import FusionMethod
from stfusion.methods.fsdaf import FSDAF
from stfusion.methods.fsdaf_residual import residual_change
from stfusion.methods.fsdaf_tables import Bands, CoarseTables, Fractions
from stfusion.methods.params import AUTO, NON_NEGATIVE, POSITIVE, Param

#: Smallest automatic change threshold (CI units: standard deviations of F1): Otsu always
#: splits, and a scene without land-cover change must keep FSDAF's prediction.
CHANGE_FLOOR = 0.1


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of the finite ``values``: the largest value of the lower group of
    the split of the sorted values that maximises the between-group variance
    ``w0 w1 (mu0 - mu1)^2`` (ties: the first such split); ``inf`` with fewer than two
    distinct values."""
    v = np.sort(values[np.isfinite(values)].astype(np.float64))
    n = v.size
    if n < 2 or v[0] == v[-1]:
        return float("inf")
    k = np.arange(1, n)
    c = np.cumsum(v)[:-1]
    mu0 = c / k
    mu1 = (v.sum() - c) / (n - k)
    between = (k / n) * ((n - k) / n) * (mu0 - mu1) ** 2
    between[v[:-1] == v[1:]] = -1.0  # a split must separate distinct values
    return float(v[int(np.argmax(between))])


def change_index(diff: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``sqrt(mean_b (diff_b / scale_b)^2)`` over the first axis (bands with ``scale`` 0
    count as 0)."""
    s = np.asarray(scale, dtype=np.float64).reshape((-1,) + (1,) * (diff.ndim - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s > 0, diff / np.where(s > 0, s, 1.0), 0.0)
    return np.sqrt((z * z).mean(axis=0))


def changed_shift(
    f1: np.ndarray,
    labels: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    flagged: np.ndarray,
    scale: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """``P (F2_SP - F2_TP)`` ``(band, H, W)`` (step 4; ``threshold`` = k T, where P = 1/2):
    0 outside ``flagged`` pixels (those of changed coarse pixels), unlabelled pixels and
    where the spline is NaN."""
    lab = np.where(labels >= 0, labels, 0)
    tp = f1.astype(np.float64) + class_change[lab].transpose(2, 0, 1)
    d = spline - tp
    e = change_index(d, scale)
    with np.errstate(invalid="ignore"):
        p = e * e / (e * e + threshold * threshold)
    use = flagged & (labels >= 0) & np.isfinite(d).all(axis=0) & np.isfinite(p)
    return np.where(use[None], p[None] * d, 0.0)


def block_correction(shift: np.ndarray, labels: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``shift`` over each coarse pixel's labelled pixels ``(n, band)`` (``ids``: the
    coarse pixel of each fine pixel); 0 for a coarse pixel without one."""
    ok = labels >= 0
    cnt = np.bincount(ids[ok], minlength=n).astype(np.float64)
    out = np.zeros((n, shift.shape[0]))
    for b in range(shift.shape[0]):
        s = np.bincount(ids[ok], shift[b][ok], minlength=n)
        out[:, b] = np.where(cnt > 0, s / np.maximum(cnt, 1.0), 0.0)
    return out


def fsdaf2_change(
    f1: np.ndarray,
    labels: np.ndarray,
    hi: np.ndarray,
    spline: np.ndarray,
    class_change: np.ndarray,
    residual: np.ndarray,
    changed: np.ndarray,
    r: int | np.ndarray,
    scale: np.ndarray,
    threshold: float,
    lo: np.ndarray,
    hi_allow: np.ndarray,
) -> np.ndarray:
    """Steps 4-5: ``Delta F``, on arrays covering whole coarse pixels: ``r x r`` blocks from
    the origin (``residual`` ``(bh, bw, band)``, NaN: unknown; ``changed`` ``(bh, bw)`` the
    coarse change flags), or native coarse pixels when ``r`` is an index map ``(H, W)`` of
    each fine pixel's coarse pixel (``residual`` ``(n, band)``, ``changed`` ``(n,)``); other
    arguments as :func:`stfusion.methods.fsdaf.residual_change`."""
    if isinstance(r, np.ndarray):
        ids, n = r, residual.shape[0]
    else:
        h, w = labels.shape
        bh, bw = residual.shape[:2]
        ids, n = (np.arange(h) // r)[:, None] * bw + (np.arange(w) // r)[None, :], bh * bw
    known = (changed & np.isfinite(residual).all(axis=-1)).reshape(-1)
    shift = changed_shift(f1, labels, spline, class_change, known[ids], scale, threshold)
    corr = block_correction(shift, labels, ids, n).reshape(residual.shape)
    f1p = (f1 + shift).astype(np.float32)
    out = residual_change(f1p, labels, hi, spline, class_change, residual - corr, r, lo, hi_allow)
    return out + (f1p - f1)  # exact 0 where P = 0: FSDAF's change there


class FSDAF2(FSDAF):
    """FSDAF 2.0 (Guo et al. 2020), one pair, all bands. See the module docstring."""

    name = "fsdaf2"
    title = "FSDAF 2.0"
    # the full text and the authors' program were not available: say so wherever it is cited
    paper = (
        "Guo, Shi, Hao & Zhu 2020, Remote Sensing of Environment 248, 111973; "
        "stfusion's reading of the abstract, not a reproduction"
    )
    # tags: FSDAF's (one pair, the ratio, exact on the same scenes, the fallback layer).
    params = (
        *FSDAF.params,
        Param(
            "change_threshold",
            "auto",
            (AUTO, NON_NEGATIVE),
            "std of F1",
            "coarse pixels whose change index (unmixing residual over F1's standard "
            f"deviation, RMS over bands) exceeds this are changed; auto: Otsu's threshold, "
            f"at least {CHANGE_FLOOR}",
        ),
        Param(
            "change_scale",
            4.0,
            POSITIVE,
            "change thresholds",
            "a fine pixel of a changed coarse pixel moves to the spline by P = e^2 / (e^2 + "
            "(change_scale T)^2), e its change index, T the change threshold (4: chosen on "
            "cia-1pair, boreas-1pair and lgc-flood)",
        ),
    )

    # Its own parameters, stored by FusionMethod.__init__ (declared for the type checker).
    change_threshold: float | str
    change_scale: float

    def __init__(
        self,
        *,
        classes: str | int | os.PathLike[str] = "4-6",
        merge_distance: float | str = "auto",
        split_std: float | str = "auto",
        window: int | str = "auto",
        similar: int | str = "auto",
        final: str = "paper",
        pure: int = 100,
        spline_radius: int = 4,
        valid_range: str | tuple[float, float] | None = "auto",
        variable: str = "auto",
        seed: int = 0,
        change_threshold: float | str = "auto",
        change_scale: float = 4.0,
    ) -> None:
        FusionMethod.__init__(
            self,
            classes=classes,
            merge_distance=merge_distance,
            split_std=split_std,
            window=window,
            similar=similar,
            final=final,
            pure=pure,
            spline_radius=spline_radius,
            valid_range=valid_range,
            variable=variable,
            seed=seed,
            change_threshold=change_threshold,
            change_scale=change_scale,
        )

    def fitted_tags(self) -> dict[str, Any]:
        # what the change detection found for this target (docs/methods/fsdaf2.md)
        tags = super().fitted_tags()
        changed = getattr(self, "changed_", None)
        if changed is not None:
            tags["STFUSION_FSDAF2"] = {
                "change_threshold": round(float(self.change_threshold_), 4),
                "changed_coarse_pixels": int(changed.sum()),
                "coarse_pixels": int(changed.size),
            }
        return tags

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # FSDAF's, plus TP, spline - TP, the shift (f64) and F1 + shift (f32), P, masks.
        return super().bytes_per_pixel(bands, pairs) + 28.0 * bands + 24.0

    def _class_changes(
        self, fractions: Fractions, dc: Bands, complete: np.ndarray, tables: CoarseTables
    ) -> np.ndarray:
        change = super()._class_changes(fractions, dc, complete, tables)
        # the residuals (n, band) block by block, NaN where unknown
        ci = np.concatenate(
            [change_index(res.T, self.fine_std_) for _, _, res in tables.residual_blocks(change)]
        )
        if self.change_threshold == "auto":
            thr = max(otsu_threshold(ci), CHANGE_FLOOR)
        else:
            thr = float(self.change_threshold)
        with np.errstate(invalid="ignore"):
            flagged = np.isfinite(ci) & (ci > thr)
        self.change_threshold_ = thr
        self.changed_ = flagged.reshape(self.block_pixels_.shape)
        if flagged.any():
            change = super()._class_changes(fractions, dc, complete & ~flagged, tables)
        return change

    def _total_change(
        self, fr: np.ndarray, lr: np.ndarray, hi: np.ndarray, region: Window
    ) -> np.ndarray:
        if not self.changed_.any():
            return super()._total_change(fr, lr, hi, region)
        thr = float(self.change_scale) * float(self.change_threshold_)  # P = 1/2 there
        native = self.native_
        if native is None:
            sp, bs = self._block_spline(region)
            residual = self.residual_.read(bs[0].start, bs[0].stop)[:, bs[1]]
            changed = self.changed_[bs]
            where: int | np.ndarray = self.r_
        else:  # native coarse pixels: the same steps with each fine pixel's coarse pixel
            ci, cj, py, px = native.index(region)
            sp = self.spline_.evaluate_points(py, px, ci, cj)
            rows, flat = self._native_residuals(ci, cj)
            uniq, inv = np.unique(flat, return_inverse=True)
            flat0 = int(ci.min()) * native.shape[1] if ci.size else 0  # rows' first one
            residual, changed = rows[uniq], self.changed_.reshape(-1)[uniq + flat0]
            where = inv.reshape(ci.shape)
        return fsdaf2_change(
            fr,
            lr,
            hi,
            sp,
            self.class_change_,
            residual,
            changed,
            where,
            self.fine_std_,
            thr,
            *self.allowed_,
        )
