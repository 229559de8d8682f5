"""Band roles: which band of a stack is blue, green, red, NIR, SWIR1 or SWIR2.

Some methods need to know a band's role (an index from red and NIR, similar pixels chosen on
particular bands). Roles come from, in order of preference:

1. the user: ``--param bands=blue,green,red,nir,swir1,swir2`` (one role per band, in file
   order; ``other`` for a band with no role here), or a sensor preset ``--param bands=landsat8``;
2. the file's band names (descriptions), matched as described in :func:`roles_from_names`.

Presets give the usual stacks (bands in the order named):

=============  =====  ===================================================================
preset         bands  roles
=============  =====  ===================================================================
``landsat7``   6      TM/ETM+ bands 1, 2, 3, 4, 5, 7: blue, green, red, nir, swir1, swir2
``landsat8``   6      OLI bands 2-7: blue, green, red, nir, swir1, swir2
``landsat8``   7      OLI bands 1-7: other (coastal), blue, green, red, nir, swir1, swir2
``modis``      6      MODIS bands 1, 2, 3, 4, 6, 7 in band-number order: red, nir, blue,
                      green, swir1, swir2
``modis``      7      MODIS bands 1-7: red, nir, blue, green, other (1240 nm), swir1, swir2
=============  =====  ===================================================================

A coarse (MODIS) image that was reordered to match Landsat (as in most fusion data sets,
e.g. the CIA and LGC benchmarks) has the Landsat roles: use ``landsat7``/``landsat8`` there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stfusion.errors import InvalidParameterError

#: Canonical role names, in wavelength order.
ROLES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")
#: Role of a band that is none of :data:`ROLES` (coastal, thermal, 1240 nm, unknown).
OTHER = "other"

_LANDSAT_6 = ("blue", "green", "red", "nir", "swir1", "swir2")
PRESETS: dict[str, dict[int, tuple[str, ...]]] = {
    "landsat7": {6: _LANDSAT_6},
    "landsat8": {6: _LANDSAT_6, 7: (OTHER, *_LANDSAT_6)},
    "modis": {
        6: ("red", "nir", "blue", "green", "swir1", "swir2"),
        7: ("red", "nir", "blue", "green", OTHER, "swir1", "swir2"),
    },
}

#: Band number -> role for names like ``B4``/``SR_B4`` (Landsat) and ``sur_refl_b01`` (MODIS).
_LANDSAT_TM = {1: "blue", 2: "green", 3: "red", 4: "nir", 5: "swir1", 7: "swir2"}
_LANDSAT_OLI = {2: "blue", 3: "green", 4: "red", 5: "nir", 6: "swir1", 7: "swir2"}
_MODIS = {1: "red", 2: "nir", 3: "blue", 4: "green", 6: "swir1", 7: "swir2"}

#: Sentinel-2 MSI names (``B04``, ``B8A``, ``B04_10m``): two digits or 8A, which Landsat's
#: ``B4`` / ``SR_B4`` never use; only when B08 or B8A is among the names (HLS L30 numbers
#: Landsat's bands B01..B07, with B05 its NIR).
_S2 = {"02": "blue", "03": "green", "04": "red", "08": "nir", "11": "swir1", "12": "swir2"}
_S2_NUMBER = re.compile(r"^b(0[1-9]|1[0-2]|8a)(?:_\d{2}m)?$")
_LANDSAT_NUMBER = re.compile(r"^(?:sr_)?b0*(\d+)$")
#: MOD09A1 ``sur_refl_b01``, MOD09GA ``sur_refl_b01_1`` (the first observation of the day),
#: MCD43A4 ``Nadir_Reflectance_Band1``
_MODIS_NUMBER = re.compile(r"^(?:sur_refl_b0*(\d+)(?:_1)?|nadir_reflectance_band(\d+))$")


#: Band names of a normalised difference index (-1..1) and of a temperature.
INDEX_NAMES = re.compile(r"(^|[^a-z])(k?ndvi|evi2?|savi|ndwi|mndwi|ndmi|nbr2?)([^a-z]|$)", re.I)
TEMPERATURE_NAMES = re.compile(r"(^|[^a-z])(lst|temp|temperature|kelvin|bt)([^a-z]|$)", re.I)


def names_index_or_temperature(names: Sequence[object]) -> bool:
    """Whether every band name (at least one) names an index (NDVI, EVI, ...) or a
    temperature (LST, BT, ...)."""
    text = [str(n) for n in names]
    return bool(text) and all(INDEX_NAMES.search(n) or TEMPERATURE_NAMES.search(n) for n in text)


def _example(param: str) -> str:
    return f"--param {param}=blue,green,red,nir,swir1,swir2 (Python: {param}='blue,green,...')"


def _role_from_words(name: str) -> str | None:
    """A role from words in a band name (``'Red'``, ``'NIR'``, ``'near infrared'``, ...)."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    ts = set(tokens)
    if "swir" in ts:
        if "1" in ts:
            return "swir1"
        if "2" in ts:
            return "swir2"
    for role, words in (
        ("swir1", {"swir1", "swir16"}),
        ("swir2", {"swir2", "swir22"}),
        ("nir", {"nir", "nir08"}),
        ("blue", {"blue"}),
        ("green", {"green"}),
    ):
        if ts & words:
            return role
    if {"near", "infrared"} <= ts:
        return "nir"
    if "red" in ts and "edge" not in ts:
        return "red"
    return None


