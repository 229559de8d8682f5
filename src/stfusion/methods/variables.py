"""What the data measure: reflectance, NDVI, land surface temperature or something else.

The classical methods carry constants with units (STARFM's uncertainty, ESTARFM's minimum
coarse change and allowed range, FSDAF's allowed range). Those constants follow from the
*variable* the images hold and from how it is stored:

============  ==========================  ==========================================
variable      physical range              stored as (``scale`` = stored / physical)
============  ==========================  ==========================================
reflectance   0 .. 1 (the reference       0-1 (scale 1) or integers x 10000 (scale
              programs' DN_min 0,         10000, the reference programs' DN)
              DN_max 10000)
ndvi          -1 .. 1                     -1..1 (scale 1) or integers x 10000
lst           none (kelvin)               kelvin (scale 1)
other         none                        anything: constants from the data's range
============  ==========================  ==========================================

:func:`resolve_variable` is the one place that infers the variable when the user does not
give it (``variable="auto"``) and logs what it decided. The rules, on the 0.5th and 99.5th
percentiles (lo, hi) of a sample of the fine images' values:

* band names that all name a normalised difference index (NDVI, EVI, NDWI, NBR, ...): ndvi
  (x 10000 when hi > 1.5); names that all name a temperature (LST, temperature, BT),
  whatever the values (degrees Celsius near 0 look like an index): lst.
* lo >= -0.5 and hi <= 1.5: reflectance (scale 1); with a single band and lo < -0.02 (a
  share of clearly negative values, which reflectance does not have): ndvi, unless the band
  is named as a spectral band (blue, nir, SR_B2, B02, sur_refl_b03, ...).
* 150 <= lo and hi <= 400: lst (kelvin).
* a single band (not named as a spectral band) within -1..1 and lo < -0.5: ndvi (an index
  with clear water).
* integer values within 0..255 (8-bit digital numbers): other;
* integer values with lo >= -5000 and hi <= 15000: reflectance x 10000; with a single band
  and lo < -200: ndvi x 10000; a single band within -10000..10000 below -5000: ndvi x 10000.
* anything else: other.

A variable given explicitly only needs the storage scale: 10000 when hi > 1.5 (reflectance
or NDVI stored as integers x 10000), else 1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stfusion.bands import INDEX_NAMES, TEMPERATURE_NAMES, names_index_or_temperature
from stfusion.errors import InvalidParameterError, warn

log = logging.getLogger("stfusion.methods")

VARIABLES = ("reflectance", "ndvi", "lst", "other")
#: The ``variable`` parameter's choices.
CHOICES = ("auto", *VARIABLES)
#: Integer storage of reflectance and NDVI in the reference programs (DN = value x 10000).
DN_SCALE = 10000.0
#: Values (0.5-99.5 percentiles) that are land surface temperature in kelvin.
KELVIN = (150.0, 400.0)


@dataclass(frozen=True)
class Variable:
    """The resolved variable: ``name``, its storage ``scale`` (stored = physical x scale),
    whether it was ``inferred``, and ``reason`` (for the log line)."""

    name: str
    scale: float = 1.0
    inferred: bool = False
    reason: str = ""

    @property
    def physical_range(self) -> tuple[float, float] | None:
        """The variable's physical range in the data's units, or None (no range)."""
        if self.name == "reflectance":
            return (0.0, 1.0 * self.scale)
        if self.name == "ndvi":
            return (-1.0 * self.scale, 1.0 * self.scale)
        return None

    def describe(self) -> str:
        stored = "" if self.scale == 1.0 else f" stored x {self.scale:g}"
        how = f"inferred ({self.reason})" if self.inferred else "given"
        return f"{self.name}{stored}, {how}"


def _robust_range(sample: np.ndarray) -> tuple[float, float] | None:
    s = np.asarray(sample, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        return None
    lo, hi = np.percentile(s, [0.5, 99.5])
    return float(lo), float(hi)


#: Band names of a spectral band: colours, Landsat/Sentinel-2 band numbers, MODIS fields.
REFLECTANCE_TOKENS = re.compile(
    r"^(b\d{1,2}a?|blue|green|red|nir\d*|swir\d*|coastal|rededge\d*|reflectance)$", re.I
)


def _reflectance_name(name: str) -> bool:
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", name) if t]
    return "sur_refl" in name.lower() or any(REFLECTANCE_TOKENS.match(t) for t in tokens)


def infer_variable(
    sample: np.ndarray, bands: int, band_names: tuple[str, ...] | list[str] = ()
) -> Variable:
    """Infer the variable from a sample of fine values and the band names (see the module
    docstring)."""
    rng = _robust_range(sample)
    if rng is None:
        return Variable("reflectance", 1.0, True, "no valid value: the default")
    lo, hi = rng
    where = f"0.5-99.5 percentile {lo:.4g}..{hi:.4g}"
    named = [str(n) for n in band_names]
    if named and all(INDEX_NAMES.search(n) for n in named) and lo >= -1.5 * DN_SCALE:
        scale = DN_SCALE if hi > 1.5 else 1.0
        return Variable("ndvi", scale, True, f"band names {', '.join(named)}, {where}")
    if named and all(TEMPERATURE_NAMES.search(n) for n in named):
        # before the value rules: degrees Celsius near 0 look like an index (a trial's
        # melting snow at -0.4..1.2 named LST was taken for NDVI)
        return Variable("lst", 1.0, True, f"band names {', '.join(named)}, {where}")
    # a band named as a spectral band (blue, SR_B2, B02, sur_refl_b03) is reflectance
    # whatever its negative values (dark water and shadow in blue)
    spectral = bool(named) and all(_reflectance_name(n) for n in named)
    if lo >= -0.5 and hi <= 1.5:
        if bands == 1 and lo < -0.02 and not spectral:
            return Variable("ndvi", 1.0, True, f"one band, {where}")
        return Variable("reflectance", 1.0, True, where)
    if bands == 1 and not spectral and -1.0001 <= lo < -0.5 and hi <= 1.0001:
        # an index with clear water, below reflectance's -0.5 (a trial's NDVI at -0.53 was
        # "other"): within an index's own -1..1
        return Variable("ndvi", 1.0, True, f"one band within -1..1, {where}")
    if KELVIN[0] <= lo and hi <= KELVIN[1]:
        return Variable("lst", 1.0, True, f"{where}: kelvin")
    s = np.asarray(sample, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    integers = bool(np.all(s == np.round(s)))
    if integers and lo >= 0.0 and hi <= 255.0:
        # 8-bit digital numbers (a Byte file): as reflectance x 10000 the brightest pixel
        # would be 0.0255, and the advice --fine-scale 0.0001 with it (a trial)
        return Variable("other", 1.0, True, f"integers within 0..255 (8-bit values?), {where}")
    if lo >= -5000.0 and hi <= 15000.0 and integers:
        if bands == 1 and lo < -200.0 and not spectral:
            return Variable("ndvi", DN_SCALE, True, f"one band, integers, {where}")
        return Variable("reflectance", DN_SCALE, True, f"integers, {where}")
    if bands == 1 and not spectral and integers and -10000.0 <= lo and hi <= 10000.0:
        return Variable("ndvi", DN_SCALE, True, f"one band, integers within -10000..10000, {where}")
    return Variable("other", 1.0, True, where)


def variable_for(
    variable: str, sample: np.ndarray, bands: int, band_names: tuple[str, ...] | list[str] = ()
) -> Variable:
    """The variable for ``variable`` (a choice of :data:`CHOICES`) and the data ``sample``,
    quietly (:func:`resolve_variable` also checks the choice and logs it)."""
    if variable == "auto":
        return infer_variable(sample, bands, band_names)
    if variable in ("reflectance", "ndvi"):
        rng = _robust_range(sample)
        return Variable(variable, DN_SCALE if rng is not None and rng[1] > 1.5 else 1.0)
    return Variable(variable, 1.0)


def resolve_variable(
    variable: str,
    sample: np.ndarray,
    bands: int,
    method: str,
    band_names: tuple[str, ...] | list[str] = (),
) -> Variable:
    """The variable for ``variable`` (a choice of :data:`CHOICES`) and the data ``sample``;
    logs one line saying which variable the method's constants follow (the prediction's
    ``STFUSION_VARIABLE`` tag says it too)."""
    if variable not in CHOICES:
        raise InvalidParameterError(
            f"{method}: variable must be one of {', '.join(CHOICES)}, got {variable!r}."
        )
    var = variable_for(variable, sample, bands, band_names)
    hint = " (give --variable / variable= to override)" if var.inferred else ""
    log.info("%s: variable %s%s", method, var.describe(), hint)
    return var


def params_with_variable(
    params: tuple[str, ...] | list[str], method: str, variable: str | None
) -> tuple[str, ...]:
    """The CLI's ``--param`` strings plus ``variable=VALUE`` from ``--variable``, for methods
    that take a ``variable`` parameter (the classical ones); an explicit ``-p variable=``
    wins. Other methods: refused, since they have no unit-bearing constant to set."""
    params = tuple(params)
    if variable is None or any(p.split("=", 1)[0].strip() == "variable" for p in params):
        return params
    from stfusion.methods import get_method

    cls = get_method(method)
    if not cls.tags.variables:
        raise InvalidParameterError(
            f"--variable: {method} has no unit-bearing constants to set; leave --variable out."
        )
    return (*params, f"variable={variable}")


def range_with_inputs(
    rng: tuple[float, float] | None,
    variable: Variable,
    auto: bool,
    seen: tuple[float, float],
    method: str,
) -> tuple[float, float] | None:
    """The range predictions are limited to: ``rng``, or, when ``rng`` is the physical range
    of a variable that was inferred (``auto``) and the inputs hold values (``seen``: their
    minimum and maximum) more than 5 % of it outside, that range widened to the inputs'
    values, with a warning: the guess is doubtful. One unnamed NDVI band with little water
    passes for reflectance, and its water would be set to 0; slightly negative surface
    reflectance (dark water) keeps the reference programs' range."""
    if rng is None or not (auto and variable.inferred) or not all(np.isfinite(seen)):
        return rng
    margin = 0.05 * (rng[1] - rng[0])
    if seen[0] >= rng[0] - margin and seen[1] <= rng[1] + margin:
        return rng
    lo, hi = min(rng[0], seen[0]), max(rng[1], seen[1])
    warn(
        f"{method}: the inputs hold values from {seen[0]:.4g} to {seen[1]:.4g}, beyond "
        f"{rng[0]:g}..{rng[1]:g}, the range of {variable.describe()}: predictions are limited "
        f"to {lo:.4g}..{hi:.4g} instead. Say what the images hold with --variable (ndvi, lst, "
        "other; variable= in Python), or give the range (FSDAF valid_range=LO,HI, ESTARFM "
        "data_min=, data_max=)."
    )
    return (lo, hi)


