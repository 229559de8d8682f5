"""``stfusion series``: what a kept output carries, what makes it stale, what its tags say.

A user trial on Kranj (issue: series trial) found outputs kept as "verified" with damaged
pixels, summary rows that lost what the first run recorded, tags naming the wrong method,
outputs recomputed for inputs that cannot change them and a cube left stale without a word.
Each test runs :func:`run_series` (or the command as a process) on copies of the Kranj images
(44 x 45 px, seconds per run).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

import stfusion.series.runner as series_mod
from conftest import KRANJ, need, run_process
from stfusion.errors import InvalidParameterError, OutputExistsError
from stfusion.io import FileSource
from stfusion.methods.starfm import STARFM
from stfusion.series import read_summary, run_series, verify_output

D = dt.date


def _copies(tmp_path: Path, landsat: Sequence[str] = ("068", "093", "100")) -> tuple[Path, Path]:
    """``fine/`` with copies of the Landsat days ``landsat``, ``coarse/`` with every MODIS day."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    for doy in landsat:
        p = next((k / "landsat" / "filled").glob(f"2020{doy}_*"))
        shutil.copy(p, fine / p.name)
    shutil.copytree(k / "modis" / "filled", coarse)
    return fine, coarse


def _run(fine: Path | str, coarse: Path, out: Path, dates: str, **kw: Any) -> Any:
    return run_series(
        out, fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4, date_range=dates, **kw
    )


def _rows(out: Path) -> dict[str, dict[str, str]]:
    return {r["date"]: r for r in read_summary(out / "summary.csv")}


def _count_predictions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = series_mod._predict_component

    def counting(est: Any, target: Any, path: Path, *a: Any) -> Path:
        made.append(path.name)
        return real(est, target, path, *a)

    monkeypatch.setattr(series_mod, "_predict_component", counting)
    return made


def test_damaged_pixels_are_not_kept_as_verified(tmp_path: Path) -> None:
    """Item 1: 3000 bytes of 0x55 in the middle of an output decode to NaN and 3e38 values;
    the checksum of the pixels written makes the next run compute it again."""
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, "2020-03-22")
    path = out / "fused_2020-03-22.tif"
    good = FileSource(str(path)).read()
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = b"\x55" * 3000
    path.write_bytes(bytes(data))
    damaged = FileSource(str(path)).read()
    assert not np.array_equal(damaged, good, equal_nan=True)  # it decodes, wrongly

    res = _run(fine, coarse, out, "2020-03-22")
    rec = res.records[0]
    assert "damaged" in rec.reason and "kept" not in rec.reason
    np.testing.assert_array_equal(FileSource(str(path)).read(), good)
    assert rec.valid_fraction == 1.0
    # kept when nothing changed: the checksum matches what is read back
    again = _run(fine, coarse, out, "2020-03-22")
    assert again.records[0].reason.startswith("kept from an earlier run")
    with rasterio.open(path) as ds:
        assert len(ds.tags()["STFUSION_SERIES_CHECKSUM"]) == 64


