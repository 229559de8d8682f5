"""VIPSTF-SW's spatial weighting of the residual (``vipstf --param base=sw``).

Wang, Q., Tang, Y., Tong, X., Atkinson, P. M. (2020). Virtual image pair-based
spatio-temporal fusion. Remote Sensing of Environment 249, 112009.

Written from the authors' MATLAB code (github.com/qunmingwang/VIPSTF-SW, main script
``!Virtual_image_pair_based_spatio_temporal_fusion.m``, which calls ``STARFM_fast_2016_v2``
with zero pair images, so only the spatial weights of that filter are left). With the virtual
pair ``(F_v, C_v)`` of :mod:`stfusion.methods.vipstf` and the coarse target ``C_0``, all on
the fine grid:

(S1) Residual: ``r = C_0 - C_v``, the residual of the regression (V1) on the fine grid.
(S2) Similar pixels of x: in the ``window`` x ``window`` neighbourhood of x, the ``similar``
     pixels y with the smallest ``sum_k (F_v,k(y) - F_v,k(x))^2`` over the similarity bands
     (red and NIR in the authors' code). Ties go to the earlier pixel in column-major order
     of the window (MATLAB's ``min`` over ``A(:)``), so x itself is not always chosen.
(S3) ``F_0(x) = F_v(x) + sum_y r(y) / D(y) / sum_y 1 / D(y)``, ``D = 1 + dist(x, y) / A``,
     ``A = window / 2`` and ``dist`` in fine pixels (the S and T factors of STARFM are
     commented out in the authors' filter).

At the scene edge the images are extended by copying the edge pixels outwards (the authors'
``Extend_*`` helpers); the copies are candidates like any pixel. The similarity is computed
in float64 on ``F_v - b``, which is the authors' ``sum a_i F_i`` where every pair is usable:
adding ``b`` changes no difference in exact arithmetic, but its rounding breaks exact ties
that the position order would settle (tested against the port of the authors' code).

Missing data (the authors' code has none). A neighbour is a candidate only where its
similarity bands and ``r`` in every band are finite. Where the centre's similarity bands are
NaN, no candidate exists, or ``F_v`` is NaN in a band, that band takes the coarse target value
(NaN if that is NaN too), flagged ``fallback``. A missing ``C_0`` at x alone is filled from the
neighbours' residuals.

Not followed: the authors' band loop filters the bands before red with similarity images it
has not computed yet (all zero); here every band uses red and NIR (docs/methods/vipstf.md).

Fitted on a plain one-pair scene (not through VIPSTF) the pair itself plays ``(F_v, C_v)``:
``F_1 + SW(C_0 - C_1)``.
"""

from __future__ import annotations

import logging
from numbers import Integral

import numpy as np
from rasterio.windows import Window

from stfusion.bands import band_indices, red_nir
from stfusion.errors import InvalidParameterError
from stfusion.io import Grid, Source
from stfusion.kernels.fitfc import similar_pixel_filter
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import BAND_ROLES, Interval, MethodTags, Text
from stfusion.methods.vipstf import SW_BASE, VirtualImage, VirtualPair
from stfusion.scene import Scene

log = logging.getLogger("stfusion.methods")


