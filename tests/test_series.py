"""``stfusion series``: a daily season on Kranj, resume, a synthetic cloudy series, faults."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import stfusion.series.runner as series_mod
from conftest import CIA, KRANJ, need, run_process, write_mask_like
from stfusion.cli.series import EXIT_SOME_FAILED, series
from stfusion.errors import InputFileError, InvalidParameterError, OutputExistsError
from stfusion.io import FileSource, Scaling
from stfusion.series import choose_pairs, read_summary, run_series, temporal_weights

D = dt.date

# ------------------------------------------------------------------------------- choosing


def test_choose_pairs_rules() -> None:
    clear = [D(2020, 3, 1), D(2020, 3, 9), D(2020, 3, 25), D(2020, 4, 10)]
    t = D(2020, 3, 17)
    # 1+ pairs (STARFM): nearest before and after together, one set
    assert choose_pairs(t, clear, 1, None, 1) == ([[D(2020, 3, 9), D(2020, 3, 25)]], "")
    sets, _ = choose_pairs(t, clear, 1, None, 2)
    assert sets == [clear]
    # two-pair methods: nearest before + nearest after; one-sided: the two nearest
    assert choose_pairs(t, clear, 2, 2, 2)[0] == [[D(2020, 3, 9), D(2020, 3, 25)]]
    sets, note = choose_pairs(D(2020, 2, 1), clear, 2, 2, 1)
    assert sets == [[D(2020, 3, 1), D(2020, 3, 9)]] and "one side" in note
    assert choose_pairs(t, clear[:1], 2, 2, 1) == (
        [],
        "the method needs 2 clear pairs, 1 available",
    )
    # single-pair methods: one set per pair, blended later
    assert choose_pairs(t, clear, 1, 1, 1)[0] == [[D(2020, 3, 9)], [D(2020, 3, 25)]]
    assert choose_pairs(t, [], 1, 1, 1) == ([], "no clear pair")
    # the target's own pair is never used (the caller removes it; choose ignores it too)
    assert choose_pairs(D(2020, 3, 9), clear, 1, None, 1)[0] == [[D(2020, 3, 1), D(2020, 3, 25)]]
    w = temporal_weights(t, [D(2020, 3, 9), D(2020, 3, 25)])
    assert w == pytest.approx([0.5, 0.5])
    w = temporal_weights(t, [D(2020, 3, 8), D(2020, 4, 2)])  # 9 and 16 days
    assert w == pytest.approx([16 / 25, 9 / 25])


# ---------------------------------------------------------------------------------- Kranj


def _kranj_fine(held_back: str = "077") -> list[str]:
    """Every Landsat date but the held-back one, as globs."""
    d = need(KRANJ) / "landsat" / "filled"
    return [str(d / f"2020{doy}_*.tif") for doy in ("068", "077", "093", "100") if doy != held_back]


def _kranj_coarse() -> list[str]:
    return [str(need(KRANJ) / "modis" / "filled")]


def _read(path: Path, scale: float | None = None) -> np.ndarray:
    return FileSource(str(path), Scaling(scale)).read()


def _rmse(pred: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """The pinned RMSE (docs/metrics.md: per band, then the mean), over ``where``."""
    from stfusion.metrics import evaluate

    if where is not None:
        pred, truth = (np.where(where[None], a, np.nan) for a in (pred, truth))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(evaluate(pred, truth).mean["rmse"])


def test_kranj_daily_series_beats_additive_on_held_back_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fits: list[Any] = []
    real_open_scene = series_mod.open_scene

    def counting_open_scene(*a: Any, **k: Any) -> Any:
        fits.append(a[0])
        return real_open_scene(*a, **k)

    monkeypatch.setattr(series_mod, "open_scene", counting_open_scene)
    out = tmp_path / "out"
    res = run_series(out, fine=_kranj_fine(), coarse=_kranj_coarse(), fine_scale=1e-4)
    counts = res.counts()
    # 26 MODIS days: 24 predicted from (068, 093), 068 and 093 gap-filled (fully valid, so
    # written as observed); Landsat 100 has no MODIS: listed as skipped.
    assert counts == {"predicted": 24, "gap-filled": 2, "skipped": 1, "failed": 0}
    assert len(fits) == 1  # one fit for the one pair set, reused for 24 dates
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert (
        rows["2020-04-09"]["status"] == "skipped"
        and "without a coarse" in rows["2020-04-09"]["reason"]
    )
    assert rows["2020-03-17"]["pairs"] == "2020-03-08 2020-04-02"

    k = need(KRANJ)
    truth = _read(next((k / "landsat" / "filled").glob("2020077_*")), 1e-4)
    f1 = _read(next((k / "landsat" / "filled").glob("2020068_*")), 1e-4)
    c1 = _read(k / "modis" / "filled" / "2020068_18-04_kranj.tif")
    c2 = _read(k / "modis" / "filled" / "2020077_18-04_kranj.tif")
    pred = _read(out / "fused_2020-03-17.tif")
    series_rmse, additive_rmse = _rmse(pred, truth), _rmse(f1 + c2 - c1, truth)
    assert series_rmse < additive_rmse  # measured: 0.01501 vs 0.01768
    # the gap-filled pair dates are the observations themselves
    np.testing.assert_allclose(_read(out / "fused_2020-03-08.tif"), f1, rtol=1e-6)

    with rasterio.open(out / "fused_2020-03-17.tif") as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.dtypes[0] == "float32" and ds.count == 6
        assert ds.descriptions == tuple(f"band{i}" for i in range(1, 7))
        tags = ds.tags()
        assert tags["STFUSION_METHOD"] == "starfm"
        assert tags["STFUSION_SERIES_STATUS"] == "predicted"
        assert tags["STFUSION_SERIES_PAIRS"] == '["2020-03-08", "2020-04-02"]'
        assert tags["STFUSION_SERIES_COMPLETE"] == "1"
    assert not list(out.glob(".*"))  # no temporary files left


def _kranj_small(out: Path, **kw: Any) -> Any:
    kw.setdefault("params", ["window=11"])
    kw.setdefault("dates", "2020-03-06:2020-03-14")
    kw.setdefault("fine", _kranj_fine())
    return run_series(out, coarse=_kranj_coarse(), fine_scale=1e-4, **kw)


class Interrupted(Exception):
    pass


def test_resume_after_interrupt_and_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"

    def stop_after_three(done: int, total: int, record: Any) -> None:
        if done == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        _kranj_small(out, progress=stop_after_three)
    first = sorted(out.glob("fused_*.tif"))
    assert [p.name for p in first] == [f"fused_2020-03-{d:02d}.tif" for d in (8, 9, 10)]
    assert len(read_summary(out / "summary.csv")) == 3
    mtimes = {p.name: p.stat().st_mtime_ns for p in first}
    assert not list(out.glob(".*"))

    predictions: list[str] = []
    real = series_mod._predict_component

    def counting(est: Any, target: Any, path: Path, *a: Any) -> Path:
        predictions.append(path.name)
        return real(est, target, path, *a)

    monkeypatch.setattr(series_mod, "_predict_component", counting)
    res = _kranj_small(out)
    # 03-08 is gap-filled (no prediction needed), 09 and 10 were done: 4 new predictions
    assert len(predictions) == 4
    assert {p.name: p.stat().st_mtime_ns for p in first} == mtimes
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert len(rows) == 7 and res.counts()["failed"] == 0
    assert "kept from an earlier run" in rows["2020-03-09"]["reason"]
    assert rows["2020-03-09"]["status"] == "predicted"
    assert rows["2020-03-08"]["status"] == "gap-filled"

    # a damaged output (its tags still readable: stfusion's) is computed again; the rest is
    # kept (a file cut short before its tags cannot be told from a user's: never replaced,
    # tests/test_series_safety.py)
    damaged = out / "fused_2020-03-11.tif"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 3000] = b"\x55" * 3000
    damaged.write_bytes(bytes(data))
    predictions.clear()
    res = _kranj_small(out)
    assert predictions == ["2020-03-11_main_2020-03-08+2020-04-02.tif"]
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert "damaged" in rows["2020-03-11"]["reason"] and rows["2020-03-11"]["status"] == "predicted"
    assert FileSource(str(damaged)).read().shape == (6, 44, 45)

    # other settings never replace existing outputs silently
    with pytest.raises(
        OutputExistsError, match=r"other settings \(fused_.*params\.window: \d+ -> 13"
    ):
        _kranj_small(out, params=["window=13"])
    # a file that stfusion did not write is never replaced
    foreign = out / "fused_2020-03-12.tif"
    foreign.unlink()
    shutil.copy(next((need(KRANJ) / "modis" / "filled").glob("2020072_*")), foreign)
    res = _kranj_small(out)
    assert [r.date for r in res.failed] == [D(2020, 3, 12)]
    assert "not written by stfusion" in res.failed[0].reason
    predictions.clear()
    res = _kranj_small(out, params=["window=13"], overwrite=True)
    assert res.counts()["failed"] == 0 and len(predictions) == 6


def _kranj_copies(
    tmp_path: Path, landsat: Sequence[str], modis: Iterable[int], dates: str
) -> tuple[Path, Path, Callable[[Path], Any]]:
    """Copies of the Kranj Landsat days ``landsat`` and MODIS days ``modis`` (to change them
    in place), and an additive series over ``dates`` of those folders into a given folder."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    coarse.mkdir()
    for doy in landsat:
        p = next((k / "landsat" / "filled").glob(f"2020{doy}_*"))
        shutil.copy(p, fine / p.name)
    for day in modis:
        p = k / "modis" / "filled" / f"2020{day:03d}_18-04_kranj.tif"
        if p.exists():
            shutil.copy(p, coarse / p.name)

    def run(out: Path) -> Any:
        return run_series(
            out,
            fine=[str(fine)],
            coarse=[str(coarse)],
            fine_scale=1e-4,
            method="additive",
            dates=dates,
        )

    return fine, coarse, run


