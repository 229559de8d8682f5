"""``stfusion series --quality``: the per-date quality layer, its resume and its removal.

On the Kranj ``unfilled`` Landsat images (gaps as nodata on three dates), so gap-filled dates
hold observed and predicted pixels. The command runs as a process once; resume and removal
run :func:`run_series` on copies of the images (44 x 45 px, seconds per run).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

import stfusion.series.runner as series_mod
from conftest import KRANJ, need, run_process
from stfusion.io import FileSource
from stfusion.series import read_summary, run_series
from stfusion.series.quality import BANDS

RANGE = "2020-03-08:2020-03-19"


def _fine_valid(day: dt.date) -> np.ndarray:
    """``(h, w)``: where the unfilled Landsat image of ``day`` has a value in every band."""
    path = next((need(KRANJ) / "landsat" / "unfilled").glob(f"{day:%Y%j}_*"))
    with rasterio.open(path) as ds:
        return ~np.ma.getmaskarray(ds.read(masked=True)).any(axis=0)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _quality(out: Path, day: str) -> Path:
    return out / f"fused_{day}_quality.tif"


def test_cli_quality_layer_on_unfilled(tmp_path: Path) -> None:
    k = need(KRANJ)
    out = tmp_path / "out"
    fine, coarse = k / "landsat" / "unfilled", k / "modis" / "filled"
    r = run_process(
        "series", "--fine", str(fine), "--coarse", str(coarse), "--fine-scale", "1e-4",
        "--date-range", RANGE, "--out-dir", str(out), "--quality", "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = read_summary(out / "summary.csv")
    statuses = {row["status"] for row in rows}
    assert statuses == {"predicted", "gap-filled"}
    for row in rows:
        day = dt.date.fromisoformat(row["date"])
        path = out / row["output"]
        with rasterio.open(path) as o, rasterio.open(_quality(out, row["date"])) as q:
            assert (q.width, q.height, q.transform, q.crs) == (
                o.width,
                o.height,
                o.transform,
                o.crs,
            )
            assert q.descriptions == BANDS and set(q.dtypes) == {"float32"}
            assert np.isnan(q.nodata)
            values, qual = o.read(), q.read()
        has = np.isfinite(values).any(axis=0)
        obs, days, used, flags, tier = qual
        assert np.isnan(qual[:, ~has]).all()
        assert np.isfinite(obs[has]).all() and np.isfinite(used[has]).all()
        if row["status"] == "gap-filled":
            valid = _fine_valid(day)
            assert valid.any() and not valid.all()  # both kinds of pixel
            np.testing.assert_array_equal(obs[has], valid[has].astype(np.float32))
            assert (days[valid] == 0).all() and (used[valid] == 0).all()
            assert (flags[valid] == 0).all() and (tier[valid] == 0).all()
            assert (tier[has & ~valid] == 1).all()  # the main method made the rest
        else:
            assert (obs[has] == 0).all()
            pairs = [dt.date.fromisoformat(d) for d in row["pairs"].split()]
            gaps = sorted(abs((day - p).days) for p in pairs)
            # where every pair was used: the nearest; elsewhere one of theirs; NaN where none
            assert (days[used == len(pairs)] == gaps[0]).all()
            assert np.isin(days[used > 0], gaps).all()
            assert np.isnan(days[used == 0]).all()
            assert (tier[has] == 1).all()
        assert set(np.unique(flags[has])) <= {0.0, 1.0, 2.0, 3.0}


def _copies(tmp_path: Path) -> tuple[Path, Path]:
    k = need(KRANJ)
    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    shutil.copytree(k / "landsat" / "unfilled", fine)
    shutil.copytree(k / "modis" / "filled", coarse)
    return fine, coarse


def _run(fine: Path, coarse: Path, out: Path, **kw: Any) -> dict[str, dict[str, str]]:
    run_series(out, fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4, date_range=RANGE, **kw)
    return {r["date"]: r for r in read_summary(out / "summary.csv")}


def _stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("fused_*.tif")}


def test_resume_keeps_and_verifies_quality(tmp_path: Path) -> None:
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    # outputs of a run without --quality: same settings key, recomputed for their layer
    first = _run(fine, coarse, out)
    assert not list(out.glob("*_quality.tif"))
    rows = _run(fine, coarse, out, quality=True)
    assert all("recomputed: quality layer missing" in r["reason"] for r in rows.values())
    assert len(list(out.glob("*_quality.tif"))) == len(first)
    stamps = _stamps(out)
    rows = _run(fine, coarse, out, quality=True)
    assert all(r["reason"].startswith("kept from an earlier run") for r in rows.values())
    assert _stamps(out) == stamps

    # a missing layer and one of another output: those dates computed again
    _quality(out, "2020-03-12").unlink()
    shutil.copy(_quality(out, "2020-03-10"), _quality(out, "2020-03-11"))
    rows = _run(fine, coarse, out, quality=True)
    assert "quality layer missing" in rows["2020-03-12"]["reason"]
    assert "quality layer out of date" in rows["2020-03-11"]["reason"]
    assert rows["2020-03-13"]["reason"].startswith("kept from an earlier run")
    assert _quality(out, "2020-03-12").is_file()
    with (
        rasterio.open(_quality(out, "2020-03-11")) as q,
        rasterio.open(out / "fused_2020-03-11.tif") as o,
    ):
        assert q.tags()["STFUSION_SERIES_QUALITY_OF"] == o.tags()["STFUSION_SERIES_CHECKSUM"]


def test_run_without_quality_leaves_layers_alone(tmp_path: Path) -> None:
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, quality=True)
    _quality(out, "2020-03-12").unlink()
    stamps = _stamps(out)
    rows = _run(fine, coarse, out)
    assert all(r["reason"].startswith("kept from an earlier run") for r in rows.values())
    assert _stamps(out) == stamps  # nothing written, nothing removed
    assert not _quality(out, "2020-03-12").exists()


def test_quality_removed_with_stale_or_orphaned_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, quality=True)
    # orphaned: the coarse image of 03-14 is gone (a run without --quality still removes it)
    next(coarse.glob("2020074_*")).unlink()
    _run(fine, coarse, out)
    assert not (out / "fused_2020-03-14.tif").exists()
    assert not _quality(out, "2020-03-14").exists()
    assert _quality(out, "2020-03-15").exists()
    # stale: 03-13's coarse image changed and its prediction now fails
    day = next(coarse.glob("2020073_*"))
    os.utime(day, ns=(day.stat().st_atime_ns, day.stat().st_mtime_ns + 10**9))
    real = series_mod._predict_component

    def failing(est: Any, target: Any, path: Path, *a: Any) -> Path:
        if path.name.startswith("2020-03-13"):
            raise RuntimeError("prediction failed")
        return real(est, target, path, *a)

    monkeypatch.setattr(series_mod, "_predict_component", failing)
    rows = _run(fine, coarse, out, quality=True)
    assert rows["2020-03-13"]["status"] == "failed"
    assert "earlier output removed" in rows["2020-03-13"]["reason"]
    assert not (out / "fused_2020-03-13.tif").exists()
    assert not _quality(out, "2020-03-13").exists()
    assert _quality(out, "2020-03-12").exists()


def test_date_quality_combines_tiers() -> None:
    """Bands of one pixel from the main tier and the fallback: smallest days, summed pairs,
    OR-ed flags, both tier bits; an observed pixel 1, 0, 0, 0, 0; no value: NaN."""
    from stfusion.series.blend import _date_quality

    nan = np.nan
    out = np.array([[[0.1, 0.2, nan]], [[0.1, 0.3, nan]]], np.float32)  # (band, 1, 3)
    seen = np.array([[[True, False, False]], [[True, False, False]]])
    src = np.array([[[-1, 0, -1]], [[-1, 1, -1]]], np.int8)
    main = np.array([[[5, 5, nan]], [[1, 1, nan]], [[0, 2, nan]]], np.float32)
    fallback = np.array([[[2, 2, nan]], [[1, 1, nan]], [[1, 1, nan]]], np.float32)
    q = _date_quality(out, seen, src, [("main", main), ("fallback", fallback)])
    np.testing.assert_array_equal(q[:, 0, 0], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(q[:, 0, 1], [0, 2, 2, 3, 3])
    assert np.isnan(q[:, 0, 2]).all()


def test_a_file_of_the_users_at_a_quality_name_is_not_replaced(tmp_path: Path) -> None:
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "fused_2020-03-12_quality.tif"
    mine.write_bytes(b"my own notes")
    rows = _run(fine, coarse, out, quality=True)
    assert mine.read_bytes() == b"my own notes"
    assert (
        rows["2020-03-12"]["status"] == "failed" and "not replaced" in rows["2020-03-12"]["reason"]
    )
    assert not (out / "fused_2020-03-12.tif").exists()  # refused before any work


def _scale_image(path: Path, factor: float) -> None:
    """Change an input's pixels in place (its identity changes with them)."""
    with rasterio.open(path, "r+") as ds:
        ds.write(ds.read() * np.float32(factor))