def test_kept_rows_carry_what_the_first_run_recorded(tmp_path: Path) -> None:
    """Item 2: a kept date's summary row keeps coarse_valid, fine_valid, weights, method and
    the first run's reason, after "kept from an earlier run"."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    out = tmp_path / "out"
    kw: dict[str, Any] = {"method": "estarfm"}
    _run(fine, coarse, out, "2020-03-08:2020-03-10", **kw)
    first = _rows(out)
    # a date of one pair only: ESTARFM predicts nothing, STARFM instead, extrapolated
    one_side = tmp_path / "one"
    _run(fine / "2020068_191-28.tif_filled_kranj.tif", coarse, one_side, "2020-03-09", **kw)
    one_first = _rows(one_side)
    assert "instead" in one_first["2020-03-09"]["reason"]

    _run(fine, coarse, out, "2020-03-08:2020-03-10", **kw)
    _run(fine / "2020068_191-28.tif_filled_kranj.tif", coarse, one_side, "2020-03-09", **kw)
    for before, after in ((first, _rows(out)), (one_first, _rows(one_side))):
        assert before.keys() == after.keys()
        for day, row in after.items():
            old = before[day]
            assert row["reason"].startswith("kept from an earlier run"), row
            if old["reason"]:
                assert row["reason"].endswith("; " + old["reason"])
            for col in ("status", "method", "pairs", "weights", "valid_fraction"):
                assert row[col] == old[col], (day, col)
            for col in ("coarse_valid", "fine_valid"):
                assert row[col] == old[col], (day, col)
    assert first["2020-03-08"]["fine_valid"] == "1.0000"
    assert first["2020-03-09"]["coarse_valid"] != ""


def test_a_date_the_fallback_alone_predicted_names_it(tmp_path: Path) -> None:
    """Item 3: ESTARFM with one pair predicts nothing; STARFM makes every pixel, so the tags
    and the summary say STARFM (and the fallback tag says it stood alone)."""
    fine, coarse = _copies(tmp_path, ("068",))
    out = tmp_path / "out"
    res = _run(fine, coarse, out, "2020-03-09:2020-03-10", method="estarfm")
    for rec in res.records:
        assert rec.status == "predicted" and rec.method == "starfm", rec
        assert "predicted with starfm instead" in rec.reason
        assert "extrapolated" in rec.reason and rec.weights == [1.0]
        with rasterio.open(out / rec.output) as ds:
            tags = ds.tags()
        assert tags["STFUSION_METHOD"] == "starfm"
        assert "window" in json.loads(tags["STFUSION_PARAMS"])
        assert json.loads(tags["STFUSION_SERIES_FALLBACK"]) == [
            {"method": "starfm", "pairs": [["2020-03-08"]], "alone": True}
        ]
        assert json.loads(tags["STFUSION_SERIES_SETTINGS"])["method"] == "estarfm"
    assert {r["method"] for r in _rows(out).values()} == {"starfm"}


def test_a_fallback_needing_the_ratio_is_refused_before_any_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 4: --fallback fitfc on inputs all on one grid, without ratio=R: one error before
    any prediction (every date failed with exit 3 after running the main method)."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    made = _count_predictions(monkeypatch)
    with pytest.raises(InvalidParameterError, match=r"fitfc \(--fallback\) needs the resolution"):
        _run(fine, coarse, tmp_path / "out", "2020-03-09:2020-03-10", fallback="fitfc")
    assert made == []
    res = _run(fine, coarse, tmp_path / "ok", "2020-03-09", fallback="fitfc", params=["ratio=16"])
    assert res.counts()["predicted"] == 1


def test_an_unused_fine_image_recomputes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 5: a fine date without a coarse image, earlier than every other, gave the grid and
    became an input of every date; the outputs now record the grid itself."""
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, "2020-03-08:2020-03-11")
    shutil.copy(next(fine.glob("2020068_*")), fine / "2020032_191-28_extra.tif")
    made = _count_predictions(monkeypatch)
    res = _run(fine, coarse, out, "2020-03-08:2020-03-11")
    assert made == []
    for rec in res.records:
        assert rec.reason.startswith("kept from an earlier run"), rec
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        inputs = json.loads(ds.tags()["STFUSION_SERIES_INPUTS"])
    assert inputs[0][0] == "fine grid" and inputs[0][2] == [f"band{i}" for i in range(1, 7)]
    assert not any("2020032" in str(x[0]) for x in inputs)


