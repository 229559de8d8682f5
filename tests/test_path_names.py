"""File and folder names as users have them (a names trial, 2026-12-07): commas in folder
names ("Smith, J"), GDAL names, sidecar files beside the images, ``~``, names that are not
UTF-8. Each test is one thing the trial found wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import KRANJ, need, run_cli
from stfusion.dates import split_listed
from stfusion.demo import sample_dir
from stfusion.series import read_summary, run_series


def test_a_comma_inside_a_name_does_not_split_a_list(tmp_path: Path) -> None:
    folder = tmp_path / "Smith, J"
    folder.mkdir()
    a, b = folder / "a.tif", folder / "b.tif"
    a.touch()
    b.touch()
    assert split_listed(str(a)) == [str(a)]
    assert split_listed(f"{a},{b}") == [str(a), str(b)]
    assert split_listed("x.tif,y.tif") == ["x.tif", "y.tif"]  # nothing exists: at each comma
    assert split_listed("Smith, J/a.tif", base=tmp_path) == ["Smith, J/a.tif"]


def test_a_series_in_a_folder_with_a_comma_sees_a_changed_input(tmp_path: Path) -> None:
    """The recorded inputs were split at the folder's comma (two names that exist nowhere,
    no size, no time), so a rerun kept every output after a coarse image was replaced."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "Smith, J" / "L", tmp_path / "Smith, J" / "M"
    fine.mkdir(parents=True)
    coarse.mkdir()
    for day in ("068", "093"):
        shutil.copy(next((k / "landsat" / "filled").glob(f"2020{day}_*")), fine)
    for day in ("068", "069", "070", "093"):
        shutil.copy(next((k / "modis" / "filled").glob(f"2020{day}_*")), coarse)
    out = tmp_path / "Smith, J" / "out"
    kw = {"fine": [str(fine)], "coarse": [str(coarse)], "fine_scale": 1e-4, "method": "additive"}
    run_series(out, **kw)
    with rasterio.open(out / "fused_2020-03-10.tif") as ds:
        before = ds.read()
        assert str(coarse / "2020070_18-04_kranj.tif") in ds.tags()["STFUSION_SERIES_COARSE"]
    shutil.copy(
        next((k / "modis" / "filled").glob("2020085_*")), coarse / "2020070_18-04_kranj.tif"
    )
    run_series(out, **kw)
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert "kept" not in rows["2020-03-10"]["reason"], rows["2020-03-10"]
    assert "kept" in rows["2020-03-09"]["reason"], rows["2020-03-09"]
    with rasterio.open(out / "fused_2020-03-10.tif") as ds:
        assert not np.array_equal(ds.read(), before)


def test_a_band_choice_in_a_folder_with_a_comma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--bands 1,2,3`` (and ``FILE:1,2,3``) over files in ``com,ma/`` said "file not
    found" for files that exist."""
    folder = tmp_path / "com,ma"
    shutil.copytree(sample_dir(), folder)
    f = {n: str(folder / f"CIA_{n}.tif") for n in ("Landsat7_2001-10-17", "MOD09GA_2001-10-17")}
    out = tmp_path / "p.tif"
    args = ["predict", "-m", "additive", "-q", "--bands", "1,2,3"]
    args += ["--pair", f["Landsat7_2001-10-17"], f["MOD09GA_2001-10-17"]]
    args += ["--coarse", str(folder / "CIA_MOD09GA_2001-11-02.tif"), "--out", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    truth = f"{folder / 'CIA_Landsat7_2001-11-02.tif'}:1,2,3"
    code, said, err = run_cli(["evaluate", str(out), truth], capsys)
    assert code == 0 and "mean" in said, err