def _describes(out: Path, day: str) -> bool:
    with rasterio.open(_quality(out, day)) as q, rasterio.open(out / f"fused_{day}.tif") as o:
        return q.tags()["STFUSION_SERIES_QUALITY_OF"] == o.tags()["STFUSION_SERIES_CHECKSUM"]


def test_output_written_without_quality_takes_its_stale_layer_along(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out, quality=True)
    # new pixels for 03-13 and 03-14; a file of the user's under 03-14's quality name
    _scale_image(next(coarse.glob("2020073_*")), 1.05)
    _scale_image(next(coarse.glob("2020074_*")), 1.05)
    mine = _quality(out, "2020-03-14")
    mine.write_bytes(b"my own notes")
    caplog.set_level("INFO", logger="stfusion")
    rows = _run(fine, coarse, out)
    assert rows["2020-03-13"]["reason"].startswith("recomputed: inputs changed")
    assert not _quality(out, "2020-03-13").exists()  # it described the earlier pixels
    assert "fused_2020-03-13_quality.tif removed" in caplog.text
    assert mine.read_bytes() == b"my own notes"
    assert any(
        r.levelname == "WARNING" and "fused_2020-03-14_quality.tif was not written" in r.message
        for r in caplog.records
    )
    kept = [d for d, r in rows.items() if r["reason"].startswith("kept from an earlier run")]
    assert len(kept) == len(rows) - 2
    assert all(_describes(out, d) for d in kept)

    # every date computed again (the fine images touched: new mtime, same pixels), to the
    # same pixels: their layers still describe them
    stamps = {d: _quality(out, d).stat().st_mtime_ns for d in kept}
    for f in fine.glob("*.tif"):
        os.utime(f)
    rows = _run(fine, coarse, out)
    assert all(r["reason"].startswith("recomputed") for r in rows.values()), rows
    assert {d: _quality(out, d).stat().st_mtime_ns for d in kept} == stamps
    assert all(_describes(out, d) for d in kept)
    assert not _quality(out, "2020-03-13").exists()
    assert mine.read_bytes() == b"my own notes"


