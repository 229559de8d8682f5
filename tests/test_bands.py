"""Band roles: presets, explicit lists, names in files, and the errors."""

from __future__ import annotations

import pytest

from stfusion.bands import (
    OTHER,
    PRESETS,
    ROLES,
    parse_band_roles,
    require_roles,
    resolve_band_roles,
    roles_from_names,
)
from stfusion.errors import InvalidParameterError

LANDSAT = ("blue", "green", "red", "nir", "swir1", "swir2")
SHUFFLED = ("red", "green", "blue", "nir", "swir1", "swir2")
MODIS_NAMES = tuple(f"sur_refl_b0{i}" for i in (1, 2, 3, 4, 6, 7))
WORDS = ("nir", OTHER, "red", "swir1", "swir2")


def test_presets() -> None:
    assert parse_band_roles("landsat7", 6) == LANDSAT
    assert parse_band_roles("Landsat8", 6) == LANDSAT
    assert parse_band_roles("landsat8", 7) == (OTHER, *LANDSAT)
    assert parse_band_roles("modis", 6) == ("red", "nir", "blue", "green", "swir1", "swir2")
    assert parse_band_roles("modis", 7)[4] == OTHER
    for by_count in PRESETS.values():
        for count, roles in by_count.items():
            assert len(roles) == count
            assert set(roles) - {OTHER} == set(ROLES)


def test_preset_with_wrong_band_count() -> None:
    with pytest.raises(InvalidParameterError, match=r"6-band stacks.*3 bands.*--param bands="):
        parse_band_roles("landsat7", 3)


def test_explicit_lists() -> None:
    assert parse_band_roles("green, red ,NIR", 3) == ("green", "red", "nir")
    assert parse_band_roles(["nir", "other", "red"], 3) == ("nir", OTHER, "red")
    assert parse_band_roles("other,other", 2) == (OTHER, OTHER)


@pytest.mark.parametrize(
    ("text", "count", "match"),
    [
        ("red,nir", 3, "2 roles given for 3 bands"),
        ("red,infrared", 2, "'infrared' is not a band role"),
        ("red,red", 2, "given twice"),
        ("sentinel2", 4, "not a band role or preset"),
    ],
)
def test_explicit_list_errors(text: str, count: int, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        parse_band_roles(text, count)


def test_error_names_the_parameter() -> None:
    with pytest.raises(InvalidParameterError, match="--param sim_roles"):
        parse_band_roles("red", 2, param="sim_roles")


@pytest.mark.parametrize(
    ("names", "roles"),
    [
        (LANDSAT, LANDSAT),
        (("Blue", "GREEN", "Red", "NIR", "SWIR1", "SWIR2"), LANDSAT),
        (("B1", "B2", "B3", "B4", "B5", "B7"), LANDSAT),  # TM/ETM+ numbering
        (("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"), LANDSAT),  # OLI numbering
        (("SR_B4", "SR_B3", "SR_B2", "SR_B5", "SR_B6", "SR_B7"), SHUFFLED),
        (MODIS_NAMES, ("red", "nir", "blue", "green", "swir1", "swir2")),
        # MOD09GA's fields (first observation, _1) and MCD43A4's: real HDF names (a trial)
        (("sur_refl_b03_1", "sur_refl_b04_1", "sur_refl_b01_1"), ("blue", "green", "red")),
        (("Nadir_Reflectance_Band2", "Nadir_Reflectance_Band6"), ("nir", "swir1")),
        (("sur_refl_b01_2", "BRDF_Albedo_Band_Mandatory_Quality_Band1"), (OTHER, OTHER)),
        (("coastal", "blue", "green", "red", "nir08", "swir16", "swir22"), (OTHER, *LANDSAT)),
        (("Near Infrared", "Red Edge 1", "red", "SWIR 1", "swir-2"), WORDS),
        (("band1", "band2", "band3"), (OTHER, OTHER, OTHER)),  # generic names say nothing
        (("B2", "B3", "B4"), (OTHER, OTHER, OTHER)),  # ambiguous: B4 is red or NIR
        (("red", "Red"), (OTHER, OTHER)),  # a role twice: no guess
    ],
)
def test_roles_from_names(names: tuple[str, ...], roles: tuple[str, ...]) -> None:
    assert roles_from_names(names) == roles


def test_resolve_prefers_what_is_given() -> None:
    names = ("band1", "band2", "band3", "band4", "band5", "band6")
    assert resolve_band_roles(names) == (OTHER,) * 6
    assert resolve_band_roles(names, "auto") == (OTHER,) * 6
    assert resolve_band_roles(names, "landsat7") == LANDSAT
    assert resolve_band_roles(LANDSAT, "modis")[0] == "red"  # explicit beats the names


def test_require_roles() -> None:
    assert require_roles(LANDSAT, ["nir", "red"], method="x") == (3, 2)
    with pytest.raises(InvalidParameterError) as info:
        require_roles(
            (OTHER, "red"),
            ["red", "nir"],
            method="fitfc",
            file_band_names=("b", "red"),
            why="(similarity_bands=red,nir)",
        )
    msg = str(info.value)
    assert "fitfc: needs to know which band is nir (similarity_bands=red,nir)" in msg
    assert "band names: b, red" in msg
    assert "--param bands=blue,green,red,nir,swir1,swir2" in msg
    assert "landsat7, landsat8 or modis" in msg


def test_sentinel2_band_names_give_roles() -> None:
    """Sentinel-2 names (the sentinel2-l2a preset stacks B02 ... B12) gave no role, so
    STARFM's red and NIR similarity fell back to each band alone on Sentinel-2 scenes."""
    from stfusion.bands import roles_from_names

    assert roles_from_names(("B02", "B03", "B04", "B8A", "B11", "B12")) == (
        "blue", "green", "red", "nir", "swir1", "swir2",
    )  # fmt: skip
    assert roles_from_names(("B04_10m", "B08_10m", "B8A_20m"))[:3] == ("red", "nir", "other")
    # HLS L30 numbers Landsat's bands B01..B07 (B05 its NIR): no Sentinel-2 roles without B08/B8A
    assert set(roles_from_names(("B01", "B02", "B03", "B04", "B05", "B06", "B07"))) == {"other"}
