"""QA decoding against hand-made bit patterns, and MaskedSource."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from conftest import UTM55S, write_tif
from stfusion.errors import GridMismatchError, InvalidParameterError
from stfusion.io import ArraySource, Grid
from stfusion.qa import (
    LANDSAT_DEFAULT_FLAGS,
    MOD09_DEFAULT_FLAGS,
    MaskedSource,
    binary_invalid,
    check_flags,
    decode_landsat_qa_pixel,
    decode_mod09_state_1km,
    landsat_qa_pixel_invalid,
    mod09_state_1km_invalid,
    parse_flags,
)

B = 1  # one bit, for readability below
LOW = (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # every confidence "low"


# Landsat C2 QA_PIXEL: (value, invalid with the defaults, invalid with default + snow)
LANDSAT_CASES = [
    (LOW | (B << 6), False, False),  # clear land (21824 in USGS products)
    (LOW | (B << 6) | (B << 7), False, False),  # clear water (21952)
    (B << 0, True, True),  # fill
    (B << 1, True, True),  # dilated cloud
    (B << 2, True, True),  # high-confidence cirrus
    ((B << 3) | (3 << 8), True, True),  # cloud, high confidence
    (B << 4, True, True),  # cloud shadow
    ((B << 5) | (B << 6) | (3 << 12), False, True),  # snow: only if chosen
    (3 << 8, False, False),  # confidence alone is not a flag of the defaults
    (0, False, False),
]


def test_landsat_qa_pixel_bits() -> None:
    qa = np.array([v for v, _, _ in LANDSAT_CASES], dtype=np.uint16)
    assert landsat_qa_pixel_invalid(qa).tolist() == [d for _, d, _ in LANDSAT_CASES]
    with_snow = landsat_qa_pixel_invalid(qa, ("default", "snow"))
    assert with_snow.tolist() == [s for _, _, s in LANDSAT_CASES]
    only_cloud = landsat_qa_pixel_invalid(qa, ["cloud"])
    assert only_cloud.tolist() == [bool(v & 8) for v, _, _ in LANDSAT_CASES]
    dec = decode_landsat_qa_pixel(np.array([(3 << 8) | (1 << 10) | (2 << 12) | (3 << 14)]))
    assert dec["cloud_confidence"][0] == 3
    assert dec["cloud_shadow_confidence"][0] == 1
    assert dec["snow_ice_confidence"][0] == 2
    assert dec["cirrus_confidence"][0] == 3
    assert not dec["cloud"][0] and not dec["clear"][0]
    conf = landsat_qa_pixel_invalid(
        np.array([1 << 8, 2 << 8, 3 << 8, 3 << 14]), ["cloud_conf_medium", "cirrus_conf_high"]
    )
    assert conf.tolist() == [False, True, True, True]
    # float input (read through a Source): NaN (nodata, outside the grid) is invalid
    f = np.array([21824.0, np.nan, 8.0], dtype=np.float32)
    assert landsat_qa_pixel_invalid(f).tolist() == [False, True, True]
    assert set(LANDSAT_DEFAULT_FLAGS) == {
        "fill",
        "dilated_cloud",
        "cirrus",
        "cloud",
        "cloud_shadow",
    }


# MOD09GA state_1km: (value, invalid with the defaults)
MOD09_CASES = [
    (0b00, False),  # clear
    (0b01, True),  # cloudy
    (0b10, True),  # mixed
    (0b11, False),  # not set, assumed clear
    (B << 2, True),  # cloud shadow
    (0b001 << 3, False),  # land
    (1 << 8, False),  # cirrus small
    (2 << 8, False),  # cirrus average
    (3 << 8, True),  # cirrus high
    (B << 10, True),  # internal cloud algorithm
    (B << 11, False),  # internal fire
    (B << 12, False),  # MOD35 snow/ice
    (B << 13, False),  # adjacent to cloud
    (B << 14, False),  # BRDF corrected
    (B << 15, False),  # internal snow mask
]


def test_mod09_state_1km_bits() -> None:
    st = np.array([v for v, _ in MOD09_CASES], dtype=np.uint16)
    assert mod09_state_1km_invalid(st).tolist() == [d for _, d in MOD09_CASES]
    extra = mod09_state_1km_invalid(st, ["adjacent_cloud", "snow", "internal_snow"])
    assert extra.tolist() == [bool(v & ((1 << 13) | (1 << 12) | (1 << 15))) for v, _ in MOD09_CASES]
    dec = decode_mod09_state_1km(np.array([0b10 | (2 << 8)], dtype=np.uint16))
    assert dec["cloud_state"][0] == 2 and dec["mixed"][0] and not dec["cloudy"][0]
    assert dec["cirrus"][0] == 2 and dec["cirrus_average"][0]
    assert set(MOD09_DEFAULT_FLAGS) == {
        "cloudy",
        "mixed",
        "cloud_shadow",
        "cirrus_high",
        "internal_cloud",
    }


def test_binary_and_flag_checks() -> None:
    assert binary_invalid(np.array([0, 1, 255], np.uint8)).tolist() == [False, True, True]
    assert binary_invalid(np.array([0.0, np.nan, 2.0])).tolist() == [False, True, True]
    assert parse_flags("default, snow") == ("default", "snow")
    assert parse_flags("") is None
    assert check_flags("landsat_qa_pixel", ("default", "snow", "cloud"))[-1] == "snow"
    # names are not case-sensitive (Cloud was refused)
    assert check_flags("landsat_qa_pixel", ("Cloud", "SNOW")) == ("cloud", "snow")
    with pytest.raises(InvalidParameterError, match="unknown flag 'clouds'"):
        check_flags("landsat_qa_pixel", ["clouds"])
    with pytest.raises(InvalidParameterError, match="no flags"):
        check_flags("binary", ["cloud"])
    with pytest.raises(InvalidParameterError, match="unknown"):
        check_flags("fmask", None)


# ---------------------------------------------------------------------------- MaskedSource

T30 = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)


def _image(h: int = 12, w: int = 16, bands: int = 2) -> ArraySource:
    arr = np.arange(bands * h * w, dtype=np.float32).reshape(bands, h, w) / 1000
    return ArraySource(arr, Grid(UTM55S, T30, w, h))


def test_masked_source_binary_same_grid(tmp_path: Path) -> None:
    src = _image()
    mask = np.zeros((12, 16), np.uint8)
    mask[2:5, 3:9] = 255
    path = write_tif(tmp_path / "m.tif", mask, transform=T30)
    ms = MaskedSource(src, str(path))
    out = ms.read()
    assert np.isnan(out[:, 2:5, 3:9]).all()
    keep = np.ones((12, 16), bool)
    keep[2:5, 3:9] = False
    np.testing.assert_array_equal(out[:, keep], src.read()[:, keep])
    assert ms.grid == src.grid and ms.count == 2 and "masked by" in ms.label
    # windows with halos see exactly the whole read's pixels
    win = Window(4, 1, 6, 5)
    got = ms.read(win, halo=2)
    full = np.full((2, 16, 20), np.nan, np.float32)
    full[:, 2:14, 2:18] = out
    np.testing.assert_array_equal(got, full[:, 1:10, 4:14])
    # picklable, holds no handle; the copy reads the same
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ms)).read(), out)


def test_qa_band_given_as_binary_mask_is_said(tmp_path: Path) -> None:
    """A Landsat QA_PIXEL band (21824 = clear) given as a binary mask masks every pixel:
    said (a warning, as every other; it was a log line), with the kind to give; a real 0/255
    mask says nothing."""
    import warnings

    from stfusion.errors import STFusionWarning

    src = _image()
    qa = write_tif(tmp_path / "qa.tif", np.full((12, 16), 21824, np.uint16), transform=T30)
    with pytest.warns(STFusionWarning, match=r"21824.*landsat_qa_pixel"):
        assert np.isnan(MaskedSource(src, str(qa)).read()).all()
    ok = np.zeros((12, 16), np.uint8)
    ok[:2] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error", STFusionWarning)
        MaskedSource(src, str(write_tif(tmp_path / "ok.tif", ok, transform=T30)))


def test_masked_source_qa_on_a_coarser_grid_is_reprojected_nearest(tmp_path: Path) -> None:
    """A 1 km-style state raster on its own (coarser) grid: each of its pixels masks the fine
    pixels it covers."""
    src = _image(h=12, w=16)
    state = np.zeros((3, 4), np.uint16)  # 4 x 4 fine pixels per state pixel
    state[1, 2] = 0b01  # cloudy
    state[0, 0] = 3 << 8  # high cirrus
    state[2, 3] = 1 << 12  # snow: valid by default
    path = write_tif(tmp_path / "state.tif", state, transform=T30 * Affine.scale(4))
    ms = MaskedSource(src, str(path), kind="mod09_state_1km")
    bad = np.isnan(ms.read()[0])
    want = np.zeros((12, 16), bool)
    want[4:8, 8:12] = True
    want[0:4, 0:4] = True
    np.testing.assert_array_equal(bad, want)
    assert any("aligned" in n for n in ms.notes)
    snowy = MaskedSource(src, str(path), kind="mod09_state_1km", flags=("default", "snow"))
    assert np.isnan(snowy.read()[0, 8:12, 12:16]).all()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ms)).read(), ms.read())


def test_masked_source_landsat_qa_file_with_nodata(tmp_path: Path) -> None:
    src = _image()
    qa = np.full((12, 16), LOW | (1 << 6), np.uint16)
    qa[0, :] = 1  # fill, also declared as the file's nodata
    qa[5, 5] = (1 << 3) | (3 << 8)
    qa[6, 6] = 1 << 5  # snow: kept by default
    path = write_tif(tmp_path / "qa.tif", qa, transform=T30, nodata=1)
    out = MaskedSource(src, str(path), kind="landsat_qa_pixel").read()
    bad = np.isnan(out[0])
    assert bad[0].all() and bad[5, 5] and not bad[6, 6] and bad.sum() == 17


def test_masked_source_per_band_binary_and_errors(tmp_path: Path) -> None:
    src = _image()
    m = np.zeros((2, 12, 16), np.uint8)
    m[0, 0, 0] = 1
    m[1, 1, 1] = 1
    out = MaskedSource(src, str(write_tif(tmp_path / "m2.tif", m, transform=T30))).read()
    assert np.isnan(out[0, 0, 0]) and not np.isnan(out[1, 0, 0]) and np.isnan(out[1, 1, 1])
    three = write_tif(tmp_path / "m3.tif", np.zeros((3, 12, 16), np.uint8), transform=T30)
    with pytest.raises(GridMismatchError, match="3 bands"):
        MaskedSource(src, str(three))
    far = write_tif(
        tmp_path / "far.tif",
        np.zeros((12, 16), np.uint8),
        transform=Affine(30.0, 0, 900000.0, 0, -30.0, 5000000.0),
    )
    with pytest.raises(GridMismatchError, match="do not overlap"):
        MaskedSource(src, str(far))
    with pytest.raises(InvalidParameterError, match="mask kind"):
        MaskedSource(src, str(three), kind="fmask")


def test_methods_honour_masks(tmp_path: Path) -> None:
    """A cloud painted into F1 leaks into the prediction without the mask, not with it."""
    from conftest import piecewise_scene
    from stfusion.methods import get_method
    from stfusion.scene import open_scene

    sc = piecewise_scene(48, 48, bands=2, ratio=8)
    grid = Grid(UTM55S, T30, 48, 48)
    f1 = sc["fine"].copy()
    f1[:, 20:30, 20:30] = 0.9  # bright cloud
    mask = np.zeros((48, 48), np.uint8)
    mask[18:32, 18:32] = 1
    mpath = write_tif(tmp_path / "cloud.tif", mask, transform=T30)
    coarse = ArraySource(sc["coarse"], grid)
    target = ArraySource(sc["coarse"] + np.float32(0.01), grid)
    for name, params in (("starfm", {"window": 7}), ("additive", {})):
        cls = get_method(name)
        plain = cls(**params).fit(open_scene([(ArraySource(f1, grid), coarse)], check=False))
        masked = cls(**params).fit(
            open_scene([(MaskedSource(ArraySource(f1, grid), str(mpath)), coarse)], check=False)
        )
        p0 = plain.predict(target).values[:, 20:30, 20:30]
        p1 = masked.predict(target).values[:, 20:30, 20:30]
        assert np.nanmax(p0) > 0.85
        assert not np.any(p1 > 0.85)  # NaN (additive) or from clear neighbours (STARFM)