def test_quality_in_the_same_pass_as_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--quality reads each component prediction no more often than a run without it, and
    the outputs are the same: same pixels, same tags but the time of writing."""
    import stfusion.series.blend as blend_mod

    fine, coarse = _copies(tmp_path)
    reads: list[str] = []

    class Counting(FileSource):
        def read(self, *a: Any, **kw: Any) -> np.ndarray:
            reads.append(str(self.path))
            return super().read(*a, **kw)

    monkeypatch.setattr(blend_mod, "FileSource", Counting)
    counts = {}
    for quality in (False, True):
        reads.clear()
        _run(fine, coarse, tmp_path / str(quality), quality=quality)
        counts[quality] = len(reads)
    assert counts[False] > 0
    assert counts[True] == counts[False]
    plain, with_q = (
        sorted((tmp_path / "False").glob("fused_*.tif")),
        sorted((tmp_path / "True").glob("fused_*[0-9].tif")),
    )
    assert [p.name for p in plain] == [p.name for p in with_q]
    for a, b in zip(plain, with_q):
        with rasterio.open(a) as x, rasterio.open(b) as y:
            np.testing.assert_array_equal(x.read(), y.read())
            tx, ty = x.tags(), y.tags()
            assert tx.pop("STFUSION_CREATED") and ty.pop("STFUSION_CREATED")
            assert tx == ty
        assert _describes(tmp_path / "True", a.name[len("fused_") : -len(".tif")])


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_the_cube_holds_each_dates_quality_layer(tmp_path: Path, fmt: str) -> None:
    import xarray as xr

    fine, coarse = _copies(tmp_path)
    out = tmp_path / "out"
    # a first run without --quality over the whole range, then one date with it and a cube
    _run(fine, coarse, out)
    res = run_series(
        out, fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4,
        date_range="2020-03-10", quality=True, cube=fmt,
    )  # fmt: skip
    assert res.cube_path is not None
    (note,) = [n for n in res.notes if "quality layer" in n]
    assert note.startswith("11 date(s) of the cube have no current quality layer (2020-03-08")
    with xr.open_dataset(res.cube_path, engine="zarr" if fmt == "zarr" else None) as ds:
        assert list(ds["quality_band"].values) == list(BANDS)
        # units per band and the flag bands' CF flags (the cube had neither)
        assert list(ds["quality_units"].values) == ["1", "days", "1", "1", "1"]
        q = ds["quality"].attrs
        assert list(q["fallback_flag_masks"]) == [1, 2] and list(q["tier_flag_masks"]) == [1, 2]
        assert q["fallback_flag_meanings"] == "method_fallback_rule no_valid_coarse_target"
        assert list(q["observed_flag_values"]) == [0, 1]
        assert ds["quality"].dims == ("time", "quality_band", "y", "x")
        assert ds["quality"].dtype == np.float32 and len(ds["time"]) == 12
        for t in ds["time"].values:
            day = str(t)[:10]
            got = ds["quality"].sel(time=t).values
            if day == "2020-03-10":
                want = _read(_quality(out, day))
                np.testing.assert_array_equal(got, want)
                assert (got[0] == 0).all()  # predicted, not observed
            else:
                assert np.isnan(got).all(), day
    # every date with a layer: no note, every layer as its file
    res = run_series(
        out, fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4,
        date_range=RANGE, quality=True, cube=fmt,
    )  # fmt: skip
    assert not [n for n in res.notes if "quality layer" in n]
    with xr.open_dataset(res.cube_path, engine="zarr" if fmt == "zarr" else None) as ds:
        for t in ds["time"].values:
            want = _read(_quality(out, str(t)[:10]))
            np.testing.assert_array_equal(ds["quality"].sel(time=t).values, want)


def test_a_cube_without_quality_has_no_quality_variable(tmp_path: Path) -> None:
    import xarray as xr

    fine, coarse = _copies(tmp_path)
    res = run_series(
        tmp_path / "out", fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4,
        date_range="2020-03-10", cube="netcdf",
    )  # fmt: skip
    assert res.cube_path is not None
    with xr.open_dataset(res.cube_path) as ds:
        assert "quality" not in ds and "quality_band" not in ds.coords
