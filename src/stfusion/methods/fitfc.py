"""Fit-FC: regression model fitting, spatial filtering and residual compensation.

Wang, Q., Atkinson, P. M. (2018). Spatio-temporal fusion for daily Sentinel-2 images. Remote
Sensing of Environment 204, 31-42.

One pair (F1, C1) and the coarse target C2. Notation: X a coarse pixel, x a fine pixel in it.
Section and equation numbers are the paper's (section 2); the steps were also checked
against the authors' MATLAB code and the documentation of ImageFusion's C++ port.

1. Regression model fitting (RM, section 2.1, eqs. 1-2). Per band and coarse pixel X,
   ordinary least squares ``C2 = a(X) C1 + b(X) + R(X)`` (eq. 1) over the
   ``regression_window`` x ``regression_window`` coarse pixels around X (clipped at the scene
   edge); R is the coarse residual ``R(X) = C2(X) - a(X) C1(X) - b(X)``. Each fine pixel
   takes its coarse pixel's coefficients: ``F_RM(x) = a(X) F1(x) + b(X)`` (eq. 2).
2. Spatial filtering (SF, section 2.2, eqs. 3-6). In a ``window`` x ``window`` neighbourhood
   of x, the ``similar`` pixels whose F1 spectra are closest to x's (smallest spectral
   difference over the ``similarity_bands``, eq. 3, x itself included) get weights ``w_i =
   (1/d_i) / sum(1/d_i)`` (eq. 5), ``d_i = 1 + dist_i / (window / 2)`` (eq. 6) with
   ``dist_i`` the distance in fine pixels; ``F_SF(x) = sum_i w_i F_RM(x_i)`` (eq. 4).
3. Residual compensation (RC, section 2.3, eqs. 7-8). R is interpolated bicubically to the
   fine grid (r) and smoothed with the same weights, ``F_RC(x) = sum_i w_i r(x_i)`` (eq. 7);
   ``F2(x) = F_SF(x) + F_RC(x) = sum_i w_i (F_RM(x_i) + r(x_i))`` (eq. 8).

Coarse pixels are ``R x R`` blocks of the fine grid anchored at the scene origin
(:mod:`stfusion.coarse`; partial blocks at the right and bottom edges), R the integer
resolution ratio; for a coarse image on its own grid they are its native pixels
(:class:`stfusion.coarse.NativeGrid`: native values, each fine pixel takes the coefficients of
the native pixel holding its centre, the residual is interpolated in the native grid's pixel
coordinates). The regression and the residual are scene-wide (``fit``/``prepare``); a
window only needs a halo of ``window // 2`` fine pixels, so tiled runs equal whole-scene runs.

Invalid data. A coarse pixel is the mean of its valid fine-grid values; the regression uses the
coarse pixels where C1 and C2 are both valid. With fewer than two, valid pixels in fewer than a
quarter of the window's places (a slope through a few pixels at the edge of a gap extrapolates
wildly), or no spread in C1, the model falls back to the additive one (``a = 1``, ``b = mean(C2
- C1)`` over the window); with none, ``a`` and ``b`` are NaN. A missing residual counts as 0 in
the interpolation. A neighbour is a candidate only where its F1 similarity bands and its ``F_RM
+ r`` in every band are finite. A pixel whose own similarity bands are NaN in F1, or that has
no candidate, takes the coarse target value (NaN if that is NaN too), flagged ``fallback`` in
the quality layer (no pair made it: the series blend prefers another pair's prediction there).
A masked coarse target pixel drops out of the regressions; its fine pixels are still predicted
from the ``a``, ``b`` of its window and the neighbours' residuals.

Departures from the paper and from the reference codes (the authors' MATLAB code and
ImageFusion's C++ port):

=====================  ==================================  =====================================
item                   stfusion (default)                  reference codes
=====================  ==================================  =====================================
similarity bands       all bands, squared difference       MATLAB: red and NIR only
                       summed over bands (ranks as the     (``similarity_bands=red,nir``);
                       spectral RMSE over all bands)       ImageFusion: RMSE over all bands
ties in similarity     nearer pixel first, then row-major  ImageFusion: nearer first; MATLAB:
                       offset order                        its ``Mins_matrix`` helper's order
window at scene edge   clipped (pixels outside are not     ImageFusion: clipped; MATLAB: image
                       candidates)                         padded by its ``Extend_*`` helpers
degenerate regression  additive fallback ``a = 1``,        MATLAB: ``a = cov / (var + eps)``,
(flat C1, few pixels)  ``b = mean(C2 - C1)``               so ``a = 0`` for flat C1;
                                                           ImageFusion: ``a = 1``, ``b = 0``
regression window      whole coarse pixels                 ImageFusion: a window of fine
                                                           pixels (coarse pixels weighted by
                                                           coverage)
residual interpolation Keys bicubic (a = -0.5) on coarse   MATLAB: ``imresize(R, s, 'bicubic')``
                       centres ``i R + (R - 1) / 2``,      (the same kernel and centres);
                       mirrored at the scene edge; a       ImageFusion: cubic filter of the
                       partial edge block is centred as    block-averaged residual on the fine
                       if it were full                     grid
no F1 at the centre    coarse target value                 not handled
=====================  ==================================  =====================================

Defaults: a 31 x 31 fine-pixel filter window with 30 similar pixels, the paper's setting for
its Sentinel-3 -> Sentinel-2 experiments (ratio 30; section 3.1: 30 similar pixels in a 30 x
30 window, odd here), and an 11 x 11 coarse-pixel regression window. The paper gives no
regression window: the 11 x 11 is the R port's by Montesino-SanMartin (``stif_fitfc``,
``sngb.lr = 5``, which it attributes to the paper, with ``sngb.wg = 15`` and 30 pixels). The
authors' Landsat-MODIS example code leaves the regression window to the user (its example:
3 x 3) and uses a 41 x 41 filter window with 20 similar pixels. On the CIA case (ratio 10) a
3 x 3 regression window is too noisy to beat the additive baseline (mean RMSE 0.0395 against
0.0392); 7 x 7 and larger give 0.0355 to 0.0350 (see docs/methods/fitfc.md).

Exact properties. If C2 = g C1 + h per band (g = 1, h = 0: no change; g = 1: a uniform change),
the regression returns a = g, b = h and R = 0, so ``F_RM + r = g F1 + h``; where every window
holds at least ``similar`` pixels with the centre's F1 spectrum (a piecewise-constant scene with
large enough patches) the output is ``g F1 + h`` up to float32 rounding. In general the
similar-pixel mean also smooths F1, so these properties do not hold pixel by pixel.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from rasterio.windows import Window

from stfusion.bands import band_indices
from stfusion.coarse import NativeGrid, block_mean, cubic_at, integer_ratio, native_grid
from stfusion.errors import InvalidParameterError
from stfusion.io import Source
from stfusion.kernels.fitfc import (
    cubic_upsample,
    filter_offsets,
    local_regression,
    similar_pixel_filter,
)
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import (
    BandRoles,
    Interval,
    MethodTags,
    StrOptions,
    Text,
    similar_count,
    similar_param,
    usual_window,
    window_param,
    window_size,
)
from stfusion.methods.variables import CHOICES, resolve_variable
from stfusion.scene import Scene


def coarse_pixels(source: Source, r: int) -> np.ndarray:
    """Block means (``r x r``, anchored at the origin) of a fine-grid image, read in bounded
    windows aligned to the blocks (:meth:`stfusion.io.Source.scan`)."""
    grid = source.grid
    hc = -(-grid.height // r)
    wc = -(-grid.width // r)
    out = np.empty((source.count, hc, wc), dtype=np.float32)
    for win, block in source.scan(r):
        row, col = int(win.row_off), int(win.col_off)
        out[
            :,
            row // r : row // r + -(-block.shape[1] // r),
            col // r : col // r + -(-block.shape[2] // r),
        ] = block_mean(block, r)
    return out


class FitFC(FusionMethod):
    """Fit-FC (Wang & Atkinson 2018), one pair. See the module docstring."""

    name = "fitfc"
    title = "Fit-FC"
    paper = "Wang & Atkinson 2018, Remote Sensing of Environment 204, 31-42"
    tags = MethodTags(
        min_pairs=1,
        max_pairs=1,
        needs_ratio=True,
        exact=("unchanged", "uniform_change"),
        quality=("fallback",),
        variables=CHOICES,
    )
    params = (
        Param(
            "regression_window",
            11,
            Interval(Integral, 3, None, closed="left", odd=True),
            "coarse pixels",
            "side of the moving window for the local regression C2 = a C1 + b (odd, >= 3: a "
            "regression needs several coarse pixels)",
            scene_bound="coarse",
        ),
        window_param(31, 1, "side of the similar-pixel window (odd)"),
        similar_param(30, "number of similar pixels per window (the centre included; <= window^2)"),
        Param(
            "similarity_bands",
            "all",
            Text("'all' or a comma list such as 'red,nir' or '3,4'"),
            "",
            "bands whose F1 values rank similarity: all, or a comma list of roles "
            "(red,nir as in the authors' code) or 1-based band numbers",
        ),
        Param(
            "bands",
            "auto",
            BandRoles(),
            "",
            "band roles, needed only when similarity_bands names roles: auto (from the "
            "band names), a preset (landsat7, landsat8, modis) or "
            "blue,green,red,nir,swir1,swir2 in file order",
        ),
        Param(
            "variable",
            "auto",
            StrOptions(CHOICES),
            "",
            "what the data measure: auto (inferred, logged), reflectance, ndvi, lst or "
            "other; Fit-FC has no constant that depends on it (no threshold, no clipping)",
        ),
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    regression_window: int
    window: int | str
    similar: int | str
    similarity_bands: str
    bands: str
    variable: str

    def __init__(
        self,
        *,
        regression_window: int = 11,
        window: int | str = "auto",
        similar: int | str = "auto",
        similarity_bands: str = "all",
        bands: str = "auto",
        variable: str = "auto",
    ) -> None:
        super().__init__(
            regression_window=regression_window,
            window=window,
            similar=similar,
            similarity_bands=similarity_bands,
            bands=bands,
            variable=variable,
        )

    def _validate_params(self) -> None:
        side = usual_window(self) if self.window == "auto" else int(self.window)
        if self.similar != "auto" and int(self.similar) > side * side:
            raise InvalidParameterError(
                f"fitfc: similar must be between 1 and window^2 = {side**2}, got {self.similar}."
            )

    def halo(self) -> int:
        # auto at a small ratio: a window holding at least ``similar`` pixels (similar=auto
        # takes as many as the window holds)
        given = 1 if self.similar == "auto" else int(self.similar)
        least = max(7, math.isqrt(given - 1) + 1)
        return window_size(self, least + 1 - least % 2) // 2

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # F1, a, b, r, F_RM + r (float32/64 mixes), two feature copies, the output; native
        # coarse pixels add each fine pixel's native coordinates, indices and the cubic
        # weights (tracemalloc, 6 bands: 431 B/px native against 241 in blocks)
        native = 200.0 if getattr(self, "native_", None) is not None else 0.0
        return 4.0 * bands * 10 + 8.0 * 2 + 4.0 * 2 * bands + 16.0 + native

    # ------------------------------------------------------------------------------ state

    def _similarity_indices(self, scene: Scene) -> np.ndarray:
        if self.similarity_bands.strip().lower() == "all":
            return np.arange(scene.count)
        idx = band_indices(self.similarity_bands, scene.band_names, self.bands, method="fitfc")
        return np.asarray(idx, dtype=np.int64)

    def _fit(self, scene: Scene) -> None:
        # Native coarse pixels for a coarse image on its own grid, else R x R blocks.
        self.native_: NativeGrid | None = native_grid(scene.pairs[0][1], scene.grid, self.ratio_)
        self.r_ = (
            self.native_.r if self.native_ is not None else integer_ratio(self.ratio_, "fitfc")
        )
        # Logged for the record only: no Fit-FC constant carries a unit.
        fine = scene.pairs[0][0]
        self.variable_ = resolve_variable(
            str(self.variable), fine.sample(1 << 16), scene.count, "fitfc", scene.band_names
        )
        self.similarity_idx_ = self._similarity_indices(scene)
        self.c1_ = self._coarse_pixels(scene.pairs[0][1])

    def _coarse_pixels(self, source: Source) -> np.ndarray:
        if self.native_ is not None:
            return self.native_.values(source).astype(np.float32)
        return coarse_pixels(source, self.r_)

    def _prepare(self, target: Source) -> None:
        c2 = self._coarse_pixels(target)
        # Annotated: numpy's stubs read an unknown-length shape as 0-d here.
        a: np.ndarray = np.empty(c2.shape, dtype=np.float64)
        b: np.ndarray = np.empty(c2.shape, dtype=np.float64)
        local_regression(self.c1_, c2, int(self.regression_window) // 2, a, b)
        residual = c2.astype(np.float64) - (a * self.c1_ + b)
        self.a_ = a.astype(np.float32)
        self.b_ = b.astype(np.float32)
        self.residual_ = residual.astype(np.float32)
        # Missing residuals add nothing; the interpolation needs a NaN-free field.
        self.residual_filled_ = np.where(np.isfinite(residual), residual, 0.0)
        self.offsets_ = filter_offsets(self.halo())

    # -------------------------------------------------------------------------- predict

    def predict_window(self, window: Window) -> np.ndarray:
        return self._predict(window)[0]

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The prediction and ``fallback``: 1 where the pixel took the coarse target value (no
        F1 at the centre, or no candidate), NaN or not."""
        out, fallback = self._predict(window)
        return out, {"fallback": fallback.astype(np.float32)}

    def _predict(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        half = self.halo()
        r = self.r_
        f1 = self.scene_.pairs[0][0].read(window, half)
        c0 = self.target_.read(window, 0)
        rows = int(window.row_off) - half + np.arange(f1.shape[1])
        cols = int(window.col_off) - half + np.arange(f1.shape[2])
        if self.native_ is not None:
            # Each fine pixel takes its native coarse pixel's coefficients; the residual is
            # interpolated at its position in the native grid's pixel coordinates.
            ci, cj, py, px = self.native_.index(
                Window(
                    int(window.col_off) - half, int(window.row_off) - half, f1.shape[2], f1.shape[1]
                )
            )
            a = self.a_[:, ci, cj]
            b = self.b_[:, ci, cj]
            res = cubic_at(self.residual_filled_, py, px).astype(np.float32)
        else:
            # Halo rows/cols outside the scene have NaN F1; clipping only keeps indices legal.
            bi = np.clip(rows // r, 0, self.a_.shape[1] - 1)
            bj = np.clip(cols // r, 0, self.a_.shape[2] - 1)
            a = self.a_[:, bi][:, :, bj]
            b = self.b_[:, bi][:, :, bj]
            res = cubic_upsample(self.residual_filled_, r, rows, cols).astype(np.float32)
        pred = a * f1 + b + res
        feat = np.ascontiguousarray(f1[self.similarity_idx_])
        usable = np.isfinite(pred).all(axis=0) & np.isfinite(feat).all(axis=0)
        feat_n = np.where(usable, feat, np.float32(np.nan))
        h, w = int(window.height), int(window.width)
        out = np.empty((f1.shape[0], h, w), dtype=np.float32)
        ody, odx, oinvd = self.offsets_
        similar = similar_count(self, 2 * half + 1)
        similar_pixel_filter(feat, feat_n, pred, ody, odx, oinvd, similar, half, out)
        # No candidate (F1 missing at the centre, ...): the coarse target value, flagged so
        # that the quality layer and the series blend know no pair made it.
        fell = np.asarray(np.isnan(out).any(axis=0))
        return np.where(np.isnan(out), c0, out), fell