def roles_from_names(names: Sequence[str]) -> tuple[str, ...]:
    """Roles read from band names; :data:`OTHER` where a name says nothing.

    Matching (case-insensitive, on the words of each name):

    * role words: ``blue``, ``green``, ``red`` (not ``red edge``), ``nir``/``nir08``/``near
      infrared``, ``swir1``/``swir16``/``swir 1``, ``swir2``/``swir22``/``swir 2``;
    * MODIS names ``sur_refl_b01`` ... ``sur_refl_b07`` (MOD09GA's ``sur_refl_b01_1`` ...,
      MCD43A4's ``Nadir_Reflectance_Band1`` ...) by MODIS band number;
    * Sentinel-2 names (``B02``, ``B04``, ``B08``, ``B8A``, ``B11``, ``B12``, with an optional
      ``_10m``/``_20m``) when B08 or B8A is among them; B8A is the NIR only without B08;
    * Landsat band numbers (``B4``, ``SR_B4``) only where the set of numbers tells the sensor:
      exactly {1, 2, 3, 4, 5, 7} is TM/ETM+ (B4 = NIR), exactly {2, ..., 7} is OLI (B4 = red).
      Other sets are ambiguous (B4 is NIR on Landsat 4-7 and red on Landsat 8-9) and give
      :data:`OTHER`. The generic names ``band1``, ``band2``, ... say nothing.

    A role found twice is dropped (both bands get :data:`OTHER`): a guess is worse than a
    clear error.
    """
    out: list[str | None] = [_role_from_words(n) for n in names]
    s2 = [m.group(1) if (m := _S2_NUMBER.match(n.strip().lower())) else None for n in names]
    if "08" in s2 or "8a" in s2:
        # B8A (narrow NIR, 20 m) is the NIR only where B08 (10 m) is not given
        s2_roles = {**_S2, **({} if "08" in s2 else {"8a": "nir"})}
        return _unique([out[i] or s2_roles.get(b or "", OTHER) for i, b in enumerate(s2)])
    numbers: dict[int, int] = {}
    for i, n in enumerate(names):
        low = n.strip().lower()
        m = _MODIS_NUMBER.match(low)
        if m and out[i] is None:
            out[i] = _MODIS.get(int(m.group(1) or m.group(2)))
            continue
        m = _LANDSAT_NUMBER.match(low)
        if m:
            numbers[i] = int(m.group(1))
    found = set(numbers.values())
    table = (
        _LANDSAT_TM
        if found == {1, 2, 3, 4, 5, 7}
        else _LANDSAT_OLI
        if found == {2, 3, 4, 5, 6, 7}
        else None
    )
    if table is not None:
        for i, num in numbers.items():
            if out[i] is None:
                out[i] = table.get(num)
    return _unique([r if r is not None else OTHER for r in out])


def _unique(roles: list[str]) -> tuple[str, ...]:
    """``roles`` with every role found twice made :data:`OTHER` (a guess is worse than a
    clear error)."""
    for role in ROLES:
        if roles.count(role) > 1:
            roles = [OTHER if r == role else r for r in roles]
    return tuple(roles)