def test_a_fully_valid_fine_date_depends_on_its_own_image_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 6: 2020-03-08 is written as observed; touching the 093 pair recomputes the dates
    predicted from it, not 03-08."""
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, "2020-03-08:2020-03-09")
    with rasterio.open(out / "fused_2020-03-08.tif") as ds:
        inputs = json.loads(ds.tags()["STFUSION_SERIES_INPUTS"])
    names = [Path(x[0]).name for x in inputs[1:]]
    assert names == ["2020068_191-28.tif_filled_kranj.tif"]
    p093 = next(fine.glob("2020093_*"))
    st = p093.stat()
    os.utime(p093, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    made = _count_predictions(monkeypatch)
    by = {r.date: r for r in _run(fine, coarse, out, "2020-03-08:2020-03-09").records}
    assert by[D(2020, 3, 8)].reason.startswith("kept from an earlier run")
    assert "modified: 2020093" in by[D(2020, 3, 9)].reason
    assert len(made) == 1
    # nor on its coarse image, which it does not read: its row says nothing of it, so a kept
    # row does not go stale when that image is lost to clouds (it kept coarse_valid 1.0)
    modis = next(coarse.glob("2020068_*"))
    with rasterio.open(modis, "r+") as ds:
        ds.write(np.full((ds.count, ds.height, ds.width), np.nan, ds.dtypes[0]))
    kept = _run(fine, coarse, out, "2020-03-08").records[0]
    assert kept.reason.startswith("kept from an earlier run") and kept.coarse_valid is None
    assert _rows(out)["2020-03-08"]["coarse_valid"] == ""


def test_a_cube_left_by_an_earlier_run_is_reported_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 7: dates recomputed without --cube leave the earlier cube behind: a warning (and
    a note) names it and says how to rebuild it; nothing is said when nothing changed."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    out = tmp_path / "out"
    _run(fine, coarse, out, "2020-03-20:2020-03-21", cube="netcdf")
    quiet = _run(fine, coarse, out, "2020-03-20:2020-03-21")
    assert not any("out of date" in n for n in quiet.notes)
    modis = coarse / "2020080_18-04_kranj.tif"
    with rasterio.open(modis, "r+") as ds:
        ds.write(ds.read() * 1.1)
    with caplog.at_level(logging.WARNING, logger="stfusion"):
        res = _run(fine, coarse, out, "2020-03-20:2020-03-21")
    assert "recomputed" in res.records[0].reason
    stale = [n for n in res.notes if "out of date" in n]
    assert stale and "fused_cube.nc" in stale[0] and "--cube netcdf" in stale[0]
    assert "fused_cube.nc" in caplog.text
    rebuilt = _run(fine, coarse, out, "2020-03-20:2020-03-21", cube="netcdf")
    assert not any("out of date" in n for n in rebuilt.notes)


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_the_cube_is_georeferenced_for_gdal_and_xarray(fmt: str, tmp_path: Path) -> None:
    """Item 8: ``fused`` names its grid mapping, x/y are CF projection coordinates without a
    fill value; GDAL reads the CRS and transform of the fine grid."""
    import xarray as xr

    if fmt == "zarr":
        pytest.importorskip("zarr")
    fine, coarse = _copies(tmp_path, ("068", "093"))
    res = _run(fine, coarse, tmp_path / "out", "2020-03-09:2020-03-10", cube=fmt)
    assert res.cube_path is not None
    with rasterio.open(next(fine.glob("2020068_*"))) as ref:
        crs, transform = ref.crs, ref.transform
    if fmt == "netcdf":
        with rasterio.open(f"NETCDF:{res.cube_path}:fused") as ds:
            assert ds.crs == crs
            assert ds.transform.almost_equals(transform)
    opened = (
        xr.open_dataset(res.cube_path, decode_coords="all")
        if fmt == "netcdf"
        else xr.open_zarr(res.cube_path, decode_coords="all")
    )
    with opened as cube:
        assert cube["fused"].encoding["grid_mapping"] == "spatial_ref"
        assert cube.rio.crs == crs
        assert cube.rio.transform().almost_equals(transform)
        for axis in ("x", "y"):
            assert cube[axis].attrs["standard_name"] == f"projection_{axis}_coordinate"
            assert (
                "_FillValue" not in cube[axis].encoding or cube[axis].encoding["_FillValue"] is None
            )
        assert cube["status"].attrs["flag_meanings"] == "predicted gap_filled skipped failed"
        assert cube.attrs["Conventions"] == "CF-1.8"  # a GIS trial found none


def test_pairs_per_side_does_not_key_a_method_that_ignores_it(tmp_path: Path) -> None:
    """Item 9: ROBOT takes every clear pair; without a fallback that uses --pairs-per-side,
    another value is not "other settings" (the default's key is kept: earlier runs match)."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    out = tmp_path / "out"
    kw: dict[str, Any] = {"method": "robot", "fallback": "none"}
    _run(fine, coarse, out, "2020-03-09", **kw)
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        assert json.loads(ds.tags()["STFUSION_SERIES_SETTINGS"])["pairs_per_side"] == 1
    res = _run(fine, coarse, out, "2020-03-09", pairs_per_side=2, **kw)
    assert res.records[0].reason.startswith("kept from an earlier run")
    # with the STARFM fallback the value chooses the fallback's pairs: it still counts
    out2 = tmp_path / "out2"
    _run(fine, coarse, out2, "2020-03-09", method="robot")
    # the refusal names what differs
    with pytest.raises(OutputExistsError, match=r"other settings \(.*pairs_per_side: 1 -> 2\)"):
        _run(fine, coarse, out2, "2020-03-09", method="robot", pairs_per_side=2)


def test_a_parameter_given_its_default_value_is_the_same_setting(tmp_path: Path) -> None:
    """Item 10: ``-p classes=40`` parses as 40.0, the default is 40: the same key."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    out = tmp_path / "out"
    _run(fine, coarse, out, "2020-03-09")
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        settings = json.loads(ds.tags()["STFUSION_SERIES_SETTINGS"])
    res = _run(fine, coarse, out, "2020-03-09", params=["classes=40", "window=auto"])
    assert res.records[0].reason.startswith("kept from an earlier run")
    # the defaults are recorded as they always were: the key of earlier default runs holds
    assert json.dumps(settings["params"]) == json.dumps(STARFM().get_params(), default=str)
    with pytest.raises(OutputExistsError, match=r"params\.classes: 40 -> 41\)"):
        _run(fine, coarse, out, "2020-03-09", params=["classes=41"])


def test_date_range_errors_are_usage_errors_and_create_nothing(tmp_path: Path) -> None:
    """Item 11: a reversed or impossible --date-range is a usage error (exit 2); a range
    without a coarse date exits 1 before the output folder is made."""
    fine, coarse = _copies(tmp_path, ("068",))
    out = tmp_path / "out"
    base = ["series", "--fine", str(fine), "--coarse", str(coarse), "--fine-scale", "0.0001"]
    for bad in ("2020-03-20:2020-03-10", "2020-02-30"):
        proc = run_process(*base, "-o", str(out), "-q", "--date-range", bad)
        assert proc.returncode == 2, proc.stderr
        assert "--date-range" in proc.stderr
    proc = run_process(*base, "-o", str(out), "-q", "--date-range", "2021-01-01")
    assert proc.returncode == 1 and "no coarse date" in proc.stderr, proc.stderr
    assert not out.exists()


def test_input_paths_in_the_tags_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 12: paths given relative to the working folder are stored absolute, like
    STFUSION_SERIES_INPUTS."""
    _copies(tmp_path, ("068", "093"))
    monkeypatch.chdir(tmp_path)
    _run("fine", Path("coarse"), Path("out"), "2020-03-08:2020-03-09")
    with rasterio.open(tmp_path / "out" / "fused_2020-03-08.tif") as ds:
        tags = ds.tags()
    assert tags["STFUSION_SERIES_FINE"] == str(
        (tmp_path / "fine" / "2020068_191-28.tif_filled_kranj.tif").resolve()
    )
    with rasterio.open(tmp_path / "out" / "fused_2020-03-09.tif") as ds:
        tags = ds.tags()
    pair_files = [p for pair in json.loads(tags["STFUSION_SERIES_PAIR_FILES"]) for p in pair]
    for path in [tags["STFUSION_SERIES_COARSE"], *pair_files]:
        assert Path(path).is_absolute() and Path(path).exists(), path


def test_int16_clipping_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Item 13: with --int16-scale 1e-6 reflectance above 0.032767 does not fit: the date's
    reason counts the clipped values and a warning says so."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="stfusion"):
        res = _run(fine, coarse, out, "2020-03-09", dtype="int16", int16_scale=1e-6)
    rec = res.records[0]
    assert rec.status == "predicted"
    assert "clipped to fit int16" in rec.reason and "--int16-scale 1e-06" in rec.reason
    n = int(rec.reason.split("clipped")[0].split(";")[-1].split()[0])
    stored = FileSource(str(out / rec.output)).read()
    assert n == int(np.isclose(np.abs(stored), 32767e-6).sum()) > 0
    assert "clipped" in caplog.text
    # unclipped output: no such note
    ok = _run(fine, coarse, tmp_path / "ok", "2020-03-09", dtype="int16")
    assert "clipped" not in ok.records[0].reason
    grid = FileSource(str(out / rec.output)).grid
    assert verify_output(out / rec.output, grid, 6, "int16")[0] == "ok"


def test_int16_precision_loss_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A user trial: reflectance stored with --int16-scale 1 became 0 at every pixel, exit 0,
    no word. The date's reason and a warning now say so and name a scale that keeps it."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    with caplog.at_level(logging.WARNING, logger="stfusion"):
        res = _run(fine, coarse, tmp_path / "out", "2020-03-09", dtype="int16", int16_scale=1.0)
    rec = res.records[0]
    assert rec.status == "predicted"
    assert "most precision is lost" in rec.reason and "--int16-scale 0.0001" in rec.reason
    assert "most precision is lost" in caplog.text
    ok = _run(fine, coarse, tmp_path / "ok", "2020-03-09", dtype="int16")
    assert "precision" not in ok.records[0].reason


def test_band_files_and_hdf_fields_have_an_identity(tmp_path: Path) -> None:
    """A comma list of band files (stacked by a preset) and an HDF field spec were not files,
    so their identity had no size or time: a band file changed in place kept its outputs."""
    import os

    from stfusion.series import file_identity

    a, b, h = tmp_path / "a_SR_B2.TIF", tmp_path / "a_SR_B3.TIF", tmp_path / "M.hdf"
    for f in (a, b, h):
        f.write_bytes(b"x" * 10)
    before = file_identity(f"{a},{b}")
    assert before is not None and before[1] == [10, 10]
    os.utime(b, ns=(1, 1))
    assert file_identity(f"{a},{b}") != before
    field = file_identity(f"{h}:state_1km_1")
    assert field is not None and field[0] == str(h.resolve()) and field[1] == 10


def test_series_outputs_say_the_variable(tmp_path: Path) -> None:
    """As predict's: the variable the method's constants followed (STFUSION_VARIABLE)."""
    import rasterio

    from stfusion.series import run_series

    data = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
    out = tmp_path / "out"
    run_series(
        out,
        fine=[str(data / "CIA_Landsat7_2001-10-*.tif")],
        coarse=[str(data / "CIA_MOD09GA_*.tif")],
        method="starfm",
        params=["window=9"],
        date_range="2001-11-02",
    )
    with rasterio.open(out / "fused_2001-11-02.tif") as ds:
        assert ds.tags()["STFUSION_VARIABLE"].startswith("reflectance")


def test_an_input_glob_that_matches_this_run_s_outputs_is_refused(tmp_path: Path) -> None:
    """``--coarse 'c2/*2020*' --out-dir c2``: the glob matches fused_2020-... (not the
    example name the option check tried), so the second run read the first run's outputs as
    coarse images. The targets' own names are checked before any work."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    with pytest.raises(InvalidParameterError, match="would be read as images of the next run"):
        run_series(coarse, fine=[str(fine)], coarse=[f"{coarse}/*2020*"], fine_scale=1e-4)
    assert not list(coarse.glob("fused_*")) and not (coarse / "summary.csv").exists()
    # a prefix too long for the file system (with the partial's ~45 more characters)
    with pytest.raises(InvalidParameterError, match="give a shorter prefix"):
        run_series(tmp_path / "o", fine=[str(fine)], coarse=[str(coarse)], prefix="p" * 215)


def test_a_band_file_changed_in_place_recomputes_its_dates(tmp_path: Path) -> None:
    """Landsat Collection 2 band files stacked by ``--fine-bands``: a band file changed in
    place (or a new date added) failed every affected date with "TypeError: unhashable type:
    'list'" (the record's identity of a stack is ``[paths, sizes, mtimes]``), and left the
    earlier outputs under their names."""
    fine, coarse = _copies(tmp_path, ("068", "093"))
    split = tmp_path / "bands"
    split.mkdir()
    day = {"068": "20200308", "093": "20200402"}
    for p in sorted(fine.iterdir()):
        with rasterio.open(p) as ds:
            data, profile = ds.read(), ds.profile
        profile.update(count=1)
        for b in range(2):
            name = f"LC08_L2SP_190028_{day[p.name[4:7]]}_20200822_02_T1_SR_B{b + 2}.TIF"
            with rasterio.open(split / name, "w", **profile) as out:
                out.write(data[b : b + 1])
    out = tmp_path / "out"
    coarse2 = tmp_path / "coarse2"  # the two bands of the stack
    coarse2.mkdir()
    for p in sorted(coarse.iterdir()):
        with rasterio.open(p) as ds:
            data, profile = ds.read(), ds.profile
        profile.update(count=2)
        with rasterio.open(coarse2 / p.name, "w", **profile) as o:
            o.write(data[:2])
    kw: dict[str, Any] = {"fine_bands": "SR_B2,SR_B3"}
    _run(split, coarse2, out, "2020-03-10:2020-03-11", **kw)
    before = _rows(out)
    assert {r["status"] for r in before.values()} == {"predicted"}
    band = next(split.glob("*20200402*SR_B3.TIF"))
    with rasterio.open(band, "r+") as ds:
        ds.write(ds.read() + 50)
    _run(split, coarse2, out, "2020-03-10:2020-03-11", **kw)
    after = _rows(out)
    assert {r["status"] for r in after.values()} == {"predicted"}
    notes = " ".join(r["reason"] for r in after.values())
    assert "inputs changed (modified: " in notes and band.name in notes, after


def test_outputs_of_other_code_of_the_same_version_are_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version stays 0.1.0 while the code changes (an editable install): an output made by
    other code is recomputed, its reason naming the change, and one of this code is kept."""
    import stfusion.series.resume as resume_mod
    import stfusion.series.tags as tags_mod

    fine, coarse = _copies(tmp_path, ("068", "093"))
    out = tmp_path / "out"
    monkeypatch.setattr(tags_mod, "code_digest", lambda: "0123456789abcdef")
    _run(fine, coarse, out, "2020-03-09")
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        assert ds.tags()["STFUSION_CODE"] == "0123456789abcdef"
    monkeypatch.undo()
    made = _count_predictions(monkeypatch)
    _run(fine, coarse, out, "2020-03-09")
    assert made, "an output of other code was kept"
    assert "stfusion code changed (0123456789abcdef -> " in _rows(out)["2020-03-09"]["reason"]
    made.clear()
    _run(fine, coarse, out, "2020-03-09")
    assert not made and _rows(out)["2020-03-09"]["reason"].startswith("kept")
    assert resume_mod.code_digest() == tags_mod.code_digest()


def test_files_gdal_reads_beside_an_input_are_part_of_its_key(tmp_path: Path) -> None:
    """A trial: an `.aux.xml` with an offset beside a MODIS day (GDAL applies it), a VRT's
    source corrected in place, an ENVI `.hdr` edited, a `weights=` checkpoint retrained into
    the same file: each changed the pixels, and the outputs were kept as verified, because
    only the listed files' size and mtime were compared."""
    from stfusion.series.resume import file_identity, param_files

    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, "2020-03-09:2020-03-10")
    day = next(coarse.glob("2020070_*"))
    side = Path(f"{day}.aux.xml")
    side.write_text(
        "<PAMDataset>"
        + "".join(
            f'<PAMRasterBand band="{b}"><Offset>0.05</Offset></PAMRasterBand>' for b in range(1, 7)
        )
        + "</PAMDataset>"
    )
    res = _run(fine, coarse, out, "2020-03-09:2020-03-10")
    why = {r.date.isoformat(): r.reason for r in res.records}
    assert why["2020-03-10"].startswith("recomputed") and side.name in why["2020-03-10"]
    assert why["2020-03-09"].startswith("kept")
    source = next(fine.glob("2020093_*"))
    vrt = tmp_path / "v.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="45" rasterYSize="44"><VRTRasterBand dataType="Int16" '
        f'band="1"><SimpleSource><SourceFilename>{source}</SourceFilename><SourceBand>1'
        "</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    paths = file_identity(str(vrt))[0]
    assert isinstance(paths, list) and str(source.resolve()) in paths
    nested = {"base_params": {"weights": str(source)}, "window": 31, "weights": "demo"}
    assert param_files(nested) == [str(source)]