def test_inputs_changed_in_place_are_recomputed(tmp_path: Path) -> None:
    """Issue 11 item 3: resume keys on each input's path, size and mtime, not on the name."""
    k = need(KRANJ)
    fine, coarse, run = _kranj_copies(
        tmp_path, ("068", "093"), (68, 69, 70, 93), "2020-03-08:2020-03-10"
    )

    out = tmp_path / "out"
    run(out)
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert {r["status"] for r in rows.values()} == {"predicted", "gap-filled"}
    kept = run(out)  # nothing changed: everything kept (checked below)
    # the 068 pair's Landsat image replaced in place by the unfilled one (same name)
    pair = next(fine.glob("2020068_*"))
    shutil.copy(next((k / "landsat" / "unfilled").glob("2020068_*")), pair)
    # the 070 MODIS image is now empty: that date is skipped, its old output must go
    with rasterio.open(coarse / "2020070_18-04_kranj.tif", "r+") as ds:
        ds.write(np.full((ds.count, ds.height, ds.width), np.nan, np.float32))
    res = run(out)
    fresh = tmp_path / "fresh"
    run(fresh)
    for p in fresh.glob("fused_*.tif"):
        np.testing.assert_array_equal(_read(out / p.name), _read(p))
    assert sorted(p.name for p in out.glob("fused_*")) == sorted(
        p.name for p in fresh.glob("fused_*")
    )
    assert all("inputs unchanged" in r.reason for r in kept.records)
    by = {r.date: r for r in res.records}
    assert "recomputed: inputs changed" in by[D(2020, 3, 9)].reason
    assert pair.name in by[D(2020, 3, 9)].reason
    assert by[D(2020, 3, 10)].status == "skipped"
    assert "earlier output removed" in by[D(2020, 3, 10)].reason
    assert not list(out.glob(".*"))
    # the 069 MODIS image deleted: 069 is no longer a target, and its output must not stay
    # behind as if it matched the inputs (summary.csv says so); a file of the user's is kept
    (coarse / "2020069_18-04_kranj.tif").unlink()
    res = run(out)
    assert not (out / "fused_2020-03-09.tif").exists()
    by = {r.date: r for r in res.records}
    assert by[D(2020, 3, 9)].status == "skipped"
    assert "no longer an input" in by[D(2020, 3, 9)].reason
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert rows["2020-03-09"]["status"] == "skipped"
    mine = out / "fused_2020-03-09.tif"  # a file series did not write, under that name
    shutil.copy(next(fine.glob("2020068_*")), mine)
    res = run(out)
    assert mine.exists() and D(2020, 3, 9) not in {r.date for r in res.records}