def parse_band_roles(
    text_or_preset: str | Sequence[str], count: int, *, param: str = "bands"
) -> tuple[str, ...]:
    """Roles of ``count`` bands from a preset name or a comma-separated list of roles."""
    if isinstance(text_or_preset, str):
        text = text_or_preset.strip().lower()
        if text in PRESETS:
            by_count = PRESETS[text]
            if count not in by_count:
                have = " or ".join(str(c) for c in sorted(by_count))
                raise InvalidParameterError(
                    f"--param {param}={text}: the {text} preset is for {have}-band stacks, the "
                    f"images have {count} bands. List one role per band instead: {_example(param)}."
                )
            return by_count[count]
        items = [t.strip() for t in text.split(",")]
    else:
        items = [str(t).strip().lower() for t in text_or_preset]
    allowed = (*ROLES, OTHER)
    for item in items:
        if item not in allowed:
            raise InvalidParameterError(
                f"--param {param}: {item!r} is not a band role or preset; use roles from "
                f"{', '.join(allowed)} (one per band, in file order) or a preset "
                f"({', '.join(PRESETS)})."
            )
    if len(items) != count:
        raise InvalidParameterError(
            f"--param {param}: {len(items)} roles given for {count} bands; give one role per "
            f"band, in file order ({OTHER} for a band with none), e.g. {_example(param)}."
        )
    for role in ROLES:
        if items.count(role) > 1:
            raise InvalidParameterError(f"--param {param}: role {role!r} is given twice.")
    return tuple(items)


def resolve_band_roles(
    file_band_names: Sequence[str],
    given: str | Sequence[str] | None = None,
    *,
    param: str = "bands",
) -> tuple[str, ...]:
    """Roles of the bands: from ``given`` (preset or list) if given, else from the names.

    ``given`` of ``None`` or ``"auto"`` means "read the band names". The result may contain
    :data:`OTHER`; :func:`require_roles` turns a missing role into a clear error.
    """
    if given is None or (isinstance(given, str) and given.strip().lower() == "auto"):
        return roles_from_names(file_band_names)
    return parse_band_roles(given, len(file_band_names), param=param)


def red_nir(file_band_names: Sequence[str], given: str | Sequence[str] | None) -> list[int] | None:
    """0-based indices of the red and NIR bands by their roles (:func:`resolve_band_roles`),
    or None when the roles do not name both: the similarity bands of the STARFM paper and of
    VIPSTF-SW's authors."""
    roles = resolve_band_roles(file_band_names, given)
    if "red" in roles and "nir" in roles:
        return [roles.index("red"), roles.index("nir")]
    return None


def require_roles(
    roles: Sequence[str],
    needed: Sequence[str],
    *,
    method: str,
    file_band_names: Sequence[str] = (),
    param: str = "bands",
    why: str = "",
) -> tuple[int, ...]:
    """0-based indices of the ``needed`` roles, or an error saying how to name the bands."""
    missing = [r for r in needed if r not in roles]
    if missing:
        names = f" (band names: {', '.join(file_band_names)})" if file_band_names else ""
        because = f" {why}" if why else ""
        raise InvalidParameterError(
            f"{method}: needs to know which band is {' and '.join(missing)}{because}, but the "
            f"bands{names} do not say. Name the roles with {_example(param)}, or a sensor preset "
            f"(--param {param}=landsat7, landsat8 or modis)."
        )
    return tuple(list(roles).index(r) for r in needed)


def band_indices(
    spec: str,
    band_names: Sequence[str],
    bands: str | Sequence[str],
    *,
    method: str,
    param: str = "similarity_bands",
) -> list[int]:
    """0-based indices of a comma list of 1-based band numbers and roles (``'red,nir'``,
    ``'3,4'``), as a method parameter ``param`` gives them; roles are read from
    ``band_names`` or the method's ``bands`` parameter (:func:`resolve_band_roles`). Refuses
    numbers beyond the bands, roles not found and a band named twice."""
    count = len(band_names)
    roles: tuple[str, ...] | None = None
    out: list[int] = []
    for item in (t.strip() for t in spec.strip().lower().split(",") if t.strip()):
        if item.isdigit():
            k = int(item)
            if not 1 <= k <= count:
                raise InvalidParameterError(
                    f"--param {param}={spec}: band {k} does not exist; the images have bands "
                    f"1 to {count}."
                )
            out.append(k - 1)
            continue
        if roles is None:
            roles = resolve_band_roles(band_names, bands)
        out.extend(
            require_roles(
                roles, [item], method=method, file_band_names=band_names, why=f"({param}={spec})"
            )
        )
    if len(set(out)) != len(out):
        raise InvalidParameterError(f"--param {param}={spec}: a band is named twice.")
    return out
