"""``stfusion series``: what a user trial on Kranj found wrong, each as it shows to a user.

1. A fine image on a grid shifted or cropped by whole pixels was dropped as "unreadable" and
   the earliest image decided the grid; now the output grid is the one most pair fine images
   share and the others are placed on it pixel for pixel (a grid that would need resampling
   stops the run before any date, naming the files and a gdalwarp command).
2. An ensemble runs other members on one-pair dates than on two-pair dates, and only a tag
   said so; now each date's summary row names the members that ran.
3. A run that wrote nothing (every pair masked by QA_PIXEL files read as binary masks) exited
   0; now 1, with the reason, and the mask warning is among the run's notes.
4. An earlier output that a run had to replace but could not (the date failed) stayed under
   its name, looking current; now it is removed when it no longer matches (never a file
   ``stfusion series`` did not write).

Kranj is 44 x 45 px: every run here takes a few seconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

import stfusion.series.runner as series_mod
from conftest import KRANJ, need, run_process
from stfusion.errors import STFusionWarning
from stfusion.io import FileSource
from stfusion.series import read_summary, run_series


def _landsat(tmp_path: Path, days: Sequence[str] = ("068", "077", "093")) -> Path:
    """``fine/`` with copies of the unfilled Landsat images of ``days`` (day of year)."""
    fine = tmp_path / "fine"
    fine.mkdir()
    for doy in days:
        p = next((need(KRANJ) / "landsat" / "unfilled").glob(f"2020{doy}_*"))
        shutil.copy(p, fine / p.name)
    return fine


def _image(fine: Path, doy: str) -> Path:
    return next(fine.glob(f"2020{doy}_*"))


def _crop(path: Path, window: Window) -> None:
    """Replace ``path`` by its ``window`` (same pixels, the origin moved with it)."""
    with rasterio.open(path) as ds:
        profile, data, transform = ds.profile, ds.read(window=window), ds.window_transform(window)
    profile.update(width=data.shape[2], height=data.shape[1], transform=transform)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)


def _series(fine: Path, out: Path, dates: str, *extra: str) -> Any:
    return run_process(
        "series",
        "--fine",
        str(fine),
        "--coarse",
        str(need(KRANJ) / "modis" / "filled"),
        "--fine-scale",
        "0.0001",
        "--out-dir",
        str(out),
        "--date-range",
        dates,
        "--quiet",
        *extra,
    )


def _rows(out: Path) -> dict[str, dict[str, str]]:
    return {r["date"]: r for r in read_summary(out / "summary.csv")}


def _read(path: Path) -> np.ndarray:
    return FileSource(str(path)).read()


# ------------------------------------------------------------ 1. fine images on other grids


@pytest.mark.parametrize("cropped", ["068", "077"])
def test_a_fine_image_cropped_by_a_column_is_placed_on_the_output_grid(
    tmp_path: Path, cropped: str
) -> None:
    """068 (or 077) one column narrower than the others: the output grid stays the 45 px one
    (that of 2 of the 3 pair images), the cropped image is used where it has pixels, exactly
    as the same image padded with nodata on that grid; nothing is called unreadable and
    03-17 is gap-filled from its own Landsat image."""
    fine = _landsat(tmp_path)
    padded = tmp_path / "padded"
    shutil.copytree(fine, padded)
    with rasterio.open(_image(padded, cropped), "r+") as ds:  # the last column: nodata
        data = ds.read()
        data[:, :, -1] = ds.nodata
        ds.write(data)
    _crop(_image(fine, cropped), Window(0, 0, 44, 44))

    dates = "2020-03-08:2020-03-17"
    r = _series(fine, tmp_path / "out", dates)
    assert r.returncode == 0, r.stderr
    ref = _series(padded, tmp_path / "ref", dates)
    assert ref.returncode == 0, ref.stderr
    rows = _rows(tmp_path / "out")
    assert not any("unreadable" in row["reason"] for row in rows.values()), rows
    assert rows["2020-03-17"]["status"] == "gap-filled"
    assert rows["2020-03-08"]["status"] == "gap-filled"
    day = {"068": "2020-03-08", "077": "2020-03-17"}[cropped]
    assert "placed on the output grid" in rows[day]["reason"]
    for p in sorted((tmp_path / "ref").glob("fused_*.tif")):
        got = tmp_path / "out" / p.name
        with rasterio.open(got) as a, rasterio.open(p) as b:
            assert (a.width, a.height, a.transform) == (b.width, b.height, b.transform)
        np.testing.assert_array_equal(_read(got), _read(p))


def test_the_grid_most_fine_images_share_wins_whatever_comes_first(tmp_path: Path) -> None:
    """077 and 093 one column narrower (their first column gone) and 068 whole: the output
    grid is the narrow one; 068 is placed on it one column to the left (its first column
    left out), its values unchanged."""
    fine = _landsat(tmp_path)
    for doy in ("077", "093"):
        _crop(_image(fine, doy), Window(1, 0, 44, 44))
    r = _series(fine, tmp_path / "out", "2020-03-08:2020-03-09")
    assert r.returncode == 0, r.stderr
    rows = _rows(tmp_path / "out")
    assert rows["2020-03-08"]["status"] == "gap-filled"
    assert not any("unreadable" in row["reason"] for row in rows.values())
    out = tmp_path / "out" / "fused_2020-03-08.tif"
    with rasterio.open(out) as ds, rasterio.open(_image(fine, "077")) as narrow:
        assert (ds.width, ds.transform) == (44, narrow.transform)
    observed = FileSource(str(_image(fine, "068"))).read()[:, :, 1:] * np.float32(1e-4)
    got = _read(out)
    ok = np.isfinite(observed)
    np.testing.assert_allclose(got[ok], observed[ok], rtol=1e-6)


def test_a_fine_image_off_the_pixel_lattice_stops_the_run_before_any_date(
    tmp_path: Path,
) -> None:
    """Half a pixel off: only resampling could put it on the grid, which the run does not do
    to fine images: exit 1 before the output folder exists, naming the file, both grids and
    a gdalwarp command that gives the output grid."""
    fine = _landsat(tmp_path)
    with rasterio.open(_image(fine, "077"), "r+") as ds:
        ds.transform = ds.transform * Affine.translation(0.5, 0)
    r = _series(fine, tmp_path / "out", "2020-03-08:2020-03-09")
    assert r.returncode == 1, r.stderr
    assert _image(fine, "077").name in r.stderr
    assert "gdalwarp" in r.stderr and "-te " in r.stderr and "-tr 29.9 30" in r.stderr
    assert "unreadable" not in r.stderr
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------- 2. the ensemble's members


def test_each_date_names_the_ensemble_members_that_ran(tmp_path: Path) -> None:
    """03-08 has one other pair (077: Fit-FC, FSDAF, STARFM; ESTARFM and ROBOT need two),
    03-09 two (068, 077: STARFM, ESTARFM, ROBOT; Fit-FC and FSDAF take one): summary.csv says
    so per date, as the STFUSION_ENSEMBLE tag does, and a kept date keeps it."""
    fine = _landsat(tmp_path)
    out = tmp_path / "out"
    kw: dict[str, Any] = {
        "fine": [str(fine)],
        "coarse": [str(need(KRANJ) / "modis" / "filled")],
        "fine_scale": 1e-4,
        "method": "ensemble",
        "params": ["ratio=16"],
        "date_range": "2020-03-08:2020-03-09",
    }
    with pytest.warns(STFusionWarning):  # fitfc, fsdaf skipped on two pairs
        run_series(out, **kw)
    rows = _rows(out)
    one, two = rows["2020-03-08"]["reason"], rows["2020-03-09"]["reason"]
    ran = "members run: {} ({} reliability; {} cannot run on {})"
    assert ran.format("fitfc, fsdaf, starfm", "consensus", "estarfm, robot", "1 pair") in one
    assert ran.format("starfm, estarfm, robot", "consensus", "fitfc, fsdaf", "2 pairs") in two
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        tag = ds.tags()["STFUSION_ENSEMBLE"]
        assert '"members_run": ["starfm", "estarfm", "robot"]' in tag
    run_series(out, **kw)
    assert "members run: starfm, estarfm, robot" in _rows(out)["2020-03-09"]["reason"]


# ------------------------------------------------------------------ 3. a run that made nothing


def _qa(tmp_path: Path, fine: Path) -> Path:
    """QA_PIXEL-like masks of every fine image: 21824 (clear land) everywhere."""
    qa = tmp_path / "qa"
    qa.mkdir()
    for p in fine.glob("*.tif"):
        with rasterio.open(p) as ds:
            profile = ds.profile
        profile.update(count=1, dtype="uint16", nodata=None)
        with rasterio.open(qa / f"{p.name[:7]}_QA_PIXEL.tif", "w", **profile) as ds:
            ds.write(np.full((1, ds.height, ds.width), 21824, np.uint16))
    return qa


def test_a_run_that_predicts_no_date_exits_1_and_names_the_mask_kind(tmp_path: Path) -> None:
    """QA_PIXEL files without --fine-mask-kind are binary masks: every pair fully masked,
    every date skipped. Exit 1, saying why and what to check; with the right kind, 0."""
    fine = _landsat(tmp_path)
    qa = _qa(tmp_path, fine)
    r = _series(fine, tmp_path / "out", "2020-03-09:2020-03-10", "--fine-mask", str(qa))
    assert r.returncode == 1, r.stderr
    err = r.stderr
    assert "Error: no target date was predicted" in err
    assert "no pair is clear" in err and "--fine-mask-kind" in err
    assert {row["status"] for row in _rows(tmp_path / "out").values()} == {"skipped"}
    good = _series(
        fine,
        tmp_path / "good",
        "2020-03-09:2020-03-10",
        "--fine-mask",
        str(qa),
        "--fine-mask-kind",
        "landsat_qa_pixel",
    )
    assert good.returncode == 0, good.stderr


def test_the_mask_kind_warning_is_among_the_run_s_notes(tmp_path: Path) -> None:
    """The warning about a QA band read as a binary mask reaches the result (the CLI's
    notes), not only the log; the result says why nothing was written."""
    fine = _landsat(tmp_path)
    qa = _qa(tmp_path, fine)
    res = run_series(
        tmp_path / "out",
        fine=[str(fine)],
        coarse=[str(need(KRANJ) / "modis" / "filled")],
        fine_scale=1e-4,
        fine_mask=[str(qa)],
        date_range="2020-03-09",
    )
    assert any("binary mask" in n and "21824" in n for n in res.notes), res.notes
    assert "fully masked" in res.no_output


# ------------------------------------------------------ 4. an output that could not be redone


def _failing(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    """Every prediction of ``day`` raises (a method error)."""
    real = series_mod._predict_component

    def predict(est: Any, target: Any, path: Path, *a: Any) -> Path:
        if path.name.startswith(day):
            raise RuntimeError("prediction failed")
        return real(est, target, path, *a)

    monkeypatch.setattr(series_mod, "_predict_component", predict)


def _kw(fine: Path, **more: Any) -> dict[str, Any]:
    return {
        "fine": [str(fine)],
        "coarse": [str(need(KRANJ) / "modis" / "filled")],
        "fine_scale": 1e-4,
        "date_range": "2020-03-09:2020-03-10",
        **more,
    }


def test_overwrite_that_fails_a_date_removes_its_output_of_other_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--overwrite with another method: 03-10 fails, so its STARFM output would stay beside
    the new additive ones as if made with them; it is removed and the summary says so. An
    output that matches the run (same settings and inputs) is kept instead: resumed, as
    computing it again would write the same pixels."""
    fine, out = _landsat(tmp_path), tmp_path / "out"
    run_series(out, **_kw(fine))
    _failing(monkeypatch, "2020-03-10")
    res = run_series(out, **_kw(fine, method="additive", overwrite=True))
    rec = {r.date.isoformat(): r for r in res.records}["2020-03-10"]
    assert rec.status == "failed"
    assert "earlier output removed (made with other settings)" in rec.reason
    assert not (out / "fused_2020-03-10.tif").exists()
    with rasterio.open(out / "fused_2020-03-09.tif") as ds:
        assert ds.tags()["STFUSION_METHOD"] == "additive"

    same = tmp_path / "same"
    monkeypatch.undo()
    run_series(same, **_kw(fine))
    _failing(monkeypatch, "2020-03-10")
    res = run_series(same, **_kw(fine, overwrite=True))
    rec = {r.date.isoformat(): r for r in res.records}["2020-03-10"]
    assert rec.status == "predicted" and rec.reason.startswith("kept from an earlier run")
    assert (same / "fused_2020-03-10.tif").exists()


