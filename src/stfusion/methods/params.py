"""Declared method parameters and method tags, in the manner of scikit-learn's
``_parameter_constraints``.

Each :class:`Param` states once which values it accepts: a tuple of *constraints*, any one of
which a value must satisfy. The base class :class:`~stfusion.methods.base.FusionMethod` checks
every parameter against its declaration when the method is built (and on ``set_params``), and
parses ``--param NAME=VALUE`` strings with the same declaration, so a method's own
``_validate_params`` keeps only the rules between parameters (``similar <= window^2``) and
the formats it parses itself (FSDAF's ``classes="4-6"``).

Constraints:

* :class:`Interval` -- an integer or a real number in a range, optionally odd (windows);
  real numbers are finite unless ``allow_inf`` (``inf`` switches something off), never NaN.
* :class:`StrOptions` -- one of a few words (``"auto"``, ``"scene"``...).
* :class:`Text` -- a non-blank string in a format the method parses itself, described in words.
* the plain types ``bool``, ``str``, ``dict``, ``tuple``, and ``None`` (the value ``None``);
  ``int`` and ``float`` stand for unbounded intervals.

A command-line string is parsed by the first constraint, in the declared order, that can read
it (``auto`` by ``StrOptions({"auto"})`` before a number); ``bool`` reads true/false, 1/0,
yes/no, on/off. The parsed value is then checked like a Python value.

:class:`MethodTags` says what a method needs and promises (pairs, ratio, exact properties,
quality fields, variables, torch); ``fit``, the bench, ``series`` and the CLI read it instead of
their own copies of those rules, and :func:`stfusion.testing.check_method` checks it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from stfusion.errors import InvalidParameterError


class Constraint:
    """One kind of value a parameter accepts (see the module docstring)."""

    def is_satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        """Words for the message: ``an odd integer >= 1``, ``'auto'``."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """The value a command-line string stands for; ValueError when it is not this kind."""
        raise ValueError(text)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Interval(Constraint):
    """Integers (``type=Integral``) or real numbers (``type=Real``) from ``left`` to ``right``
    (``None``: unbounded); ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    ``odd``: odd integers only (window sides). ``allow_inf``: real ``inf``/``-inf`` accepted
    (they switch something off); NaN never is. Booleans are never numbers here."""

    type: type[Any]  # numbers.Integral or numbers.Real (abstract: type[Real] refuses them)
    left: float | None
    right: float | None
    closed: str = "both"
    odd: bool = False
    allow_inf: bool = False

    def __post_init__(self) -> None:
        if self.type not in (Integral, Real):
            raise TypeError("Interval type must be numbers.Integral or numbers.Real")
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval closed={self.closed!r}")

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.type):
            return False
        if self.type is Real and not isinstance(value, Integral):
            v = float(value)
            if math.isnan(v) or (math.isinf(v) and not self.allow_inf):
                return False
        if self.left is not None and (
            value < self.left or (value == self.left and self.closed in ("right", "neither"))
        ):
            return False
        if self.right is not None and (
            value > self.right or (value == self.right and self.closed in ("left", "neither"))
        ):
            return False
        return not self.odd or value % 2 == 1

    def describe(self) -> str:
        if self.type is Integral:
            kind = "an odd integer" if self.odd else "an integer"
        else:
            kind = "a finite number"
        lo, hi = self.left, self.right
        if lo is not None and hi is not None and self.closed == "both":
            return f"{kind} between {_num(lo)} and {_num(hi)}"
        parts = []
        if lo is not None:
            parts.append(f"{'>=' if self.closed in ('both', 'left') else '>'} {_num(lo)}")
        if hi is not None:
            parts.append(f"{'<=' if self.closed in ('both', 'right') else '<'} {_num(hi)}")
        text = " ".join([kind, " and ".join(parts)]) if parts else kind
        return f"{text} or -inf/inf" if self.allow_inf and self.type is Real else text

    def parse(self, text: str) -> Any:
        return int(text) if self.type is Integral else float(text)


class StrOptions(Constraint):
    """One of the given words (kept in the given order for messages)."""

    def __init__(self, options: Iterable[str]) -> None:
        opts = list(options)
        self.options: tuple[str, ...] = tuple(
            sorted(opts) if isinstance(options, set | frozenset) else opts
        )

    def __repr__(self) -> str:
        return f"StrOptions({self.options!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StrOptions) and other.options == self.options

    def __hash__(self) -> int:
        return hash(self.options)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options

    def describe(self) -> str:
        words = ", ".join(repr(o) for o in self.options)
        return words if len(self.options) == 1 else f"one of {words}"

    def parse(self, text: str) -> Any:
        if text not in self.options:
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class Text(Constraint):
    """A non-blank string in a format the method parses itself; ``what`` describes it
    (``"a comma list of band roles or numbers"``)."""

    what: str

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def describe(self) -> str:
        return self.what

    def parse(self, text: str) -> Any:
        if not text.strip():
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class BandRoles(Constraint):
    """``auto``, a preset, or a comma list of band roles in file order, no role twice (the
    count is checked against the images at fit): ``bands='red,red,nir'`` was accepted until
    then."""

    def is_satisfied_by(self, value: Any) -> bool:
        from stfusion.bands import PRESETS, parse_band_roles

        if not isinstance(value, str) or not value.strip():
            return False
        text = value.strip().lower()
        if text == "auto" or text in PRESETS:
            return True
        try:  # the rules fit() applies, for as many bands as roles are listed
            parse_band_roles(text, len(text.split(",")))
        except InvalidParameterError:
            return False
        return True

    def describe(self) -> str:
        from stfusion.bands import OTHER, PRESETS, ROLES

        return (
            f"auto, a preset ({', '.join(PRESETS)}) or a comma list of band roles in file "
            f"order ({', '.join((*ROLES, OTHER))}), no role twice"
        )

    def parse(self, text: str) -> Any:
        return text


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """Any instance of ``types`` (``str``, ``dict``, ``tuple``, ``os.PathLike``...)."""

    types: tuple[type, ...]
    what: str

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.types) and not isinstance(value, bool)

    def describe(self) -> str:
        return self.what

    def parse(self, text: str) -> Any:
        if str in self.types:
            return text  # free text reads as it is
        raise ValueError(text)


class _Bool(Constraint):
    TRUE = frozenset({"1", "true", "yes", "on"})
    FALSE = frozenset({"0", "false", "no", "off"})

    def __repr__(self) -> str:
        return "bool"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bool)

    def __hash__(self) -> int:
        return hash("bool")

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool | np.bool_)

    def describe(self) -> str:
        return "true or false"

    def parse(self, text: str) -> Any:
        if text.lower() in self.TRUE:
            return True
        if text.lower() in self.FALSE:
            return False
        raise ValueError(text)


class _NoneValue(Constraint):
    def __repr__(self) -> str:
        return "None"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NoneValue)

    def __hash__(self) -> int:
        return hash(None)

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


#: What the plain types stand for in a declaration.
_PLAIN: dict[Any, Constraint] = {
    bool: _Bool(),
    int: Interval(Integral, None, None),
    float: Interval(Real, None, None),
    str: InstanceOf((str,), "a string"),
    dict: InstanceOf((dict,), "a dict"),
    tuple: InstanceOf((tuple, list), "a (lo, hi) pair"),
    os.PathLike: InstanceOf((os.PathLike,), "a path object"),
    None: _NoneValue(),
}


#: Shorthands for the most common declarations.
AUTO = StrOptions({"auto"})
POSITIVE = Interval(Real, 0, None, closed="neither")
NON_NEGATIVE = Interval(Real, 0, None, closed="left")


def make_constraint(spec: Any) -> Constraint:
    """A :class:`Constraint` from a declaration item (a constraint or a plain type)."""
    if isinstance(spec, Constraint):
        return spec
    try:
        return _PLAIN[spec]
    except (KeyError, TypeError):
        raise TypeError(f"not a parameter constraint: {spec!r}") from None


@dataclass(frozen=True)
class Param:
    """One method parameter: its default, what values it accepts, its unit and help text.

    ``constraints``: one constraint or plain type, or a tuple of them (any one suffices; the
    order is the order in which command-line strings are tried). ``scene_bound``: a window
    side bounded by the scene, ``"fine"`` or ``"coarse"`` pixels (see
    :meth:`FusionMethod.check_scene_params`). ``usual``: the number an ``auto`` window is
    at the usual ratios, never refused by the scene bound (as a numeric default is not).
    """

    name: str
    default: Any
    constraints: Any
    unit: str
    help: str
    scene_bound: str | None = None
    usual: int | None = None
    rules: tuple[Constraint, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = self.constraints
        if not isinstance(specs, tuple | list):
            specs = (specs,)
        object.__setattr__(self, "rules", tuple(make_constraint(s) for s in specs))

    def allowed(self) -> str:
        """Words for every accepted value: ``'auto' or a finite number > 0``."""
        texts = [r.describe() for r in self.rules]
        return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]

    def accepts(self, value: Any) -> bool:
        return any(r.is_satisfied_by(value) for r in self.rules)

    def check(self, value: Any, where: str) -> None:
        """Refuse a value no constraint accepts; ``where`` starts the message
        (``starfm: window=0`` or ``starfm: --param window=0``)."""
        if not self.accepts(value):
            hint = ""
            if isinstance(value, str) and "--param" not in where:
                with contextlib.suppress(InvalidParameterError):
                    hint = f" A string was given: give {self.parse(value)!r}, not {value!r}."
            raise InvalidParameterError(
                f"{where}: {self.name} must be {self.allowed()} ({self.help}).{hint}"
            )

    def parse(self, text: str, method: str = "") -> Any:
        """Parse a command-line string (the first constraint that reads it) and check it."""
        where = f"{method + ': ' if method else ''}--param {self.name}={text}"
        for rule in self.rules:
            try:
                value = rule.parse(text)
            except (ValueError, OverflowError):
                continue
            self.check(value, where)
            return value
        raise InvalidParameterError(f"{where}: {self.name} must be {self.allowed()} ({self.help}).")


#: The scene-level ``--param ratio=R`` (coarse pixel size / fine pixel size), for inputs that
#: are all on one grid. 1000 is far beyond any sensor pair (MODIS 500 m / Sentinel-2 10 m = 50).
RATIO = Param(
    "ratio",
    None,
    (Interval(Real, 1.0, 1000.0), None),
    "coarse px / fine px",
    "resolution ratio, coarse pixel size / fine pixel size, e.g. 16 for 480 m / 30 m",
)


#: Exact properties the contract suite can check on a piecewise-constant scene whose coarse
#: images are exact block means: ``unchanged`` (C_0 = C_k gives F_k) and ``uniform_change``
#: (C_0 = C_k + d gives F_k + d).
EXACT_PROPERTIES = ("unchanged", "uniform_change")
#: Fields a method's ``predict_window_quality`` may report (see ``base.quality_layer``).
QUALITY_FIELDS = ("fallback", "uncertainty", "bands")


@dataclass(frozen=True)
class MethodTags:
    """What a method needs and promises (with its default parameters), read by ``fit``, the
    bench, ``series``, the CLI and :func:`stfusion.testing.check_method`.

    ``min_pairs``/``max_pairs``: how many (fine, coarse) pairs it takes (``None``: any
    number). ``pairs_note``: said after a refused pair count (why, what to use instead).
    ``needs_ratio``: it needs the integer resolution ratio (coarse pixel size / fine pixel
    size) when all inputs are on one grid. ``exact``: :data:`EXACT_PROPERTIES` its equations
    give. ``tiled_exact``: any window plan (tiles, threads) gives the whole-scene result bit
    for bit. ``quality``: the fields its ``predict_window_quality`` reports (``fallback``,
    ``uncertainty``, ``bands``). ``variables``: the values of its ``variable`` parameter (its
    unit-bearing constants follow from it); empty: it has no such constant. ``needs_torch``:
    ``fit`` needs PyTorch (a deep method). ``series_all_pairs``: ``stfusion series`` gives it
    every clear pair of the series, not the ``--pairs-per-side`` nearest (a time-series
    method: ROBOT).
    """

    min_pairs: int = 1
    max_pairs: int | None = None
    pairs_note: str = ""
    needs_ratio: bool = False
    exact: tuple[str, ...] = ()
    tiled_exact: bool = True
    quality: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()
    needs_torch: bool = False
    series_all_pairs: bool = False

    def accepts_pairs(self, n: int) -> bool:
        return n >= self.min_pairs and (self.max_pairs is None or n <= self.max_pairs)

    def pairs_text(self) -> str:
        """``1``, ``1+`` or ``1-2``, for listings."""
        lo, hi = self.min_pairs, self.max_pairs
        return f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}"

    def pairs_problem(self, n: int) -> str:
        """Why ``n`` pairs are refused (``needs exactly 2 pairs, got 1``), or ""."""
        if self.accepts_pairs(n):
            return ""
        lo, hi = self.min_pairs, self.max_pairs
        if lo == hi:
            return f"needs exactly {lo} pair{'s' if lo != 1 else ''}, got {n}"
        if n < lo:
            return f"needs at least {lo} pair{'s' if lo != 1 else ''}, got {n}"
        return f"takes at most {hi} pair{'s' if hi != 1 else ''}, got {n}"


#: The ``bands`` parameter of a method that chooses similarity bands by role (STARFM,
#: VIPSTF-SW): one declaration, so the roles are given the same way to each.
BAND_ROLES = Param(
    "bands",
    "auto",
    BandRoles(),
    "",
    "band roles, for similarity_bands: auto (from the band names), a preset "
    "(landsat7, landsat8, modis) or e.g. green,red,nir in file order",
)


def check_scene_bounds(method: Any, grid: Any, ratio: float | None) -> None:
    """Refuse a window of ``method`` (its parameters with a ``scene_bound``) that is larger
    than the scene on ``grid`` can use.

    A window of ``2 * max(height, width) + 1`` fine pixels already covers the whole scene
    from every pixel; a larger one only costs time (``window=9999`` on 250 x 250 px ran
    for ten minutes). Such a value is refused, not clamped, because the window also sets
    the distance weights of STARFM-like methods: clamping would silently change the
    result. A parameter's default is never refused.
    """
    side = max(grid.height, grid.width)
    for p in method.params:
        if p.scene_bound is None:
            continue
        value = getattr(method, p.name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            continue
        if p.scene_bound == "coarse":
            cells = -(-side // max(1, round(ratio or 1)))
            unit = "coarse pixels"
        else:
            cells, unit = side, "fine pixels"
        largest = max(2 * cells + 1, p.default if isinstance(p.default, int) else 0, p.usual or 0)
        if value > largest:
            raise InvalidParameterError(
                f"{method.name}: {p.name}={value} is larger than the scene "
                f"({grid.width} x {grid.height} fine px) can use: {p.name}={largest} "
                f"{unit} already covers the whole scene from every pixel. Give "
                f"{p.name}={largest} or less."
            )


def params_doc(params: Sequence[Param]) -> str:
    """A numpy-style "Parameters" section for a method's class docstring: ``help(STARFM)``
    (or ``STARFM?`` in Jupyter) described none of them, while every Param has its help."""
    lines = ["Parameters", "----------"]
    for p in params:
        unit = f", {p.unit}" if p.unit else ""
        lines += [f"{p.name} : default {p.default!r}{unit}", f"    {p.help}; {p.allowed()}."]
    return "\n".join(lines)


#: Below this resolution ratio a moving window given as ``auto`` spans the coarse pixel and
#: its neighbours (``2 R + 1`` fine pixels) instead of the method's default, which was set
#: for MODIS over Landsat (ratios 10-30): 51 fine pixels are 17 coarse pixels at ratio 3
#: (Landsat over Sentinel-2), and scored 41-69 % worse than ``2 R + 1`` there, 23-34 % at
#: ratio 5 (docs/inputs.md, "Small ratios").
SMALL_RATIO = 8.0


def window_param(default: int, least: int, meaning: str) -> Param:
    """The ``window`` parameter of a STARFM-like method (fine pixels, odd): ``auto`` (the
    default) is :func:`window_size`'s choice, ``default`` fine pixels but at small ratios."""
    return Param(
        "window",
        "auto",
        (AUTO, Interval(Integral, least, None, closed="left", odd=True)),
        "fine pixels",
        f"{meaning}; auto: {default}, or 2 R + 1 (at least 7) at ratios R below {SMALL_RATIO:g}",
        scene_bound="fine",
        usual=default,
    )