def test_a_new_pair_that_moves_the_output_grid_recomputes_not_refuses(tmp_path: Path) -> None:
    """Pairs 068 (full grid) and 093 cropped by 3 px: adding 077 cropped the same way makes
    the cropped grid the output grid. No setting changed, yet the run stopped: "26 outputs
    were made with other settings ... pass --overwrite"."""
    from rasterio.windows import Window

    fine, coarse = _copies(tmp_path, ("068",))
    k = need(KRANJ)

    def cropped(doy: str) -> None:
        src = next((k / "landsat" / "filled").glob(f"2020{doy}_*"))
        with rasterio.open(src) as ds:
            win = Window(3, 3, ds.width - 6, ds.height - 6)
            profile = {**ds.profile, "width": ds.width - 6, "height": ds.height - 6}
            profile["transform"] = ds.window_transform(win)
            with rasterio.open(fine / f"2020{doy}_crop.tif", "w", **profile) as out:
                out.write(ds.read(window=win))

    cropped("093")
    out = tmp_path / "out"
    first = _run(fine, coarse, out, "2020-03-09:2020-03-10")
    cropped("077")
    second = _run(fine, coarse, out, "2020-03-09:2020-03-10")
    for a, b in zip(first.records, second.records):
        assert b.reason.startswith("recomputed") or b.status != a.status, b
    with rasterio.open(out / "fused_2020-03-10.tif") as ds:
        assert ds.shape == (44 - 6, 45 - 6)