def test_an_interrupted_overwrite_run_resumes(tmp_path: Path) -> None:
    """A user trial: a run with another method and --overwrite stopped half way left STARFM
    and additive outputs side by side; running it again without --overwrite was refused
    (other settings) and with it computed every date again, those already made too. Under
    --overwrite an output made with the run's own settings and inputs is resumed now."""
    fine, out = _landsat(tmp_path), tmp_path / "out"
    run_series(out, **_kw(fine))  # STARFM, 03-09 and 03-10
    part = run_series(out, **_kw(fine, method="additive", overwrite=True, date_range="2020-03-09"))
    assert part.records[0].status == "predicted"
    res = run_series(out, **_kw(fine, method="additive", overwrite=True))
    rec = {r.date.isoformat(): r for r in res.records}
    assert rec["2020-03-09"].reason.startswith("kept from an earlier run"), rec["2020-03-09"]
    assert not rec["2020-03-10"].reason.startswith("kept"), rec["2020-03-10"]
    for day in ("2020-03-09", "2020-03-10"):
        with rasterio.open(out / f"fused_{day}.tif") as ds:
            assert ds.tags()["STFUSION_METHOD"] == "additive"


def test_a_damaged_output_that_cannot_be_redone_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged output (pixels that no longer match their checksum) whose date then fails
    is removed, not left for a reader to take as this run's result."""
    fine, out = _landsat(tmp_path), tmp_path / "out"
    run_series(out, **_kw(fine))
    path = out / "fused_2020-03-10.tif"
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = b"\x55" * 3000
    path.write_bytes(bytes(data))
    _failing(monkeypatch, "2020-03-10")
    res = run_series(out, **_kw(fine))
    rec = {r.date.isoformat(): r for r in res.records}["2020-03-10"]
    assert rec.status == "failed"
    assert "earlier output removed (damaged or incomplete)" in rec.reason
    assert not path.exists()


