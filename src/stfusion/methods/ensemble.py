"""Ensemble with reliability: several methods combined per pixel by their local reliability.

Members ``m = 1..M`` (registered methods, ``members=fitfc,fsdaf,starfm``) each predict the
target, ``P_m``. Each member's local error ``E_m`` is measured where the truth is known, never
on the target date's fine image (the method never receives it: ``fit(pairs)``,
``prepare(coarse_target)``):

- **leave-one-pair-out** (``reliability=loo``; ``auto`` with >= 2 pairs when every member can
  run on the other pairs): for each pair k, the member is fitted on the other pairs and
  predicts pair k's fine image from its coarse image ``C_k``; the squared error against the
  known ``F_k``, averaged over the bands, the pixels of each coarse cell and the pairs k, is
  ``E_m`` per coarse cell.
- **consensus** (``reliability=consensus``; ``auto`` otherwise, with >= 3 members): the
  squared distance of the member's prediction to the mean of the other members' predictions,
  averaged over the bands and the pixels of each coarse cell. With independent member errors
  its expectation is the member's own error variance plus the same share of the others' for
  every member, so it ranks the members as their errors do; members with correlated errors
  (FSDAF and FSDAF 2.0, a student and its teacher) look better than they are. Two members
  are equally far from each other: ``cross_scale`` is used (logged).
- **cross-scale consistency** (``reliability=cross_scale``; ``auto`` with two members): the
  member's prediction of the target aggregated to coarse cells (block means) against the
  coarse target aggregated the same way, plus the fine-coarse offset per cell the pairs show
  (``mean_cell F_k - mean_cell C_k``, averaged over k; ``offset=false`` drops it); the squared
  difference averaged over bands is ``E_m`` per cell.

Coarse cells are R x R blocks of fine pixels anchored at the scene origin (R: the ratio,
rounded; partial blocks at the far edges). ``E_m`` is smoothed with a ``window`` x ``window``
mean over cells (NaN-aware; cells without data take the member's scene mean) and interpolated
bilinearly from the cell centres to the fine pixels. The weights::

    w_m(x) = (1 / (E_m(x) + eps)) / sum_{j valid at x} (1 / (E_j(x) + eps))

over the members whose prediction is finite in every band at x (a member NaN there drops
out; no member valid: NaN). ``eps = eps_rel * mean_m(mean_x E_m)`` keeps a member with a
near-zero error from taking all the weight from numerical noise alone. The weighted mean is
``P = sum_m w_m P_m``.

Coarse consistency (``consistency=auto``): the residual per cell ``r = mean_cell C_0 + O -
mean_cell P`` (``O`` the pairs' fine-coarse offset, as in cross-scale consistency) is added
back, interpolated bilinearly, times a per-band Wiener gain from the departures of the coarse
images from the fine ones' block means at the pair dates
(:func:`stfusion.methods.cells.consistency_gain`): 1 for simulated coarse images, 0 for real
sensor pairs, whose departures are as large as the residual.

With two or more pairs, a one-pair member (FSDAF, Fit-FC, FSDAF 2.0, ...) is skipped
(``multi_pair=none``, the default) or runs as VIPSTF over it (``multi_pair=vip``: one virtual
pair from all the pairs, as ``--multi-pair vip``); in leave-one-pair-out it then runs on the
other pairs the same way (VIPSTF with two or more left, the method itself with one, never
seeing the left-out pair's fine image). Members that cannot run on the number of pairs given
(ESTARFM: exactly two; ROBOT: two or more) are skipped with a log line and a warning
(STFusionWarning; none for the default members' ESTARFM and ROBOT on one pair). Every
member's prediction and the weights are computed scene-wide in ``prepare`` (the
leave-one-pair-out errors in ``fit``), each member run window by window under the run's
``--mem-limit``, and kept (``(M (bands + 1)) * H * W * 4`` bytes) in memory within the run's
state budget, else in temporary files (:class:`stfusion.io.spill.SpillArray`), so a window
only reads its part: tiled runs equal whole-scene runs.

Quality layer: ``uncertainty_<band>`` is the weighted standard deviation of the members'
predictions; the extra bands ``weight_<member>`` hold each member's weight (NaN where no
member is valid; 0 where that member is invalid).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from rasterio.windows import Window

from stfusion.coarse import block_mean, integer_ratio
from stfusion.errors import InvalidParameterError, warn
from stfusion.io import Source, scan_values
from stfusion.io.spill import SpillArray, state_bytes
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.cells import cells_to_fine, consistency_gain, finite_mean, smooth_cells
from stfusion.methods.deep import (
    fitted_training_dates,
    fitted_training_sites,
    shipped_training,
)
from stfusion.methods.params import BandRoles, Interval, MethodTags, StrOptions, Text
from stfusion.methods.vipstf import MULTI_PAIR_CHOICES, VIPSTF, make_estimator, uses_vip
from stfusion.scene import Scene
from stfusion.tiling import current_mem_limit_mb, release_freed_memory, stage, windows_said

log = logging.getLogger(__name__)

DEFAULT_MEMBERS = "fitfc,fsdaf,starfm,estarfm,robot"


def _member_class(name: str) -> type[FusionMethod]:
    from stfusion.methods import available, get_method

    if name not in available() or name == Ensemble.name:
        names = [m for m in available() if m != Ensemble.name]
        raise InvalidParameterError(
            f"ensemble: member {name!r} is not a registered method; choose from "
            f"{', '.join(names)} (see `stfusion methods`)."
        )
    return get_method(name)


def _runs_on(cls: type[FusionMethod], n: int, multi_pair: str) -> bool:
    """Whether ``cls`` can predict from ``n`` pairs, itself or as VIPSTF over it."""
    if cls.tags.accepts_pairs(n):
        return True
    return uses_vip(cls, n, multi_pair) and VIPSTF.tags.accepts_pairs(n)


def reliability_weights(
    preds: np.ndarray, errors: np.ndarray, eps_rel: float, scale: float | None = None
) -> np.ndarray:
    """Per-pixel weights ``(M, H, W)`` from predictions ``(M, band, H, W)`` and fine-grid
    local errors ``(M, H, W)``: ``1 / (E + eps)`` normalised over the valid members;
    ``eps = eps_rel * scale``, ``scale`` the mean of the finite errors (given: of the whole
    scene, when these are some of its rows)."""
    valid = np.isfinite(preds).all(axis=1)
    if scale is None:
        scale = float(np.nanmean(errors)) if np.isfinite(errors).any() else 0.0
    eps = max(eps_rel * scale, 1e-12)
    raw = np.where(valid, 1.0 / (np.where(np.isfinite(errors), errors, np.inf) + eps), 0.0)
    total = raw.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, raw / np.where(total > 0, total, 1.0), np.nan)


class Ensemble(FusionMethod):
    """Reliability-weighted ensemble of registered methods (see the module docstring).

    Member parameters: ``member_params`` (``{"starfm": {"window": 31}}``) in Python,
    ``--param starfm.window=31`` on the command line.
    """

    name = "ensemble"
    title = "Ensemble with reliability (leave-one-pair-out / consensus / cross-scale weights)"
    paper = "stfusion: per-pixel inverse local error weighting of several methods"
    #: exact: a convex combination of exact members (the default members are); the ratio:
    #: for the default members fitfc and fsdaf.
    tags = MethodTags(
        min_pairs=1,
        max_pairs=None,
        needs_ratio=True,
        exact=("unchanged", "uniform_change"),
        quality=("uncertainty", "bands"),
    )
    params = (
        Param(
            "members",
            DEFAULT_MEMBERS,
            Text("a comma-separated list of registered methods"),
            "",
            "comma-separated registered methods; those that cannot run on the pairs given "
            "are skipped (ESTARFM: two pairs; ROBOT: two or more; FSDAF, Fit-FC: one, or "
            "any number through VIPSTF, see multi_pair)",
        ),
        Param(
            "member_params",
            None,
            (dict, None),
            "",
            "parameters of the members (Python: {member: {name: value}}; command line: "
            "--param MEMBER.NAME=VALUE, e.g. starfm.window=31)",
        ),
        Param(
            "multi_pair",
            "none",
            StrOptions(MULTI_PAIR_CHOICES),
            "",
            "with two or more pairs, a one-pair member (fsdaf, fitfc, ...) is skipped (none) "
            "or runs as VIPSTF over it (vip: one virtual pair from all the pairs)",
        ),
        Param(
            "reliability",
            "auto",
            StrOptions(("auto", "loo", "cross_scale", "consensus")),
            "",
            "how each member's local error is measured: loo (leave-one-pair-out at the "
            "pair dates), cross_scale (prediction aggregated to coarse cells vs the coarse "
            "target), consensus (distance to the mean of the other members; >= 3 members, "
            "else cross_scale), auto (loo with >= 2 pairs when every member can run on the "
            "others; else consensus with >= 3 members; else cross_scale)",
        ),
        Param(
            "offset",
            True,
            bool,
            "",
            "cross-scale: compare with the coarse target plus the fine-coarse offset per "
            "coarse cell seen in the pairs (mean_cell F_k - mean_cell C_k)",
        ),
        Param(
            "window",
            3,
            Interval(Integral, 1, None, closed="left"),
            "coarse pixels",
            "side of the mean filter over coarse cells applied to the local error maps",
            scene_bound="coarse",
        ),
        Param(
            "bands",
            "auto",
            BandRoles(),
            "",
            "band roles for the members that take them (starfm, fitfc): auto (from the band "
            "names), a preset (landsat7, landsat8, modis) or e.g. green,red,nir in file order; "
            "a member's own MEMBER.bands wins",
        ),
        Param(
            "consistency",
            "auto",
            StrOptions(("auto", "off")),
            "",
            "auto: add back the part of the coarse target's residual (coarse target plus the "
            "pairs' fine-coarse offset, minus the prediction's cell means) that the pairs "
            "show to be the prediction's error, per band (1 where the coarse images are block "
            "means of the fine ones, 0 for real sensor pairs); off: the weighted mean alone",
        ),
        Param(
            "eps_rel",
            0.05,
            Interval(Real, 1e-9, 1e6),
            "fraction of the mean squared error",
            "eps of w = 1 / (E + eps), as a fraction of the members' mean squared error",
        ),
    )

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    members: str
    member_params: dict[str, dict[str, Any]] | None
    multi_pair: str
    reliability: str
    offset: bool
    window: int
    bands: str
    consistency: str
    eps_rel: float

    def __init__(
        self,
        *,
        members: str = DEFAULT_MEMBERS,
        member_params: dict[str, dict[str, Any]] | None = None,
        multi_pair: str = "none",
        reliability: str = "auto",
        offset: bool = True,
        window: int = 3,
        bands: str = "auto",
        consistency: str = "auto",
        eps_rel: float = 0.05,
    ) -> None:
        super().__init__(
            members=members,
            member_params=member_params,
            multi_pair=multi_pair,
            reliability=reliability,
            offset=offset,
            window=window,
            bands=bands,
            consistency=consistency,
            eps_rel=eps_rel,
        )

    # ---------------------------------------------------------------------- parameters

    @classmethod
    def parse_params(cls, items: Sequence[str]) -> dict[str, Any]:
        """``MEMBER.NAME=VALUE`` items go to that member's own parser."""
        own = [i for i in items if "." not in i.split("=", 1)[0]]
        out = super().parse_params(own)
        grouped: dict[str, list[str]] = {}
        for item in items:
            key = item.split("=", 1)[0]
            if "." in key:
                member, rest = item.strip().split(".", 1)
                grouped.setdefault(member, []).append(rest)
        if grouped:
            out["member_params"] = {m: _member_class(m).parse_params(v) for m, v in grouped.items()}
        return out

    def _names(self) -> list[str]:
        names = [m.strip() for m in self.members.split(",") if m.strip()]
        if not names:
            raise InvalidParameterError("ensemble: give at least one member.")
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"ensemble: members={self.members!r} repeats a name.")
        return names

    def _validate_params(self) -> None:
        mp = self.member_params
        names = self._names()
        for key in mp or {}:
            if key not in names:
                raise InvalidParameterError(
                    f"ensemble: member_params for {key!r}, which is not a member ({self.members})."
                )
        for n in names:
            self._new(n)  # unknown member or parameter: refused now

    def shipped_training(self, pairs: int) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        # the members that run on this many pairs, as _fit chooses them
        return [
            t for n in self._running(pairs) for t in shipped_training(self._new(n, pairs), pairs)
        ]

    def _running(self, pairs: int) -> list[str]:
        """The members that run on ``pairs`` pairs, in the order given."""
        return [n for n in self._names() if _runs_on(_member_class(n), pairs, self.multi_pair)]

    def _new(self, name: str, pairs: int = 1) -> FusionMethod:
        """Member ``name`` as it runs on ``pairs`` pairs (VIPSTF over a one-pair member on
        two or more, under ``multi_pair=vip``)."""
        cls = _member_class(name)  # refuses an unregistered name or the ensemble itself
        kwargs = dict((self.member_params or {}).get(name, {}))
        if self.bands != "auto" and any(p.name == "bands" for p in cls.params):
            kwargs.setdefault("bands", self.bands)
        return make_estimator(name, kwargs, pairs=pairs, multi_pair=self.multi_pair)

    # ------------------------------------------------------------------------ contract

    def halo(self) -> int:
        return 0

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        # A window holds every member's block (float32), the weighted mean and variance and
        # their float64 temporaries (predict_window_quality), the weights, the output.
        members = len(getattr(self, "members_", None) or self._names())
        return 4.0 * members * bands + 8.0 * 5 * bands + 12.0 * members + 4.0 * bands + 64.0

    def fitted_tags(self) -> dict[str, Any]:
        # the members that ran and how reliability was measured (STFUSION_PARAMS holds the
        # members asked for, some of which may not run on this many pairs)
        gain = getattr(self, "consistency_gain_", None)  # known once prepared
        return {
            "STFUSION_ENSEMBLE": {
                "members_run": list(self.members_),
                "reliability": self.mode_,
                "consistency_gain": None if gain is None else np.round(gain, 4).tolist(),
            }
        }

    def _fit(self, scene: Scene) -> None:
        self.pair_departures_: list[np.ndarray] | None = None  # of these pairs, when asked
        n = len(scene.pairs)
        active = self._running(n)
        skipped, vip_would = [], []
        for name in self._names():
            cls = _member_class(name)
            if name in active:
                if uses_vip(cls, n, self.multi_pair):
                    log.info("ensemble: member %s runs as VIPSTF over it on %d pairs", name, n)
            else:
                skipped.append(name)
                if uses_vip(cls, n, "vip") and VIPSTF.tags.accepts_pairs(n):
                    vip_would.append(name)
                hint = " (multi_pair=vip runs it as VIPSTF)" if name in vip_would else ""
                log.info(
                    "ensemble: member %s skipped: it cannot run on %d pair(s)%s", name, n, hint
                )
        if not active:
            raise InvalidParameterError(
                f"ensemble: none of the members {self.members} can run on {n} pair(s)."
            )
        if skipped:
            self._say_skipped(skipped, vip_would, active, n)
        for name in active:
            self._new(name, n).check_scene_params(scene.grid, scene.ratio)
        self.members_ = active
        self.training_dates_: list[str] = []  # the members' (trained weights), as they run
        self.training_sites_: list[Any] = []
        loo_ok = n >= 2 and all(_runs_on(_member_class(m), n - 1, self.multi_pair) for m in active)
        mode = self.reliability
        if mode == "auto":
            # without leave-one-pair-out, the members' consensus: measured better than
            # cross-scale consistency with members of different families, one pair and two
            # (docs/methods/ensemble.md)
            mode = "loo" if loo_ok else "consensus" if len(active) >= 3 else "cross_scale"
            if n >= 2 and not loo_ok:
                log.info(
                    "ensemble: %s reliability: not every member (%s) can run on %d pair(s) "
                    "for leave-one-pair-out",
                    mode.replace("_", "-"),
                    ",".join(active),
                    n - 1,
                )
        elif mode == "consensus" and len(active) < 3:
            # two members are each other's only consensus: equally far, equal weights
            mode = "cross_scale"
            log.info(
                "ensemble: consensus needs >= 3 members, %d run on %d pair(s) (%s): "
                "cross-scale reliability",
                len(active),
                n,
                ",".join(active),
            )
        elif mode == "loo" and not loo_ok:
            raise InvalidParameterError(
                f"ensemble: reliability=loo needs >= 2 pairs and every member able to run on "
                f"{n - 1} pair(s); members {','.join(active)}, {n} pair(s). Use "
                "reliability=cross_scale or auto."
            )
        self.mode_ = mode
        # Reliability is measured per coarse cell: without a ratio the cells would silently be
        # single fine pixels (members that need no ratio, STARFM and ESTARFM, ran without one).
        self.cell_ = max(1, round(scene.ratio or integer_ratio(scene.ratio, "ensemble")))
        if mode == "loo":
            self.cell_errors_ = np.stack([self._loo_errors(m, scene) for m in active])

    def _say_skipped(self, skipped: list[str], vip: list[str], active: list[str], n: int) -> None:
        """Warn about members left out for the number of pairs (a log line alone let
        ``members="fitfc,fsdaf,starfm"`` on two pairs become STARFM alone, unseen); not about
        the default members' (or some of them) ESTARFM and ROBOT on one pair, which nothing
        can change."""
        given = {m.strip() for m in self.members.split(",") if m.strip()}
        if not (vip or len(active) == 1 or not given <= set(DEFAULT_MEMBERS.split(","))):
            return
        how = (
            f" (give --param multi_pair=vip, Python multi_pair='vip', to run {', '.join(vip)} "
            "as VIPSTF over all the pairs)"
        )
        left = (
            f"the prediction is {active[0]}'s alone, not an ensemble"
            if len(active) == 1
            else f"the ensemble combines {', '.join(active)}"
        )
        warn(
            f"ensemble: member(s) {', '.join(skipped)} skipped: they cannot run on {n} "
            f"pair(s){how if vip else ''}; {left}."
        )

    # Scene-wide passes read blocks of whole rows, a multiple of the cell high (so block
    # means over cells are those of the whole scene) and within the scan budget.
    def _row_blocks(self, values_per_row: int) -> list[tuple[int, int]]:
        h, r = self.scene_.grid.height, self.cell_
        step = max(r, scan_values() // max(values_per_row, 1) // r * r)
        return [(i, min(h, i + step)) for i in range(0, h, step)]

    def _rows(self, src: Source, i0: int, i1: int) -> np.ndarray:
        return src.read(Window(0, i0, self.scene_.grid.width, i1 - i0))

    def _spill(self, arrays: int) -> bool:
        """Whether the member predictions and weights (``arrays`` images of the scene) go to
        temporary files: when they exceed the run's state budget (``--mem-limit``)."""
        h, w = self.scene_.grid.shape
        return arrays * h * w * 4 > state_bytes()

    def _member_predict(self, name: str, scene: Scene, target: Source, spill: bool) -> SpillArray:
        """Member ``name``'s prediction of ``target``, ``(y, x, band)``, run window by window
        under the run's memory limit and kept in memory or, with ``spill``, on disk."""
        est = self._new(name, len(scene.pairs))
        h, w = scene.grid.shape
        out = SpillArray((h, w, scene.count), np.float32, spill=spill, fill=np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(scene)
            est.prepare(target)
            # each window written as it comes: a strip of whole rows went over --mem-limit
            # on wide scenes (593 MB at 300 on 3000 x 3000, more the wider)
            windows = est.plan(current_mem_limit_mb())
            for i, win in enumerate(windows):
                windows_said(i, len(windows))
                p = np.asarray(est.predict_window(win), np.float32)
                out.write_block(int(win.row_off), int(win.col_off), np.moveaxis(p, 0, -1))
        # Members with trained weights: their training dates, so the bench can refuse a
        # target among them (as for the member run alone).
        dates = fitted_training_dates(est)
        if dates:
            self.training_dates_ = sorted(set(dates) | set(self.training_dates_))
            self.training_sites_ = [*self.training_sites_, *fitted_training_sites(est)]
        del est
        release_freed_memory()  # the members' peaks do not add up under --mem-limit
        return out

    def _cell_means(self, image: SpillArray | Source) -> np.ndarray:
        """Block means over the cells of a member's ``(y, x, band)`` prediction or of a
        source, read a block of rows at a time: ``(band, ny, nx)``."""
        # Generators: one block of rows in memory at a time.
        if isinstance(image, SpillArray):
            blocks = self._row_blocks(image.shape[1] * image.shape[2])
            rows = (np.moveaxis(image.read(i0, i1), -1, 0) for i0, i1 in blocks)
        else:
            blocks = self._row_blocks(image.count * self.scene_.grid.width)
            rows = (self._rows(image, i0, i1) for i0, i1 in blocks)
        return np.concatenate([block_mean(r, self.cell_, np.float64) for r in rows], axis=-2)

    def _loo_errors(self, name: str, scene: Scene) -> np.ndarray:
        """Mean squared error per coarse cell of the member predicting each pair's fine
        image from the other pairs (only known images are read)."""
        n = len(scene.pairs)

        def error(k: int) -> np.ndarray:
            with stage(f"reliability: {name} predicting pair {k + 1} of {n} from the others"):
                return self._loo_error(name, scene, k)

        return finite_mean((error(k) for k in range(n)), np.nan)

    def _loo_error(self, name: str, scene: Scene, k: int) -> np.ndarray:
        """Squared error per coarse cell of member ``name`` predicting pair ``k``'s fine
        image from the other pairs."""
        rest = [p for i, p in enumerate(scene.pairs) if i != k]
        dates = scene.pair_dates
        sub = Scene(
            grid=scene.grid,
            pairs=rest,
            target=None,
            ratio=scene.ratio,
            band_names=scene.band_names,
            notes=list(scene.notes),
            pair_dates=None if dates is None else tuple(d for i, d in enumerate(dates) if i != k),
            target_date=None if dates is None else dates[k],
            coarse_scaling=scene.coarse_scaling,
        )
        fine_k, coarse_k = scene.pairs[k]
        pred = self._member_predict(name, sub, coarse_k, self._spill(scene.count))
        cells = []
        for i0, i1 in self._row_blocks(scene.count * scene.grid.width):
            p = np.moveaxis(pred.read(i0, i1), -1, 0)
            sq = ((p - self._rows(fine_k, i0, i1)).astype(np.float64) ** 2).mean(axis=0)
            cells.append(block_mean(sq, self.cell_, np.float64))
        return np.concatenate(cells, axis=0)

    def _prepare(self, target: Source) -> None:
        scene = self.scene_
        m = len(self.members_)
        spill = self._spill(m * (scene.count + 1))
        preds = []
        for i, name in enumerate(self.members_, start=1):
            with stage(f"member {name} ({i} of {m})"):
                preds.append(self._member_predict(name, scene, target, spill))
        if self.mode_ == "cross_scale":
            tc = self._cell_means(target)  # (band, ny, nx)
            if self.offset:
                tc = tc + self._pair_offset()
            errs = []
            for p in preds:
                d = (self._cell_means(p) - tc) ** 2
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    errs.append(np.nanmean(d, axis=0))
            cells = np.stack(errs)
        elif self.mode_ == "consensus":
            cells = self._consensus_errors(preds)
        else:
            cells = self.cell_errors_
        win = int(self.window)
        smooth = np.stack([smooth_cells(c, win) for c in cells])
        shape = scene.grid.shape
        blocks = self._row_blocks(scene.grid.width * (m * (scene.count + 1)))
        # eps of the weights: the mean of the finite fine-grid errors of the whole scene.
        total, count = 0.0, 0
        for i0, i1 in blocks:
            fine = np.stack([cells_to_fine(c, self.cell_, shape, (i0, i1)) for c in smooth])
            ok = np.isfinite(fine)
            total += float(fine[ok].sum())
            count += int(ok.sum())
        scale = total / count if count else 0.0
        weights = SpillArray((*shape, m), np.float32, spill=spill, fill=np.nan)
        for i0, i1 in blocks:
            fine = np.stack([cells_to_fine(c, self.cell_, shape, (i0, i1)) for c in smooth])
            rows = np.stack([np.moveaxis(p.read(i0, i1), -1, 0) for p in preds])
            wts = reliability_weights(rows, fine, float(self.eps_rel), scale)
            weights.write(i0, np.moveaxis(wts.astype(np.float32), 0, -1))
        self.cell_errors_used_ = cells
        self.member_preds_ = preds
        self.weight_map_ = weights
        self.residual_cells_: np.ndarray | None = None
        self.consistency_gain_: np.ndarray | None = None
        if self.consistency == "auto":
            self._coarse_consistency(target)

    def _coarse_consistency(self, target: Source) -> None:
        """The residual per coarse cell of the weighted mean against the coarse target (plus
        the pairs' offset), times each band's gain (:func:`consistency_gain`)."""
        scene = self.scene_
        noise = self._pair_departures()
        w = scene.grid.width
        blocks = self._row_blocks(w * (len(self.members_) * (scene.count + 1) + scene.count))
        combined = np.concatenate(
            [
                block_mean(self._combine(Window(0, i0, w, i1 - i0), False)[0], self.cell_, float)
                for i0, i1 in blocks
            ],
            axis=-2,
        )
        residual = self._cell_means(target) + self._pair_offset() - combined
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            noise_var = np.nanmean([np.nanvar(n, axis=(1, 2)) for n in noise], axis=0)
            gain = consistency_gain(noise_var, np.nanvar(residual, axis=(1, 2)), len(noise))
        self.consistency_gain_ = gain
        log.info("ensemble: coarse consistency gain per band %s", np.round(gain, 3).tolist())
        if gain.any():
            kept = np.where(np.isfinite(residual), residual, 0.0)
            self.residual_cells_ = kept * gain[:, None, None]

    def _consensus_errors(self, preds: list[SpillArray]) -> np.ndarray:
        """Per member and coarse cell, the squared distance of its prediction to the mean of
        the other members' (NaN-aware), averaged over the bands and the cell's pixels: with
        independent member errors its expectation ranks the members as their own error
        variances do (the others' errors add the same to every member, divided by M - 1)."""
        m = len(preds)
        count = preds[0].shape[2]
        cells: list[list[np.ndarray]] = [[] for _ in range(m)]
        for i0, i1 in self._row_blocks(self.scene_.grid.width * count * m):
            # one member's rows at a time: a sum and a count, then each member against them
            total = np.zeros((count, i1 - i0, self.scene_.grid.width))
            n = np.zeros(total.shape, np.int32)
            for p in preds:
                rows = np.moveaxis(p.read(i0, i1), -1, 0)
                ok = np.isfinite(rows)
                total += np.where(ok, rows, 0.0)
                n += ok
            for k, p in enumerate(preds):
                rows = np.moveaxis(p.read(i0, i1), -1, 0).astype(np.float64)
                ok = np.isfinite(rows)
                with np.errstate(invalid="ignore", divide="ignore"):
                    others = (total - np.where(ok, rows, 0.0)) / (n - ok)
                    sq = (rows - others) ** 2
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cells[k].append(block_mean(np.nanmean(sq, axis=0), self.cell_, np.float64))
        return np.stack([np.concatenate(c, axis=0) for c in cells])

    @property
    def preds_(self) -> np.ndarray:
        """The members' predictions ``(member, band, y, x)`` (read whole, also if spilled)."""
        return np.stack([np.moveaxis(p.array(), -1, 0) for p in self.member_preds_])

    @property
    def weights_(self) -> np.ndarray:
        """The members' weights ``(member, y, x)`` (read whole, also if spilled)."""
        return np.moveaxis(self.weight_map_.array(), -1, 0)

    def _pair_departures(self) -> list[np.ndarray]:
        """Per pair, ``mean_cell C_k - mean_cell F_k`` per band and cell: the coarse image's
        departure from the fine one's block means (read once per fit, for the cross-scale
        offset and the coarse-consistency step)."""
        kept = getattr(self, "pair_departures_", None)
        if kept is None:
            kept = [self._cell_means(c) - self._cell_means(f) for f, c in self.scene_.pairs]
            self.pair_departures_ = kept
        return kept

    def _pair_offset(self) -> np.ndarray:
        """Per cell and band, the mean over the pairs of ``mean_cell F_k - mean_cell C_k``:
        the fine-coarse offset (calibration, footprint) the pairs show, 0 where unknown."""
        return -finite_mean(self._pair_departures(), 0.0)

    def predict_window(self, window: Window) -> np.ndarray:
        return self._combine(window, spread=False)[0]

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        pred, unc, wmap = self._combine(window, spread=True)
        assert unc is not None
        return pred, {"uncertainty": unc, "bands": np.ascontiguousarray(wmap)}

    def _combine(
        self, window: Window, spread: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """The weighted mean of the members over ``window``, with ``spread`` also their
        weighted standard deviation (the quality layer's uncertainty; its float64
        temporaries are the window's largest, so a run without --quality skips it), and
        the weights."""
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        # One member at a time (float32 blocks, float64 sums in member order): the window's
        # memory grows with the members, not with members x float64 temporaries.
        blocks = [np.moveaxis(sp.read_block(r0, r1, c0, c1), -1, 0) for sp in self.member_preds_]
        wmap = np.moveaxis(self.weight_map_.read_block(r0, r1, c0, c1), -1, 0)
        wz = np.where(np.isfinite(wmap), wmap, 0.0).astype(np.float64)  # (member, y, x)

        def member(m: int) -> np.ndarray:
            b = blocks[m]
            return np.where(np.isfinite(b), b, 0.0).astype(np.float64)

        mean = np.zeros(blocks[0].shape)
        for m in range(len(blocks)):
            mean += wz[m] * member(m)
        none = ~np.isfinite(wmap).any(axis=0) | (wz.sum(axis=0) == 0)
        pred = np.where(none, np.nan, mean + self._added(r0, r1, c0, c1)).astype(np.float32)
        if not spread:
            return pred, None, wmap
        var = np.zeros(blocks[0].shape)
        for m in range(len(blocks)):
            var += wz[m] * (member(m) - mean) ** 2
        return pred, np.where(none, np.nan, np.sqrt(var)).astype(np.float32), wmap

    def _added(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray | float:
        """The coarse-consistency step's residual, bilinear, over rows r0:r1, cols c0:c1."""
        added = getattr(self, "residual_cells_", None)
        if added is None:
            return 0.0
        shape = self.scene_.grid.shape
        return np.stack([cells_to_fine(a, self.cell_, shape, (r0, r1), (c0, c1)) for a in added])

    def quality_extra_names(self) -> list[str]:
        return [f"weight_{m}" for m in getattr(self, "members_", self._names())]
