"""Deep fusion methods: DCSTFN (Tan et al. 2018), EDCSTFN (Tan et al. 2019), GAN-STFM (Tan et al.
2022).

The networks, training and tiled inference live in :mod:`stfusion.dl` (which needs torch);
this module only imports it when a method is fitted, so listing methods, running classical
ones and building these estimators work without torch. Without it, ``fit`` raises
:class:`stfusion.errors.MissingDependencyError` with the install command.

``fit(pairs)`` loads the ``weights`` (a checkpoint written by ``stfusion train``, see
docs/commands/train.md) and refuses inputs unlike the training data: another band count,
other band names (when both sides have real names), or values 20x or more off the training
values (another scale: reflectance x10000 vs 0-1). Learned state: ``predictor_`` (the
network), ``training_dates_`` (the checkpoint's training dates; the bench refuses to score
a model on its own training date, and ``prepare`` warns (STFusionWarning) when the target
date, given to ``fit``/``open_scene`` or read from the coarse target's file name, is one of
them: such a prediction is no honest test) and ``overlap_``.

Prediction cuts the scene into ``tile`` x ``tile`` tiles anchored at the scene origin, each
predicted with ``overlap`` pixels of context and cropped (see :mod:`stfusion.dl.infer`):
with ``overlap`` >= the receptive field (the default), no seam can appear, and any window
plan gives the same output bit for bit.

``weights="demo"`` (the default; also ``shipped``) uses the small band-agnostic checkpoints
shipped with stfusion (``<method>_multisite.ckpt``), trained on CIA, BOREAS, Sentinel-2
and Kranj scenes of ../shared/data, never on the target date of a one-pair named case: any
band count, each network a correction to a physical baseline (docs/deep.md). Band-tied
checkpoints of format 1 (written before 2026-12-03) still load, with their checks on band
count, names and scale. On your own scenes, fine-tune them (``stfusion train``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from rasterio.windows import Window

from stfusion.errors import InvalidParameterError, warn
from stfusion.io import Source
from stfusion.methods.base import FusionMethod, Param
from stfusion.methods.params import AUTO, Constraint, Interval, MethodTags, StrOptions, Text
from stfusion.run_config import PRECISIONS, is_inference_device, shipped_weights
from stfusion.scene import Scene

#: Training dates of the shipped checkpoints (checked against the files by the tests): CIA,
#: BOREAS, the Sentinel-2 scenes (placeholder dates) and Kranj of
#: tools/make_training_catalog.py.
DEMO_DATES = (
    "2001-10-08",
    "2001-10-17",
    "2001-05-24",
    "2001-08-12",
    "2016-01-01",
    "2016-01-31",
    "2016-03-01",
    "2016-03-31",
    "2016-04-30",
    "2020-03-08",
    "2020-04-02",
)


@dataclass(frozen=True)
class DeviceName(Constraint):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (torch's device names)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return is_inference_device(value)

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda' or 'cuda:N' (the GPU numbered N)"

    def parse(self, text: str) -> Any:
        if not self.is_satisfied_by(text):
            raise ValueError(text)
        return text


def demo_weights(name: str) -> Path:
    """Path of the shipped checkpoint of method ``name`` (``weights=demo``; may not exist)."""
    return shipped_weights(name)


@dataclass(frozen=True)
class TrainingSite:
    """Where and when weights were trained: a site's name, dates, its scene's shape and,
    when the checkpoint records them, CRS and bounds. A target date that is a training date
    of no site that could be the target's scene (another shape, or a footprint elsewhere) is
    not a training date there: a scene of 2016-03-01 elsewhere is not the Sentinel-2 site."""

    name: str
    dates: tuple[str, ...]
    shape: tuple[int, int] | None = None
    crs: str | None = None
    bounds: tuple[float, float, float, float] | None = None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> TrainingSite:
        """From a checkpoint's ``training_site_info`` entry."""
        shape, bounds = rec.get("shape"), rec.get("bounds")
        return cls(
            str(rec.get("site", "")),
            tuple(str(d) for d in rec.get("dates") or ()),
            (int(shape[0]), int(shape[1])) if shape else None,
            rec.get("crs") or None,
            (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))
            if bounds
            else None,
        )

    def could_be(self, grid: Any) -> bool:
        """Whether a scene on ``grid`` (a :class:`stfusion.io.Grid`; None: unknown) could be
        this site: footprints overlap when both are known, else the same shape, else yes."""
        if grid is None:
            return True
        if self.crs and self.bounds and grid.georeferenced:
            from rasterio.crs import CRS
            from rasterio.warp import transform_bounds

            b = transform_bounds(CRS.from_user_input(self.crs), grid.crs, *self.bounds)
            g = grid.bounds
            return min(b[2], g[2]) > max(b[0], g[0]) and min(b[3], g[3]) > max(b[1], g[1])
        return self.shape is None or tuple(self.shape) == tuple(grid.shape)


