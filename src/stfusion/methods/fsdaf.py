"""FSDAF: Flexible Spatiotemporal DAta Fusion.

Zhu, X., Helmer, E.H., Gao, F., Liu, D., Chen, J., Lefsky, M.A. (2016). A flexible
spatiotemporal method for fusing satellite images with different resolutions. Remote Sensing
of Environment 172, 165-177.

One pair (F1, C1) and the coarse target C2, all on the fine grid; coarse pixels are the
``R x R`` blocks of the fine grid anchored at its origin (:mod:`stfusion.coarse`), ``R`` the
resolution ratio, or, for a coarse image on its own grid, its native pixels
(:class:`stfusion.coarse.NativeGrid`: native values, the spline in the native grid's pixel
coordinates, cut native pixels out of the unmixing); ``m`` the number of fine pixels in a
coarse pixel. The paper's six steps (section 2; the formulas below are the paper's, written
with its symbols; the equation numbers are in docs/methods/fsdaf.md):

1. Classify F1. ``classes="4-6"`` (default) runs ISODATA ending with 4 to 6 classes (the
   paper classifies with ISODATA; FSDAF.pro calls ENVI's ISODATA with min_class 4,
   max_class 6, merge distance and split deviation 0.05 DN_max, 200 pixels per class, 20
   iterations; see :func:`isodata`), ``classes=k`` runs k-means with k classes (both
   scene-wide, on ~2^16 pixels of F1, seeded), or ``classes=<path>`` reads a class map on
   the fine grid. Every pixel with a valid F1 gets the nearest class centre, so labels are
   per pixel and tiling cannot change them.
2. Class-level temporal change. Class fractions per coarse pixel ``f_c = N_c / m`` (in
   ``fit``); the change ``Delta F(c)`` of each class from the linear mixture
   ``Delta C = sum_c f_c Delta F(c)``, ``Delta C = C2 - C1`` per coarse pixel, by least
   squares over the ``pure`` purest coarse pixels of each class whose change lies between the
   10th and 90th percentile of those pixels' changes (the reference's guard against
   land-cover change), with ``Delta F(c)`` bounded by ``[min Delta C - std, max Delta C +
   std]`` (``scipy.optimize.lsq_linear``).
3. Temporal prediction ``F2_TP = F1 + Delta F(c)`` and the residual of each coarse pixel
   ``R = Delta C - (1/m) (sum F2_TP - sum F1)``.
4. Spatial prediction ``F2_SP``: a thin-plate spline
   ``f(x, y) = a0 + a1 x + a2 y + 1/2 sum_i b_i r_i^2 log r_i^2`` through the coarse
   target's block means at the coarse-pixel centres, evaluated at every fine pixel.
5. Residual distribution: ``E_ho = F2_SP - F2_TP`` (error where the landscape is
   homogeneous), ``E_he = R`` (heterogeneous), homogeneity index
   ``HI = (sum_k I_k) / n``, ``I_k = 1`` for a same-class pixel in a window of one coarse
   pixel around the pixel, ``n`` its classified pixels (``(2 (R // 2) + 1)^2`` inside the
   scene), ``CW = E_ho HI + E_he (1 - HI)``, ``W = CW / sum CW`` over the coarse pixel,
   ``r = m R W``, ``Delta F = Delta F(c) + r``.
6. Final prediction with similar pixels (``final``; kernel
   :func:`stfusion.kernels.fsdaf.similar_smooth`). Spectral difference of a neighbour k
   (the paper's eq. 21, as the issue cites it): ``S_k = sum_b |F1_k,b - F1_c,b| / F1_c,b``
   (``|F1_c,b| + 1e-8`` as the divisor, FSDAF.pro's guard). ``final="paper"`` (default):
   the ``similar`` pixels of the centre's class in the ``window`` x ``window``
   neighbourhood with the smallest S_k, weighted ``w_k = (1 / D_k) / sum (1 / D_k)``,
   ``D_k = 1 + d_k / (window // 2)``. ``final="idl"`` (FSDAF.pro, final prediction
   block): neighbours of any class with ``|F1_k,b - F1_c,b| < 2 sigma_b / k`` in every
   band (sigma_b: std of F1, k: number of classes) ranked by ``(S_k + 1e-5) (10 + d_k /
   w)``, weighted ``1 / ((1 + d_k / w) (1 + S_k))``, ``w = window // 2``. Both:
   ``F2 = F1 + sum_k w_k Delta F_k``.

Scene-wide state: step 1 and the class fractions in ``fit``; steps 2-3 and the coarse values
the spline passes through in ``prepare`` (all on the coarse grid); ``predict_window`` solves
and evaluates the local splines of the coarse pixels around the window
(:mod:`stfusion.methods.fsdaf_spline`), distributes the residuals over the whole coarse pixels
around the window and smooths, so any tiling gives the same answer as one window. The
classification and unmixing are in :mod:`stfusion.methods.fsdaf_classes`.

Units: ``window`` in fine pixels, ``spline_radius`` in coarse pixels, ``valid_range`` in the
data's units (``auto``: the physical range of ``variable``, ``stfusion.methods.variables``:
reflectance 0..1 x scale as the reference's DN_min/DN_max 0..10000, NDVI -1..1 x scale,
LST/other no limit; an inferred variable's widened to the inputs' own values).

Invalid data (NaN): a fine pixel is valid when all bands of F1 are finite (and, with a class
map, it has a class); an invalid F1 pixel is NaN in the output. Coarse pixels with any
unclassified or invalid fine pixel do not enter the unmixing (the reference's rule); coarse
pixels whose C1 or C2 mean is NaN enter neither the unmixing nor the spline, and their fine
pixels get the class change only (no residual). A pixel without any valid similar pixel takes
``F1 + C2 - C1`` at that pixel; a prediction outside ``valid_range`` is replaced by
``F1 + C2 - C1`` limited to the range (the reference's rule).

Departures from the paper and from the authors' IDL program (FSDAF.pro, 2019 version; its
Python port behaves the same):

=========================  =====================================  ============================
item                       stfusion                               IDL reference
=========================  =====================================  ============================
classification             ISODATA 4-6 classes started from a     ENVI ISODATA, 4 to 6 classes
                           seeded k-means (or k-means with        (paper: ISODATA); the
                           ``classes=k``, or a class map), on     Python port: own ISODATA
                           ~2^16 pixels of F1
processing blocks          none: every coarse quantity over the   30 x 30 coarse-pixel blocks,
                           scene, per-pixel steps per window      each with its own unmixing,
                                                                  spline, std and classes
spline                     TPS per coarse pixel through the       one global TPS per block
                           coarse centres within                  (IDL MIN_CURVE_SURF /TPS)
                           ``spline_radius`` (0: one global TPS,
                           the paper's form)
HI window                  one coarse pixel, ``2 (R//2) + 1``     41 x 41 (the smoothing
                           (paper)                                window, w = 20)
residual weights           paper's CW, W, r with the reference's  same guards, plus 1e-6 DN
                           guards: E_ho of the other sign than R  in CW
                           -> 0, weights > 10 x mean -> mean
class without pure pixels  fraction-weighted mean of Delta C      not determined by the data
                                                                  (CONSTRAINED_MIN's result)
similar pixels             ``final=paper``: same class, no        any class, ``< 2 sigma / k``
                           threshold; ``final=idl``: as IDL       (per block std and classes)
                           (scene-wide std and classes)
similar-pixel ranking      paper: ``S``; idl: as IDL; ties:       ``(S + 1e-5)(10 + d / w)``,
                           nearer first, then scan order          IDL ``sort`` (ties unstated)
similar-pixel weights      paper: ``1 / (1 + d / w)``; idl: as    ``1 / ((1 + d / w)(1 + S))``
                           IDL                                    (d + 1e-5 at cut windows)
S divisor                  ``|F1_c| + 1e-8``                      ``F1_c + 1e-8`` (signed)
allowed range              ``valid_range`` (auto: from            DN_min, DN_max (0, 10000)
                           ``variable``); ``F1 + Delta F`` within
                           [min, max] of C2 and F2_TP as in the
                           reference
F1 outlier clipping        none                                   0.01 % / 99.99 % clipped
background                 NaN (nodata) pixels                    value 0 in one band
=========================  =====================================  ============================
"""