def test_a_pair_no_date_would_choose_leaves_outputs_kept(tmp_path: Path) -> None:
    """Adding a Landsat date recomputes only the dates whose pairs it changes: with pairs 068
    and 077, days 069-070 use both; adding 093 changes nothing for them (077 stays the
    nearest later pair), while day 078 now lies between 077 and 093."""
    k = need(KRANJ)
    fine, _, run = _kranj_copies(tmp_path, ("068", "077"), range(68, 94), "2020-03-09:2020-03-18")

    out = tmp_path / "out"
    run(out)
    p093 = next((k / "landsat" / "filled").glob("2020093_*"))
    shutil.copy(p093, fine / p093.name)
    res = {r.date: r for r in run(out).records}
    assert "kept from an earlier run" in res[D(2020, 3, 9)].reason
    assert "kept from an earlier run" in res[D(2020, 3, 10)].reason
    assert res[D(2020, 3, 18)].status == "predicted" and "recomputed" in res[D(2020, 3, 18)].reason
    fresh = tmp_path / "fresh"
    run(fresh)
    for p in fresh.glob("fused_*.tif"):
        np.testing.assert_array_equal(_read(out / p.name), _read(p))


def test_leftovers_of_dead_runs_are_removed(tmp_path: Path) -> None:
    """Issue 11 item 6: temporary folders and partials of killed runs do not survive a run."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = child.pid
    out = tmp_path / "out"
    out.mkdir()
    planted = [
        out / ".stfusion-series-ab12_xyz",  # an older version's mkdtemp scratch folder
        out / f".stfusion-series.{dead}-0a1b2c3d.partial",  # this version's scratch folder
        out / f".fused_2020-04-01.tif.{dead}-0a1b2c3d.partial.tif",  # a date not in this run
        out / f".summary.csv.{dead}-0a1b2c3d.partial.csv",
    ]
    for p in planted[:2]:
        p.mkdir()
        (p / "x.tif").write_bytes(b"x")
    for p in planted[2:]:
        p.write_bytes(b"x")
    (out / ".stfusion-series.lock").write_text(
        json.dumps({"pid": dead, "host": socket.gethostname()})
    )
    res = _kranj_small(out, dates="2020-03-08:2020-03-09")
    assert res.counts()["failed"] == 0
    assert not list(out.glob(".*"))


def test_int16_outputs_and_cubes(tmp_path: Path) -> None:
    import xarray as xr

    out = tmp_path / "out"
    res = _kranj_small(
        out, dtype="int16", int16_scale=1e-4, cube="netcdf", dates="2020-03-08:2020-03-10"
    )
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        assert ds.dtypes[0] == "int16" and ds.nodata == -32768
        assert ds.scales == (1e-4,) * 6
    f = _read(out / "fused_2020-03-09.tif")  # scale from the file's metadata
    assert 0.0 < float(np.nanmean(f)) < 0.5
    assert res.cube_path is not None and res.cube_path.name == "fused_cube.nc"
    with xr.open_dataset(res.cube_path) as cube:
        assert cube["fused"].dims == ("time", "band", "y", "x")
        assert cube.sizes == {"time": 3, "band": 6, "y": 44, "x": 45}
        np.testing.assert_allclose(cube["fused"].isel(time=1).values, f, atol=1e-6)
        assert cube["status"].values.tolist() == [2, 1, 1]  # gap-filled, predicted, predicted
        # compressed in chunks, as the Zarr cube (a user trial: 92 MB against 25 MB of COGs)
        assert cube["fused"].encoding.get("zlib") is True, cube["fused"].encoding
        assert cube["fused"].encoding["chunksizes"] == (1, 6, 44, 45)
    # float32 outputs where int16 ones were made: other settings, refused without --overwrite
    # (a complete output of another dtype or band count is not "damaged", to be replaced)
    before = {p.name: p.read_bytes() for p in out.glob("fused_*.tif")}
    with pytest.raises(OutputExistsError, match="other settings"):
        _kranj_small(out, dates="2020-03-08:2020-03-10")
    assert {p.name: p.read_bytes() for p in out.glob("fused_*.tif")} == before
    replaced = _kranj_small(out, dates="2020-03-09:2020-03-09", overwrite=True)
    assert replaced.counts()["predicted"] == 1
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        assert ds.dtypes[0] == "float32"
    pytest.importorskip("zarr")
    res = _kranj_small(
        out,
        dtype="int16",
        int16_scale=1e-4,
        cube="zarr",
        dates="2020-03-08:2020-03-10",
        overwrite=True,
    )
    assert res.cube_path is not None
    with xr.open_zarr(res.cube_path) as cube:
        assert cube.sizes["time"] == 3
        np.testing.assert_allclose(cube["fused"].isel(time=1).values, f, atol=1e-6)


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_cube_is_written_chunk_by_chunk(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cube reads each output a chunk at a time (16 px chunks here, so edge chunks are
    partial): every date equals its GeoTIFF."""
    import xarray as xr

    from stfusion.series import cube

    monkeypatch.setattr(cube, "CUBE_CHUNK", 16)  # the cube extra is a test dependency
    out = tmp_path / "out"
    res = _kranj_small(out, cube=fmt, dates="2020-03-08:2020-03-10")
    assert res.cube_path is not None
    with xr.open_dataset(res.cube_path, engine="zarr" if fmt == "zarr" else None) as cube:
        assert cube.sizes == {"time": 3, "band": 6, "y": 44, "x": 45}
        for i, day in enumerate(("2020-03-08", "2020-03-09", "2020-03-10")):
            expect = _read(out / f"fused_{day}.tif")
            np.testing.assert_array_equal(cube["fused"].isel(time=i).values, expect)


