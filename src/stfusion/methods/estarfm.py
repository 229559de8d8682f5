"""ESTARFM: the Enhanced Spatial and Temporal Adaptive Reflectance Fusion Model.

Zhu, X., Chen, J., Gao, F., Chen, X., Masek, J.G. (2010). An enhanced spatial and temporal
adaptive reflectance fusion model for complex heterogeneous regions. Remote Sensing of
Environment 114(11), 2610-2623.

Two pairs (F_1, C_1) at t_m and (F_2, C_2) at t_n, one before and one after the target date
t_p, and the coarse target C_0. Coarse images are on the fine grid (resampled). The paper
derives (its theoretical basis) that, for a fine pixel whose coarse pixel mixes endmembers
that change linearly, ``F(t_p) = F(t_k) + V (C(t_p) - C(t_k))`` with a conversion
coefficient V, then implements this as a moving-window method in four steps. For each centre
pixel c (all bands together):

1. Similar pixels (section 3.2, eq. 13): pixels i of the ``window`` x ``window``
   neighbourhood with ``|F_k(i, b) - F_k(c, b)| <= 2 sigma_k(b) / classes`` in *both* fine
   images k = 1, 2 and in *every* band b (the intersection; the reference program does the
   same). ``sigma_k(b)`` is
   the standard deviation of F_k, band b, over the whole scene (``threshold="scene"``, as the
   reference program, which computes it per 500 x 500 block, i.e. per scene for the usual
   subsets) or over the window (``threshold="window"``, ImageFusion's ``use_local_tol``).
2. Weights (section 3.3): the spectral correlation ``R_i`` (eq. 14) = Pearson r between the
   fine and the coarse spectrum of pixel i, each spectrum being the vector of all bands at
   both dates (2 x bands values); the relative distance ``d_i = 1 + sqrt((x_i - x_c)^2 +
   (y_i - y_c)^2) / A`` (eq. 15) with ``A = window // 2`` (the program's w; the paper
   divides by w/2 with w the window width, 25.5 for 51: a departure below 2 % in d); the
   combined distance ``D_i = (1 - R_i) d_i`` (eq. 16) and the normalised weight ``W_i =
   (1 / D_i) / sum_i (1 / D_i)`` (eq. 17).
3. Conversion coefficient (section 3.4): V, per band, is the slope of the least-squares
   regression of the fine values on the coarse values of the similar pixels at both dates
   (2 n points for n similar pixels), one V for the window as in the reference program (the
   paper fits one per coarse pixel: see "regression scope" below).
4. Prediction (section 3.5): ``F_k'(c) = F_k(c) + V sum_i W_i (C_0(i) - C_k(i))`` from each
   pair (eq. 12, with one V for every i); temporal weights ``T_k = (1 / |sum C_k - sum C_0|)
   / sum_k (1 / |sum C_k - sum C_0|)`` with the sums over the window, per band (eq. 18);
   ``F(c, t_p) = T_1 F_1'(c) + T_2 F_2'(c)`` (eq. 19).

Equation and section numbers are the paper's. The formulas were also checked against the
authors' IDL program (ESTARFM.pro, debugging history to 7/27/2018), its Python port
(ESTARFM.py) and the ImageFusion C++ library's documentation.

Rules of the authors' IDL program (ESTARFM.pro, 2018 version) that the paper does not state,
kept here because without them the method breaks on real data:

* V = 1 when the mean coarse change of the similar pixels between the two pairs,
  ``|mean C_1(i) - mean C_2(i)|``, is below ``min_change`` (0.02 reflectance = the program's
  2 % of DN_max: with too little change the slope is noise), when the regression's F-test is
  not significant at level ``alpha`` (0.05), or when the slope is not in ``(0, v_max]``
  (``v_max`` = 5).
* Fewer than ``min_similar`` (6) similar pixels: the prediction is ``T_1 (F_1(c) + m_0 - m_1)
  + T_2 (F_2(c) + m_0 - m_2)``, m_k the window mean of C_k over valid pixels.
* A prediction ``<= data_min`` or ``>= data_max`` (0 and 1 for reflectance) is replaced by
  ``T_1 sum W_i F_1(i) + T_2 sum W_i F_2(i)``.
* ``D_i = (1 - R_i) d_i + 1e-7`` (so R = 1 is finite; it gives the paper's rule after eq. 17,
  weight 1/P for each of P pure pixels with R = 1 and about 0 for the others);
  ``R_i = 0.5`` where the correlation is undefined (a flat spectrum); with one band, where a
  correlation over two values is always +-1,
  ``R_i = 1 - (|F_1 - C_1| / (F_1 + C_1) + |F_2 - C_2| / (F_2 + C_2)) / 2``.

Units: thresholds are in the data's units. ``min_change``, ``data_min`` and ``data_max`` are
``auto`` by default and follow ``variable`` (``stfusion.methods.variables``, inferred when
``auto``), as the program's ``DN_min``/``DN_max`` (ESTARFM.pro lines 66-67, 307, 336):
reflectance 0.02, 0 and 1 times the storage scale (200, 0, 10000 DN for integers x 10000);
NDVI 0.02, -1 and 1 times the scale; LST/other 2 % of the fine images' robust value range
(0.5th-99.5th percentile) and no range check.

Invalid data: a pixel is valid when every band of F_1, C_1, F_2, C_2 and C_0 is finite
(the reference program's ``valid_index``). Invalid pixels are never similar and do not enter
the window sums of the temporal weights; an invalid centre gives NaN in every band.

Departures from the reference program (ESTARFM.pro, and its Python port ESTARFM.py):

======================  ===================================  ===============================
item                    stfusion                             reference program
======================  ===================================  ===============================
similarity test         ``<=`` threshold (paper); the        ``<`` threshold: with a zero
                        centre is always similar             std nothing is similar
threshold std           population std of the valid pixels   ``stddev`` (n - 1) over the
                        of the whole scene                   whole 500 x 500 block, nodata
                                                             fill values included
temporal weight         ``T_1 = d_2 / (d_1 + d_2)``, 0.5      ``1 / (d_k + 1e-10)``
                        each when both d are 0 (exact
                        form of the paper's equation)
V for d.o.f. < 1        V = 1                                 regression with no d.o.f.
background              NaN in any band of any image =       ``background`` value in band 1
                        invalid, output NaN                  of any image, output 0
regression scope        one V per window from all its        same; the paper: one V per
                        similar pixels (as the reference)    coarse pixel (see below)
distance normaliser     ``window // 2`` (25 for 51)          same (w = 25); the paper's
                                                             eq. 15: w/2 = 25.5 (negligible)
tiles                   halo = window // 2, tiled == whole   500 x 500 blocks without halo
                                                             (windows cut at block edges)
======================  ===================================  ===============================

On the regression scope: the paper (section 3.4, Fig. 2) fits a separate regression for each
coarse pixel from the similar pixels inside it (a coarse pixel cut by the window edge is
completed with its similar pixels outside the window, which serve only for V), and each
similar pixel takes its own coarse pixel's V_i in eq. 12. The reference program (and
ImageFusion, which follows it) fits one V per window from all its similar pixels, with each
pixel's own resampled coarse value: ``regression="window"``, the default. With coarse images
resampled smoothly onto the fine grid (as in the BOREAS test data) coarse pixels are not
recoverable. ``regression="coarse-pixel"`` is not the paper's form either: still one V per
window from all its similar pixels, each entering with the mean of the coarse pixel (R x R
block) it lies in instead of its own resampled value.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from rasterio.windows import Window

from stfusion.coarse import block_mean, integer_ratio
from stfusion.errors import InvalidParameterError, warn
from stfusion.io import AlignedSource, Source, scan_values
from stfusion.kernels.estarfm import BIG, NCHG, box_sum, estarfm_predict, window_std
from stfusion.kernels.estarfm import spectral_correlation as _spectral_correlation
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import (
    AUTO,
    NON_NEGATIVE,
    POSITIVE,
    Interval,
    MethodTags,
    StrOptions,
    window_param,
    window_size,
)
from stfusion.methods.starfm import THRESHOLD_PARAM, classes_param
from stfusion.methods.variables import CHOICES, range_with_inputs, resolve_variable
from stfusion.scene import Scene

#: The reference program's minimum coarse change, ``DN_max * 0.02`` (ESTARFM.pro line 307,
#: DN_max = 10000 at line 67): 200 DN, i.e. 0.02 reflectance; for NDVI (DN_max 1) 0.02.
MIN_CHANGE_OF_MAX = 0.02
#: For lst and other: min_change is this fraction of the fine images' robust value range.
MIN_CHANGE_FRACTION = 0.02


def f_critical(alpha: float, max_df: int) -> np.ndarray:
    """``out[df]`` = the (1 - alpha) quantile of F(1, df); ``out[0]`` = inf."""
    from scipy.stats import f

    out = np.full(max_df + 1, np.inf)
    if max_df >= 1:
        out[1:] = f.ppf(1.0 - alpha, 1, np.arange(1, max_df + 1))
    return out


class ESTARFM(FusionMethod):
    """ESTARFM (Zhu et al. 2010), exactly two pairs, all bands. See the module docstring."""

    name = "estarfm"
    title = "ESTARFM"
    paper = "Zhu et al. 2010, Remote Sens. Environ. 114(11) 2610-2623"
    #: With the same pair given twice (C_1 = C_2, F_1 = F_2): C_0 = C_1 gives F, and
    #: C_0 = C_1 + d gives F + d (no change between the pairs, so V = 1 and T_k = 1/2).
    tags = MethodTags(
        min_pairs=2,
        max_pairs=2,
        exact=("unchanged", "uniform_change"),
        variables=CHOICES,
        pairs_note="one before and one after the target date (with one pair use starfm or "
        "fitfc; with more, robot or vipstf use them all).",
    )
    params = (
        window_param(51, 3, "moving window size (odd, >= 3); 51 = the reference's half window 25"),
        classes_param(4.0),
        THRESHOLD_PARAM,
        Param(
            "min_similar",
            6,
            Interval(Integral, 1, None, closed="left"),
            "pixels",
            "fewer similar pixels than this: window-mean coarse change instead (reference: 6)",
        ),
        Param(
            "min_change",
            "auto",
            (AUTO, NON_NEGATIVE),
            "data units",
            "minimum mean coarse change of the similar pixels between the pairs to estimate "
            "V; auto: 0.02 for reflectance, else 2% of the fine value range",
        ),
        Param(
            "alpha",
            0.05,
            Interval(Real, 0, 1, closed="right"),
            "",
            "significance level of the regression F-test; V = 1 when not significant",
        ),
        Param(
            "v_max",
            5.0,
            POSITIVE,
            "",
            "largest accepted conversion coefficient V (V = 1 outside (0, v_max])",
        ),
        Param(
            "data_min",
            "auto",
            (AUTO, Interval(Real, None, None, allow_inf=True)),
            "data units",
            "predictions <= data_min are replaced by the weighted mean of similar fine "
            "pixels; auto: 0 for reflectance, off (-inf) otherwise",
        ),
        Param(
            "data_max",
            "auto",
            (AUTO, Interval(Real, None, None, allow_inf=True)),
            "data units",
            "predictions >= data_max are replaced likewise; auto: 1 for reflectance, off "
            "(inf) otherwise",
        ),
        Param(
            "variable",
            "auto",
            StrOptions(CHOICES),
            "",
            "what the data measure (sets min_change, data_min, data_max): auto (inferred, "
            "logged), reflectance, ndvi, lst or other",
        ),
        Param(
            "regression",
            "window",
            StrOptions(("window", "coarse-pixel")),
            "",
            "coarse values in the regression that gives V (one V per window either way): "
            "window = each similar pixel's own (resampled) coarse value (ESTARFM.pro); "
            "coarse-pixel = the value of the coarse pixel it lies in, the ratio x ratio block "
            "mean (needs the resolution ratio; not the paper's per-coarse-pixel V)",
        ),
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    window: int | str
    classes: float
    threshold: str
    min_similar: int
    min_change: float | str
    alpha: float
    v_max: float
    data_min: float | str
    data_max: float | str
    variable: str
    regression: str

    def __init__(
        self,
        *,
        window: int | str = "auto",
        classes: float = 4.0,
        threshold: str = "scene",
        min_similar: int = 6,
        min_change: float | str = "auto",
        alpha: float = 0.05,
        v_max: float = 5.0,
        data_min: float | str = "auto",
        data_max: float | str = "auto",
        variable: str = "auto",
        regression: str = "window",
    ) -> None:
        super().__init__(
            window=window,
            classes=classes,
            threshold=threshold,
            min_similar=min_similar,
            min_change=min_change,
            alpha=alpha,
            v_max=v_max,
            data_min=data_min,
            data_max=data_max,
            variable=variable,
            regression=regression,
        )

    def _validate_params(self) -> None:
        # Each is "auto" (the only string its declaration accepts) or a number.
        if (
            not isinstance(self.data_min, str)
            and not isinstance(self.data_max, str)
            and not self.data_min < self.data_max
        ):
            raise InvalidParameterError(
                f"estarfm: data_min ({self.data_min}) must be below data_max ({self.data_max})."
            )

    def halo(self) -> int:
        return window_size(self) // 2

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # per band: inputs (5 x 4), fs (2 x 4), vals (4 x 4), chg (2 x 4), thresholds (2 x 4),
        # output (4), window sums and their row sums (2 x 2 x 8); per pixel: R and 1 - R, the
        # valid mask, the count. Measured: about 90 bytes per band and padded pixel.
        return (20.0 + 8.0 + 16.0 + 8.0 + 8.0 + 4.0 + 32.0) * bands + 32.0

    def _fit(self, scene: Scene) -> None:
        fines = [f for f, _ in scene.pairs]
        _warn_degenerate_pairs(scene)
        stats = [f.band_stats() for f in fines]
        std = np.stack([st["std"] for st in stats])
        self.sim_threshold_ = (std * (2.0 / float(self.classes))).astype(np.float32)
        # auto: the reference program's values (DN_min, DN_max, DN_max * 0.02) in the
        # variable's units; without a physical range, scaled to the data and no range check
        sample = np.concatenate([f.sample(1 << 18).ravel() for f in fines])
        sample = sample[np.isfinite(sample)]
        var = resolve_variable(str(self.variable), sample, scene.count, "estarfm", scene.band_names)
        self.variable_ = var
        seen = (
            float(np.nanmin([st["min"] for st in stats])),
            float(np.nanmax([st["max"] for st in stats])),
        )
        auto = "auto" in (self.data_min, self.data_max)
        rng = var.physical_range
        if rng is not None:
            change = MIN_CHANGE_OF_MAX * rng[1]
            lo, hi = range_with_inputs(rng, var, auto, seen, "estarfm") or rng
        else:
            lo, hi = -math.inf, math.inf
            p_lo, p_hi = np.percentile(sample, [0.5, 99.5]) if sample.size else (0.0, 0.0)
            change = MIN_CHANGE_FRACTION * float(p_hi - p_lo)
        self.min_change_ = change if self.min_change == "auto" else float(self.min_change)
        self.data_min_ = lo if self.data_min == "auto" else float(self.data_min)
        self.data_max_ = hi if self.data_max == "auto" else float(self.data_max)
        self.fcrit_ = f_critical(float(self.alpha), 2 * window_size(self) ** 2)
        self.coarse_pixels_: list[np.ndarray] | None = None
        if self.regression == "coarse-pixel":
            own = any(isinstance(c, AlignedSource) for _, c in scene.pairs)
            r = integer_ratio(self.ratio_, "estarfm (regression=coarse-pixel)", own_grid=own)
            self.r_ = r
            self.coarse_pixels_ = [_block_means(c, r) for _, c in scene.pairs]

    def predict_window(self, window: Window) -> np.ndarray:
        half = self.halo()
        fines, coarses, target = self.read_inputs(window, half)
        regress = None
        if self.coarse_pixels_ is not None:
            regress = [
                _coarse_pixel_values(cp, self.r_, window, half) for cp in self.coarse_pixels_
            ]
        return estarfm_window(
            fines,
            coarses,
            target,
            half=half,
            sim_threshold=None if self.threshold == "window" else self.sim_threshold_,
            classes=float(self.classes),
            min_similar=int(self.min_similar),
            min_change=self.min_change_,
            v_max=float(self.v_max),
            data_min=self.data_min_,
            data_max=self.data_max_,
            fcrit=self.fcrit_,
            regress_coarse=regress,
        )


def _block_means(src: Source, r: int) -> np.ndarray:
    """``(band, bh, bw)`` means of the finite values of each ``r x r`` block (the coarse
    pixels of a coarse image resampled onto the fine grid), read in strips of blocks."""
    height, width = src.grid.shape
    rows = max(r, scan_values() // max(1, width * src.count) // r * r)
    parts = [
        block_mean(src.read(Window(0, row, width, min(rows, height - row))), r)
        for row in range(0, height, rows)
    ]
    return np.concatenate(parts, axis=1)


def _coarse_pixel_values(cp: np.ndarray, r: int, window: Window, half: int) -> np.ndarray:
    """The coarse-pixel value of every pixel of ``window`` padded by ``half`` (pixels outside
    the scene get the nearest block's value; they are invalid anyway)."""
    row0, col0 = int(window.row_off) - half, int(window.col_off) - half
    h, w = int(window.height) + 2 * half, int(window.width) + 2 * half
    bi = np.clip((row0 + np.arange(h)) // r, 0, cp.shape[1] - 1)
    bj = np.clip((col0 + np.arange(w)) // r, 0, cp.shape[2] - 1)
    return cp[:, bi[:, None], bj[None, :]]


def spectral_correlation(
    f1: np.ndarray, c1: np.ndarray, f2: np.ndarray, c2: np.ndarray
) -> np.ndarray:
    """R per pixel between the fine and coarse spectra (all bands, both dates), float64;
    0.5 where undefined. One band: the reference program's relative-difference form."""
    out = np.empty(f1.shape[1:], dtype=np.float64)
    f1c, c1c, f2c, c2c = (np.ascontiguousarray(a, dtype=np.float32) for a in (f1, c1, f2, c2))
    _spectral_correlation(f1c, c1c, f2c, c2c, out)
    return out


def estarfm_window(
    fines: list[np.ndarray],
    coarses: list[np.ndarray],
    target: np.ndarray,
    *,
    half: int,
    sim_threshold: np.ndarray | None,
    classes: float,
    min_similar: int,
    min_change: float,
    v_max: float,
    data_min: float,
    data_max: float,
    fcrit: np.ndarray,
    regress_coarse: list[np.ndarray] | None = None,
) -> np.ndarray:
    """ESTARFM on padded arrays (halo ``half`` on every side); returns the unpadded centre.

    ``fines``/``coarses``: the two pairs, ``(band, H + 2 half, W + 2 half)`` each, NaN invalid.
    ``sim_threshold``: ``(2, band)`` scene-wide similarity thresholds, or None to compute
    them from the std over each window. ``regress_coarse``: the coarse values of the two
    pairs used in the regression for V (``regression="coarse-pixel"``: each pixel's
    coarse-pixel value), shaped as ``coarses``; None: ``coarses`` themselves.
    """
    f1, f2 = fines
    c1, c2 = coarses
    c0 = target
    nb, hp, wp = c0.shape
    h, w = hp - 2 * half, wp - 2 * half
    valid = np.ones((hp, wp), dtype=bool)
    for img in (f1, c1, f2, c2, c0):
        valid &= np.isfinite(img).all(axis=0)
    invalid = ~valid
    fs = np.stack([f1, f2]).astype(np.float32, copy=False)
    fs[:, :, invalid] = BIG
    omr = (1.0 - spectral_correlation(f1, c1, f2, c2)).astype(np.float32)
    omr[invalid] = 1.0

    # float32 throughout: a difference of two float32 values rounds exactly as in float64
    rc1, rc2 = regress_coarse if regress_coarse is not None else (c1, c2)
    vals = np.stack([rc1, rc2, f1, f2], axis=1).astype(np.float32, copy=False)
    chg = np.stack([c0 - c1, c0 - c2], axis=1).astype(np.float32, copy=False)
    vals[:, :, invalid] = 0.0
    chg[:, :, invalid] = 0.0
    # window sums of C_0 - C_k over valid pixels (temporal weights) and the valid count
    tsum = np.empty((nb, NCHG, h, w), dtype=np.float64)
    box_sum(chg.reshape(nb * NCHG, hp, wp), half, tsum.reshape(nb * NCHG, h, w))
    tcount = np.empty((1, h, w), dtype=np.float64)
    box_sum(valid.astype(np.float32)[None], half, tcount)

    thr = np.empty((2, nb, h, w), dtype=np.float32)
    if sim_threshold is None:
        for k, f in enumerate((f1, f2)):
            for b in range(nb):
                window_std(np.ascontiguousarray(f[b], dtype=np.float32), half, thr[k, b])
        thr *= np.float32(2.0 / classes)
    else:
        thr[...] = np.asarray(sim_threshold, np.float32)[:, :, None, None]
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    dist = (1.0 + np.sqrt(dy * dy + dx * dx) / half).astype(np.float32)

    out = np.empty((nb, h, w), dtype=np.float32)
    estarfm_predict(
        fs,
        thr,
        omr,
        vals,
        chg,
        tsum,
        tcount[0],
        dist,
        int(min_similar),
        float(data_min),
        float(data_max),
        float(min_change),
        float(v_max),
        np.asarray(fcrit, np.float64),
        out,
    )
    return out


def _warn_degenerate_pairs(scene: Scene) -> None:
    """ESTARFM's pairs bracket the target (t_m < t_0 < t_n) and differ: say so when they do
    not (it still runs, but its conversion coefficients and temporal weights then have no
    change between the pairs to learn from, or extrapolate)."""
    from stfusion.io.sources import underlying_source

    paths = [getattr(underlying_source(x), "path", None) for pair in scene.pairs for x in pair]
    f1, c1, f2, c2 = paths  # None for in-memory images: nothing to compare
    if None not in paths and (f1, c1) == (f2, c2):
        warn(
            f"estarfm: both pairs are {f1} + {c1}: ESTARFM needs two different "
            "dates (one before and one after the target); with one pair use starfm or fitfc."
        )
    dates = scene.pair_dates or ()
    if scene.target_outside_pairs:
        warn(
            f"estarfm: the target date {scene.target_date} is not between the pair dates "
            f"{', '.join(str(d) for d in dates)}; ESTARFM's temporal weights then extrapolate. "
            "Give one pair before and one after the target, or use starfm or fitfc."
        )