#: The sites of the shipped checkpoints (checked against the files by the tests).
DEMO_SITES = (
    TrainingSite("cia", DEMO_DATES[0:2], (250, 250)),
    TrainingSite("boreas", DEMO_DATES[2:4], (400, 400)),
    TrainingSite("s2", DEMO_DATES[4:9], (100, 100)),
    TrainingSite("kranj", DEMO_DATES[9:11], (44, 45)),
)


def trained_on_target(
    training_dates: Sequence[Any] | None,
    target_date: Any,
    sites: Sequence[TrainingSite] = (),
    grid: Any = None,
) -> str:
    """Why a model with these training dates must not be scored on ``target_date`` ("" if it
    may): the bench skips such runs, ``predict`` warns. Dates: ISO strings, ``datetime.date``
    or ``numpy.datetime64``; an unknown date (None) or no recorded training dates give "".

    ``sites`` (the checkpoint's) and ``grid`` (the target scene's): a date trained on only at
    sites that cannot be this scene (:meth:`TrainingSite.could_be`) does not count.
    """
    if target_date is None or not training_dates:
        return ""
    day = np.datetime64(target_date, "D")
    if day not in {np.datetime64(d, "D") for d in training_dates}:
        return ""
    at = [s for s in sites if day in {np.datetime64(d, "D") for d in s.dates}]
    if at and grid is not None:
        at = [s for s in at if s.could_be(grid)]
        if not at:
            return ""
    where = f" (site {', '.join(s.name for s in at)})" if at else ""
    return f"trained on the target date {day}{where}"


def trained_on_file(target: Source, sites: Sequence[dict[str, Any]] | None) -> str:
    """Why the coarse ``target`` is no fair test ("" if it may be): it is, by path, size and
    time, the coarse image of one of the checkpoint's training pairs (``training_site_info``),
    also when its name holds no date (a training trial: BOREAS ``modis0711`` predicted
    without a word by weights trained on it)."""
    from stfusion.io.sources import underlying_source
    from stfusion.io.stacks import spec_file_stats

    path = getattr(underlying_source(target), "path", None)
    if not isinstance(path, str) or not sites:
        return ""
    ident = spec_file_stats(path)
    for site in sites:
        for k, pair in enumerate(site.get("pairs") or ()):
            if ((pair or {}).get("coarse") or {}).get("files") == ident:
                dates = site.get("dates") or []
                when = f", {dates[k]}" if k < len(dates) else ""
                return f"trained on the target (its coarse image of site {site.get('site')}{when})"
    return ""


def shipped_training(est: Any, pairs: int) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
    """The training dates and sites of the shipped weights ``est`` loads on ``pairs`` pairs,
    one entry per network (an ensemble's deep members, VIPSTF's base), known before ``fit``
    (its ``shipped_training`` method; [] for a method without one)."""
    hook = getattr(est, "shipped_training", None)
    return hook(pairs) if hook is not None else []


def shipped_on_target(est: Any, pairs: int, target_date: Any, grid: Any) -> str:
    """Why ``est``'s shipped weights cannot be scored on ``target_date`` ("" if they can)."""
    for dates, sites in shipped_training(est, pairs):
        reason = trained_on_target(dates, target_date, sites, grid)
        if reason:
            return reason
    return ""