def _usual(method: Any, name: str) -> int:
    """The ``usual`` number of ``method``'s parameter ``name`` (an ``auto`` one)."""
    return int(next(p.usual for p in type(method).params if p.name == name))


def usual_window(method: Any) -> int:
    """The number ``method``'s ``window=auto`` is at the usual ratios (its :func:`window_param`
    ``default``: STARFM 51, FSDAF 41, ...)."""
    return _usual(method, "window")


def window_size(method: Any, least: int = 7) -> int:
    """``method.window`` in fine pixels; for ``auto``, :func:`usual_window` where the fitted
    ratio (``method.ratio_``) is unknown or at least :data:`SMALL_RATIO`, else ``2 R + 1`` (R
    rounded), at least ``least`` (enough similar pixels) and at most the usual number."""
    if method.window != "auto":
        return int(method.window)
    usual = usual_window(method)
    ratio = getattr(method, "ratio_", None)
    if ratio is None or ratio >= SMALL_RATIO:
        return usual
    return min(usual, max(least, 2 * round(ratio) + 1))


#: The fewest similar pixels ``similar=auto`` takes in a small window: a mean of a few.
LEAST_SIMILAR = 4


def similar_param(default: int, meaning: str) -> Param:
    """The ``similar`` parameter (a count of similar pixels) of FSDAF and Fit-FC: ``auto``
    (the default) is :func:`similar_count`'s choice, ``default`` in the usual window."""
    return Param(
        "similar",
        "auto",
        (AUTO, Interval(Integral, 1, None, closed="left")),
        "pixels",
        f"{meaning}; auto: {default} (at most window^2), in the smaller windows window=auto "
        f"takes at small ratios as many per window area ({default} x (window / usual "
        f"window)^2, at least {LEAST_SIMILAR})",
        usual=default,
    )


def similar_count(method: Any, window: int) -> int:
    """``method.similar``; for ``auto``, the usual count, but where ``window=auto`` chose a
    window smaller than the usual one (a small ratio) the same share of its pixels (at least
    :data:`LEAST_SIMILAR`): 30 of 49 pixels smoothed Fit-FC below the additive baseline at
    ratio 2. Never more than the window holds."""
    if method.similar != "auto":
        return int(method.similar)
    usual = _usual(method, "similar")
    full = usual_window(method)
    if method.window != "auto" or window >= full:
        return min(usual, window * window)
    return min(usual, max(LEAST_SIMILAR, round(usual * (window / full) ** 2)))
