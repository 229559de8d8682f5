"""``stfusion series`` never replaces or removes a file it did not write.

A user trial found three ways it did: a NetCDF or Zarr cube of the user's at the cube's
name replaced or deleted by ``--cube`` (and a text file there called an out-of-date cube),
a summary.csv of the user's replaced, and a file at an output's name that does not open as
a raster (a text file, a truncated GeoTIFF) replaced as "damaged". Each test runs the
command (as a process where the exit status matters) on copies of three Kranj days
(44 x 45 px, about a second per run).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from conftest import KRANJ, need, run_process
from stfusion.errors import OutputExistsError
from stfusion.series import read_summary, run_series


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    """``fine/`` with Landsat 068 and 077, ``coarse/`` with MODIS 068, 069 and 077: three
    targets, one predicted (069), two written as observed."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    coarse.mkdir()
    for doy in ("068", "077"):
        p = next((k / "landsat" / "filled").glob(f"2020{doy}_*"))
        shutil.copy(p, fine / p.name)
    for doy in ("068", "069", "077"):
        p = next((k / "modis" / "filled").glob(f"2020{doy}_*"))
        shutil.copy(p, coarse / p.name)
    return fine, coarse


def _run(fine: Path, coarse: Path, out: Path, **kw: Any) -> Any:
    return run_series(out, fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4, **kw)


def _cli(fine: Path, coarse: Path, out: Path, *more: str) -> Any:
    return run_process(
        "series", "--fine", str(fine), "--coarse", str(coarse), "--fine-scale", "0.0001",
        "-o", str(out), "-q", *more,
    )  # fmt: skip


def _tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) and its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_a_cube_of_the_users_is_never_replaced_nor_removed(tmp_path: Path) -> None:
    """Case 1: a NetCDF or Zarr cube at the cube's name without the mark (global attribute
    ``source``) stops the run before any work, exit 1, --overwrite or not; the run's own
    cube is rebuilt as before."""
    import xarray as xr

    pytest.importorskip("zarr")
    fine, coarse = _inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    mine = xr.Dataset({"ndvi": ("t", np.arange(3, dtype=np.float32))}, attrs={"title": "mine"})
    nc = out / "fused_cube.nc"
    mine.to_netcdf(nc)
    store = out / "fused_cube.zarr"
    mine.to_zarr(store, zarr_format=2)
    (store / "README_mine.txt").write_text("my analysis\n")
    before = {p.name: _tree(p) for p in (nc, store)}

    proc = _cli(fine, coarse, out, "--cube", "netcdf")
    assert proc.returncode == 1, proc.stderr
    assert "fused_cube.nc: exists and is not a cube stfusion series wrote" in proc.stderr
    assert "it is not replaced. Move it away" in proc.stderr
    with pytest.raises(OutputExistsError, match=r"fused_cube\.zarr: exists and is not a cube"):
        _run(fine, coarse, out, cube="zarr", overwrite=True)
    assert {p.name: _tree(p) for p in (nc, store)} == before
    assert sorted(p.name for p in out.iterdir()) == ["fused_cube.nc", "fused_cube.zarr"]

    # the cube the command writes carries the mark: rebuilt by the next run
    shutil.rmtree(store)
    _run(fine, coarse, out, cube="zarr")
    again = _run(fine, coarse, out, cube="zarr")
    assert again.cube_path == store
    with xr.open_zarr(store) as cube:
        assert cube.attrs["source"].startswith("stfusion series")
        assert cube.sizes["time"] == 3


def test_a_file_of_the_users_at_a_cube_name_is_not_called_an_old_cube(tmp_path: Path) -> None:
    """Case 1: a text file named ``fused_cube.zarr`` is not "from an earlier run and now out
    of date", and a run without --cube leaves it alone."""
    fine, coarse = _inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    text = out / "fused_cube.zarr"
    text.write_text("not a cube\n")
    res = _run(fine, coarse, out)
    assert res.counts()["predicted"] == 1
    assert not any("fused_cube" in n for n in res.notes), res.notes
    assert text.read_text() == "not a cube\n"