def fitted_training_dates(est: Any) -> list[str] | None:
    """The training dates of a fitted estimator's weights: its own, or those of the base
    method it wraps (VIPSTF over a deep method); None if none."""
    for obj in (est, getattr(est, "base_", None)):
        dates = getattr(obj, "training_dates_", None)
        if dates:
            return list(dates)
    return None


def fitted_training_sites(est: Any) -> list[TrainingSite]:
    """The training sites of a fitted estimator's weights (its own or its base method's)."""
    for obj in (est, getattr(est, "base_", None)):
        sites = getattr(obj, "training_sites_", None)
        if sites:
            return list(sites)
    return []


def _date_in_name(source: Source) -> Any:
    """The acquisition date in the file name of ``source``, or None."""
    from stfusion.dates import date_from_name
    from stfusion.errors import STFusionError
    from stfusion.io import FileSource
    from stfusion.io.sources import underlying_source

    src = underlying_source(source)
    if not isinstance(src, FileSource):
        return None
    try:
        return date_from_name(src.path)
    except STFusionError:
        return None


class DeepMethod(FusionMethod):
    """Base of the deep methods: weights, tiled inference, checkpoint checks."""

    network: ClassVar[str] = ""
    #: The network's working memory on the CPU per pixel of a grown tile ((tile + 2 x
    #: overlap)^2, per tile of a batch and per worker), measured with the shipped weights
    #: (peak RSS at two tile sizes, the slope, rounded up; docs/parallel.md). ``--mem-limit``
    #: plans the windows, not this: a plan whose network needs more than the limit is warned
    #: about, naming a tile that fits.
    tile_bytes_per_pixel: ClassVar[float] = 2200.0
    #: Training dates of the default (shipped demo) weights, for ``bench.applicable``.
    training_dates: ClassVar[tuple[str, ...]] = DEMO_DATES
    training_sites: ClassVar[tuple[TrainingSite, ...]] = DEMO_SITES
    tags: ClassVar[MethodTags] = MethodTags(needs_torch=True, quality=("fallback",))

    params: ClassVar[tuple[Param, ...]] = (
        Param(
            "weights",
            "demo",
            (Text("'demo' or a checkpoint path"), os.PathLike),
            "path",
            "checkpoint from `stfusion train`; demo (or shipped) = the shipped weights "
            "(band-agnostic, multi-site; docs/deep.md)",
        ),
        Param(
            "tile",
            256,
            Interval(Integral, 8, None, closed="left"),
            "fine pixels",
            "side of the tiles the network runs on (anchored at the scene origin); a "
            "multiple of the network's step (DCSTFN 2, transformer GAN 16 px), checked when "
            "the weights are read",
        ),
        Param(
            "overlap",
            "auto",
            (AUTO, Interval(Integral, 0, None, closed="left")),
            "fine pixels",
            "context added around each tile and cropped; auto = receptive field rounded "
            "up to 8 (no seams)",
        ),
        Param(
            "device",
            "auto",
            DeviceName(),
            "",
            "where the network runs: auto (cuda if available), cpu, cuda or cuda:N",
        ),
        Param(
            "batch",
            "auto",
            (AUTO, Interval(Integral, 1, None, closed="left")),
            "tiles",
            "tiles per forward pass; auto = 1 on the CPU (the memory docs/parallel.md "
            "measures), 8 on a GPU",
        ),
        Param(
            "precision",
            "32",
            StrOptions(PRECISIONS),
            "",
            "arithmetic of the forward pass: 32 (float32), 16-mixed or bf16-mixed (autocast; "
            "for GPUs, output differs from 32 by about 1e-3)",
        ),
    )

    def shipped_training(self, pairs: int) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        return [(self.training_dates, self.training_sites)] if self._shipped() else []

    def _shipped(self) -> bool:
        """Whether ``weights`` names the shipped checkpoint (``demo`` or ``shipped``)."""
        return str(self.weights) in ("demo", "shipped")

    # The parameters, stored by FusionMethod.__init__ (declared for the type checker).
    weights: str | os.PathLike[str]
    tile: int
    overlap: int | str
    device: str
    batch: int | str
    precision: str

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] = "demo",
        tile: int = 256,
        overlap: int | str = "auto",
        device: str = "auto",
        batch: int | str = "auto",
        precision: str = "32",
    ) -> None:
        super().__init__(
            weights=weights,
            tile=tile,
            overlap=overlap,
            device=device,
            batch=batch,
            precision=precision,
        )

    def weights_path(self) -> Path:
        if self._shipped():
            path = demo_weights(self.name)
            if not path.exists():
                raise InvalidParameterError(
                    f"{self.name}: no shipped demo weights ({path} is missing). Train a model: "
                    f"stfusion train --model {self.name} --pair FINE1 COARSE1 --pair FINE2 "
                    "COARSE2 --out model.ckpt, then --param weights=model.ckpt."
                )
            return path
        return Path(self.weights)

    def halo(self) -> int:
        return int(getattr(self, "overlap_", 0 if self.overlap == "auto" else self.overlap))

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        return 4.0 * bands * (2 * pairs + 2)

    def fitted_tags(self) -> dict[str, Any]:
        # the weights by content, not only by the path in STFUSION_PARAMS: a retrain into
        # the same file name made two predictions' records alike (a trial)
        tags = super().fitted_tags()
        if getattr(self, "weights_id_", None):
            tags["STFUSION_WEIGHTS"] = self.weights_id_
        return tags

    def check_weights(self) -> None:
        """Load the checkpoint ``weights`` names, before any work: the bench made a path's
        typo, a truncated copy or another model's checkpoint a "skipped" row, exit 0."""
        self._load(self.weights_path())

    def _load(self, path: Path) -> Any:
        """The checkpoint at ``path``, refused if it holds another method's weights."""
        from stfusion.dl.checkpoint import load_checkpoint

        ck = load_checkpoint(path)
        if ck.model != self.name:
            raise InvalidParameterError(
                f"{path}: weights of {ck.model}, not {self.name}; use --method {ck.model} or "
                f"train {self.name} (stfusion train --model {self.name} ...)."
            )
        return ck

    def _predictor(self, ck: Any) -> Any:
        """What runs the network on tiles (STFDCNN has its own)."""
        from stfusion.dl.infer import Predictor

        return Predictor(ck, str(self.device), self.precision)

    def _fit(self, scene: Scene) -> None:
        from stfusion.dl.infer import default_overlap

        path = self.weights_path()
        ck = self._load(path)
        samples = [(s.label, s.sample(1 << 16)) for pair in scene.pairs for s in pair]
        ck.check_inputs(scene.count, tuple(scene.band_names), samples, scene.ratio)
        pred = self._predictor(ck)
        if ck.agnostic:
            # Per-scene statistics of the fine reference image(s): the same for every tile,
            # so tiled output stays equal to whole-scene output.
            pred.set_stats([f.sample(1 << 18) for f, _ in scene.pairs])
            _warn_small_scene(self.name, pred.net, scene.grid.height, scene.grid.width)
        overlap = (
            default_overlap(pred.radius, pred.multiple)
            if self.overlap == "auto"
            else int(self.overlap)
        )
        pred.check_tiling(int(self.tile), overlap)
        if overlap < pred.radius:
            warn(
                f"{self.name}: overlap {overlap} px is below the receptive field "
                f"({pred.radius} px); tile borders may show seams."
            )
        self.checkpoint_ = str(path)
        self.weights_id_ = {
            "path": os.path.abspath(path),
            "state_dict_sha256": _weights_digest(ck.data),
            "run_id": str(ck.data.get("run_id") or ""),
        }
        self.predictor_ = pred
        self.overlap_ = overlap
        self.batch_ = (
            int(self.batch) if self.batch != "auto" else 1 if pred.device.type == "cpu" else 8
        )
        self.training_dates_ = ck.training_dates
        self.validation_dates_ = ck.validation_dates
        self.training_sites_ = tuple(
            TrainingSite.from_record(r) for r in ck.data.get("training_site_info") or ()
        )

    def _prepare(self, target: Source) -> None:
        ck = self.predictor_.checkpoint
        # The coarse target is checked like the pairs (band count, file scale and magnitude);
        # the band names are the scene's, checked (and warned about) once in fit.
        sample = [(target.label, target.sample(1 << 16))]
        ck.check_inputs(target.count, tuple(ck.band_names), sample)
        day = self.scene_.target_date
        if day is None:
            day = _date_in_name(target)
        reason = trained_on_target(
            self.training_dates_, day, self.training_sites_, self.scene_.grid
        ) or trained_on_file(target, ck.data.get("training_site_info"))
        if reason:
            held = set(self.validation_dates_)
            trained = ", ".join(d for d in self.training_dates_ if d not in held)
            if day is not None and str(np.datetime64(str(day), "D")) in held:
                # --val-dates: it chose the epoch, but no example of it was trained on
                what = reason.replace("trained on the target date", "the target date")
                message = (
                    f"{self.name}: {what} was held out for validation when the weights "
                    f"{self.checkpoint_} were trained (on {trained}): used to choose the epoch, "
                    "never trained on; scores against it are a fair test, slightly optimistic "
                    "for the epoch choice."
                )
            else:
                message = (
                    f"{self.name}: {reason} (the weights {self.checkpoint_} were trained on "
                    f"{trained}): the prediction is not an honest test of the method, and "
                    "scores against that date's fine image mean little. Predict another date, "
                    "or train weights without it."
                )
            warn(message)

    def plan(
        self, mem_limit_mb: float | None = None, window_size: int | None = None, workers: int = 1
    ) -> list[Window]:
        # One processing window per tile by default (per block of about ``batch`` tiles);
        # any other plan gives the same output.
        self._check_fitted()
        if mem_limit_mb is not None:
            self._warn_network_memory(mem_limit_mb, workers)
        side = int(self.tile) * (math.isqrt(self.batch_ - 1) + 1)  # ceil(sqrt(batch)) tiles
        return super().plan(mem_limit_mb, window_size or side, workers)

    def network_mb(self, tile: int, workers: int = 1) -> float:
        """The network's working memory (MB) for tiles of ``tile`` px: every worker runs a
        batch of grown tiles (:attr:`tile_bytes_per_pixel`)."""
        grown = (tile + 2 * self.halo()) ** 2
        return self.tile_bytes_per_pixel * grown * self.batch_ * workers / 2**20

    def _warn_network_memory(self, mem_limit_mb: float, workers: int) -> None:
        """A trial: STFDCNN at --mem-limit 300 peaked at 1030 MB (tile 480: 2018 MB), since
        the limit sized the windows only. Said, with the largest tile whose network takes
        at most half the limit (the tile changes the output by about 1e-7 at most)."""
        need = self.network_mb(int(self.tile), workers)
        if need <= mem_limit_mb:
            return
        step = int(self.predictor_.multiple)
        fits = [
            t
            for t in range(step, int(self.tile), step)
            if self.network_mb(t, workers) <= mem_limit_mb / 2
        ]
        advice = (
            f"give --param tile={fits[-1]} (about {self.network_mb(fits[-1], workers):.0f} MB)"
            if fits
            else "no tile fits it; give a larger --mem-limit"
        ) + (" or fewer --workers" if workers > 1 else "")
        warn(
            f"{self.name}: --mem-limit {mem_limit_mb:g} MB sizes the windows, not the "
            f"network: its tiles of {int(self.tile)} px (plus {self.halo()} px of context) "
            f"need about {need:.0f} MB more"
            + (f" on {workers} workers" if workers > 1 else "")
            + f"; to stay near the limit, {advice}."
        )

    def predict_window(self, window: Window) -> np.ndarray:
        return self._predict(window, reach=False)[0]

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The prediction, and ``fallback`` 1 where a value was made with filled inputs: an
        input pixel of that band invalid (NaN, masked) within the network's own receptive
        field (:meth:`stfusion.dl.infer.Predictor.reach`)."""
        pred, near = self._predict(window, reach=True)
        return pred, {"fallback": near.astype(np.float32)}

    def _predict(self, window: Window, reach: bool) -> tuple[np.ndarray, np.ndarray]:
        scene = self.scene_
        return self.predictor_.predict_window(
            [f for f, _ in scene.pairs],
            [c for _, c in scene.pairs],
            self.target_,
            self.grid_.shape,
            window,
            int(self.tile),
            self.overlap_,
            self.batch_,
            reach=reach,
        )


def _weights_digest(data: dict[str, Any]) -> str:
    """The checkpoint's stored weights digest; computed for one saved before digests were
    (the shipped weights: a trial found their predictions' STFUSION_WEIGHTS digest empty)."""
    stored = data.get("state_dict_sha256")
    if stored or not isinstance(data.get("state_dict"), dict):
        return str(stored or "")
    from stfusion.dl.checkpoint import state_digest

    return state_digest(data["state_dict"])


class DCSTFN(DeepMethod):
    """DCSTFN (Tan et al. 2018): two-branch CNN, one pair. See stfusion.dl.networks.dcstfn."""

    name = "dcstfn"
    title = "DCSTFN (deep CNN)"
    paper = "Tan et al. 2018, Remote Sens. 10(7) 1066"
    tile_bytes_per_pixel = 1400.0
    tags = MethodTags(min_pairs=1, max_pairs=1, needs_torch=True, quality=("fallback",))


class EDCSTFN(DeepMethod):
    """EDCSTFN (Tan et al. 2019): residual encoders, compound loss; one or two pairs."""

    name = "edcstfn"
    title = "EDCSTFN (deep CNN)"
    paper = "Tan et al. 2019, Remote Sens. 11(24) 2898"
    tags = MethodTags(min_pairs=1, max_pairs=2, needs_torch=True, quality=("fallback",))


class GANSTFM(DeepMethod):
    """GAN-STFM (Tan et al. 2022): conditional GAN whose generator sees the coarse target and a
    fine image of any date. See stfusion.dl.networks.ganstfm and docs/methods/ganstfm.md.

    One pair: its fine image is the reference, of any date (before or after the target, near
    or far); the pair's coarse image is not an input of the network, only of its baseline
    (``coarse_ref``). Prediction runs the generator alone, tiled like the other deep methods.
    """

    name = "ganstfm"
    network = "ganstfm"
    #: No coarse image at the reference date is needed by the network or its baseline
    #: (``stfusion predict --fine-ref F1.tif --coarse C2.tif``: the pair is (F1, F1)).
    uses_coarse_ref = False
    title = "GAN-STFM (conditional GAN)"
    paper = "Tan et al. 2022, IEEE TGRS 60"
    tile_bytes_per_pixel = 4000.0
    tags = MethodTags(min_pairs=1, max_pairs=1, needs_torch=True, quality=("fallback",))
    params = (
        *DeepMethod.params,
        Param(
            "coarse_ref",
            "use",
            StrOptions({"use", "ignore"}),
            "",
            "the baseline F1 + box(C2) - box(X) takes X = the pair's coarse image C1 (use; with "
            "--fine-ref C1 is F1, the paper's form) or X = F1 always (ignore)",
        ),
    )

    coarse_ref: str

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] = "demo",
        tile: int = 256,
        overlap: int | str = "auto",
        device: str = "auto",
        batch: int | str = "auto",
        precision: str = "32",
        coarse_ref: str = "use",
    ) -> None:
        FusionMethod.__init__(
            self,
            weights=weights,
            tile=tile,
            overlap=overlap,
            device=device,
            batch=batch,
            precision=precision,
            coarse_ref=coarse_ref,
        )

    def _predictor(self, ck: Any) -> Any:
        pred = super()._predictor(ck)
        if hasattr(pred.net, "smooth_coarse_ref"):  # band-agnostic (format 2) checkpoints
            pred.net.smooth_coarse_ref = self.coarse_ref == "use"
        return pred


def _warn_small_scene(name: str, net: Any, height: int, width: int) -> None:
    """A scene narrower than the regression baseline's box: its local slope is fitted on a
    few pixels (an inference trial: 3 x 3 px scored 4x the additive RMSE, 1 px strips 5-20 %
    worse)."""
    box = 2 * int(getattr(net, "smooth", 0)) + 1
    if getattr(net, "baseline_kind", None) == "regression" and min(height, width) < box:
        warn(
            f"{name}: the scene ({height} x {width} px) is narrower than the {box} px box of "
            "the network's regression baseline, whose slopes are then fitted on a few pixels "
            "and can make the prediction worse than additive; predict a larger area and crop "
            "the result."
        )