from __future__ import annotations

import os
from numbers import Integral
from typing import ClassVar

import numpy as np
from rasterio.windows import Window

from stfusion.coarse import (
    NativeGrid,
    block_mean,
    block_shape,
    integer_ratio,
    native_grid,
    window_region,
)
from stfusion.errors import EmptyInputError, InvalidParameterError
from stfusion.io import FileSource, Source
from stfusion.io.spill import SpillArray
from stfusion.kernels.fsdaf import homogeneity_index, nearest_centre
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.fsdaf_classes import (
    ISO_DIST_OF_MAX,
    ISO_MIN_PIXELS,
    isodata,
    kmeans,
    unmix_class_changes,
)
from stfusion.methods.fsdaf_options import class_spec, class_values, open_class_map, parse_range
from stfusion.methods.fsdaf_residual import (  # re-exported: the old home of these names
    FINAL_MODES,  # noqa: F401
    homogeneity,  # noqa: F401
    residual_change,
    smooth,
)
from stfusion.methods.fsdaf_spline import Spline, fit_spline
from stfusion.methods.fsdaf_tables import (  # COMPLETE_FRACTION: re-exported, its old home
    COMPLETE_FRACTION,  # noqa: F401
    Bands,
    CoarseTables,
    Fractions,
    add_counts,
    count_dtype,
    native_values,
    needs_spill,
    put_block_means,
)
from stfusion.methods.params import (
    AUTO,
    NON_NEGATIVE,
    Interval,
    MethodTags,
    StrOptions,
    Text,
    similar_count,
    similar_param,
    window_param,
    window_size,
)
from stfusion.methods.variables import (
    CHOICES,
    range_with_inputs,
    resolve_variable,
    variable_for,
)
from stfusion.scene import Scene
from stfusion.tiling import say_stage

