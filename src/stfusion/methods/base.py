"""The contract every fusion method follows.

``fit(pairs)`` computes scene-wide state from the pairs, ``prepare(coarse_target)`` computes
scene-wide state that needs the target, and ``predict_window(window)`` predicts one window
(reading its halo itself). ``predict`` runs them over the scene with the tiled runner.
Parameters are declared once (``params``, see :mod:`stfusion.methods.params`), checked and
stored verbatim in ``__init__`` (scikit-learn style); learned state ends in ``_``; ``fit`` and
``prepare`` return ``self``. ``tags`` (:class:`MethodTags`) say how many pairs a method takes
and what it promises.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, overload

import numpy as np
from rasterio.windows import Window

from stfusion.coarse import integer_ratio
from stfusion.errors import (
    InvalidParameterError,
    MethodOutputError,
    OutputExistsError,
    STFusionWarning,
    keywords_checked,
)
from stfusion.io import AlignedSource, Grid, RasterWriter, Scaling, Source, to_dataarray
from stfusion.io.sources import underlying_source
from stfusion.io.spill import state_arrays
from stfusion.methods.busy import predicting, refuse_while_predicting
from stfusion.methods.params import RATIO as RATIO  # re-exported: api.split_ratio
from stfusion.methods.params import MethodTags, Param, check_scene_bounds, params_doc
from stfusion.provenance import provenance_tags
from stfusion.quality import QUALITY_BANDS as QUALITY_BANDS  # re-exported, as before
from stfusion.quality import (
    SplitSink,
    WithQuality,
    dropped_unless_complete,
    quality_band_names,
    window_budget,
)
from stfusion.quality import quality_layer as quality_layer  # re-exported, as before
from stfusion.scene import (
    ImageLike,
    Scene,
    as_date,
    as_scaling,
    check_fit_call,
    check_keywords,
    open_scene,
    pair_list,
)
from stfusion.scene_checks import (
    check_one_ratio,
    check_target_scale,
    check_valid,
    warn_fine_looking_coarse,
    warn_one_file_pairs,
)
from stfusion.tiling import (
    DEFAULT_MEM_LIMIT_MB,
    ArraySink,
    CheckedWindows,
    ProgressFn,
    check_mem_limit,
    memory_limits,
    plan_windows,
    run,
    warn_if_cramped,
    window_size_for,
)

if TYPE_CHECKING:  # annotations only: typing.Self is 3.11+, xarray loads on use
    import xarray as xr
    from typing_extensions import Self

log = logging.getLogger("stfusion.methods")


class FusionMethod:
    """Base class of all fusion methods (classical and deep).

    A method declares its parameters once in ``params`` (:class:`Param`: default, accepted
    values, unit, help) and what it needs and promises in ``tags`` (:class:`MethodTags`), and
    spells the same parameters as keyword-only arguments of its ``__init__``, which passes
    them on to ``FusionMethod.__init__`` by name."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    tags: ClassVar[MethodTags] = MethodTags()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.params and (doc := vars(cls).get("__doc__")):  # help(STARFM) listed none
            cls.__doc__ = f"{inspect.cleandoc(doc)}\n\n{params_doc(cls.params)}"
        # The attributes before MethodTags would now be ignored silently: refuse them.
        old = [a for a in ("min_pairs", "max_pairs", "exact_properties") if a in vars(cls)]
        if old:
            raise TypeError(
                f"{cls.__name__}: {', '.join(old)} moved into tags = MethodTags(min_pairs=..., "
                "max_pairs=..., exact=...) (see docs/plugins.md)."
            )

    def __new__(cls, *args: Any, **params: Any) -> Self:
        # Runs before the explicit __init__: an unknown name gets the one-line
        # InvalidParameterError naming the known ones, not Python's TypeError.
        if args:
            raise InvalidParameterError(
                f"{cls.name}: give parameters by name (e.g. window=31), not by position."
            )
        known = [p.name for p in cls.params]
        for key in params:
            if key not in known:
                raise InvalidParameterError(
                    f"{cls.name}: unknown parameter {key!r}; known: {', '.join(known) or 'none'}."
                )
        return super().__new__(cls)

    def __init__(self, **params: Any) -> None:
        self._set(params, defaults=True)

    def _set(self, params: dict[str, Any], defaults: bool) -> None:
        """Check ``params`` against the declarations, store them, then run the method's own
        cross-parameter rules (``_validate_params``); with ``defaults``, every parameter not
        given takes its declared default."""
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                raise InvalidParameterError(
                    f"{self.name}: unknown parameter {key!r}; known: {', '.join(known) or 'none'}."
                )
        for p in self.params:
            if p.name in params:
                p.check(params[p.name], f"{self.name}: {p.name}={params[p.name]!r}")
        for p in self.params:
            if p.name in params or defaults:
                setattr(self, p.name, params.get(p.name, p.default))
        self._validate_params()

    def _validate_params(self) -> None:
        """Raise InvalidParameterError for combinations of values that cannot work, and for
        formats the method parses itself (override; single values are checked against
        their declarations before this runs)."""

    def check_scene_params(self, grid: Grid, ratio: float | None) -> None:
        """Refuse a window larger than the scene can use (:func:`params.check_scene_bounds`)."""
        check_scene_bounds(self, grid, ratio)

    @classmethod
    def needs_ratio_for(cls, params: Mapping[str, Any]) -> bool:
        """Whether the method with ``params`` needs the resolution ratio (``tags``; a
        wrapper's depends on what it wraps)."""
        return cls.tags.needs_ratio

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameter name -> value, as given (scikit-learn style; ``deep`` is accepted for
        ``sklearn.base.clone``, whose call failed without it: no parameter is an estimator)."""
        return {p.name: getattr(self, p.name) for p in self.params}

    def set_params(self, **params: Any) -> Self:
        """Change parameters (checked like ``__init__``). A fitted method whose parameters
        differ from those it was fitted with refuses to predict until fitted again (its
        learned state, and the provenance its outputs would record, are of the old ones;
        setting them back is fine). Returns ``self``."""
        old = self.get_params()
        try:
            self._set(params, defaults=False)
        except InvalidParameterError:
            for k, v in old.items():  # a refused change leaves the method as it was
                setattr(self, k, v)
            raise
        return self

    def clone(self) -> Self:
        """A new, unfitted method with the same parameters (copies: a dict parameter such as
        the ensemble's ``member_params`` is not shared with the original)."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def parse_params(cls, items: Sequence[str]) -> dict[str, Any]:
        """Parse ``name=value`` strings against this method's parameters."""
        known = {p.name: p for p in cls.params}
        out: dict[str, Any] = {}
        for item in items:
            if "=" not in item:
                raise InvalidParameterError(f"--param {item}: expected name=value.")
            key, value = (part.strip() for part in item.split("=", 1))
            if not key:
                raise InvalidParameterError(
                    f"--param {item}: no parameter name before '='; give NAME=VALUE, e.g. "
                    f"{next(iter(known), 'window')}=... (see `stfusion methods`)."
                )
            if key == "ratio":  # the scene's, not a method parameter (the CLI takes it out)
                raise InvalidParameterError(
                    f"--param ratio: the resolution ratio belongs to the scene, not to {cls.name}"
                    ": give it to fit (fit(pairs, ratio=16)), run_prediction (params=['ratio="
                    "16']) or the command line (--param ratio=16)."
                )
            if key not in known or key in out:  # twice: the last one won, silently
                raise InvalidParameterError(
                    f"--param {key}: given twice; give it once."
                    if key in out
                    else f"--param {key}: {cls.name} has no such parameter; it has "
                    f"{', '.join(known) or 'none'} (see `stfusion methods`)."
                )
            out[key] = known[key].parse(value, cls.name)
        return out

    # ------------------------------------------------------------------------- the contract

    def fitted_tags(self) -> dict[str, Any]:
        """``STFUSION_*`` tags of what the fitted method chose (override): written with the
        prediction beside its parameters, e.g. the ensemble members that ran. By default the
        variable a classical method's constants follow (``STFUSION_VARIABLE``)."""
        var = getattr(self, "variable_", None)
        return {} if var is None else {"STFUSION_VARIABLE": var.describe()}

    def halo(self) -> int:
        """Fine pixels of context each window needs on every side."""
        return 0

    def bytes_per_pixel(self, bands: int, pairs: int) -> float:
        """Approximate working memory per padded fine pixel, for window sizing."""
        return 4.0 * bands * (2 * pairs + 2) + 64.0

    def fit(self, pairs: Iterable[tuple[ImageLike, ImageLike]] | Scene, **scene_kw: Any) -> Self:
        """Learn from ``pairs`` (any iterable of ``(fine, coarse)`` images: paths, arrays,
        DataArrays, Sources) or a :class:`Scene`; ``scene_kw``: :func:`open_scene`'s keywords
        (``ratio``, ``fine_scaling``, ``coarse_scaling``, ``resampling``, ``pair_dates``,
        ``target_date``, ``check``). Returns ``self``."""
        if isinstance(pairs, Scene):
            n = len(pairs.pairs)
        else:
            check_keywords(scene_kw, f"{self.name}.fit()", [p.name for p in self.params])
            pairs = pair_list(pairs)  # zip(...), a generator: a list, counted
            check_fit_call(pairs, scene_kw.get("ratio"))  # before anything unpacks a pair
            warn_one_file_pairs(pairs, self.name, getattr(self, "uses_coarse_ref", True))
            n = len(pairs)
        problem = self.tags.pairs_problem(n)
        if problem:  # before any file is opened
            note = self._pairs_note(n)
            raise InvalidParameterError(f"{self.name} {problem}{': ' + note if note else '.'}")
        refuse_while_predicting(self, "fit()")
        self._forget()  # a refit starts afresh: no target or state of the last fit is used
        scene = pairs if isinstance(pairs, Scene) else open_scene(pairs, **scene_kw)
        self.check_scene_params(scene.grid, scene.ratio)
        if scene.ratio is None and self.needs_ratio_for(self.get_params()):
            integer_ratio(None, self.name)  # refused from the tag: a plugin need not repeat it
        try:
            self.scene_ = scene
            self.grid_: Grid = scene.grid
            self.ratio_ = scene.ratio
            self._fit(scene)
        except BaseException:
            self._forget()  # not half fitted: predict is refused until a fit succeeds
            raise
        self._fitted_params = copy.deepcopy(self.get_params())  # what the learned state is of
        return self

    def _forget(self) -> None:
        """Drop the learned state (attributes ending in ``_``) and the prepared target:
        ``predict()`` after a refit used the last fit's target and its prepared state (FSDAF
        mixed them; STARFM gave NaN on another grid)."""
        for name in [n for n in vars(self) if n.endswith("_") or n == "_fitted_params"]:
            delattr(self, name)

    def _pairs_note(self, n: int) -> str:
        """Said after refusing ``n`` pairs: ``tags.pairs_note`` (override to name a
        parameter's value)."""
        note = self.tags.pairs_note
        if n > 1 and self.tags.min_pairs == self.tags.max_pairs == 1:
            # the way to use every pair with a one-pair method (stfusion.methods.vipstf)
            hint = (
                f"to use all {n} pairs, add --multi-pair vip (VIPSTF over {self.name}; Python: "
                f"make_estimator({self.name!r}, pairs={n}, multi_pair='vip')), or give one pair"
            )
            note = f"{note} {hint}" if note else hint
        return note

    def _fit(self, scene: Scene) -> None:
        """Scene-wide state from the pairs (override)."""

    def prepare(
        self,
        coarse_target: ImageLike,
        scaling: Scaling | float | None = None,
        *,
        target_date: Any = None,
    ) -> Self:
        """Take ``coarse_target`` (read with ``scaling``) as the image to predict from;
        ``target_date``: its date, when not fit's (a series predicts many from one fit)."""
        self._check_fitted()
        refuse_while_predicting(self, "prepare()")
        scaling = as_scaling(scaling)
        if isinstance(coarse_target, Source) and coarse_target.grid.same_as(self.grid_):
            target: Source | None = coarse_target
        else:
            scene = self.scene_
            if scaling is None:
                scaling = scene.coarse_scaling
            with warnings.catch_warnings():
                if any("not georeferenced" in n for n in scene.notes):
                    # fit() has warned about these inputs already: once per run, not per call.
                    warnings.filterwarnings(
                        "ignore", r"\d+ input\(s\) without georeferencing", STFusionWarning
                    )
                # fit() has warned about a ratio override already.
                warnings.filterwarnings("ignore", r"ratio=\S+ was given", STFusionWarning)
                opened = open_scene(
                    [(p[0], p[1]) for p in scene.pairs],
                    coarse_target,
                    coarse_scaling=scaling,
                    ratio=scene.ratio,
                    resampling=scene.resampling,
                    check=False,
                )
                # the target's pixel size against the pairs' coarse images' (fit's)
                check_one_ratio([*scene.measured_ratios[:1], *opened.measured_ratios])
                target = opened.target
            assert target is not None
            check_valid(target, "coarse target image")
            check_target_scale(scene.pairs[0], target)
            warn_fine_looking_coarse(scene.pairs[0][0], target, "coarse target image")
        assert target is not None
        if target.count != self.scene_.count:
            raise InvalidParameterError(
                f"{target.label}: {target.count} bands, the pairs have {self.scene_.count}."
            )
        self.target_ = target
        scene = self.scene_
        if target_date is not None:
            scene.target_date = as_date(target_date, "target_date")
        if scene.pair_dates is not None and scene.target_date is not None:
            self.pair_days_ = np.array(
                [abs(int((scene.target_date - d).astype(int))) for d in scene.pair_dates]
            )
        self._prepare(target)
        return self

    def _prepare(self, target: Source) -> None:
        """Scene-wide state that needs the coarse target (override)."""

    def predict_window(self, window: Window) -> np.ndarray:
        """Predict one window (fine pixels), returning float32 ``(band, h, w)``."""
        raise NotImplementedError

    def predict_window_quality(self, window: Window) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Prediction plus what the method knows about its quality there.

        Methods override this to report ``fallback`` (``(h, w)``, 1 where the method fell back
        to its documented rule) and ``uncertainty`` (``(band, h, w)``, e.g. the spread of the
        similar-pixel predictions). The generic fields (and the ``fallback`` bit for a missing
        coarse target) are added by :func:`stfusion.quality.quality_layer`.
        """
        return self.predict_window(window), {}

    def quality_extra_names(self) -> list[str]:
        """Names of method-specific quality bands written after the generic ones (their
        values: ``extra["bands"]`` from :meth:`predict_window_quality`, ``(k, h, w)``)."""
        return []

    # ---------------------------------------------------------------------------- running

    def _check_fitted(self) -> None:
        fitted: dict[str, Any] = getattr(self, "_fitted_params", {})
        now = self.get_params()
        changed = [k for k in fitted if not _same_value(fitted[k], now[k])]
        if changed:
            raise InvalidParameterError(
                f"{self.name}: set_params changed {', '.join(changed)} after fit; call "
                "fit(pairs) again before predicting (the learned state is of the old values)."
            )
        if not hasattr(self, "scene_"):
            raise InvalidParameterError(f"{self.name}: call fit(pairs) before predicting.")

    def checked_halo(self) -> int:
        """:meth:`halo`, refused (``MethodOutputError``) unless a whole number >= 0."""
        halo = self.halo()
        if isinstance(halo, bool) or not isinstance(halo, int | np.integer) or halo < 0:
            raise MethodOutputError(
                f"{self.name}: halo() returned {halo!r}; it must be a whole number of fine "
                "pixels >= 0 (e.g. window // 2), the context a window needs on each side."
            )
        return int(halo)

    def plan(
        self, mem_limit_mb: float | None = None, window_size: int | None = None, workers: int = 1
    ) -> list[Window]:
        self._check_fitted()
        scene = self.scene_
        check_mem_limit(mem_limit_mb)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidParameterError(f"workers={workers!r}: give an integer >= 1.")
        sides = window_size if isinstance(window_size, tuple | list) else (window_size,)
        if window_size is not None and not (
            len(sides) in (1, 2)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sides)
        ):
            raise InvalidParameterError(
                f"window_size={window_size!r}: give a side in pixels (an integer >= 1) or "
                "(rows, columns); or leave it out to size windows by mem_limit_mb."
            )
        auto = window_size is None
        if window_size is None:
            # Scene-wide state (fit/prepare arrays, native coarse images) stays in memory
            # while the windows run: the windows get what is left of the limit.
            limit = mem_limit_mb or DEFAULT_MEM_LIMIT_MB
            limit = max(0.1 * limit, limit - self.state_nbytes() / 2**20)
            window_size = window_size_for(
                self.checked_halo(),
                self.bytes_per_pixel(scene.count, len(scene.pairs)),
                limit,
                scene.ratio,
                workers,
            )
        windows = plan_windows(self.grid_, window_size)
        size = window_size if isinstance(window_size, int) else "x".join(map(str, window_size))
        said = (len(windows), size, mem_limit_mb, workers)
        if self.__dict__.get("_plan_said") == said:  # planned again for the same run
            return windows
        self.__dict__["_plan_said"] = said
        if auto:
            warn_if_cramped(self.name, size, self.halo(), len(windows), mem_limit_mb)
        log.info(
            "%s: %d window(s) of up to %s px plus a %d px halo (--mem-limit %s MB, %d worker(s))",
            self.name,
            len(windows),
            size,
            self.halo(),
            f"{mem_limit_mb:g}" if mem_limit_mb else f"{DEFAULT_MEM_LIMIT_MB:g} (default)",
            workers,
        )
        return windows

    def _release_native_images(self) -> None:
        """Drop the native coarse images the sources keep for the windows (re-read if
        needed again): 2 x 96 MB at 20000 x 20000 x 6 with a 500 m MODIS grid."""
        scene = self.scene_
        for src in [*scene.sources(), getattr(self, "target_", None)]:
            if isinstance(src, AlignedSource):
                src.release()

    def state_nbytes(self) -> int:
        """Bytes held between windows: arrays learned in fit/prepare (also in containers and
        helper objects, 4 levels down) and native coarse images kept by the sources."""
        scene = getattr(self, "scene_", None)
        sources = [*scene.sources(), getattr(self, "target_", None)] if scene else []
        kept = [
            d if isinstance(d := getattr(src, "_data", None), np.ndarray) else None
            for src in sources
        ]
        roots = [*self.state_values(), *kept]
        total = sum(int(a.nbytes) for a in state_arrays(roots) if isinstance(a, np.ndarray))
        for src, data in zip(sources, kept):
            if not isinstance(data, np.ndarray) and isinstance(src, AlignedSource):
                # not read yet: its first window read loads it, float32, while windows run
                total += 4 * src.count * src.native.grid.width * src.native.grid.height
        return total

    def state_values(self) -> list[Any]:
        """What fit and prepare learned: the attributes ending in ``_`` (the scene aside)."""
        return [v for k, v in vars(self).items() if k.endswith("_") and k != "scene_"]

    # Without ``out`` a DataArray, with it the path: typed apart (no cast for pred.values)
    @overload
    def predict(
        self,
        coarse_target: ImageLike | None = None,
        *,
        out: None = None,
        overwrite: bool = False,
        tags: dict[str, Any] | None = None,
        mem_limit_mb: float | None = None,
        window_size: int | None = None,
        workers: int = 1,
        progress: ProgressFn | None = None,
        scheduler: Any = None,
        quality_out: None = None,
        cog: bool = True,
    ) -> xr.DataArray: ...

    @overload
    def predict(
        self,
        coarse_target: ImageLike | None = None,
        *,
        out: str | os.PathLike[str],
        overwrite: bool = False,
        tags: dict[str, Any] | None = None,
        mem_limit_mb: float | None = None,
        window_size: int | None = None,
        workers: int = 1,
        progress: ProgressFn | None = None,
        scheduler: Any = None,
        quality_out: str | os.PathLike[str] | None = None,
        cog: bool = True,
    ) -> str | os.PathLike[str]: ...

    @keywords_checked
    def predict(
        self,
        coarse_target: ImageLike | None = None,
        *,
        out: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        tags: dict[str, Any] | None = None,
        mem_limit_mb: float | None = None,
        window_size: int | None = None,
        workers: int = 1,
        progress: ProgressFn | None = None,
        scheduler: Any = None,
        quality_out: str | os.PathLike[str] | None = None,
        cog: bool = True,
    ) -> xr.DataArray | str | os.PathLike[str]:
        """Predict the fine image at the target date.

        Returns an ``xarray.DataArray`` (labelled as the first fine image was: a DataArray's
        dimension names, coordinates and band labels), or, with ``out``, streams the windows
        into a GeoTIFF (written atomically) and returns ``out``; an existing file is replaced
        only with ``overwrite=True``. ``scheduler`` (a Dask distributed address or Client)
        runs the windows on that cluster instead of locally; which worker process
        did how many windows is then in ``last_run_["workers"]``. ``quality_out`` (with
        ``out``) also writes the quality layer (:mod:`stfusion.quality`): days to the nearest
        pair used, pairs used (0 where the prediction is NaN), fallback bits (1 the method's
        fallback rule, 2 no valid coarse target value), per-band uncertainty (NaN where the
        method gives none); removed if ``out`` then fails. ``cog`` (default): a COG;
        ``cog=False`` a plain tiled GeoTIFF, for intermediate files that are read back at once
        (no copy, no overviews).
        """
        if quality_out is not None and out is None:
            raise InvalidParameterError(
                f"{self.name}: quality_out={quality_out!s} needs out= (the quality layer is "
                "written beside the prediction's file)."
            )
        if quality_out is not None and os.path.abspath(quality_out) == os.path.abspath(out):  # type: ignore[arg-type]
            raise InvalidParameterError(
                f"{self.name}: out and quality_out are the same file ({out!s}); give the "
                "quality layer its own name (the CLI uses NAME_quality.tif)."
            )
        if scheduler is not None:
            from stfusion.parallel import check_scheduler

            check_scheduler(scheduler)  # before any work
        check_mem_limit(mem_limit_mb)
        for path in (out, quality_out):
            # before any work, and in Python's words (the writer's message names --overwrite)
            if path is not None and not overwrite and os.path.isfile(path):
                raise OutputExistsError(
                    f"{os.fspath(path)}: already exists. Pass overwrite=True to replace it "
                    "(--overwrite on the command line)."
                )
        # GDAL's cache etc. under a limit given here (from Python); None keeps the caller's
        limits = contextlib.nullcontext() if mem_limit_mb is None else memory_limits(mem_limit_mb)
        with predicting(self), limits:
            return self._predict_unshared(
                coarse_target,
                out,
                overwrite,
                tags,
                mem_limit_mb,
                window_size,
                workers,
                progress,
                scheduler,
                quality_out,
                cog,
            )

    def _predict_unshared(
        self,
        coarse_target: ImageLike | None,
        out: str | os.PathLike[str] | None,
        overwrite: bool,
        tags: dict[str, Any] | None,
        mem_limit_mb: float | None,
        window_size: int | None,
        workers: int,
        progress: ProgressFn | None,
        scheduler: Any,
        quality_out: str | os.PathLike[str] | None,
        cog: bool,
    ) -> xr.DataArray | str | os.PathLike[str]:
        if coarse_target is not None:
            self.prepare(coarse_target)
        elif not hasattr(self, "target_"):
            raise InvalidParameterError(f"{self.name}: give the coarse target image to predict.")
        if quality_out is not None:  # its bands and the method's spreads come on top
            mem_limit_mb = window_budget(self, mem_limit_mb)
        windows = self.plan(mem_limit_mb, window_size, workers)
        count = self.scene_.count
        names = self.scene_.band_names
        checked = CheckedWindows(self, count, self.name)  # a plugin's window of another shape
        if out is not None:
            all_tags = provenance_tags(self)  # the same tags as `stfusion predict`
            all_tags.update(tags or {})
            with contextlib.ExitStack() as stack:
                stack.enter_context(dropped_unless_complete(quality_out))
                writer = stack.enter_context(
                    RasterWriter(
                        out,
                        self.grid_,
                        count,
                        band_names=names,
                        tags=all_tags,
                        overwrite=overwrite,
                        cog=cog,
                    )
                )
                if quality_out is None:
                    self._run(checked, windows, writer, workers, progress, scheduler)
                else:
                    qnames = [*quality_band_names(names), *self.quality_extra_names()]
                    qwriter = stack.enter_context(
                        RasterWriter(
                            quality_out,
                            self.grid_,
                            len(qnames),
                            band_names=qnames,
                            tags={**all_tags, "STFUSION_QUALITY_OF": os.fspath(out)},
                            overwrite=overwrite,
                            cog=cog,
                        )
                    )
                    split = SplitSink(writer, qwriter, count)
                    self._run(WithQuality(self), windows, split, workers, progress, scheduler)
                self._release_native_images()  # before the writers' COG copies
            return out
        sink = ArraySink(count, self.grid_)
        self._run(checked, windows, sink, workers, progress, scheduler)
        # a DataArray fine image's dimension names, coordinates and band labels, kept
        layout = getattr(underlying_source(self.scene_.pairs[0][0]), "layout", None)
        # the resolution ratio goes with it: evaluate() takes it for ERGAS
        attrs = {"method": self.name, **({} if self.ratio_ is None else {"ratio": self.ratio_})}
        return to_dataarray(sink.array, self.grid_, names, attrs=attrs, layout=layout)

    def _run(
        self,
        runner: Any,
        windows: list[Window],
        sink: Any,
        workers: int,
        progress: ProgressFn | None,
        scheduler: Any,
    ) -> None:
        if scheduler is not None:
            from stfusion.parallel import run_distributed

            self.last_run_ = run_distributed(runner, windows, sink, scheduler, progress=progress)
        else:
            run(runner, windows, sink, workers=workers, progress=progress)
            self.last_run_ = {"workers": {"local": len(windows)}}

    # --------------------------------------------------------------------------- helpers

    def read_inputs(
        self, window: Window, halo: int
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Fine and coarse pair images and the coarse target for a window plus halo."""
        fines = [f.read(window, halo) for f, _ in self.scene_.pairs]
        coarses = [c.read(window, halo) for _, c in self.scene_.pairs]
        return fines, coarses, self.target_.read(window, halo)


def _same_value(a: Any, b: Any) -> bool:
    """Whether two parameter values are equal (arrays element by element)."""
    try:
        return bool(np.all(a == b)) if isinstance(a, np.ndarray | list) else bool(a == b)
    except (TypeError, ValueError):
        return a is b