def test_int16_advice_fits_the_values_and_their_precision() -> None:
    """An LST trial: hot land surface temperature (320-350 K) clipped at the default scale was
    told to give --int16-scale 0.01, which clipped 99 % of it at 327.67 K."""
    from stfusion.series.outputs import WrittenImage, int16_scale_for

    assert int16_scale_for(30.0, 350.0) == 0.02  # 1500 steps, up to 655 K
    assert int16_scale_for(0.6, 0.6) == 1e-4  # reflectance: its usual scale
    assert int16_scale_for(0.1, 300.0) is None  # 0.1 K at 300 K: float32 only
    notes = WrittenImage(1.0, 40000, "", steps=0, span=30.0, peak=350.0).int16_notes(1e-4)
    assert all("give --int16-scale 0.02 (or --dtype float32)" in n for n in notes), notes
    tight = WrittenImage(1.0, 5, "", steps=0, span=0.1, peak=300.0).int16_notes(1e-4)
    assert tight[0].endswith(
        "give --dtype float32 (no int16 scale keeps both the values and their precision)"
    )


def test_a_rotated_grid_is_refused_a_cube_before_any_work(tmp_path: Path) -> None:
    """A GIS trial: the cube of a rotated fine grid kept its 1-D x/y only, so GDAL read it
    north-up, 2.2 km off at the far corner; the GeoTIFFs keep the rotation."""
    from affine import Affine

    fine, coarse = _copies(tmp_path, ("068", "093"))
    for folder in (fine, coarse):
        for path in folder.glob("*.tif"):
            with rasterio.open(path, "r+") as ds:
                ds.transform = ds.transform * Affine.rotation(10)
    with pytest.raises(InvalidParameterError, match="--cube netcdf: the fine grid is rotated"):
        _run(fine, coarse, tmp_path / "out", "2020-03-09", cube="netcdf")
    assert not list((tmp_path / "out").glob("fused_*"))
    _run(fine, coarse, tmp_path / "out", "2020-03-09")  # without the cube: as before