#: F1 pixels sampled in the fit pass to recognise the variable, at most (4096 per read below
#: 64 reads: a 20000 x 20000 scene took 225 MB of float64 samples).
VARIABLE_SAMPLE = 1 << 18
#: F1 pixels sampled (decimated grid) to fit the k-means centres.
KMEANS_SAMPLE = 1 << 16

# ----------------------------------------------------------------------------------- method


class FSDAF(FusionMethod):
    """FSDAF (Zhu et al. 2016), one pair, all bands. See the module docstring."""

    name = "fsdaf"
    title = "FSDAF"
    paper = "Zhu et al. 2016, Remote Sensing of Environment 172, 165-177"
    #: Exact on a piecewise-constant scene with exact block-mean coarse images (contract suite).
    tags = MethodTags(
        min_pairs=1,
        max_pairs=1,
        needs_ratio=True,
        exact=("unchanged", "uniform_change"),
        quality=("fallback",),
        variables=CHOICES,
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param(
            "classes",
            "4-6",
            (
                Text("'min-max' (ISODATA), a number of classes (k-means) or a class map path"),
                Interval(Integral, 1, None, closed="left"),
                os.PathLike,
            ),
            "",
            "classes of F1: 'min-max' = ISODATA ending with min..max classes (FSDAF.pro: "
            "4-6), a number k = k-means with k classes, or the path of a class map raster "
            "(integer labels, nodata = unclassified) on the fine grid",
        ),
        Param(
            "merge_distance",
            "auto",
            (AUTO, NON_NEGATIVE),
            "data units",
            "ISODATA: merge classes whose centres are closer than this (Euclidean over "
            "bands); auto: 0.05 x DN_max (FSDAF.pro's ISO_MERGE_DIST; 0.05 reflectance)",
        ),
        Param(
            "split_std",
            "auto",
            (AUTO, NON_NEGATIVE),
            "data units",
            "ISODATA: split classes whose standard deviation in a band exceeds this; auto: "
            "0.05 x DN_max (FSDAF.pro's ISO_SPLIT_STD)",
        ),
        window_param(41, 1, "similar-pixel window (odd); 41 = the reference's half window 20"),
        similar_param(20, "number of similar pixels used per fine pixel"),
        Param(
            "final",
            "paper",
            StrOptions(("paper", "idl")),
            "",
            "similar-pixel rule of the final step: paper (same class, ranked by eq. 21 "
            "sum |dF1|/F1, weights 1/D) or idl (FSDAF.pro: threshold 2 std / classes in "
            "every band, ranked by (S + 1e-5)(10 + d/w), weights 1/((1 + d/w)(1 + S)))",
        ),
        Param(
            "pure",
            100,
            Interval(Integral, 1, None, closed="left"),
            "coarse pixels",
            "purest coarse pixels per class used to unmix the class changes",
        ),
        Param(
            "spline_radius",
            4,
            Interval(Integral, 0, None, closed="left"),
            "coarse pixels",
            "thin-plate spline through the coarse centres within this radius of each coarse "
            "pixel; 0 = one spline over the scene (paper; small scenes only)",
        ),
        Param(
            "valid_range",
            "auto",
            (StrOptions(("auto", "none")), Text("'lo,hi' with lo < hi"), tuple, None),
            "data units",
            "allowed output range 'lo,hi' (or 'none'); auto: the variable's physical range "
            "(reflectance 0,1 = DN_min, DN_max; ndvi -1,1; lst and other: none)",
        ),
        Param(
            "variable",
            "auto",
            StrOptions(CHOICES),
            "",
            "what the data measure (sets valid_range=auto): auto (inferred, logged), "
            "reflectance, ndvi, lst or other",
        ),
        Param("seed", 0, int, "", "random seed of the k-means / ISODATA classification"),
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    classes: str | int | os.PathLike[str]
    merge_distance: float | str
    split_std: float | str
    window: int | str
    similar: int | str
    final: str
    pure: int
    spline_radius: int
    valid_range: str | tuple[float, float] | None
    variable: str
    seed: int

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
    ) -> None:
        super().__init__(
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
        )

    def _validate_params(self) -> None:
        # Formats FSDAF parses itself: 'min-max' classes and the 'lo,hi' range.
        spec = class_spec(self.classes)
        if isinstance(spec, int) and spec < 1:
            raise InvalidParameterError(f"fsdaf: classes must be >= 1, got {spec}.")
        if isinstance(spec, tuple) and not 1 <= spec[0] <= spec[1]:
            raise InvalidParameterError(
                f"fsdaf: classes 'min-max' needs 1 <= min <= max, got {self.classes!r}."
            )
        parse_range(self.valid_range)

    def halo(self) -> int:
        r = getattr(self, "r_", 1)
        native = getattr(self, "native_", None)
        reach = native.reach if native is not None else r  # a coarse pixel's extent
        return window_size(self) // 2 + reach + r // 2

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # F1 + region copy, spline (f64), change, output (f64), C1/C2; labels, HI, masks.
        # Measured with tracemalloc (2000 x 2000 x 6, window 15): 279 B per padded pixel.
        per = (
            4.0 * bands * 2
            + 8.0 * bands
            + 4.0 * bands
            + 8.0 * bands
            + 8.0 * bands
            + 16.0
            + (8.0 * bands + 16.0)
        )
        # The window's local-spline coefficients (float32 weights, float64 affine) per block.
        side = 2 * int(self.spline_radius) + 1
        r = getattr(self, "r_", 1)
        if int(self.spline_radius) > 0:
            per += (4.0 * side * side + 24.0) * bands / (r * r)
        return per

    # ------------------------------------------------------------------------------ fit

    def _fit(self, scene: Scene) -> None:
        fine, coarse = scene.pairs[0]
        grid = scene.grid
        # Native coarse pixels for a coarse image on its own grid, else R x R blocks.
        self.native_: NativeGrid | None = native_grid(coarse, grid, self.ratio_)
        native = self.native_
        r = native.r if native is not None else integer_ratio(self.ratio_, self.name)
        self.r_ = r
        spec = class_spec(self.classes)
        self.class_map_: FileSource | None = None
        if not isinstance(spec, str):
            say_stage("classes of the fine image")
            self.centres_ = self._fit_kmeans(fine, spec)
            self.class_values_ = np.arange(len(self.centres_), dtype=np.float64)
        else:
            self.class_map_ = open_class_map(spec, grid)
            self.class_values_ = class_values(self.class_map_)
        n_classes = len(self.class_values_)
        self.n_classes_ = n_classes
        bh, bw = native.shape if native is not None else block_shape(grid.shape, r)
        nb = scene.count
        # Per-coarse-pixel tables: in memory under the state budget, else spilled to disk.
        cdt = count_dtype(int(native.pixels.max()) if native is not None else r * r)
        self.spill_ = needs_spill(bh * bw, n_classes, nb, cdt)
        counts = SpillArray((bh, bw, n_classes), cdt, spill=self.spill_)
        c1m = (
            SpillArray((nb, bh, bw), np.float64, axis=1, spill=self.spill_)
            if native is None
            else None
        )
        class_pixels = np.zeros(n_classes, dtype=np.int64)
        s0 = 0
        s1 = np.zeros(nb)
        s2 = np.zeros(nb)
        cmin = np.full((n_classes, nb), np.inf)
        cmax = np.full((n_classes, nb), -np.inf)
        sample: list[np.ndarray] = []
        # every step-th row and column of the scene: the same pixels whatever the windows
        # (a share of each read made STFUSION_VARIABLE depend on --mem-limit)
        step = max(1, int(np.ceil(np.sqrt(grid.height * grid.width / VARIABLE_SAMPLE))))
        # One bounded pass over F1 (and C1), in windows aligned to the coarse blocks.
        say_stage("class fractions of the coarse pixels")
        for win, f in fine.scan(r):
            lab = self._labels(f, win, 0)
            ok = lab >= 0
            row, col = int(win.row_off), int(win.col_off)
            if native is not None:
                flat = native.flat_index(win)
            else:
                bi = (row + np.arange(f.shape[1])) // r
                bj = (col + np.arange(f.shape[2])) // r
                flat = bi[:, None] * bw + bj[None, :]
                assert c1m is not None
                put_block_means(c1m, block_mean(coarse.read(win), r), row // r, col // r)
            # Only the coarse rows this read covers (a scene-wide bincount per read made the
            # pass quadratic in the scene and allocated the whole table each time).
            add_counts(counts, flat, lab, ok)
            class_pixels += np.bincount(lab[ok], minlength=n_classes)
            v = f[:, ok].astype(np.float64)
            s0 += v.shape[1]
            s1 += v.sum(axis=1)
            s2 += (v * v).sum(axis=1)
            lv = lab[ok]
            for c in np.unique(lv):
                vc = v[:, lv == c]
                cmin[c] = np.minimum(cmin[c], vc.min(axis=1))
                cmax[c] = np.maximum(cmax[c], vc.max(axis=1))
            on = ((row + np.arange(f.shape[1])) % step == 0)[:, None] & (
                (col + np.arange(f.shape[2])) % step == 0
            )[None, :]
            sample.append(f[:, ok & on].astype(np.float32))  # a copy, not a view of f
        if s0 == 0:
            raise EmptyInputError(
                f"{fine.label}: no fine pixel is valid in every band"
                + (" and classified by the class map" if self.class_map_ is not None else "")
                + "; FSDAF needs F1 (and its classes)."
            )
        mean = s1 / s0
        sd = np.sqrt(np.maximum(s2 / s0 - mean * mean, 0.0))
        self.counts_ = counts
        self.class_pixels_ = class_pixels
        c1 = native_values(native, coarse, self.spill_) if native is not None else c1m
        assert c1 is not None
        self.coarse1_: SpillArray = c1
        self.fine_std_ = sd
        self.class_min_ = cmin
        self.class_max_ = cmax
        if native is not None:
            self.block_pixels_ = native.pixels
        else:
            rows = np.minimum(np.arange(bh) * r + r, grid.height) - np.arange(bh) * r
            cols = np.minimum(np.arange(bw) * r + r, grid.width) - np.arange(bw) * r
            self.block_pixels_ = (rows[:, None] * cols[None, :]).astype(np.int32)
        rng = parse_range(self.valid_range)
        var = resolve_variable(
            str(self.variable),
            np.concatenate(sample, axis=1).astype(np.float64),
            scene.count,
            self.name,
            scene.band_names,
        )
        self.variable_ = var
        if rng == "auto":
            rng = var.physical_range
        assert not isinstance(rng, str)  # "auto" is the only word parse_range returns
        self.valid_range_: tuple[float, float] | None = rng

    def _fit_kmeans(self, fine: Source, k: int | tuple[int, int]) -> np.ndarray:
        """Class centres of F1: k-means with ``k`` classes, or ISODATA for ``(min, max)``."""
        s = fine.sample(KMEANS_SAMPLE)
        x = s.reshape(s.shape[0], -1).T
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) == 0:
            raise EmptyInputError(f"{fine.label}: no pixel is valid in every band.")
        if isinstance(k, int):
            return kmeans(x, k, int(self.seed))
        unit = self._iso_unit(x, fine.band_names)
        merge = unit * ISO_DIST_OF_MAX if self.merge_distance == "auto" else self.merge_distance
        split = unit * ISO_DIST_OF_MAX if self.split_std == "auto" else self.split_std
        # ISO_MIN_PIXELS counts pixels of the scene; the sample holds a share of them
        share = len(x) / float(fine.grid.width * fine.grid.height)
        min_members = max(1, int(np.ceil(ISO_MIN_PIXELS * min(1.0, share))))
        self.iso_thresholds_ = (float(merge), float(split), min_members)
        return isodata(x, k[0], k[1], float(merge), float(split), min_members, int(self.seed))

    def _iso_unit(self, x: np.ndarray, band_names: tuple[str, ...] = ()) -> float:
        """FSDAF.pro's DN_max in the data's units (ISODATA's distances are 0.05 DN_max):
        the upper end of the variable's physical range (reflectance 1 or 10000 stored as
        integers, ndvi likewise), or the F1 sample's 0.5-99.5 percentile range for lst and
        other. Quiet: the variable is logged once, later in ``fit``."""
        rng = variable_for(str(self.variable), x, x.shape[1], band_names).physical_range
        if rng is not None:
            return float(rng[1])
        lo, hi = np.percentile(x, [0.5, 99.5])
        return float(hi - lo)

    def _labels(self, f1: np.ndarray, window: Window, halo: int) -> np.ndarray:
        """Class index per pixel of a (padded) F1 window, -1 = no class / invalid F1."""
        out = np.empty(f1.shape[1:], dtype=np.int32)
        if self.class_map_ is None:
            nearest_centre(np.ascontiguousarray(f1), self.centres_, out)
            return out
        raw = self.class_map_.read(window, halo)[0]
        vals = self.class_values_
        idx = np.clip(np.searchsorted(vals, raw), 0, len(vals) - 1)
        with np.errstate(invalid="ignore"):
            ok = (vals[idx] == raw) & np.isfinite(f1).all(axis=0)
        out[...] = np.where(ok, idx, -1)
        return out

    # -------------------------------------------------------------------------- prepare

    def _prepare(self, target: Source) -> None:
        r = self.r_
        grid = self.grid_
        nb = self.scene_.count
        bh, bw = self.block_pixels_.shape
        native = self.native_
        c2m = (
            SpillArray((nb, bh, bw), np.float64, axis=1, spill=self.spill_)
            if native is None
            else None
        )
        tmin = np.full(nb, np.inf)
        tmax = np.full(nb, -np.inf)
        say_stage("class changes (unmixing the coarse target)")
        for win, t in target.scan(r):
            if c2m is not None:
                put_block_means(c2m, block_mean(t, r), int(win.row_off) // r, int(win.col_off) // r)
            for b in range(nb):
                tb = t[b][np.isfinite(t[b])]
                if tb.size:
                    tmin[b] = min(tmin[b], float(tb.min()))
                    tmax[b] = max(tmax[b], float(tb.max()))
        if native is not None:
            c2m = native_values(native, target, self.spill_)
        assert c2m is not None
        tables = CoarseTables(
            self.counts_,
            self.block_pixels_,
            self.coarse1_,
            c2m,
            native.whole if native is not None else None,
            self.spill_,
        )
        change = self._class_changes(tables.fractions, tables.dc, tables.complete, tables)
        self.class_change_ = change
        self.residual_: SpillArray = tables.residuals(change)
        del tables
        present = self.class_pixels_ > 0
        tp_min = (self.class_min_[present] + change[present]).min(axis=0)
        tp_max = (self.class_max_[present] + change[present]).max(axis=0)
        lo = np.fmin(tmin, tp_min)
        hi = np.fmax(tmax, tp_max)
        f1_lo = self.class_min_[present].min(axis=0)
        f1_hi = self.class_max_[present].max(axis=0)
        seen = (float(np.nanmin(np.fmin(tmin, f1_lo))), float(np.nanmax(np.fmax(tmax, f1_hi))))
        self.range_ = range_with_inputs(
            self.valid_range_, self.variable_, self.valid_range == "auto", seen, self.name
        )
        if self.range_ is not None:
            lo = np.maximum(lo, self.range_[0])
            hi = np.minimum(hi, self.range_[1])
        self.allowed_ = (lo, hi)
        # Local splines keep c2m and are solved per window (memory follows the window).
        say_stage("spline of the coarse target")
        self.spline_: Spline = (
            fit_spline(c2m, 1, native.shape, int(self.spline_radius))
            if native is not None  # in coarse-pixel coordinates of the native grid
            else fit_spline(c2m, r, grid.shape, int(self.spline_radius))
        )

    def _class_changes(
        self, fractions: Fractions, dc: Bands, complete: np.ndarray, tables: CoarseTables
    ) -> np.ndarray:
        """Step 2, ``Delta F(c)`` ``(classes, band)`` from the coarse changes ``dc`` ``(band,
        n)``, over the ``complete`` coarse pixels (``tables``: all of them, for subclasses
        that look at the residuals)."""
        nb = dc.shape[0]
        change = np.empty((self.n_classes_, nb))
        for b in range(nb):
            d = dc[b]
            ok = np.isfinite(d)
            if not ok.any():
                change[:, b] = 0.0
                continue
            sd = float(np.std(d[ok]))
            bounds = (float(d[ok].min()) - sd, float(d[ok].max()) + sd)
            change[:, b] = unmix_class_changes(fractions, d, complete, int(self.pure), bounds)
        return change

    # -------------------------------------------------------------------------- predict

    def predict_window(self, window: Window) -> np.ndarray:
        return self._predict(window)[0]

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The prediction and ``fallback``: 1 where ``F1 + C2 - C1`` replaced FSDAF's value
        (no similar pixel, or outside ``valid_range``) in any band."""
        out, fallback = self._predict(window)
        return out, {"fallback": fallback.astype(np.float32)}

    def _predict(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        r = self.r_
        half = window_size(self) // 2
        pad = self.halo()
        fine, coarse = self.scene_.pairs[0]
        f1 = fine.read(window, pad)
        lab = self._labels(f1, window, pad)
        row0, col0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        height, width = self.grid_.shape
        native = self.native_
        # Whole coarse pixels covering the window and its smoothing neighbourhood.
        if native is not None:
            by0, by1, bx0, bx1 = window_region(native, window, half)
        else:
            by0 = max(0, (row0 - half) // r * r)
            by1 = min(height, -(-(row0 + h + half) // r) * r)
            bx0 = max(0, (col0 - half) // r * r)
            bx1 = min(width, -(-(col0 + w + half) // r) * r)
        ry0, ry1 = by0 - row0 + pad, by1 - row0 + pad
        rx0, rx1 = bx0 - col0 + pad, bx1 - col0 + pad
        hi = np.empty((ry1 - ry0, rx1 - rx0), dtype=np.float32)
        homogeneity_index(lab, r // 2, ry0, ry1, rx0, rx1, hi)
        fr = f1[:, ry0:ry1, rx0:rx1]
        lr = lab[ry0:ry1, rx0:rx1]
        change = self._total_change(fr, lr, hi, Window(bx0, by0, bx1 - bx0, by1 - by0))
        # a band constant over the scene (std 0) bounds nothing: under the program's strict
        # "< 2 std / k" no pixel, not even the centre, passed, and all fell back to additive
        thr = np.where(self.fine_std_ > 0, self.fine_std_ * 2.0 / self.n_classes_, np.inf)
        out = smooth(
            fr,
            change,
            lr,
            half,
            similar_count(self, 2 * half + 1),
            thr,
            str(self.final),
            (row0 - by0, col0 - bx0, h, w),
        )
        f1c = f1[:, pad : pad + h, pad : pad + w].astype(np.float64)
        alt = f1c + self.target_.read(window).astype(np.float64) - coarse.read(window)
        fok = np.isfinite(f1c).all(axis=0)
        assert isinstance(fok, np.ndarray)  # f1c is (band, y, x): a 2-D mask, not a scalar
        fell = np.isnan(out) & fok[None]
        out = np.where(fell, alt, out)
        if self.range_ is not None:
            lo, hi_v = self.range_
            with np.errstate(invalid="ignore"):
                bad = (out < lo) | (out > hi_v)
            out = np.where(bad, np.clip(np.where(np.isfinite(alt), alt, out), lo, hi_v), out)
            fell |= bad
        return out.astype(np.float32), fell.any(axis=0)

    def _total_change(
        self, fr: np.ndarray, lr: np.ndarray, hi: np.ndarray, region: Window
    ) -> np.ndarray:
        """Steps 3-5, ``Delta F`` on ``region`` (fine pixels of whole coarse pixels): F1,
        labels and HI there."""
        if self.native_ is not None:
            return self._native_change(fr, lr, hi, region)
        sp, blocks = self._block_spline(region)
        resid = self.residual_.read(blocks[0].start, blocks[0].stop)[:, blocks[1]]
        return residual_change(fr, lr, hi, sp, self.class_change_, resid, self.r_, *self.allowed_)

    def _block_spline(self, region: Window) -> tuple[np.ndarray, tuple[slice, slice]]:
        """The spline prediction ``F2_SP`` on ``region`` (whole ``r x r`` blocks) and the
        slices of those blocks in the coarse-grid tables."""
        r = self.r_
        by0, bx0 = int(region.row_off), int(region.col_off)
        by1, bx1 = by0 + int(region.height), bx0 + int(region.width)
        sp = self.spline_.evaluate(by0, bx0, by1 - by0, bx1 - bx0)
        return sp, (slice(by0 // r, -(-by1 // r)), slice(bx0 // r, -(-bx1 // r)))

    def _native_change(
        self, fr: np.ndarray, lr: np.ndarray, hi: np.ndarray, region: Window
    ) -> np.ndarray:
        """Steps 4-5 on native coarse pixels: the spline at each fine pixel's coarse-pixel
        coordinates and the residual distributed over each native pixel's fine pixels."""
        native = self.native_
        assert native is not None
        ci, cj, py, px = native.index(region)
        sp = self.spline_.evaluate_points(py, px, ci, cj)
        resid, ids = self._native_residuals(ci, cj)
        cc = self.class_change_
        return residual_change(fr, lr, hi, sp, cc, resid, ids, *self.allowed_)

    def _native_residuals(self, ci: np.ndarray, cj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The residuals ``(n, band)`` of the coarse rows ``ci`` spans (only those: they may
        be on disk, and the kernel's per-pixel sums are sized by them) and each pixel's
        index into them."""
        bw = self.residual_.shape[1]
        i0 = int(ci.min()) if ci.size else 0
        rows = self.residual_.read(i0, int(ci.max()) + 1 if ci.size else 0)
        return rows.reshape(-1, rows.shape[-1]), (ci - i0) * bw + cj