def column_major_offsets(half: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets of a ``(2 half + 1)^2`` window in column-major order (the authors' tie order:
    column by column, top to bottom) and their weights ``1 / (1 + dist / A)``,
    ``A = (2 half + 1) / 2``."""
    side = 2 * half + 1
    dx, dy = np.divmod(np.arange(side * side, dtype=np.int64), side)
    dy -= half
    dx -= half
    invd = 1.0 / (1.0 + np.sqrt(dy * dy + dx * dx) / (side / 2.0))
    return dy, dx, invd


def edge_index(window: Window, halo: int, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices into a ``read(window, halo)`` block that replace every position
    outside the scene by the nearest edge pixel (the authors' edge extension)."""
    r0, c0 = int(window.row_off) - halo, int(window.col_off) - halo
    rows = np.arange(int(window.height) + 2 * halo) + r0
    cols = np.arange(int(window.width) + 2 * halo) + c0
    return np.clip(rows, 0, grid.height - 1) - r0, np.clip(cols, 0, grid.width - 1) - c0


def _identity_pair(scene: Scene) -> VirtualPair:
    """The scene's one pair as a "virtual" pair: ``a = 1``, ``b = 0``."""
    coef = np.full((scene.count, 2, 2), np.nan)
    coef[:, 1] = (1.0, 0.0)
    fine, coarse = scene.pairs[0]
    return VirtualPair([fine], [coarse], coef)


class SpatialWeighting(FusionMethod):
    """The residual filter of VIPSTF-SW (see the module docstring). Not a registered method:
    VIPSTF resolves ``base=sw`` to it."""

    name = SW_BASE
    title = "SW (VIPSTF-SW's spatial weighting of the residual)"
    paper = "Wang, Tang, Tong & Atkinson 2020, Remote Sensing of Environment 249, 112009"
    tags = MethodTags(
        min_pairs=1,
        max_pairs=1,
        exact=("unchanged", "uniform_change"),
        quality=("fallback",),
    )
    params = (
        Param(
            "window",
            65,
            Interval(Integral, 1, None, closed="left", odd=True),
            "fine pixels",
            "side of the similar-pixel window (odd); the authors' code: 65 (w0 = 32)",
            scene_bound="fine",
        ),
        Param(
            "similar",
            30,
            Interval(Integral, 1, None, closed="left"),
            "pixels",
            "number of similar pixels per window (at most window^2); the authors' code: 30",
        ),
        Param(
            "similarity_bands",
            "auto",
            Text("'auto', 'all' or a comma list such as 'red,nir' or '3,4'"),
            "",
            "bands of F_v that rank similarity: auto (red,nir as in the authors' code when the "
            "band roles are known, else all; logged), all, or a comma list of roles or 1-based "
            "band numbers",
        ),
        BAND_ROLES,
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    window: int
    similar: int
    similarity_bands: str
    bands: str

    def __init__(
        self,
        *,
        window: int = 65,
        similar: int = 30,
        similarity_bands: str = "auto",
        bands: str = "auto",
    ) -> None:
        super().__init__(
            window=window, similar=similar, similarity_bands=similarity_bands, bands=bands
        )

    def _validate_params(self) -> None:
        if self.similar > self.window * self.window:
            raise InvalidParameterError(
                f"sw: similar must be between 1 and window^2 = {self.window**2}, got "
                f"{self.similar}."
            )

    def halo(self) -> int:
        return int(self.window) // 2

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # float64 F_v - b, C_v, r and its edge-extended copy, two feature copies; through
        # VIPSTF (which adds the pairs read) tracemalloc measured 388 B per padded pixel for
        # 6 bands and 2 pairs, this gives 624
        return 8.0 * bands * 4 + 16.0 * bands + 16.0

    def _similarity_indices(self, scene: Scene) -> np.ndarray:
        spec = self.similarity_bands.strip().lower()
        if spec == "auto":
            idx = red_nir(scene.band_names, self.bands)
            if idx is not None:
                return np.asarray(idx, dtype=np.int64)
            log.info(
                "sw: similar pixels ranked on all bands: the band roles do not name red and "
                "NIR (similarity_bands=auto; name them with bands=..., e.g. "
                "bands=green,red,nir, for the authors' red and NIR)"
            )
            return np.arange(scene.count, dtype=np.int64)
        if spec == "all":
            return np.arange(scene.count, dtype=np.int64)
        idx = band_indices(self.similarity_bands, scene.band_names, self.bands, method="sw")
        return np.asarray(idx, dtype=np.int64)

    def _fit(self, scene: Scene) -> None:
        self.similarity_idx_ = self._similarity_indices(scene)
        fine = scene.pairs[0][0]
        # Through VIPSTF: read the pairs and combine them in float64 (similar-pixel ranks
        # must not depend on the float32 rounding of F_v).
        self.pair_ = fine.pair if isinstance(fine, VirtualImage) else _identity_pair(scene)

    def _prepare(self, target: Source) -> None:
        self.offsets_ = column_major_offsets(self.halo())

    def predict_window(self, window: Window) -> np.ndarray:
        return self._predict(window)[0]

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The prediction and ``fallback``: 1 where a band took the coarse target value."""
        out, fallback = self._predict(window)
        return out, {"fallback": fallback.astype(np.float32)}

    def _predict(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        half = self.halo()
        h, w = int(window.height), int(window.width)
        # Ranks on F_v - b, i.e. sum a_i F_i as the authors do: b would round away some
        # exact ties, and ties are settled by position.
        z1, vc = self.pair_.read(window, half, np.float64, centred=True)
        c0 = self.target_.read(window, half).astype(np.float64)
        rows, cols = edge_index(window, half, self.grid_)
        resid = np.ascontiguousarray((c0 - vc)[:, rows][:, :, cols])
        feat = np.ascontiguousarray(z1[self.similarity_idx_][:, rows][:, :, cols])
        usable = np.isfinite(resid).all(axis=0) & np.isfinite(feat).all(axis=0)
        feat_n = np.where(usable, feat, np.nan)
        sw = np.empty((z1.shape[0], h, w))
        ody, odx, oinvd = self.offsets_
        similar_pixel_filter(feat, feat_n, resid, ody, odx, oinvd, int(self.similar), half, sw)
        vf = z1[:, half : half + h, half : half + w] + self.pair_.offset()[:, None, None]
        pred = vf + sw
        missing = np.isnan(pred)
        out = np.where(missing, c0[:, half : half + h, half : half + w], pred)
        return out.astype(np.float32), np.asarray(missing.any(axis=0))