def said_not_reflectance(band_names: Sequence[object], tags: Mapping[str, str]) -> bool:
    """Whether a file says it holds an index or a temperature: every band named so (NDVI,
    LST, ...), or stfusion's ``STFUSION_VARIABLE`` tag (``tags``, the file's) naming ndvi, lst
    or other."""
    if names_index_or_temperature(band_names):
        return True
    variable = tags.get("STFUSION_VARIABLE", "")  # e.g. "ndvi, inferred (...)"
    return variable.split(",")[0].split(" ")[0] in ("ndvi", "lst", "other")


def values_not_reflectance(
    sample: np.ndarray, bands: int, band_names: Sequence[object] = ()
) -> Variable | None:
    """The variable of values that cannot be reflectance, else None: kelvin (0.5-99.5
    percentiles within 150..400), or one band within -1..1 reaching below -0.2 (an index with
    water) and not named as a spectral band. Stricter than :func:`infer_variable`'s -0.02: a
    reflectance band with a few dark pixels, or percent reflectance, which values alone
    cannot tell from degrees Celsius, stays reflectance (the range warning says what to give)."""
    rng = _robust_range(sample)
    if rng is None:
        return None
    lo, hi = rng
    where = f"0.5-99.5 percentile {lo:.4g}..{hi:.4g}"
    if KELVIN[0] <= lo and hi <= KELVIN[1]:
        return Variable("lst", 1.0, True, f"{where}: kelvin")
    names = [str(n) for n in band_names]
    spectral = bool(names) and all(_reflectance_name(n) for n in names)
    if bands == 1 and not spectral and -1.0001 <= lo < -0.2 and hi <= 1.0001:
        return Variable("ndvi", 1.0, True, f"one band within -1..1, {where}")
    return None
