"""VIPSTF: virtual image pair-based spatio-temporal fusion, over any one-pair method.

Wang, Q., Tang, Y., Tong, X., Atkinson, P. M. (2020). Virtual image pair-based spatio-temporal
fusion. Remote Sensing of Environment 249, 112009.

n known pairs ``(F_i, C_i)`` and the coarse target ``C_0``. The paper's text was not at hand
when this was written: the steps below follow its abstract and the authors' MATLAB code
(VIPSTF-SW, github.com/qunmingwang/VIPSTF-SW); the equation labels (V1)-(V4) are ours, verify
them against the paper's section 2.

(V1) Per band, a global linear model of the target coarse image on the known coarse images,
     fitted by ordinary least squares over every pixel where all of them are valid::

         C_0(x) = sum_i a_i C_i(x) + b + R(x)

(V2) The virtual pair, the same combination of the known images::

         F_v = sum_i a_i F_i + b        C_v = sum_i a_i C_i + b

     Because ``a_k = 1``, the other ``a_i = 0``, ``b = 0`` (any single pair) is one candidate
     of the least squares, ``sum R^2 = sum (C_0 - C_v)^2`` is never larger than
     ``sum (C_0 - C_k)^2`` for any single pair k: the virtual pair is at least as close to the
     target (on the coarse grid) as the closest known pair. That is the paper's argument.

(V3) Any one-pair method predicts from the virtual pair::

         F_0 = base(F_v, C_v, C_0)

     which for a method of the form ``F_1 + downscale(C_0 - C_1)`` is ``F_v + downscale(R)``.
     ``base=sw`` is the authors' VIPSTF-SW: ``F_v`` plus R filtered by similar-pixel spatial
     weights (:mod:`stfusion.methods.vipstf_sw`; their code calls its STARFM routine with
     zero pair images, so no STARFM weight but the distance is left). ``base=fsdaf`` is
     VIPSTF-SU. Any registered method that accepts one pair can be the base; ``base=starfm``
     runs the full STARFM on the virtual pair, a combination of stfusion's, not VIPSTF-SW.

The coefficients are scene-wide (computed in ``prepare``), so tiled runs equal whole-scene
runs; the base method is fitted on the virtual pair in ``prepare`` too (its own scene-wide
state, e.g. FSDAF's classes of ``F_v``), and each window is the base method's window. The
virtual images are computed once into memory when both fit in ``MATERIALIZE_MB`` (256 MB,
e.g. 6 bands x 3300 x 3300 px) and in the run's state budget, else read window by window from
the pairs (same values); the scene-wide passes read strips sized by the run's scan budget.

Coarse images are on the fine grid in stfusion, so the regression (V1) runs over fine-grid
pixels of the coarse images, as the authors' code does after resizing the MODIS images to the
Landsat grid (bicubic there; stfusion's alignment resampling here).

Invalid data (the paper has none). A pair is *usable* at a pixel and band where both its
fine and its coarse value are finite. Where every pair is usable, (V2) uses the coefficients
of (V1). Where only a subset S of the pairs is usable, it uses the coefficients of (V1)
fitted with the pairs of S alone (over the pixels where the coarse images of S and the target
are valid), so a cloud in one pair's fine image costs that pair's information there, not the
pixel. No usable pair: NaN. All 2^n - 1 subsets come from one pass over the images: the
cross-product sums are accumulated per exact validity pattern and summed per subset.

Degenerate regressions (collinear coarse images, e.g. two identical pairs) take the
minimum-norm least-squares solution (``numpy.linalg.lstsq``), which splits the weight
equally between identical images, so the virtual pair is still ``(a F, a C) + b``. A subset
with fewer valid pixels than coefficients gets the additive model of its first pair (in the
order given): ``a_k = 1``, ``b = mean(C_0 - C_k)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from rasterio.windows import Window

from stfusion.coarse import NativeGrid
from stfusion.errors import EmptyInputError, InvalidParameterError, keywords_checked
from stfusion.io import AlignedSource, ArraySource, Grid, Source, scan_values
from stfusion.io.grid import resolution_ratio
from stfusion.io.spill import state_bytes
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import MethodTags
from stfusion.methods.variables import infer_variable
from stfusion.scene import Scene
from stfusion.tiling import say_stage, stage

log = logging.getLogger("stfusion.methods")

#: Virtual fine + coarse images up to this size (MB), and within the run's state budget
#: (``--mem-limit``, :func:`stfusion.io.spill.state_bytes`), are computed once into memory.
MATERIALIZE_MB = 256
#: The subsets of the pairs are enumerated (2^n - 1 regressions per band): keep n modest.
MAX_PAIRS = 12
#: ``base=sw``: VIPSTF-SW's residual filter (:mod:`stfusion.methods.vipstf_sw`), VIPSTF's
#: own base, not a registered method.
SW_BASE = "sw"


def _less_offset(k: np.ndarray, n: int, shift: np.ndarray | None, band: int) -> np.ndarray:
    """The coefficients ``k`` (``a_1..a_n, b`` first) with ``shift[band]`` taken off ``b``;
    ``k`` itself when there is no shift (no copy in the common read)."""
    if shift is None:
        return k
    out = k.copy()
    out[n] -= shift[band]
    return out


def _pattern(valid: np.ndarray) -> np.ndarray:
    """Bit pattern per pixel of a boolean ``(n, ...)`` stack: bit i set where ``valid[i]``."""
    n = valid.shape[0]
    weights = (1 << np.arange(n, dtype=np.int64)).reshape((n,) + (1,) * (valid.ndim - 1))
    return (valid.astype(np.int64) * weights).sum(axis=0)


def strip_rows(grid: Grid, values_per_pixel: int) -> int:
    """Rows per strip of a scene-wide pass reading ``values_per_pixel`` values per pixel,
    within the run's scan budget (:func:`stfusion.io.scan_values`, from ``--mem-limit``)."""
    return max(1, scan_values() // max(1, grid.width * values_per_pixel))


def accumulate_cross_products(
    coarses: Sequence[Source], target: Source, grid: Grid, rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One pass over the coarse images and the target, per band and exact validity pattern
    of the coarse images where the target is valid: the sums of ``z z^T`` with
    ``z = (C_1, ..., C_n, 1, C_0)`` (invalid entries 0).

    Returns ``(gram, count)``: ``gram`` ``(band, 2^n, n + 2, n + 2)`` float64, ``count``
    ``(band, 2^n)`` pixels per pattern.
    """
    n = len(coarses)
    nb = target.count
    m = n + 2
    if rows is None:
        rows = strip_rows(grid, nb * (n + 1))
    gram = np.zeros((nb, 1 << n, m, m))
    count = np.zeros((nb, 1 << n), dtype=np.int64)
    for r0 in range(0, grid.height, rows):
        win = Window(0, r0, grid.width, min(rows, grid.height - r0))
        cs = np.stack([c.read(win) for c in coarses]).astype(np.float64)  # (n, band, h, w)
        t = target.read(win).astype(np.float64)
        for b in range(nb):
            tb = t[b].reshape(-1)
            ok = np.isfinite(tb)
            cb = cs[:, b].reshape(n, -1)[:, ok]
            tb = tb[ok]
            valid = np.isfinite(cb)
            pat = _pattern(valid)
            z = np.concatenate([np.where(valid, cb, 0.0), np.ones((1, tb.size)), tb[None]])
            for p in np.unique(pat):
                if p == 0:
                    continue
                zp = z[:, pat == p]
                gram[b, p] += zp @ zp.T
                count[b, p] += zp.shape[1]
    return gram, count


def solve_subsets(gram: np.ndarray, count: np.ndarray, intercept: bool = True) -> np.ndarray:
    """Coefficients of (V1) for every non-empty subset S of the pairs, per band.

    Returns ``(band, 2^n, n + 1)``: ``a_1..a_n`` (0 outside S) and ``b``; row 0 (no pair)
    and subsets without enough data are NaN.
    """
    nb, npat, m, _ = gram.shape
    n = m - 2
    out = np.full((nb, npat, n + 1), np.nan)
    pats = np.arange(npat)
    for s in range(1, npat):
        members = [i for i in range(n) if s >> i & 1]
        sup = (pats & s) == s  # patterns in which every pair of S is valid
        cols = members + ([n] if intercept else [])
        for b in range(nb):
            g = gram[b, sup].sum(axis=0)
            k = int(count[b, sup].sum())
            if k == 0:
                continue
            if k < len(cols):
                # Too few pixels for a regression: the additive model of S's first pair.
                i = members[0]
                out[b, s, :] = 0.0
                out[b, s, i] = 1.0
                out[b, s, n] = (g[n + 1, n] - g[i, n]) / k
                continue
            xtx = g[np.ix_(cols, cols)]
            xty = g[cols, n + 1]
            coef = np.linalg.lstsq(xtx, xty, rcond=None)[0]
            out[b, s, :] = 0.0
            out[b, s, members] = coef[: len(members)]
            if intercept:
                out[b, s, n] = coef[-1]
    return out


def _combine(k: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``sum_i k_i x_i + k_n`` in float64, the same operations whether ``k`` is one model
    ``(n + 1,)`` or one per pixel ``(n + 1, h, w)`` (so tiles and the whole scene agree)."""
    n = x.shape[0]
    kk = k.reshape(k.shape[0], *([1] * (x.ndim - 1))) if k.ndim == 1 else k
    acc = kk[0] * x[0].astype(np.float64)
    for i in range(1, n):
        acc += kk[i] * x[i].astype(np.float64)
    return acc + kk[n]


@dataclass
class VirtualPair:
    """The virtual fine and coarse images of (V2), read window by window from the pairs."""

    fines: list[Source]
    coarses: list[Source]
    #: ``(band, 2^n, n + 1)`` from :func:`solve_subsets`.
    coef: np.ndarray

    def offset(self) -> np.ndarray:
        """Per band, the constant ``b`` of (V1) with every pair (0 where that model has none)."""
        b = self.coef[:, -1, -1]
        return np.where(np.isfinite(b), b, 0.0)

    def read(
        self, window: Window | None, halo: int, dtype: type = np.float32, centred: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The virtual fine and coarse images of ``window`` plus ``halo`` (computed in
        float64, returned as ``dtype``). ``centred``: the fine image less :meth:`offset`,
        which is ``sum a_i F_i`` exactly (no rounding by adding ``b``) where every pair is
        usable."""
        f = np.stack([s.read(window, halo) for s in self.fines])  # (n, band, h, w)
        c = np.stack([s.read(window, halo) for s in self.coarses])
        usable = np.isfinite(f) & np.isfinite(c)
        n = len(self.fines)
        full = (1 << n) - 1
        shift = self.offset() if centred else None
        vf: np.ndarray = np.empty(f.shape[1:], dtype)
        vc: np.ndarray = np.empty(f.shape[1:], dtype)
        for b in range(f.shape[1]):
            if usable[:, b].all():  # the common case: every pair usable, one model
                k = self.coef[b, full]
                vf[b] = _combine(_less_offset(k, n, shift, b), f[:, b])
                vc[b] = _combine(k, c[:, b])
                continue
            pat = _pattern(usable[:, b])  # (h, w)
            k = np.moveaxis(self.coef[b][pat], -1, 0)  # (n + 1, h, w); NaN where pattern 0
            vf[b] = _combine(_less_offset(k, n, shift, b), np.where(usable[:, b], f[:, b], 0.0))
            vc[b] = _combine(k, np.where(usable[:, b], c[:, b], 0.0))
            # No pair's coarse value either: the fine image still comes from the pairs whose
            # fine value is valid, so the base sees a pair with a coarse gap (which it fills),
            # not a gap in the fine image too.
            fine_ok = np.isfinite(f[:, b])
            only_fine = (pat == 0) & fine_ok.any(axis=0)
            if only_fine.any():
                kf = np.moveaxis(self.coef[b][_pattern(fine_ok)], -1, 0)
                alt = _combine(_less_offset(kf, n, shift, b), np.where(fine_ok, f[:, b], 0.0))
                vf[b] = np.where(only_fine, alt, vf[b])
        return vf, vc


@dataclass
class VirtualImage(Source):
    """One image of a :class:`VirtualPair` as a Source (``which``: "fine" or "coarse")."""

    pair: VirtualPair
    which: str
    grid: Grid
    band_names: tuple[str, ...]
    label: str
    count: int = field(init=False)

    def __post_init__(self) -> None:
        self.count = len(self.band_names)

    def read(self, window: Window | None = None, halo: int = 0) -> np.ndarray:
        vf, vc = self.pair.read(window, halo)
        return vf if self.which == "fine" else vc


class VIPSTF(FusionMethod):
    """VIPSTF (Wang et al. 2020): a virtual pair from all pairs, then any one-pair method.

    See the module docstring. Base parameters: ``base_params`` (a dict) in Python,
    ``--param base.NAME=VALUE`` on the command line.
    """

    name = "vipstf"
    title = "VIPSTF (virtual image pair)"
    paper = "Wang, Tang, Tong & Atkinson 2020, Remote Sensing of Environment 249, 112009"
    tags = MethodTags(
        min_pairs=2,
        max_pairs=MAX_PAIRS,
        exact=("unchanged", "uniform_change"),
        needs_ratio=True,
        quality=("fallback",),  # those of the default base method, fsdaf
        pairs_note="a virtual pair is a combination of several pairs.",
    )
    params = (
        Param(
            "base",
            "fsdaf",
            str,
            "",
            "what runs on the virtual pair: sw (VIPSTF-SW: the authors' spatial weighting "
            "of the residual), fsdaf (VIPSTF-SU), or any registered method that accepts one "
            "pair (fitfc, starfm, additive, ...)",
        ),
        Param(
            "base_params",
            None,
            (dict, None),
            "",
            "parameters of the base method (Python: a dict; command line: "
            "--param base.NAME=VALUE, e.g. base.window=31)",
        ),
        Param(
            "intercept",
            True,
            bool,
            "",
            "fit the constant b of the linear model (V1) (paper and authors' code: yes)",
        ),
    )
    base_prefix: ClassVar[str] = "base."

    @classmethod
    def own_bases(cls) -> dict[str, type[FusionMethod]]:
        """The bases that are VIPSTF's own, not registered methods (``stfusion methods
        vipstf`` lists their parameters too)."""
        return {SW_BASE: base_class(SW_BASE)}

    # ---------------------------------------------------------------------- parameters

    @classmethod
    def parse_params(cls, items: Sequence[str]) -> dict[str, Any]:
        """``base.NAME=VALUE`` items go to the base method's own parser."""
        own = [i for i in items if not i.strip().startswith(cls.base_prefix)]
        forwarded = [
            i.strip()[len(cls.base_prefix) :]
            for i in items
            if i.strip().startswith(cls.base_prefix)
        ]
        out = super().parse_params(own)
        if forwarded:
            base_cls = base_class(out.get("base", "fsdaf"))
            out["base_params"] = base_cls.parse_params(forwarded)
        return out

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    base: str
    base_params: dict[str, Any] | None
    intercept: bool

    def __init__(
        self,
        *,
        base: str = "fsdaf",
        base_params: dict[str, Any] | None = None,
        intercept: bool = True,
    ) -> None:
        super().__init__(base=base, base_params=base_params, intercept=intercept)

    @classmethod
    def needs_ratio_for(cls, params: Mapping[str, Any]) -> bool:
        base = params.get("base", next(p.default for p in cls.params if p.name == "base"))
        return base_class(base).needs_ratio_for(params.get("base_params") or {})

    def _validate_params(self) -> None:
        self._new_base()  # refuses an unknown base or base parameter now, not at prepare

    def _new_base(self) -> FusionMethod:
        return base_class(self.base)(**dict(self.base_params or {}))

    def shipped_training(self, pairs: int) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        from stfusion.methods.deep import shipped_training

        return shipped_training(self._new_base(), 1)  # the base runs on the virtual pair

    # ------------------------------------------------------------------------ contract

    def halo(self) -> int:
        base = getattr(self, "base_", None)
        return base.halo() if base is not None else self._new_base().halo()

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        base = getattr(self, "base_", None) or self._new_base()
        # the base's working set on one pair, plus the n pairs read for the virtual pair
        return base.bytes_per_pixel(bands, 1) + 8.0 * bands * (2 * pairs + 2) + 16.0 * pairs

    def _pairs_note(self, n: int) -> str:
        if n > 1:
            return ""
        return (
            f"{self.tags.pairs_note} With one pair, run the base method itself (--method "
            f"{self.base})."
        )

    def _fit(self, scene: Scene) -> None:
        # The base method's own scene checks (window larger than the scene, ratio) now.
        self._new_base().check_scene_params(scene.grid, scene.ratio)

    def _prepare(self, target: Source) -> None:
        scene = self.scene_
        say_stage("virtual pair: regression of the target on the pairs' coarse images")
        gram, count = accumulate_cross_products([c for _, c in scene.pairs], target, scene.grid)
        full = (1 << len(scene.pairs)) - 1
        if not count.sum():
            raise EmptyInputError(
                f"{target.label}: no pixel where the target and a pair's coarse image are both "
                "valid; VIPSTF cannot fit the virtual pair."
            )
        self.coef_ = solve_subsets(gram, count, bool(self.intercept))
        #: (band, n) weights a_i and (band,) constant b of (V1) with every pair.
        self.weights_ = self.coef_[:, full, :-1]
        self.offset_ = self.coef_[:, full, -1]
        vp = VirtualPair([f for f, _ in scene.pairs], [c for _, c in scene.pairs], self.coef_)
        names = scene.band_names
        # sw reads the pairs itself, in float64, and works on the fine grid as the authors'
        # code does (after resizing the coarse images): no copy, no native virtual coarse.
        sw = self.base == SW_BASE
        vf, vc = _virtual_sources(vp, scene.grid, names, lazy=sw)
        native = (
            None if sw else _native_virtual_coarse(self.coef_, [c for _, c in scene.pairs], target)
        )
        if native is not None:
            vc = native
        vscene = Scene(
            grid=scene.grid,
            pairs=[(vf, vc)],
            target=target,
            ratio=scene.ratio,
            band_names=names,
            notes=list(scene.notes),
            pair_dates=None,
            target_date=scene.target_date,
            coarse_scaling=scene.coarse_scaling,
        )
        base = self._new_base()
        self._keep_variable(base, scene, vf)
        with stage(f"{self.base} on the virtual pair"):
            base.fit(vscene)  # a Scene: no file is opened or checked again
            base.prepare(target)
        self.base_ = base

    @staticmethod
    def _keep_variable(base: FusionMethod, scene: Scene, virtual_fine: Source) -> None:
        """The base's ``variable="auto"`` as the user's pairs give it: the virtual fine image
        of integer DN is no longer integers, so the base took reflectance x 10000 for
        "other" (another allowed range, other ISODATA thresholds). Where the guesses differ,
        the base is given the pairs' variable by name."""
        if getattr(base, "variable", None) != "auto":
            return
        n = 1 << 16
        pairs = np.concatenate([f.sample(n).ravel() for f, _ in scene.pairs])
        ours = infer_variable(pairs, scene.count, scene.band_names)
        virtual = infer_variable(virtual_fine.sample(n).ravel(), scene.count, scene.band_names)
        if (ours.name, ours.scale) != (virtual.name, virtual.scale):
            log.info("vipstf: the base takes the pairs' variable, %s", ours.describe())
            base.set_params(variable=ours.name)

    def fitted_tags(self) -> dict[str, Any]:
        # the virtual pair's recipe (V1) per band: a_i for each pair, and b
        return {
            "STFUSION_VIPSTF": {
                "weights": np.round(self.weights_, 6).tolist(),
                "offset": np.round(self.offset_, 6).tolist(),
            }
        }

    def plan(
        self, mem_limit_mb: float | None = None, window_size: int | None = None, workers: int = 1
    ) -> list[Window]:
        # A base with its own plan (the deep methods: one window per tile) keeps it.
        base = getattr(self, "base_", None)
        if base is not None and type(base).plan is not FusionMethod.plan:
            return base.plan(mem_limit_mb, window_size, workers)
        return super().plan(mem_limit_mb, window_size, workers)

    def predict_window(self, window: Window) -> np.ndarray:
        return self.base_.predict_window(window)

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.base_.predict_window_quality(window)

    def quality_extra_names(self) -> list[str]:
        # the base's own bands (the ensemble's weights, a plugin's), which it passes on
        base = getattr(self, "base_", None) or self._new_base()
        return base.quality_extra_names()


def _virtual_sources(
    vp: VirtualPair, grid: Grid, names: tuple[str, ...], lazy: bool = False
) -> tuple[Source, Source]:
    """The virtual fine and coarse images as Sources: computed once into memory when both
    fit in :data:`MATERIALIZE_MB` (the base method then reads them like arrays), else (or
    with ``lazy``) read window by window from the pairs. Both give the same values."""
    labels = ("virtual fine image (VIPSTF)", "virtual coarse image (VIPSTF)")
    budget = min(MATERIALIZE_MB * 2**20, state_bytes())
    if lazy or 2 * len(names) * grid.height * grid.width * 4 > budget:
        return (
            VirtualImage(vp, "fine", grid, names, labels[0]),
            VirtualImage(vp, "coarse", grid, names, labels[1]),
        )
    vf = np.empty((len(names), grid.height, grid.width), np.float32)
    vc = np.empty_like(vf)
    rows = strip_rows(grid, len(names) * 2 * (len(vp.fines) + 1))
    for r0 in range(0, grid.height, rows):
        h = min(rows, grid.height - r0)
        vf[:, r0 : r0 + h], vc[:, r0 : r0 + h] = vp.read(Window(0, r0, grid.width, h), 0)
    return ArraySource(vf, grid, names, labels[0]), ArraySource(vc, grid, names, labels[1])


def _native_virtual_coarse(
    coef: np.ndarray, coarses: Sequence[Source], target: Source
) -> AlignedSource | None:
    """The virtual coarse image of (V2) on a native coarse grid, when every coarse image is on
    its own grid (else None): ``sum a_i C_i + b`` of native pixels, reprojected onto the fine
    grid like the coarse images themselves. A base method that works on native coarse pixels
    (FSDAF, Fit-FC) then sees a coarse pair on that grid, as it would with one real pair,
    whatever the ratio. The grid is the target's: a pair's coarse image on another grid is
    averaged over the target's native footprints (on cia-2pair with the pairs' MODIS at
    500 m in UTM and the target in sinusoidal, RMSE 0.03467, against 0.03697 on the pairs'
    grid with the target averaged, and 0.03418 with every image on one grid). The subset
    coefficients follow the native pixels' validity (the fine-grid virtual pair's also follow
    the fine images').
    """
    if not all(isinstance(c, AlignedSource) and c.native_pixels for c in [*coarses, target]):
        return None
    names = target.band_names
    grid = target.native.grid  # type: ignore[attr-defined]
    if all(c.native.grid.same_as(grid) for c in coarses):  # type: ignore[attr-defined]
        arrays = [c.native._assemble() for c in coarses]  # type: ignore[attr-defined]
    else:
        ng = NativeGrid(target.grid, grid, resolution_ratio(grid, target.grid))
        (i0, j0), (h, w) = ng.offset, ng.shape
        rows = slice(max(i0, 0), min(i0 + h, grid.height))
        cols = slice(max(j0, 0), min(j0 + w, grid.width))
        arrays = []
        for c in coarses:
            full = np.full((len(names), grid.height, grid.width), np.nan, np.float32)
            values = ng.values(c)  # its native values, or its footprint means on this grid
            full[:, rows, cols] = values[
                :, rows.start - i0 : rows.stop - i0, cols.start - j0 : cols.stop - j0
            ]
            arrays.append(full)
    sources = [ArraySource(a, grid, names) for a in arrays]
    _, vc = VirtualPair(list(sources), list(sources), coef).read(None, 0)
    label = "virtual coarse image (VIPSTF, native grid)"
    # AlignedSource reads its native image through Source methods only (an in-memory one here).
    native_vc: Any = ArraySource(vc, grid, names, label)
    return AlignedSource(native_vc, target.grid, coarses[0].resampling)  # type: ignore[attr-defined]


def base_class(name: Any) -> type[FusionMethod]:
    """The base method ``name``: ``sw`` (VIPSTF-SW's residual filter, VIPSTF's own), or a
    registered method, refused unless it accepts one pair."""
    from stfusion.methods import available, get_method, loadable

    if name == SW_BASE:
        from stfusion.methods.vipstf_sw import SpatialWeighting

        return SpatialWeighting
    if not isinstance(name, str) or name not in available() or name == VIPSTF.name:
        names = [
            m for m, cls in loadable()[0].items() if m != VIPSTF.name and cls.tags.accepts_pairs(1)
        ]
        raise InvalidParameterError(
            f"vipstf: base={name!r} is not a registered one-pair method; choose one of "
            f"{', '.join(names)} (see `stfusion methods`), or sw (VIPSTF-SW)."
        )
    cls = get_method(name)
    if not cls.tags.accepts_pairs(1):
        raise InvalidParameterError(
            f"vipstf: base={name} needs at least {cls.tags.min_pairs} pairs; the base method runs "
            "on one (virtual) pair. Choose a method that accepts one pair (fsdaf, fitfc, "
            "starfm, additive, ...)."
        )
    return cls


# ------------------------------------------------------------- --multi-pair on other methods

#: ``--multi-pair`` (predict, series, bench; ``multi_pair=`` in Python): how a one-pair method
#: uses several pairs. ``vip``: VIPSTF over it (one virtual pair from all of them). ``none``:
#: it does not combine pairs (predict refuses several; series predicts from each pair and
#: blends the predictions with temporal weights).
MULTI_PAIR_CHOICES = ("none", "vip")


def one_pair_method(cls: type[FusionMethod]) -> bool:
    """Whether ``--multi-pair`` applies to ``cls``: it takes exactly one pair (FSDAF, Fit-FC,
    FSDAF 2.0, the one-pair deep methods). Methods that take several pairs combine them
    their own way (STARFM, ESTARFM, the ensemble)."""
    return cls.tags.min_pairs == 1 and cls.tags.max_pairs == 1


def check_multi_pair(multi_pair: str) -> str:
    if multi_pair not in MULTI_PAIR_CHOICES:
        raise InvalidParameterError(
            f"multi_pair={multi_pair!r}: choose {' or '.join(MULTI_PAIR_CHOICES)}."
        )
    return multi_pair


def uses_vip(cls: type[FusionMethod], pairs: int, multi_pair: str) -> bool:
    """Whether ``cls`` on ``pairs`` pairs runs as VIPSTF over it under ``multi_pair``."""
    return check_multi_pair(multi_pair) == "vip" and pairs >= 2 and one_pair_method(cls)


@keywords_checked
def make_estimator(
    method: str,
    params: Sequence[str] | dict[str, Any] = (),
    *,
    pairs: int = 1,
    multi_pair: str = "none",
) -> FusionMethod:
    """The estimator ``stfusion predict --method METHOD --multi-pair ...`` runs on ``pairs``
    pairs: VIPSTF over ``method`` (its parameters as ``base_params``) when ``multi_pair`` is
    ``"vip"``, ``method`` takes one pair and there are two or more; else ``method`` itself.

    ``params``: ``NAME=VALUE`` strings (parsed by the method) or a dict of values.
    """
    from stfusion.methods import get_method

    cls = get_method(method)
    kwargs = cls.parse_params(params) if not isinstance(params, dict) else dict(params)
    if uses_vip(cls, pairs, multi_pair):
        return VIPSTF(base=cls.name, base_params=kwargs)
    return cls(**kwargs)