def test_missing_cube_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from stfusion.errors import MissingDependencyError

    real_import = builtins.__import__

    def no_zarr(name: str, *a: Any, **k: Any) -> Any:
        if name == "zarr":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_zarr)
    with pytest.raises(MissingDependencyError, match="pip install"):
        series_mod.check_cube_backend("zarr")


def test_a_zarr_cube_under_an_older_xarray_says_which_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A packaging trial: xarray 2024.9 (within the declared >= 2023.1) wrote the dates, then
    ended in a traceback, "to_zarr() got an unexpected keyword argument 'zarr_format'"."""
    import xarray

    from stfusion.errors import MissingDependencyError

    assert series_mod.check_cube_backend("zarr") == "zarr"
    monkeypatch.setattr(xarray, "__version__", "2024.9.0")
    with pytest.raises(MissingDependencyError, match=r"xarray 2024\.10 or later \(this is 2024"):
        series_mod.check_cube_backend("zarr")


# ------------------------------------------------------------------------------- faults


def test_corrupt_inputs_are_reported_and_the_series_goes_on(tmp_path: Path) -> None:
    k = need(KRANJ)
    modis = tmp_path / "modis"
    modis.mkdir()
    for doy in range(68, 76):
        shutil.copy(k / "modis" / "filled" / f"2020{doy:03d}_18-04_kranj.tif", modis)
    shutil.copy(k / "modis" / "filled" / "2020093_18-04_kranj.tif", modis)
    (modis / "2020071_18-04_kranj.tif").write_bytes(b"not a tiff at all")
    bad = modis / "2020073_18-04_kranj.tif"
    bad.write_bytes(bad.read_bytes()[:3000])  # truncated
    landsat = tmp_path / "landsat"
    landsat.mkdir()
    for src in (k / "landsat" / "filled").glob("20200[69][83]_*.tif"):
        shutil.copy(src, landsat)
    res = run_series(
        tmp_path / "out",
        fine=[str(landsat)],
        coarse=[str(modis)],
        fine_scale=1e-4,
        params=["window=11"],
    )
    failed = {r.date: r.reason for r in res.failed}
    assert set(failed) == {D(2020, 3, 11), D(2020, 3, 13)}
    assert "2020071_18-04_kranj.tif" in failed[D(2020, 3, 11)]
    assert "2020073_18-04_kranj.tif" in failed[D(2020, 3, 13)]
    assert res.counts()["predicted"] == 5  # 069, 070, 072, 074, 075
    rows = {r["date"]: r for r in read_summary(tmp_path / "out" / "summary.csv")}
    assert rows["2020-03-11"]["status"] == "failed"


def test_unwritable_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputFileError, match="cannot write into the output folder"):
        run_series(blocker / "out", fine=_kranj_fine(), coarse=_kranj_coarse(), fine_scale=1e-4)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        probe = ro / "probe"
        try:
            probe.write_text("")
            pytest.skip("running as root: permissions do not stop writes")
        except PermissionError:
            pass
        with pytest.raises(InputFileError, match="cannot write"):
            run_series(ro, fine=_kranj_fine(), coarse=_kranj_coarse(), fine_scale=1e-4)
    finally:
        ro.chmod(0o700)


# ---------------------------------------------------------------------- synthetic clouds


@pytest.fixture(scope="module")
def cloudy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need(CIA)
    from synthetic_clouds import make_cloudy_series

    return make_cloudy_series(tmp_path_factory.mktemp("cloudy"), seed=0)


def _cloudy_run(info: dict[str, Any], out: Path, masks: bool = True, **kw: Any) -> Any:
    mask_kw: dict[str, Any] = {}
    if masks:
        mask_kw = dict(
            fine_mask=[str(info["qa_dir"])],
            fine_mask_kind="landsat_qa_pixel",
            coarse_mask=[str(info["state_dir"])],
            coarse_mask_kind="mod09_state_1km",
        )
    return run_series(
        out,
        fine=[str(info["fine_dir"])],
        coarse=[str(info["coarse_dir"])],
        **{"method": "fitfc", "params": ["ratio=10"], **kw},
        fine_scale=2.75e-5,
        fine_offset=-0.2,
        **mask_kw,
    )


def test_synthetic_cloudy_series(cloudy: dict[str, Any], tmp_path: Path) -> None:
    from synthetic_clouds import DATES

    info = cloudy
    out = tmp_path / "out"
    res = _cloudy_run(info, out)
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert rows["2001-10-25"]["status"] == "skipped"  # the cloudy MODIS date (state_1km)
    assert "coarse valid fraction" in rows["2001-10-25"]["reason"]
    assert rows["2001-10-17"]["status"] == "predicted"
    assert rows["2001-10-08"]["status"] == rows["2001-11-02"]["status"] == "gap-filled"
    assert rows["2001-10-17"]["weights"] == "0.6400 0.3600"  # 9 and 16 days away
    assert res.counts()["failed"] == 0

    rows_, cols_ = info["crop"]
    truth = FileSource(str(info["truth"])).read()[:, rows_, cols_]
    coarse = {d: _read(info["coarse_dir"] / f"CIA_MOD09GA_{d}.tif") for d in DATES}
    m08, m11 = (info["masks"][d]["qa_invalid"] for d in (DATES[0], DATES[2]))
    clean08, clean11 = info["clean"][DATES[0]], info["clean"][DATES[2]]
    pred = _read(out / "fused_2001-10-17.tif")
    # gap-free wherever any pair is clear
    assert np.isfinite(pred[:, ~(m08 & m11)]).all()
    gap08 = _read(out / "fused_2001-10-08.tif")
    assert np.isfinite(gap08[:, ~m11]).all()
    # clear pixels of a gap-filled date are the observation
    obs08 = _read(info["fine_dir"] / f"CIA_Landsat7_{DATES[0]}.tif")
    obs08 = obs08 * np.float32(2.75e-5) + np.float32(-0.2)
    np.testing.assert_allclose(gap08[:, ~m08], obs08[:, ~m08], atol=1e-6)

    # Baseline: F1 + C2 - C1 from the nearest pair that is clear at the pixel (10-08's F1 is
    # NaN under its clouds, so there it is the 11-02 pair).
    def additive(fine: np.ndarray, mask: np.ndarray, c_pair: np.ndarray, c_t: np.ndarray) -> Any:
        return np.where(mask[None], np.nan, fine) + c_t - c_pair

    add08 = additive(clean08, m08, coarse[DATES[0]], coarse[DATES[1]])
    add11 = additive(clean11, m11, coarse[DATES[2]], coarse[DATES[1]])
    base = np.where(np.isfinite(add08), add08, add11)
    under = m08 & ~m11
    # measured 0.03601 vs 0.04311; 0.04198 while Fit-FC's coarse substitute (no 10-08 fine
    # pixel) was blended in with weight 0.64 (tools/cloudy_series_table.py)
    assert _rmse(pred, truth, under) < min(0.039, _rmse(base, truth, under))

    # gap-filled 10-08 under its own clouds vs the additive prediction from 11-02
    base08 = additive(clean11, m11, coarse[DATES[2]], coarse[DATES[0]])
    assert _rmse(gap08, clean08, under) < _rmse(base08, clean08, under)  # 0.03522 vs 0.04654

    # without the masks the clouds leak into the prediction
    leaky = _cloudy_run(info, tmp_path / "nomask", masks=False, dates="2001-10-17")
    assert leaky.counts()["predicted"] == 1
    p_leak = _read(tmp_path / "nomask" / "fused_2001-10-17.tif")
    assert _rmse(p_leak, truth, under) > 1.5 * _rmse(pred, truth, under)


def test_two_pair_method_gets_a_fallback_under_clouds(cloudy: dict[str, Any], tmp_path: Path):
    """A two-pair method leaves pixels empty where one pair is cloudy; the fallback (STARFM)
    fills them, so the output is gap-free wherever any pair is clear."""
    from stfusion.methods import available

    if "estarfm" not in available():
        pytest.skip("estarfm is not registered")
    res = run_series(
        tmp_path / "out",
        fine=[str(cloudy["fine_dir"])],
        coarse=[str(cloudy["coarse_dir"])],
        method="estarfm",
        params=["window=11"],
        fine_scale=2.75e-5,
        fine_offset=-0.2,
        fine_mask=[str(cloudy["qa_dir"])],
        fine_mask_kind="landsat_qa_pixel",
        dates="2001-10-17",
    )
    rec = res.records[0]
    assert rec.status == "predicted" and "starfm filled" in rec.reason
    m08, m11 = (cloudy["masks"][d]["qa_invalid"] for d in ("2001-10-08", "2001-11-02"))
    pred = _read(tmp_path / "out" / "fused_2001-10-17.tif")
    assert np.isfinite(pred[:, ~(m08 & m11)]).all()


# ----------------------------------------------------------------------------------- CLI


def _group() -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    cli.add_command(series)
    return cli


def test_cli_catalog_run_and_failures(tmp_path: Path) -> None:
    k = need(KRANJ)
    cat = tmp_path / "cat.csv"
    lines = ["path,date,sensor"]
    for p in sorted((k / "landsat" / "filled").glob("*.tif")):
        if not p.name.startswith("2020077"):
            lines.append(f"{p},,landsat")
    for doy in (68, 69, 70, 93):
        lines.append(f"{k / 'modis' / 'filled' / f'2020{doy:03d}_18-04_kranj.tif'},,modis")
    lines.append(f"{tmp_path / 'gone_2020-03-11.tif'},,modis")  # missing file
    cat.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    args = [
        "series",
        "--catalog",
        str(cat),
        "--out-dir",
        str(tmp_path / "o"),
        "--fine-scale",
        "0.0001",
        "-p",
        "window=11",
        "--dates",
        "2020-03-08:2020-03-11",
        "--quiet",
    ]
    r = runner.invoke(_group(), args)
    assert r.exit_code == EXIT_SOME_FAILED, r.output
    assert "2 predicted, 1 gap-filled, 0 skipped, 1 failed" in r.output
    rows = {x["date"]: x for x in read_summary(tmp_path / "o" / "summary.csv")}
    assert "gone_2020-03-11.tif" in rows["2020-03-11"]["reason"]
    # again, without the missing date: everything kept, exit 0
    r = runner.invoke(_group(), [*args[:-2], "2020-03-08:2020-03-10", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "2 predicted, 1 gap-filled" in r.output
    r = runner.invoke(_group(), ["series", "--out-dir", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--catalog" in r.output
    r = runner.invoke(_group(), ["series", "--help"])
    assert r.exit_code == 0 and "--min-valid" in r.output and "--fine-mask-kind" in r.output


def test_coarse_images_on_their_own_grid(cloudy: dict[str, Any], tmp_path: Path) -> None:
    """MODIS at 500 m on its own grid: reprojected onto the fine grid, ratio measured (Fit-FC
    needs it, no --param ratio given)."""
    from affine import Affine

    from conftest import write_tif

    native = tmp_path / "modis500"
    native.mkdir()
    for p in sorted(Path(cloudy["coarse_dir"]).glob("*.tif")):
        with rasterio.open(p) as ds:
            arr, t, crs = ds.read(), ds.transform, ds.crs
        b, h, w = arr.shape
        blocks = arr.reshape(b, h // 10, 10, w // 10, 10).mean(axis=(2, 4))
        write_tif(native / p.name, blocks, transform=t * Affine.scale(10), crs=crs)
    res = run_series(
        tmp_path / "out",
        fine=[str(cloudy["fine_dir"])],
        coarse=[str(native)],
        method="fitfc",
        fine_scale=2.75e-5,
        fine_offset=-0.2,
        fine_mask=[str(cloudy["qa_dir"])],
        fine_mask_kind="landsat_qa_pixel",
        dates="2001-10-17",
    )
    assert res.records[0].status == "predicted", res.records[0].reason
    assert any("reprojected onto the fine grid" in n for n in res.notes)
    with rasterio.open(tmp_path / "out" / "fused_2001-10-17.tif") as ds:
        assert ds.tags()["STFUSION_RATIO"] == "10"
        assert ds.shape == cloudy["shape"]
        assert np.isfinite(ds.read()).all()
    # MODIS's real 463.3 m pixels (R = 9.27 here) with its cloud mask (state_1km, 1 km):
    # FSDAF and Fit-FC still work on the native pixels (the mask is applied on the coarse
    # image's own grid). They failed every date: "the inputs are on one grid ... the ratio
    # must be a positive integer".
    from rasterio.warp import Resampling, reproject

    modis = tmp_path / "modis463"
    modis.mkdir()
    for p in sorted(Path(cloudy["coarse_dir"]).glob("*.tif")):
        with rasterio.open(p) as ds:
            arr, t, crs = ds.read(), ds.transform, ds.crs
        t463 = Affine(463.3127, 0, t.c - 100, 0, -463.3127, t.f + 100)
        n = int(np.ceil(arr.shape[1] * 50 / 463.3127)) + 1
        out463 = np.full((arr.shape[0], n, n), np.nan, np.float32)
        reproject(
            arr,
            out463,
            src_transform=t,
            src_crs=crs,
            dst_transform=t463,
            dst_crs=crs,
            resampling=Resampling.average,
            dst_nodata=np.nan,
        )
        write_tif(modis / p.name, out463, transform=t463, crs=crs, nodata=float("nan"))
    for method in ("fitfc", "fsdaf"):
        res = run_series(
            tmp_path / f"masked_{method}",
            fine=[str(cloudy["fine_dir"])],
            coarse=[str(modis)],
            method=method,
            fine_scale=2.75e-5,
            fine_offset=-0.2,
            fine_mask=[str(cloudy["qa_dir"])],
            fine_mask_kind="landsat_qa_pixel",
            coarse_mask=[str(cloudy["state_dir"])],
            coarse_mask_kind="mod09_state_1km",
            dates="2001-10-17",
        )
        assert res.records[0].status == "predicted", (method, res.records[0].reason)


def test_method_needing_the_ratio_is_refused_before_any_date(
    cloudy: dict[str, Any], tmp_path: Path
) -> None:
    """Fit-FC on inputs all on one grid without --param ratio: one error before any work
    (it failed at every date, one by one), exit status 1, no output, nothing left behind."""
    out = tmp_path / "out"
    proc = run_process(
        "series",
        "--fine",
        str(cloudy["fine_dir"]),
        "--coarse",
        str(cloudy["coarse_dir"]),
        "-o",
        str(out),
        "-m",
        "fitfc",
        "--fine-scale",
        "2.75e-5",
        "--fine-offset",
        "-0.2",
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "fitfc needs the resolution ratio" in proc.stderr and "--param ratio=" in proc.stderr
    assert not any(out.rglob("*")), sorted(out.rglob("*"))
    # A fractional ratio on one grid failed every date with the same paragraph (exit 3); it
    # is refused once now, before any date.
    with pytest.raises(InvalidParameterError, match=r"must be a positive integer; got 9\.5"):
        _cloudy_run(cloudy, tmp_path / "frac", masks=False, params=["ratio=9.5"])
    assert not (tmp_path / "frac").exists()
    # The same inputs with the ratio run (the check costs nothing when it passes).
    res = _cloudy_run(cloudy, tmp_path / "ok", masks=False, dates="2001-10-17")
    assert res.records[0].status == "predicted", res.records[0].reason


def test_mem_limit_covers_the_whole_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--mem-limit bounds the fits and the blend too, not only each date's predict: the
    scene-wide passes of fit read under the run's scan budget (they read under the default
    1024 MB one: a 2000 x 2000 FSDAF series at --mem-limit 100 peaked at 600 MB, now 384)."""
    from stfusion.io import scan_values
    from stfusion.methods.base import FusionMethod
    from stfusion.tiling import scan_values_for

    seen: list[int] = []
    real = FusionMethod.fit

    def fit(self: Any, *a: Any, **kw: Any) -> Any:
        seen.append(scan_values())
        return real(self, *a, **kw)

    monkeypatch.setattr(FusionMethod, "fit", fit)
    _kranj_small(tmp_path / "out", dates="2020-03-09:2020-03-09", mem_limit_mb=50)
    assert seen and set(seen) == {scan_values_for(50)}


