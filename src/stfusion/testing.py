"""The contract every fusion method follows, as checks a method's own tests can run.

A third-party method (registered under the ``stfusion.methods`` entry point group) tests
itself with one call::

    from stfusion.testing import check_method

    def test_contract():
        check_method(MyMethod, params={"window": 7})  # small parameters: fast on 48 x 48 px

or, for one test per check (clearer reports)::

    @pytest.mark.parametrize("check", method_checks(MyMethod), ids=lambda c: c.__name__)
    def test_contract(check):
        check(MyMethod, {"window": 7})

The checks use a synthetic piecewise-constant scene (:func:`piecewise_scene`; no data files),
raise ``AssertionError`` (or the method's own error) naming the method and what failed, and
import neither pytest nor torch. What they check: the declarations (``params``, ``tags``), an
explicit keyword-only ``__init__`` whose defaults are the declared ones, ``get_params`` /
``set_params`` / ``clone``, command-line strings of the defaults parsing back to the
defaults, the pair-count and ratio rules of ``tags``, float32 output on the fine grid (also
from one pair more than the minimum when the method takes it), equal outputs from equal
inputs (predicting again, fitting again), tiled and threaded runs equal to the whole-scene
run bit for bit (``tags.tiled_exact``), the exact
properties of ``tags.exact``, NaN holes that stay local, and the quality fields of
``tags.quality``. Methods with ``tags.needs_torch`` skip the checks that predict when torch
is not installed.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from rasterio.windows import Window

from stfusion.errors import InvalidParameterError, MethodOutputError
from stfusion.methods.base import FusionMethod
from stfusion.methods.params import EXACT_PROPERTIES, QUALITY_FIELDS, MethodTags, StrOptions

#: Resolution ratio of the synthetic scene (coarse pixel = RATIO x RATIO fine pixels).
RATIO = 8

Check = Callable[[type[FusionMethod], Mapping[str, Any] | None], None]


def piecewise_scene(
    h: int = 48, w: int = 48, bands: int = 3, patch: int = 4, ratio: int = RATIO, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fine image constant on patch x patch blocks with well-separated values; coarse images
    equal to exact ratio x ratio block means (upsampled to the fine grid)."""
    from stfusion.coarse import block_mean, upsample_blocks

    rng = np.random.default_rng(seed)
    levels = np.linspace(0.05, 0.45, 5)
    labels = rng.integers(0, len(levels), size=(h // patch + 1, w // patch + 1))
    lab = np.repeat(np.repeat(labels, patch, 0), patch, 1)[:h, :w]
    fine = np.stack([levels[lab] * (1 + 0.2 * b) for b in range(bands)]).astype(np.float32)
    coarse = upsample_blocks(block_mean(fine, ratio), ratio, (h, w)).astype(np.float32)
    return {"fine": fine, "coarse": coarse, "ratio": np.array(ratio)}


def _fail(cls: type[FusionMethod], what: str) -> AssertionError:
    return AssertionError(f"{cls.__name__} ({getattr(cls, 'name', '?')}): {what}")


def _estimator(cls: type[FusionMethod], params: Mapping[str, Any] | None) -> FusionMethod:
    return cls(**dict(params or {}))


def _pairs(cls: type[FusionMethod], fine: np.ndarray, coarse: np.ndarray) -> list[Any]:
    return [(fine, coarse)] * max(cls.tags.min_pairs, 1)


def _can_predict(cls: type[FusionMethod]) -> bool:
    return not cls.tags.needs_torch or importlib.util.find_spec("torch") is not None


def _fitted(
    cls: type[FusionMethod], params: Mapping[str, Any] | None, fine: np.ndarray, coarse: np.ndarray
) -> FusionMethod:
    return _estimator(cls, params).fit(_pairs(cls, fine, coarse), ratio=RATIO)


def _target(scene: dict[str, np.ndarray]) -> np.ndarray:
    rng = np.random.default_rng(3)
    target = scene["coarse"] + 0.02 * rng.standard_normal(scene["coarse"].shape)
    return np.clip(target, 0.01, None).astype(np.float32)


# ---------------------------------------------------------------------------- declarations


def check_declarations(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """Name, title, paper; parameters with help, unit and a default they accept; tags."""
    if not (cls.name and cls.title and cls.paper):
        raise _fail(cls, "name, title and paper must be set")
    names = [p.name for p in cls.params]
    if len(set(names)) != len(names):
        raise _fail(cls, f"parameter names repeat: {names}")
    from stfusion.scene import scene_keywords

    reserved = sorted(set(names) & {"ratio", *scene_keywords()})
    if reserved:  # --param ratio= and fit(ratio=...) are the scene's: it could never be set
        raise _fail(
            cls,
            f"parameter name(s) {', '.join(reserved)} belong to the scene (fit's keywords); "
            "call the parameter something else",
        )
    for p in cls.params:
        if not p.help or p.unit is None:
            raise _fail(cls, f"parameter {p.name} needs help and unit ('' for none)")
        if not p.accepts(p.default):
            raise _fail(cls, f"the default {p.name}={p.default!r} is not {p.allowed()}")
    tags = cls.tags
    if not isinstance(tags, MethodTags):
        raise _fail(cls, "tags must be a MethodTags")
    if tags.min_pairs < 1 or (tags.max_pairs is not None and tags.max_pairs < tags.min_pairs):
        raise _fail(cls, f"pairs {tags.min_pairs}..{tags.max_pairs} is not a range")
    if not set(tags.exact) <= set(EXACT_PROPERTIES):
        raise _fail(cls, f"tags.exact {tags.exact} not among {EXACT_PROPERTIES}")
    if not set(tags.quality) <= set(QUALITY_FIELDS):
        raise _fail(cls, f"tags.quality {tags.quality} not among {QUALITY_FIELDS}")
    variable = next((p for p in cls.params if p.name == "variable"), None)
    options = [
        o
        for r in (variable.rules if variable else ())
        if isinstance(r, StrOptions)
        for o in r.options
    ]
    if tuple(options) != tuple(tags.variables):
        raise _fail(
            cls,
            f"tags.variables {tags.variables} differ from the variable "
            f"parameter's choices {tuple(options)}",
        )


def check_signature(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """An explicit ``__init__`` with keyword-only arguments: the declared parameters, in the
    declared order, with the declared defaults."""
    if cls.__init__ is FusionMethod.__init__:
        raise _fail(cls, "declare __init__(self, *, name=default, ...) for its parameters")
    args = list(inspect.signature(cls.__init__).parameters.values())[1:]
    got = [(a.name, a.kind, a.default) for a in args]
    want = [(p.name, inspect.Parameter.KEYWORD_ONLY, p.default) for p in cls.params]
    if got != want:
        raise _fail(
            cls,
            f"__init__ arguments {[(n, str(k), d) for n, k, d in got]} differ from "
            f"the declared keyword-only parameters {[(n, d) for n, _, d in want]}",
        )


def check_estimator(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """Defaults stored verbatim, no learned state before fit; ``set_params``, ``clone``,
    unknown parameters refused; command-line strings of the defaults parse to the defaults."""
    est = cls()
    defaults = {p.name: p.default for p in cls.params}
    if est.get_params() != defaults:
        raise _fail(cls, f"get_params() {est.get_params()} != the declared defaults")
    learned = [k for k in vars(est) if k.endswith("_")]
    if learned:
        raise _fail(cls, f"learned state before fit: {learned}")
    if est.set_params(**defaults) is not est or est.get_params() != defaults:
        raise _fail(cls, "set_params(**defaults) must return the method unchanged")
    twin = _estimator(cls, params)
    copy = twin.clone()
    if type(copy) is not cls or copy is twin or copy.get_params() != twin.get_params():
        raise _fail(cls, "clone() must give a new method with the same parameters")
    for call in (lambda: cls(no_such_parameter=1), lambda: est.set_params(no_such_parameter=1)):
        try:
            call()
        except InvalidParameterError:
            pass
        else:
            raise _fail(cls, "an unknown parameter must raise InvalidParameterError")
    for p in cls.params:
        if isinstance(p.default, bool):
            text = "true" if p.default else "false"
        elif isinstance(p.default, str | int | float):
            text = str(p.default)
        else:
            continue  # None, dicts: not spelled on the command line
        got = cls.parse_params([f"{p.name}={text}"]).get(p.name)
        if got != p.default:
            raise _fail(cls, f"--param {p.name}={text} parses to {got!r}, not the default")


def check_pair_count(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """``fit`` refuses fewer than ``tags.min_pairs`` and more than ``tags.max_pairs`` pairs,
    naming the method, before reading any image."""
    scene = piecewise_scene()
    pair = (scene["fine"], scene["coarse"])
    counts = [cls.tags.min_pairs - 1] if cls.tags.min_pairs > 1 else []
    if cls.tags.max_pairs is not None:
        counts.append(cls.tags.max_pairs + 1)
    for n in counts:
        try:
            _estimator(cls, params).fit([pair] * n, ratio=RATIO)
        except InvalidParameterError as exc:
            if cls.name not in str(exc) or "pair" not in str(exc):
                raise _fail(
                    cls, f"{n} pairs: the message should name the method and the pairs: {exc}"
                ) from None
        else:
            raise _fail(cls, f"fit accepted {n} pairs ({cls.tags.pairs_text()} declared)")


def check_ratio(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """With ``tags.needs_ratio``, inputs on one grid without a ratio are refused with a message
    about the ratio; without it, such inputs predict. Tags describe the method with its default
    parameters, so this check uses them (deep methods: skipped, their default weights need
    their own scenes)."""
    if cls.tags.needs_torch:
        return
    scene = piecewise_scene()
    fine, coarse = scene["fine"], scene["coarse"]
    est = cls()
    try:
        est.fit(_pairs(cls, fine, coarse)).predict(coarse)
    except InvalidParameterError as exc:
        if not cls.tags.needs_ratio:
            raise _fail(
                cls, f"refused inputs without a ratio, but tags.needs_ratio is false: {exc}"
            ) from None
        if "ratio" not in str(exc):
            raise _fail(cls, f"refused inputs without a ratio, not saying so: {exc}") from None
    else:
        if cls.tags.needs_ratio:
            raise _fail(cls, "predicted without a ratio, but tags.needs_ratio is true")


# ------------------------------------------------------------------------------ prediction


def check_prediction(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """float32 on the fine grid, finite on a clean scene; with ``tags.tiled_exact``, tiled and
    threaded runs equal the whole-scene run bit for bit."""
    if not _can_predict(cls):
        return
    scene = piecewise_scene()
    fine, target = scene["fine"], _target(scene)
    est = _fitted(cls, params, fine, scene["coarse"])
    whole = est.predict(target).values
    _check_clean(cls, whole, fine.shape)
    # the same inputs, the same output: first, so a random step is not called a tiling fault
    for what, again in (
        ("predicting again", est.predict(target).values),
        ("a second fit", _fitted(cls, params, fine, scene["coarse"]).predict(target).values),
    ):
        if not np.array_equal(again, whole, equal_nan=True):
            raise _fail(
                cls,
                f"{what} on the same inputs predicts otherwise (max "
                f"{np.nanmax(np.abs(again - whole)):g}): a random step without a seed "
                "parameter, or state changed by predict? Equal inputs must give equal outputs",
            )
    if cls.tags.tiled_exact:
        plans: tuple[tuple[dict[str, Any], str], ...] = (
            (
                {"window_size": RATIO * 2},
                "a halo() too small for what a window reads, or rows and columns swapped",
            ),
            (
                {"window_size": RATIO * 2, "workers": 2},
                "predict_window runs in several threads "
                "at once (--workers): scratch kept on self is shared between them",
            ),
        )
        for kw, why in plans:
            part = est.predict(target, **kw).values
            if not np.array_equal(part, whole):
                raise _fail(
                    cls,
                    f"predict({kw}) differs from the whole-scene prediction "
                    f"(max {np.nanmax(np.abs(part - whole)):g}): {why}?",
                )
    _check_more_pairs(cls, params, scene, target)


def _check_more_pairs(
    cls: type[FusionMethod],
    params: Mapping[str, Any] | None,
    scene: dict[str, np.ndarray],
    target: np.ndarray,
) -> None:
    """A method taking more pairs than its minimum predicts float32 on the fine grid from
    them too (a two-pair path returning a stack per pair passed every check)."""
    t = cls.tags
    n = t.min_pairs + 1
    if t.max_pairs is not None and t.max_pairs < n:
        return
    fine, coarse = scene["fine"], scene["coarse"]
    pairs = [(fine * (1 + 0.05 * k), coarse * (1 + 0.05 * k)) for k in range(n)]
    try:
        pred = _estimator(cls, params).fit(pairs, ratio=RATIO).predict(target).values
    except MethodOutputError as exc:
        raise _fail(cls, f"with {n} pairs: {exc}") from None
    _check_clean(cls, pred, fine.shape, f"with {n} pairs: ")


def _check_clean(
    cls: type[FusionMethod], pred: np.ndarray, shape: tuple[int, ...], how: str = ""
) -> None:
    """The prediction of a clean scene: float32 of ``shape``, finite (``how``: how it was
    made, said first)."""
    if pred.dtype != np.float32 or pred.shape != shape:
        raise _fail(cls, f"{how}prediction {pred.dtype} {pred.shape}, want float32 {shape}")
    if not np.isfinite(pred).all():
        raise _fail(cls, f"{how}NaN or inf in the prediction of a clean scene")


def check_windows(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """``predict_window`` itself returns float32 ``(bands, rows, cols)`` for windows that are
    not square and touch the scene's edges (the assembled prediction is float32 on the fine
    grid whatever the windows were); ``halo()`` is a whole number of pixels >= 0."""
    if not _can_predict(cls):
        return
    scene = piecewise_scene()
    est = _fitted(cls, params, scene["fine"], scene["coarse"]).prepare(_target(scene))
    try:
        est.checked_halo()  # the runners' own check
    except MethodOutputError as exc:
        raise _fail(cls, str(exc)) from None
    nb, h, w = scene["fine"].shape
    for win in (Window(3, 5, 17, 9), Window(w - 8, 0, 8, 29), Window(0, h - 7, 30, 7)):
        out = est.predict_window(win)
        want = (nb, int(win.height), int(win.width))
        if not isinstance(out, np.ndarray) or out.shape != want or out.dtype != np.float32:
            got = f"{type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}"
            raise _fail(
                cls,
                f"predict_window({win}) returned {got}, want float32 {want} (bands, rows, "
                "cols: the halo cropped, rows = window.height, cols = window.width)",
            )


def check_exact(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """The exact properties declared in ``tags.exact``, on a scene whose coarse images are
    exact block means: ``unchanged`` (C_0 = C_k gives F_k), ``uniform_change`` (C_0 = C_k + d
    gives F_k + d)."""
    props = set(cls.tags.exact)
    if not props or not _can_predict(cls):
        return
    scene = piecewise_scene()
    fine, coarse = scene["fine"], scene["coarse"]
    est = _fitted(cls, params, fine, coarse)
    d = np.float32(0.03)
    for prop, target, want in (
        ("unchanged", coarse, fine),
        ("uniform_change", coarse + d, fine + d),
    ):
        if prop in props:
            got = est.predict(target).values
            if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
                raise _fail(cls, f"{prop}: off by up to {np.nanmax(np.abs(got - want)):g}")


def check_nan_holes(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """NaN holes in a fine pair image and in the coarse target neither crash the method nor
    spread beyond their neighbourhood, nor come out as 0."""
    if not _can_predict(cls):
        return
    scene = piecewise_scene()
    fine, coarse = scene["fine"].copy(), scene["coarse"].copy()
    fine[:, 10:13, 10:13] = np.nan
    target = coarse.copy()
    target[:, 30:33, 30:33] = np.nan
    pred = _fitted(cls, params, fine, coarse).predict(target).values
    far = np.ones(fine.shape[1:], bool)
    far[5:18, 5:18] = False
    far[25:38, 25:38] = False
    if pred.shape != fine.shape or not np.isfinite(pred[:, far]).all():
        raise _fail(cls, "NaN holes spread beyond their neighbourhood")
    if (pred == 0).any():  # the scene's values are 0.05-0.63: a 0 is a fill, not a prediction
        raise _fail(
            cls,
            "predicts exactly 0 where inputs are NaN (a zero-filled array, nan_to_num?): return "
            "NaN for the pixels it cannot predict (0 is a valid value: reflectance 0)",
        )


def check_quality(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """``predict_window_quality`` returns the prediction of ``predict_window`` and exactly the
    fields of ``tags.quality``, shaped ``fallback (h, w)``, ``uncertainty (band, h, w)``,
    ``bands (len(quality_extra_names()), h, w)``."""
    if not _can_predict(cls):
        return
    scene = piecewise_scene()
    est = _fitted(cls, params, scene["fine"], scene["coarse"]).prepare(_target(scene))
    window = Window(8, 16, 16, 8)
    pred, extra = est.predict_window_quality(window)
    if not np.array_equal(pred, est.predict_window(window), equal_nan=True):
        raise _fail(cls, "predict_window_quality's prediction differs from predict_window")
    if set(extra) != set(cls.tags.quality):
        raise _fail(cls, f"quality fields {sorted(extra)}, tags.quality {cls.tags.quality}")
    nb, h, w = pred.shape
    shapes = {
        "fallback": (h, w),
        "uncertainty": (nb, h, w),
        "bands": (len(est.quality_extra_names()), h, w),
    }
    for key, value in extra.items():
        if np.shape(value) != shapes[key]:
            raise _fail(cls, f"quality {key} shaped {np.shape(value)}, want {shapes[key]}")


CHECKS: tuple[Check, ...] = (
    check_declarations,
    check_signature,
    check_estimator,
    check_pair_count,
    check_ratio,
    check_prediction,
    check_windows,
    check_exact,
    check_nan_holes,
    check_quality,
)


def method_checks(cls: type[FusionMethod]) -> tuple[Check, ...]:
    """The checks :func:`check_method` runs, each called as ``check(cls, params)``."""
    return CHECKS


def check_method(cls: type[FusionMethod], params: Mapping[str, Any] | None = None) -> None:
    """Run every contract check on method class ``cls``; ``params``: keyword arguments that
    make it fast on a 48 x 48 px, 3-band scene (small windows, a small checkpoint). Raises
    ``AssertionError`` naming the method and the first check that failed, or the
    ``MethodOutputError`` that ``predict`` raises for a window of the wrong shape or type."""
    for check in method_checks(cls):
        check(cls, params)