def test_a_summary_of_the_users_is_never_replaced(tmp_path: Path) -> None:
    """Case 2: a summary.csv stfusion series did not write (another header) stops the run
    before any work, exit 1, naming it; --overwrite does not replace it either."""
    fine, coarse = _inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    summary = out / "summary.csv"
    summary.write_text("site,ndvi\nkranj,0.61\n")
    proc = _cli(fine, coarse, out)
    assert proc.returncode == 1, proc.stderr
    assert "summary.csv: exists and is not a summary stfusion series wrote" in proc.stderr
    with pytest.raises(OutputExistsError, match=r"summary\.csv: exists and is not a summary"):
        _run(fine, coarse, out, overwrite=True)
    assert summary.read_text() == "site,ndvi\nkranj,0.61\n"
    assert [p.name for p in out.iterdir()] == ["summary.csv"]  # nothing written


def test_a_file_at_an_outputs_name_that_is_not_a_raster_is_left_as_it_is(tmp_path: Path) -> None:
    """Case 3: a text file and a truncated GeoTIFF of the user's at outputs' names are not
    "damaged outputs computed again": their dates fail (exit 3) and the files stay as they
    were; --overwrite replaces them, as it replaces a GeoTIFF of the user's there."""
    fine, coarse = _inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    text = out / "fused_2020-03-09.tif"
    text.write_text("my notes on 9 March\n")
    cut = out / "fused_2020-03-17.tif"
    cut.write_bytes(next(fine.glob("2020077_*")).read_bytes()[:3000])
    before = {p.name: p.read_bytes() for p in (text, cut)}

    proc = _cli(fine, coarse, out)
    assert proc.returncode == 3, proc.stderr
    assert {p.name: p.read_bytes() for p in (text, cut)} == before
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert rows["2020-03-08"]["status"] == "gap-filled"
    for day in ("2020-03-09", "2020-03-17"):
        reason = rows[day]["reason"]
        assert rows[day]["status"] == "failed", rows[day]
        assert f"fused_{day}.tif exists and " in reason and "not replaced" in reason, reason
        assert "computed again" not in reason and reason.count(f"fused_{day}.tif") == 1
    assert "cannot be read as an output of stfusion series" in rows["2020-03-09"]["reason"]

    res = _run(fine, coarse, out, overwrite=True)
    assert res.counts() == {"predicted": 1, "gap-filled": 2, "skipped": 0, "failed": 0}
    for path in (text, cut):
        with rasterio.open(path) as ds:
            assert ds.tags()["STFUSION_SERIES_COMPLETE"] == "1"


def _unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """``path`` unreadable for this process, as permissions make it for a user (the tests
    may run as root, whom permissions do not stop)."""
    import os

    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != path and real_access(p, mode, **kw)
    )