def test_mem_limit_bounds_what_the_dates_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under --mem-limit the dates' peaks do not add up: each date hands the heap it freed
    back to the system (a 2000 x 2000 FSDAF series of 8 dates at --mem-limit 500 peaked at
    767 MB, now 717-732; target 750), and the fitted estimators kept for reuse hold no more state
    together than one method's share of the limit (they were 4, whatever their size). Without
    a limit neither happens: the estimators stay cached, and no time goes to the heap."""
    trims: list[bool] = []
    monkeypatch.setattr(series_mod, "release_freed_memory", lambda **kw: trims.append(True))
    sizes: list[int] = []
    real = series_mod._Series.estimator

    def estimator(self: Any, *a: Any, **kw: Any) -> Any:
        est = real(self, *a, **kw)
        sizes.append(len(self.cache))
        return est

    monkeypatch.setattr(series_mod._Series, "estimator", estimator)
    # 2020-03-15 and 03-16 lie between the pairs 068 and 077, 03-18 between 077 and 093
    days = "2020-03-15:2020-03-18"
    res = _kranj_small(tmp_path / "free", fine=_kranj_fine(held_back=""), dates=days)
    statuses = [r.status for r in res.records]
    assert statuses == ["predicted", "predicted", "gap-filled", "predicted"]
    assert max(sizes) == 2 and not trims
    sizes.clear()
    monkeypatch.setattr(series_mod, "state_bytes_for", lambda mb: 0)  # any state is over it
    res = _kranj_small(
        tmp_path / "limited", fine=_kranj_fine(held_back=""), dates=days, mem_limit_mb=200
    )
    assert [r.status for r in res.records] == statuses
    assert max(sizes) == 1 and len(trims) == 4  # one per date predicted (or gap-filled)


def test_fine_date_with_a_cloudy_coarse_image_keeps_its_observation(tmp_path: Path) -> None:
    """The coarse image of a fine date is fully cloudy: the date is not dropped (it was
    "skipped" before), its fine observation is the output."""
    data = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
    write_mask_like(data / "CIA_MOD09GA_2001-10-08.tif", tmp_path / "mask_2001-10-08.tif", 1)
    out = tmp_path / "out"
    res = run_series(
        out,
        fine=[str(data / "CIA_Landsat7_*.tif")],
        coarse=[str(data / "CIA_MOD09GA_*.tif")],
        coarse_mask=[str(tmp_path / "mask_2001-10-08.tif")],
        method="starfm",
        params=["window=15"],
        date_range="2001-10-08",
    )
    (row,) = read_summary(out / "summary.csv")
    assert row["status"] == "gap-filled", row
    # its coarse image is not one of its inputs: not read, not spoken of
    assert row["reason"] == "fine image fully valid: written as observed"
    assert row["coarse_valid"] == ""
    observed = FileSource(str(data / "CIA_Landsat7_2001-10-08.tif")).read()
    np.testing.assert_allclose(_read(out / "fused_2001-10-08.tif"), observed, atol=1e-6)
    assert res.counts()["skipped"] == 0


def test_fully_masked_fine_date_without_pairs_is_skipped_not_written_empty(
    tmp_path: Path,
) -> None:
    """Every fine image masked (a QA band given as a binary mask): no date may be written as
    an all-NaN "gap-filled" file."""
    data = Path(__file__).resolve().parents[1] / "src" / "stfusion" / "data"
    masks = tmp_path / "masks"
    masks.mkdir()
    for day in ("2001-10-08", "2001-10-17", "2001-11-02"):
        with rasterio.open(data / f"CIA_Landsat7_{day}.tif") as ds:
            profile = dict(ds.profile, count=1, dtype="uint16", nodata=None)
            with rasterio.open(masks / f"qa_{day}.tif", "w", **profile) as out:
                out.write(np.full((1, ds.height, ds.width), 21824, np.uint16))
    out = tmp_path / "out"
    res = run_series(
        out,
        fine=[str(data / "CIA_Landsat7_*.tif")],
        coarse=[str(data / "CIA_MOD09GA_*.tif")],
        fine_mask=[str(masks)],
        method="starfm",
        params=["window=15"],
    )
    rows = read_summary(out / "summary.csv")
    assert {r["status"] for r in rows} == {"skipped"}, rows
    assert all("no valid pixel" in r["reason"] or "no pair" in r["reason"] for r in rows)
    assert not list(out.glob("fused_*.tif"))
    assert res.counts()["gap-filled"] == 0


def test_out_dir_that_is_an_input_folder_is_refused(tmp_path: Path) -> None:
    """The second run read the first run's outputs as coarse images ("two coarse images on
    2020-03-08") when --out-dir was the --coarse folder."""
    from stfusion.series.config import SeriesConfig

    d = tmp_path / "modis"
    d.mkdir()
    for coarse in ([str(d)], [f"{d}/*.tif"], [f"{tmp_path}/modis/../modis"]):
        with pytest.raises(InvalidParameterError, match="would be read as images of the next"):
            SeriesConfig(d, fine=["landsat"], coarse=coarse)
    with pytest.raises(InvalidParameterError, match="--fine"):
        SeriesConfig(d, fine=[str(d)], coarse=["elsewhere"])
    # a glob that cannot match the outputs' names is fine
    SeriesConfig(d, fine=["landsat"], coarse=[f"{d}/MOD*.tif"])


def test_a_fine_image_among_the_coarse_ones_is_said(tmp_path: Path) -> None:
    """A trial: a Landsat file copied into the coarse folder under a MODIS name was used as
    a target without a word; predict warns of it."""
    from stfusion.demo import sample_dir

    d = sample_dir()
    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    coarse.mkdir()
    for day in ("2001-10-08", "2001-10-17"):
        shutil.copy(d / f"CIA_Landsat7_{day}.tif", fine)
        shutil.copy(d / f"CIA_MOD09GA_{day}.tif", coarse)
    shutil.copy(d / "CIA_Landsat7_2001-11-02.tif", coarse / "CIA_MOD09GA_2001-10-25.tif")
    res = run_series(tmp_path / "out", fine=[str(fine)], coarse=[str(coarse)], params=["window=11"])
    said = [n for n in res.notes if "changes from pixel to pixel as much as the fine" in n]
    assert len(said) == 1 and "CIA_MOD09GA_2001-10-25.tif" in said[0], res.notes
