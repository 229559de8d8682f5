"""``stfusion series`` on part of a season, and its Python API, as a user trial found them.

1. A ``--date-range`` run rebuilt the cube and summary.csv from the range alone, silently
   cutting a whole season down to it; now both keep every date outside the range whose
   output in the folder is current (same inputs, settings and version), and name the others.
2. ``run_series(params={...})`` read a dict's keys as ``--param`` items; now a mapping works
   as in ``run_prediction``, and the missing-ratio message names run_series, not ``fit``.
3. ``SeriesResult.records`` put the skipped dates first; now in date order, as summary.csv.
   A run that stopped before writing anything left the (empty) output folder it created.

Kranj (44 x 45 px) with the additive method: every run takes a second or two.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import rasterio

from conftest import KRANJ, kranj_series_args, need, run_process
from stfusion.errors import InvalidParameterError
from stfusion.series import read_summary, run_series

SEASON = "2020-03-08:2020-03-14"  # 7 targets: 03-08 gap-filled, 09..14 predicted
PART = "2020-03-10:2020-03-11"


def _kw(coarse: Path | None = None, **more: Any) -> dict[str, Any]:
    k = need(KRANJ)
    return {
        "fine": [str(k / "landsat" / "filled")],
        "coarse": [str(coarse or k / "modis" / "filled")],
        "fine_scale": 1e-4,
        "method": "additive",
        **more,
    }


def _cube_dates(path: Path) -> list[str]:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        return [str(t)[:10] for t in ds["time"].values]


def _days(text: str) -> list[str]:
    a, b = (dt.date.fromisoformat(x) for x in text.split(":"))
    return [(a + dt.timedelta(n)).isoformat() for n in range((b - a).days + 1)]


# ------------------------------------------------------------ 1. a run on part of a season


def test_a_date_range_run_keeps_the_current_dates_in_the_cube_and_summary(
    tmp_path: Path,
) -> None:
    pytest.importorskip("xarray")
    out = tmp_path / "out"
    run_series(out, **_kw(date_range=SEASON, cube="netcdf"))
    assert _cube_dates(out / "fused_cube.nc") == _days(SEASON)
    r = run_process(*kranj_series_args(out, "--cube", "netcdf", "--date-range", PART))
    assert r.returncode == 0, r.stderr
    assert _cube_dates(out / "fused_cube.nc") == _days(SEASON)
    rows = read_summary(out / "summary.csv")
    assert [x["date"] for x in rows] == _days(SEASON)
    outside = [x for x in rows if x["date"] not in _days(PART)]
    assert all(x["reason"].startswith("outside --date-range") for x in outside), outside
    assert outside[0]["status"] == "gap-filled" and outside[1]["pairs"], outside[:2]
    assert ": 2 kept from an earlier run; 5 outside --date-range" in r.stdout, r.stdout
    assert "also list 5 date(s) outside --date-range" in r.stderr, r.stderr


def test_outputs_outside_the_range_that_are_out_of_date_are_left_out_and_named(
    tmp_path: Path,
) -> None:
    pytest.importorskip("xarray")
    coarse = tmp_path / "modis"
    shutil.copytree(need(KRANJ) / "modis" / "filled", coarse)
    out = tmp_path / "out"
    run_series(out, **_kw(coarse, date_range=SEASON))
    # the coarse image of 03-13 (day 073) changes: its output is no longer current
    changed = next(coarse.glob("2020073_*"))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    res = run_series(out, **_kw(coarse, date_range=PART, cube="netcdf"))
    want = [d for d in _days(SEASON) if d != "2020-03-13"]
    assert _cube_dates(out / "fused_cube.nc") == want
    assert [r.date.isoformat() for r in res.records] == want
    assert [x["date"] for x in read_summary(out / "summary.csv")] == want
    (note,) = [n for n in res.notes if "out of date" in n]
    assert "1 output(s) outside --date-range" in note and "2020-03-13: inputs changed" in note
    assert changed.name in note
    assert (out / "fused_2020-03-13.tif").exists()  # left as it is


# ----------------------------------------------------------------- 2. params from Python


def test_run_series_takes_params_as_a_mapping(tmp_path: Path) -> None:
    res = run_series(
        tmp_path / "a", **_kw(method="starfm", params={"window": 31}, date_range="2020-03-10")
    )
    assert [r.status for r in res.records] == ["predicted"], res.records
    with rasterio.open(tmp_path / "a" / "fused_2020-03-10.tif") as ds:
        assert '"window": 31' in ds.tags()["STFUSION_PARAMS"]
    res = run_series(
        tmp_path / "b", **_kw(method="fitfc", params={"ratio": 16}, date_range="2020-03-10")
    )
    assert [r.status for r in res.records] == ["predicted"], res.records


def test_a_missing_ratio_names_run_series_and_leaves_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with pytest.raises(InvalidParameterError) as err:
        run_series(out, **_kw(method="fitfc", date_range="2020-03-10"))
    assert "run_series(..., params={'ratio': R})" in str(err.value)
    assert "fit(pairs" not in str(err.value)
    assert not (tmp_path / "new").exists()
    # a folder that was there before stays
    out.mkdir(parents=True)
    with pytest.raises(InvalidParameterError):
        run_series(out, **_kw(method="fitfc", date_range="2020-03-10"))
    assert out.is_dir() and not any(out.iterdir())


# ------------------------------------------------------------------ 3. records in date order


def test_records_are_in_date_order_as_summary_csv(tmp_path: Path) -> None:
    # 04-09 (Landsat day 100) has no MODIS image: a skipped row among the targets
    res = run_series(tmp_path / "out", **_kw(date_range="2020-03-31:2020-04-09"))
    days = [r.date.isoformat() for r in res.records]
    assert days == ["2020-03-31", "2020-04-01", "2020-04-02", "2020-04-09"]
    assert days == [x["date"] for x in read_summary(res.summary_path)]


# ------------------------------------------------------------------ 4. --every: a weekly series


def test_every_predicts_the_days_on_its_step_and_keeps_other_outputs(tmp_path: Path) -> None:
    coarse = tmp_path / "modis"
    shutil.copytree(need(KRANJ) / "modis" / "filled", coarse)
    next(coarse.glob("2020074_*")).unlink()  # 03-14, on the step: no coarse image
    out = tmp_path / "out"
    res = run_series(out, **_kw(coarse, date_range="2020-03-08:2020-03-20", every=3))
    want = ["2020-03-08", "2020-03-11", "2020-03-17", "2020-03-20"]
    assert [r.date.isoformat() for r in res.records] == want
    assert sorted(p.name[6:16] for p in out.glob("fused_*.tif")) == want
    (gap,) = [n for n in res.notes if "--every 3" in n]
    assert "1 day(s) on the step have no coarse image" in gap and "2020-03-14" in gap, gap
    # every coarse day of the range: the step's outputs are kept, the others computed
    args = ["--fine", str(need(KRANJ) / "landsat" / "filled"), "--coarse", str(coarse)]
    args += ["--fine-scale", "0.0001", "-m", "additive", "--out-dir", str(out)]
    args += ["--date-range", "2020-03-08:2020-03-20"]
    r = run_process("series", *args)
    assert r.returncode == 0, r.stderr
    assert ": 4 kept from an earlier run)" in r.stdout, r.stdout
    assert len(list(out.glob("fused_*.tif"))) == 12
    # the weekly run again: the other 8 are listed as current, none is removed or redone
    r = run_process("series", *args, "--every", "3")
    assert r.returncode == 0, r.stderr
    assert "8 off the --every step, current, from an earlier run" in r.stdout, r.stdout
    assert "outside --date-range or off the --every step" in r.stderr, r.stderr
    rows = read_summary(out / "summary.csv")
    assert len(rows) == 12 and len(list(out.glob("fused_*.tif"))) == 12
    off = [x for x in rows if x["date"] not in want]
    assert all(x["reason"].startswith("off the --every step") for x in off), off


def test_every_needs_a_whole_number_of_days(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="--every"):
        run_series(tmp_path / "out", **_kw(every=0))
    r = run_process(*kranj_series_args(tmp_path / "out", "--every", "0"))
    assert r.returncode == 2 and "--every" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_step_gaps_counts_from_the_range_start() -> None:
    from stfusion.dates import Acquisition
    from stfusion.series.planning import SeriesInputs

    d0 = dt.date(2020, 3, 1)
    days = [d0 + dt.timedelta(n) for n in (2, 3, 5, 9, 10, 16)]
    inputs = SeriesInputs({}, {d: Acquisition(f"{d}.tif", d, "coarse") for d in days})
    assert inputs.targets(d0, None, 7) == []  # 03-08, 03-15: no coarse image
    # from the range's start (its own day too), to the last coarse date or the range's end
    # (a weekly range past the last MODIS day named none of its days)
    assert inputs.step_gaps(d0, None, 7) == [d0 + dt.timedelta(n) for n in (0, 7, 14)]
    assert inputs.step_gaps(d0, d0 + dt.timedelta(30), 7) == [
        d0 + dt.timedelta(n) for n in (0, 7, 14, 21)
    ]  # one step past the last coarse date (03-17), not every day to a far end
    assert len(inputs.step_gaps(d0, dt.date(2030, 12, 31), 7)) == 4
    assert inputs.targets(d0, None, 3) == [d0 + dt.timedelta(n) for n in (3, 9)]
    assert inputs.step_gaps(d0, None, 3) == [d0 + dt.timedelta(n) for n in (0, 6, 12, 15)]
    assert inputs.targets(None, None, 7) == [d0 + dt.timedelta(n) for n in (2, 9, 16)]
    assert inputs.step_gaps(None, None, 7) == []
    assert inputs.targets(None, None) == days and inputs.step_gaps(None, None, 1) == []


def test_a_warning_the_log_showed_is_not_repeated_as_a_note(tmp_path: Path) -> None:
    pytest.importorskip("xarray")
    out = tmp_path / "out"
    run_series(out, **_kw(date_range=PART, cube="netcdf"))
    r = run_process(*kranj_series_args(out, "--date-range", SEASON, "-q"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("fused_cube.nc is from an earlier run and is now out of date") == 1, (
        r.stderr
    )


def test_a_warning_is_printed_once_per_command(tmp_path: Path) -> None:
    """The ensemble's skipped members were warned about once per date: Python's "once"
    filter forgets what it showed whenever a catch_warnings block ends."""
    k = need(KRANJ)
    r = run_process(
        "series", "--fine", str(k / "landsat" / "filled"), "--coarse",
        str(k / "modis" / "filled"), "--fine-scale", "0.0001", "-m", "ensemble",
        "-p", "ratio=16", "--date-range", "2020-03-09:2020-03-12",
        "--out-dir", str(tmp_path / "out"), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Warning: ensemble: member(s) fitfc, fsdaf skipped") == 1, r.stderr


def test_days_a_daily_coarse_series_lacks_are_said(tmp_path: Path) -> None:
    """A series trial: MODIS days missing from the downloads were left out of summary.csv
    and the cube without a word (only --every 7 named the days it missed). A composite's
    steps (4-8 days) are no gap."""
    from stfusion.series import run_series

    k = need(KRANJ)
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    for f in (k / "modis" / "filled").glob("*.tif"):
        if not f.name.startswith(("2020072", "2020080")):
            shutil.copy(f, coarse)
    args = {"fine": [str(k / "landsat" / "filled")], "fine_scale": 1e-4, "method": "additive"}
    result = run_series(tmp_path / "out", coarse=[str(coarse)], **args)
    said = [n for n in result.notes if "daily coarse series" in n]
    assert said == [
        "2 day(s) of the daily coarse series have no coarse image and are not predicted "
        "(2020-03-12, 2020-03-20)"
    ], result.notes
    weekly = tmp_path / "weekly"
    weekly.mkdir()
    for f in sorted(coarse.glob("*.tif"))[::4]:  # 4-5 days apart, as composites are
        shutil.copy(f, weekly)
    result = run_series(tmp_path / "out8", coarse=[str(weekly)], **args)
    assert not [n for n in result.notes if "daily coarse series" in n], result.notes
