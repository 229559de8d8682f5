"""A fine image on a day without a coarse image, as a season trial found it: a clear Landsat
day that MODIS missed was listed as skipped and the series had no image of that day, although
the observation is the best image of it there is. Now such a day between the first and the
last coarse date is written as observed (gaps left empty), as a day whose coarse image is
unusable was already; fine days beyond the coarse dates stay out (a Landsat archive of years
beside one season of MODIS).

Kranj (44 x 45 px) with the additive method, MODIS 077 (2020-03-17) removed: Landsat 077 has
no coarse image, Landsat 100 (2020-04-09) lies beyond the last MODIS day (2020-04-02).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from conftest import KRANJ, need, run_process
from stfusion.series import read_summary, run_series

DAY = "2020-03-17"  # Landsat 077


def _season(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the Kranj filled series, MODIS 077 left out."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "landsat", tmp_path / "modis"
    shutil.copytree(k / "landsat" / "filled", fine)
    shutil.copytree(k / "modis" / "filled", coarse)
    for p in coarse.glob("2020077_*"):
        p.unlink()
    return fine, coarse


def _kw(fine: Path, coarse: Path, **more: Any) -> dict[str, Any]:
    kw = {"fine_scale": 1e-4, "method": "additive"}
    return {"fine": [str(fine)], "coarse": [str(coarse)], **kw, **more}


def _rows(out: Path) -> dict[str, dict[str, str]]:
    return {r["date"]: r for r in read_summary(out / "summary.csv")}


def test_a_landsat_day_modis_missed_is_written_as_observed(tmp_path: Path) -> None:
    pytest.importorskip("xarray")
    import xarray as xr

    fine, coarse = _season(tmp_path)
    out = tmp_path / "out"
    r = run_process(
        "series", "--fine", str(fine), "--coarse", str(coarse), "--fine-scale", "0.0001",
        "-m", "additive", "--out-dir", str(out), "--cube", "netcdf", "--quality",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = _rows(out)
    row = rows[DAY]
    assert row["status"] == "gap-filled" and row["pairs"] == "", row
    assert row["reason"] == "no coarse image on this date: the fine image written as observed"
    with rasterio.open(out / f"fused_{DAY}.tif") as ds:
        written = ds.read().astype(np.float64)
        tags = ds.tags()
    with rasterio.open(next(fine.glob("2020077_*"))) as ds:
        landsat = ds.read().astype(np.float64) * 1e-4
    np.testing.assert_allclose(written, landsat, atol=1e-6)
    assert not tags.get("STFUSION_SERIES_COARSE") and tags["STFUSION_SERIES_FINE_LISTED"]
    with rasterio.open(out / f"fused_{DAY}_quality.tif") as ds:
        assert (ds.read(1) == 1).all()  # observed everywhere
    with xr.open_dataset(out / "fused_cube.nc") as ds:
        assert DAY in [str(t)[:10] for t in ds["time"].values]
    # Landsat 100 lies beyond the last MODIS day: not a target, said why
    assert rows["2020-04-09"]["status"] == "skipped"
    assert "beyond the coarse dates 2020-03-08 .. 2020-04-02" in rows["2020-04-09"]["reason"]
    assert "23 predicted, 3 gap-filled" in r.stdout, r.stdout

    # a second run keeps it; the Landsat image gone, its output goes too (an orphan)
    again = run_series(out, **_kw(fine, coarse))
    assert {x.date.isoformat(): x for x in again.records}[DAY].reason.startswith("kept")
    for p in fine.glob("2020077_*"):
        p.unlink()
    gone = {x.date.isoformat(): x for x in run_series(out, **_kw(fine, coarse)).records}
    assert gone[DAY].status == "skipped" and "earlier output removed" in gone[DAY].reason
    assert not (out / f"fused_{DAY}.tif").exists()


def test_on_the_every_step_only_and_not_a_gap(tmp_path: Path) -> None:
    """--every 3 from 03-08: 03-17 is on the step (written, not named among the step's days
    without a coarse image); from 03-09 it is off the step and listed as such."""
    fine, coarse = _season(tmp_path)
    on = run_series(tmp_path / "on", **_kw(fine, coarse, every=3, date_range="2020-03-08:"))
    days = {x.date.isoformat(): x for x in on.records}
    assert days[DAY].status == "gap-filled" and not any("--every 3" in n for n in on.notes)
    off = run_series(tmp_path / "off", **_kw(fine, coarse, every=3, date_range="2020-03-09:"))
    days = {x.date.isoformat(): x for x in off.records}
    assert days[DAY].status == "skipped" and "(off the --every step)" in days[DAY].reason


def test_an_unreadable_or_empty_fine_image_without_a_coarse_one(tmp_path: Path) -> None:
    """The date's only input: unreadable fails the date (as an unreadable coarse target
    does), all masked skips it; neither writes an empty image."""
    fine, coarse = _season(tmp_path)
    landsat = next(fine.glob("2020077_*"))
    mask = tmp_path / "masks" / "2020077_mask.tif"
    mask.parent.mkdir()
    with rasterio.open(landsat) as ds:
        profile = {**ds.profile, "count": 1, "dtype": "uint8", "nodata": None}
    with rasterio.open(mask, "w", **profile) as ds:
        ds.write(np.ones((1, profile["height"], profile["width"]), np.uint8))
    res = run_series(tmp_path / "masked", **_kw(fine, coarse, fine_mask=[str(mask.parent)]))
    rec = {x.date.isoformat(): x for x in res.records}[DAY]
    assert rec.status == "skipped" and rec.output == "", rec
    assert "no coarse image on this date, and the fine image has no valid pixel" in rec.reason
    landsat.write_bytes(b"not a GeoTIFF")
    res = run_series(tmp_path / "broken", **_kw(fine, coarse))
    rec = {x.date.isoformat(): x for x in res.records}[DAY]
    assert rec.status == "failed" and "the fine image cannot be read" in rec.reason, rec
    assert not (tmp_path / "broken" / f"fused_{DAY}.tif").exists()
