"""Land surface temperature in the units users have (a user trial with Landsat ST_B10 and
MOD11A1 LST): raw digital numbers of named products read unscaled, kelvin against degrees
Celsius. Each was fused or scored silently, or with advice that made it worse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from conftest import run_cli, run_process, write_tif
from stfusion.products import kelvin_and_celsius, raw_product

T = Affine(30.0, 0, 500000.0, 0, -30.0, 6000000.0)


def _kelvin(seed: int, shift: float = 0.0) -> np.ndarray:
    """A 1-band LST scene in kelvin: 40 x 40 px of 30 m, smooth and textured."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:40]
    return (295 + shift + 6 * np.sin(xx / 7) + 4 * np.cos(yy / 5) + rng.normal(0, 0.5, (40, 40)))[
        None
    ]


def _st_dn(kelvin: np.ndarray) -> np.ndarray:
    return np.round((kelvin - 149.0) / 0.00341802).astype("uint16")


def _modis_dn(kelvin: np.ndarray) -> np.ndarray:
    blocks = kelvin.reshape(1, 8, 5, 8, 5).mean(axis=(2, 4))
    return np.round(np.kron(blocks, np.ones((5, 5))) / 0.02).astype("uint16")


def test_products_are_recognised_by_name_and_values() -> None:
    st = "LC08_L2SP_040036_20210601_20210610_02_T1_ST_B10.TIF"
    assert raw_product(st, (), 44000.0, 1.0).offset == 149.0
    assert raw_product(st, (), 44000.0, 0.00341802) is None  # read with its scale
    assert raw_product(st, (), 300.0, 1.0) is None  # already kelvin
    assert raw_product("LE07_x_ST_B6.tif", (), 40000.0, 1.0) is not None
    assert raw_product("LC08_x_SR_B4.TIF", (), 9000.0, 1.0) is None
    modis = raw_product("MOD11A1.A2021152.h08v05.061_LST_Day_1km.tif", (), 15000.0, 1.0)
    assert modis is not None and modis.advice("coarse") == "--coarse-scale 0.02"
    assert raw_product("lst.tif", ("LST_Day_1km",), 15000.0, 1.0) is not None
    k = _kelvin(5).ravel()
    assert kelvin_and_celsius(k, k - 273.15) == 0 and kelvin_and_celsius(k - 278, k) == 1
    assert kelvin_and_celsius(k, k - 20) is None  # kelvin both, a warm and a cold scene
    # 273 apart but other spreads (the adversarial trial): NDVI, reflectance x 10 against x 1
    ndvi = np.random.default_rng(0).uniform(-0.2, 0.9, 1600) + 7.0 - np.median(k - 273.15)
    assert kelvin_and_celsius(k, ndvi) is None
    assert kelvin_and_celsius(k, k / 10) is None


def test_raw_landsat_and_modis_temperatures_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unscaled, ST_B10 (median ~44000) and MOD11A1 (~15000) differ 2.7x, under every scale
    check: predict fused them in mixed units with exit 0 and no word (301.8 K for 309.3 K)."""
    k1, k2 = _kelvin(0), _kelvin(1, shift=9.0)
    f1 = write_tif(tmp_path / "LC08_L2SP_x_20210601_ST_B10.TIF", _st_dn(k1), transform=T)
    c1 = write_tif(tmp_path / "MOD11A1_20210601_LST_Day_1km.tif", _modis_dn(k1), transform=T)
    c2 = write_tif(tmp_path / "MOD11A1_20210617_LST_Day_1km.tif", _modis_dn(k2), transform=T)
    args = ["predict", "-m", "additive", "--pair", str(f1), str(c1), "--coarse", str(c2)]
    done = run_process(*args, "--out", str(tmp_path / "p.tif"))  # warnings as a user sees them
    assert done.returncode == 0
    flat = " ".join(done.stderr.split())
    assert "--fine-scale 0.00341802 --fine-offset 149" in flat, done.stderr
    assert "--coarse-scale 0.02" in flat and "2.75e-5" not in flat, done.stderr
    # with them: kelvin, no word
    scaled = ["--fine-scale", "0.00341802", "--fine-offset", "149", "--coarse-scale", "0.02"]
    done = run_process(*args, *scaled, "--out", str(tmp_path / "k.tif"))
    assert done.returncode == 0 and "unscaled" not in done.stderr, done.stderr


def test_kelvin_against_celsius_is_refused_with_the_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kelvin prediction against a Celsius truth was scored (RMSE 273) or, with a median
    near 0, refused with "--truth-scale 100", which then scored RMSE 904."""
    for shift in (0.0, -20.0):  # a summer (median 22 C, 13x) and a winter scene (2 C, 100x)
        kelvin = _kelvin(2, shift)
        pred = write_tif(tmp_path / f"pred{shift}.tif", kelvin.astype("float32"), transform=T)
        truth_c = (kelvin + 0.3 - 273.15).astype("float32")
        truth = write_tif(tmp_path / f"truth{shift}.tif", truth_c, transform=T)
        code, _, err = run_cli(["evaluate", str(pred), str(truth)], capsys)
        flat = " ".join(err.split())
        assert code != 0 and "--truth-offset 273.15" in flat and "--truth-scale" not in flat, err
    code, _, err = run_cli(
        ["evaluate", str(pred), str(truth), "--truth-offset", "273.15", "--json"], capsys
    )
    assert code == 0, err
    # the same in predict: a pair's fine image in kelvin, its coarse image in Celsius
    coarse = write_tif(tmp_path / "c.tif", (kelvin - 273.15).astype("float32"), transform=T)

    def predict(pair_coarse: Path, out: str) -> tuple[int, str]:
        args = ["predict", "-m", "additive", "--pair", str(pred), str(pair_coarse)]
        code, _, err = run_cli(
            [*args, "--coarse", str(coarse), "--out", str(tmp_path / out)], capsys
        )
        return code, err

    code, err = predict(coarse, "o.tif")
    assert code != 0 and "--coarse-offset 273.15" in " ".join(err.split()), err
    # the target in Celsius, the pairs in kelvin: written in Celsius with no word
    ck = write_tif(tmp_path / "ck.tif", (kelvin + 0.1).astype("float32"), transform=T)
    code, err = predict(ck, "o2.tif")
    assert code != 0 and "convert" in err and "to kelvin" in " ".join(err.split()), err


def test_an_unscaled_surface_temperature_truth_gets_its_product_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """evaluate advised --truth-scale 0.01 or Collection 2 reflectance's 2.75e-5 and -0.2."""
    kelvin = _kelvin(3)
    pred = write_tif(tmp_path / "pred.tif", kelvin.astype("float32"), transform=T)
    truth = write_tif(tmp_path / "LC09_x_ST_B10.TIF", _st_dn(kelvin), transform=T)
    code, _, err = run_cli(["evaluate", str(pred), str(truth)], capsys)
    flat = " ".join(err.split())
    assert code != 0 and "--truth-scale 0.00341802 --truth-offset 149" in flat, err
    assert "2.75e-5" not in flat
    given = ["--truth-scale", "0.00341802", "--truth-offset", "149", "--json"]
    code, _, err = run_cli(["evaluate", str(pred), str(truth), *given], capsys)
    assert code == 0, err