def test_a_file_series_did_not_write_is_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under --overwrite, a user's own file at an output's name whose date fails stays."""
    fine, out = _landsat(tmp_path), tmp_path / "out"
    out.mkdir()
    mine = out / "fused_2020-03-10.tif"
    shutil.copy(_image(fine, "068"), mine)
    before = mine.read_bytes()
    _failing(monkeypatch, "2020-03-10")
    res = run_series(out, **_kw(fine, overwrite=True))
    assert {r.date.isoformat(): r for r in res.records}["2020-03-10"].status == "failed"
    assert mine.read_bytes() == before


def test_a_coarse_date_without_its_mask_says_so_in_its_row(tmp_path: Path) -> None:
    """A user trial: a MODIS date without its state_1km file was warned about on stderr, but
    its summary row had an empty reason (a fine date's row says "used unmasked")."""
    from conftest import write_mask_like

    fine = _landsat(tmp_path)
    masks = tmp_path / "cmasks"
    masks.mkdir()
    modis = need(KRANJ) / "modis" / "filled"
    write_mask_like(modis / "2020069_18-04_kranj.tif", masks / "mask_2020-03-09.tif", 0)
    res = run_series(tmp_path / "out", **_kw(fine, coarse_mask=[str(masks)]))
    rec = {r.date.isoformat(): r for r in res.records}
    assert "no coarse mask for this date: its image used unmasked" in rec["2020-03-10"].reason
    assert "no coarse mask" not in rec["2020-03-09"].reason
    # the run's note names five dates and counts the rest (a year of MODIS with one mask made
    # a 4,400-character line)
    (note,) = [n for n in res.notes if n.startswith("coarse images without a mask")]
    assert note.endswith(" more") and note.count(", ") == 4, note


# ------------------------------------------- 5. fill values and empty images (a season trial)


def _modis(tmp_path: Path, edits: dict[str, Any], nodata: float | None = -3.4e38) -> Path:
    """``coarse/``: the filled Kranj MODIS days, each listed in ``edits`` changed by it
    (``fn(array)`` in place), the nodata tag set to ``nodata``."""
    coarse = tmp_path / "coarse"
    shutil.copytree(need(KRANJ) / "modis" / "filled", coarse)
    for p in coarse.glob("*.tif"):
        with rasterio.open(p, "r+") as ds:
            a = ds.read()
            if p.name[4:7] in edits:
                edits[p.name[4:7]](a)
            ds.write(a)
            ds.nodata = nodata
    return coarse


def test_an_undeclared_coarse_fill_fails_its_dates_with_the_value_to_give(
    tmp_path: Path,
) -> None:
    """series fused MODIS -28672 as reflectance -2.87 without a word, then after a warning:
    each image holding it now fails its date, as predict refuses it, naming the option."""

    def fill(a: np.ndarray) -> None:
        a[:, :30] = -28672

    coarse = _modis(tmp_path, {"070": fill, "071": fill}, nodata=None)
    kw = _kw(_landsat(tmp_path), coarse=[str(coarse)], date_range="2020-03-10:2020-03-11")
    res = run_series(tmp_path / "out", **kw)
    assert {r.status for r in res.records} == {"failed"}, res.records
    for r in res.records:
        assert "undeclared nodata" in r.reason and "--coarse-nodata -28672" in r.reason, r
    res = run_series(tmp_path / "out2", coarse_nodata=-28672, **kw)
    assert not [n for n in res.notes if "undeclared nodata" in n], res.notes
    # declared, the fill is nodata: those days are mostly empty, so skipped
    assert {r.status for r in res.records} == {"skipped"}, res.records


def test_an_empty_coarse_image_is_neither_predicted_nor_a_pair_with_min_valid_0(
    tmp_path: Path,
) -> None:
    """--min-valid 0 wrote an all-NaN 'predicted' image, and a pair whose coarse image had
    no valid pixel was chosen as the nearest one."""

    def empty(a: np.ndarray) -> None:
        a[:] = -3.4e38

    coarse = _modis(tmp_path, {"070": empty, "068": empty})
    kw = _kw(_landsat(tmp_path), coarse=[str(coarse)], date_range="2020-03-09:2020-03-10")
    res = run_series(tmp_path / "out", min_valid=0.0, **kw)
    rows = {r.date.isoformat(): r for r in res.records}
    assert rows["2020-03-10"].status == "skipped", rows
    assert "without a valid pixel" in rows["2020-03-10"].reason
    assert not (tmp_path / "out" / "fused_2020-03-10.tif").exists()
    assert rows["2020-03-09"].status == "predicted"
    pairs = rows["2020-03-09"].row()["pairs"]
    assert pairs and "2020-03-08" not in pairs, pairs