def test_an_input_that_cannot_be_read_now_stops_the_series_and_keeps_its_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair's Landsat file made unreadable (permissions, for a while): the series went on
    without it, recomputed every date from farther pairs and replaced the outputs, exit 0.
    Now it stops before any work, naming the file; the outputs stay as they were. (Checked
    through os.access: the tests may run as root, whom permissions do not stop.)"""

    from stfusion.errors import UnreadableInputError

    fine, coarse = _inputs(tmp_path)
    k = need(KRANJ)
    p = next((k / "landsat" / "filled").glob("2020093_*"))
    shutil.copy(p, fine / p.name)  # a third pair, the one the series would fall back on
    out = tmp_path / "out"
    _run(fine, coarse, out)
    before = {f.name: f.read_bytes() for f in out.glob("*.tif")}
    locked = next(fine.glob("2020077_*"))
    _unreadable(monkeypatch, locked)
    with pytest.raises(UnreadableInputError, match=f"{locked.name}: cannot be read"):
        _run(fine, coarse, out)
    assert {f.name: f.read_bytes() for f in out.glob("*.tif")} == before


def test_an_input_that_cannot_be_read_is_an_input_error_not_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """click's path check said "Path ... is not readable" with exit 2 (a usage error), where
    the docs give input problems exit 1."""

    from conftest import run_cli

    fine, coarse = _inputs(tmp_path)
    f1, c1 = next(fine.glob("2020068_*")), next(coarse.glob("2020068_*"))
    c2 = next(coarse.glob("2020069_*"))
    _unreadable(monkeypatch, c2)
    args = ["predict", "-m", "additive", "--pair", str(f1), str(c1), "--coarse", str(c2)]
    code, _out, err = run_cli(
        [*args, "--fine-scale", "1e-4", "--out", str(tmp_path / "p.tif")], capsys
    )
    assert code == 1 and "cannot be read (permission denied)" in err, err


def test_a_catalog_date_wins_over_the_name_when_the_folder_is_also_given(
    tmp_path: Path,
) -> None:
    """A catalog gave MODIS day 069's file the date 2020-03-12 while --coarse also named its
    folder: the one file was the coarse image of 03-09 (its name) and of 03-12."""
    fine, coarse = _inputs(tmp_path)
    moved = next(coarse.glob("2020069_*"))
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(f"path,date,sensor\n{moved},2020-03-12,modis\n")
    out = tmp_path / "out"
    _run(fine, coarse, out, catalog=str(catalog))
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    assert "2020-03-09" not in rows and rows["2020-03-12"]["status"] == "predicted"
    with rasterio.open(out / "fused_2020-03-12.tif") as ds:
        assert ds.tags()["STFUSION_SERIES_COARSE"].endswith(moved.name)


def test_two_inputs_swapped_by_mv_are_seen_as_changed(tmp_path: Path) -> None:
    """MODIS days of one size and mtime (unpacked from one archive) swapped by `mv`: the
    outputs of both dates were kept as verified, made from each other's image."""
    import os

    fine, coarse = _inputs(tmp_path)
    extra = next((need(KRANJ) / "modis" / "filled").glob("2020070_*"))
    shutil.copy(extra, coarse / extra.name)
    a, b = next(coarse.glob("2020069_*")), coarse / extra.name
    for p in (a, b):  # uncompressed, so of one size
        with rasterio.open(p) as ds:
            profile, data = dict(ds.profile, compress=None), ds.read()
        p.unlink()
        with rasterio.open(p, "w", **profile) as ds:
            ds.write(data)
    stamp = a.stat().st_mtime_ns
    for p in (a, b):
        os.utime(p, ns=(stamp, stamp))
    assert a.stat().st_size == b.stat().st_size  # uncompressed: the premise of the case
    out = tmp_path / "out"
    _run(fine, coarse, out)
    tmp = coarse / "swap.tif"
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    _run(fine, coarse, out)
    rows = {r["date"]: r for r in read_summary(out / "summary.csv")}
    for day in ("2020-03-09", "2020-03-10"):
        assert rows[day]["reason"].startswith("recomputed: inputs changed"), rows[day]


def test_outputs_of_coarse_images_left_out_of_a_run_are_not_deleted(tmp_path: Path) -> None:
    """A run given the MODIS files of some days only (a glob) deleted the verified outputs
    of the other days as "no coarse image any more", although those images still existed."""
    fine, coarse = _inputs(tmp_path)
    out = tmp_path / "out"
    _run(fine, coarse, out)
    kept = out / "fused_2020-03-09.tif"
    before = kept.read_bytes()
    some = [str(next(coarse.glob(f"2020{doy}_*"))) for doy in ("068", "077")]
    res = run_series(out, fine=[str(fine)], coarse=some, fine_scale=1e-4)
    assert kept.read_bytes() == before
    assert any(
        "exist but are not among this run's inputs (e.g. 2020-03-09)" in n for n in res.notes
    )
    next(coarse.glob("2020069_*")).unlink()  # gone now: its output goes
    _run(fine, coarse, out)
    assert not kept.exists()


def test_an_output_whose_coarse_link_was_removed_goes(tmp_path: Path) -> None:
    """A folder of links into the data: removing one link took its image out of the series,
    but the output stayed, since the file the link led to still existed."""
    fine, real = _inputs(tmp_path)
    links = tmp_path / "links"
    links.mkdir()
    for p in real.iterdir():
        (links / p.name).symlink_to(p)
    out = tmp_path / "out"
    _run(fine, links, out)
    assert (out / "fused_2020-03-09.tif").exists()
    next(links.glob("2020069_*")).unlink()
    _run(fine, links, out)
    assert not (out / "fused_2020-03-09.tif").exists()
