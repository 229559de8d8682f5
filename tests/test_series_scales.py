"""Every pair and every target of a series checked for its scale as predict checks its own
(a series trial, 2026-12-07): a fine image stored 0-1 among x10000 ones, or one MODIS day
stored x10000 among 0-1 ones, made outputs off by 10000x with exit 0, where predict refuses
the same files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import KRANJ, need
from stfusion.errors import ScaleMismatchError
from stfusion.series import read_summary, run_series


def _copies(tmp_path: Path) -> tuple[Path, Path]:
    """``fine/`` with Landsat 068 and 093, ``coarse/`` with MODIS 068-075 and 093."""
    k = need(KRANJ)
    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    coarse.mkdir()
    for doy in ("068", "093"):
        shutil.copy(next((k / "landsat/filled").glob(f"2020{doy}_*")), fine)
    for doy in ("068", "069", "070", "071", "093"):
        shutil.copy(next((k / "modis/filled").glob(f"2020{doy}_*")), coarse)
    return fine, coarse


def _rescale(path: Path, factor: float) -> None:
    with rasterio.open(path, "r+") as ds:
        ds.write((ds.read().astype(np.float64) * factor).astype(ds.dtypes[0]))


def _run(fine: Path, coarse: Path, out: Path) -> object:
    return run_series(out, fine=[str(fine)], coarse=[str(coarse)], fine_scale=1e-4, method="starfm")


def test_a_pair_stored_at_another_scale_stops_the_series(tmp_path: Path) -> None:
    fine, coarse = _copies(tmp_path)
    _rescale(next(fine.glob("2020093_*")), 1e-4)  # 0-1, where --fine-scale expects x10000
    with pytest.raises(ScaleMismatchError) as err:
        _run(fine, coarse, tmp_path / "out")
    said = str(err.value)
    assert "2020093_" in said and "their scales do not match" in said, said
    assert "apply to every image" in said and "2020068_" in said, said  # the pair that passed
    assert not list((tmp_path / "out").glob("fused_*.tif"))


def test_a_target_stored_at_another_scale_fails_its_date(tmp_path: Path) -> None:
    fine, coarse = _copies(tmp_path)
    _rescale(next(coarse.glob("2020070_*")), 1e4)  # x10000 among 0-1 MODIS
    _run(fine, coarse, tmp_path / "out")
    rows = {r["date"]: r for r in read_summary(tmp_path / "out" / "summary.csv")}
    assert rows["2020-03-10"]["status"] == "failed", rows["2020-03-10"]
    assert "2020070_" in rows["2020-03-10"]["reason"]
    assert "--coarse-scale applies to both" in rows["2020-03-10"]["reason"]
    assert rows["2020-03-09"]["status"] == rows["2020-03-11"]["status"] == "predicted"


def test_a_fine_image_written_as_observed_is_checked_too(tmp_path: Path) -> None:
    """A Landsat day without MODIS is written as observed: one stored 0-1 among x10000 ones
    was written 10000x off (--fine-scale 0.0001 made it 1e-5)."""
    fine, coarse = _copies(tmp_path)
    k = need(KRANJ)
    day = next((k / "landsat/filled").glob("2020077_*"))  # MODIS 077 not copied: observed
    shutil.copy(day, fine)
    _rescale(fine / day.name, 1e-4)
    with pytest.raises(ScaleMismatchError, match="2020077_"):
        _run(fine, coarse, tmp_path / "out")
    _rescale(fine / day.name, 1e4)  # as the others: written as observed
    _run(fine, coarse, tmp_path / "out")
    rows = {r["date"]: r for r in read_summary(tmp_path / "out" / "summary.csv")}
    assert rows["2020-03-17"]["status"] == "gap-filled", rows["2020-03-17"]


def test_a_later_pairs_other_mismatch_keeps_predicts_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the "their scales do not match" message gets the series' advice: a kelvin or
    sign mismatch of a later pair had the advice glued after its own last sentence."""
    import stfusion.series.prepare as prepare_mod

    fine, coarse = _copies(tmp_path)
    real, seen = prepare_mod.check_pair, []
    said = "a.tif looks like kelvin, b.tif like degrees Celsius. To put both in kelvin, x."

    def second_fails(f: object, c: object, band_order: bool = True) -> bool:
        seen.append(f)
        if len(seen) > 1:
            raise ScaleMismatchError(said)
        return real(f, c, band_order=band_order)

    monkeypatch.setattr(prepare_mod, "check_pair", second_fails)
    with pytest.raises(ScaleMismatchError) as err:
        _run(fine, coarse, tmp_path / "out")
    assert str(err.value) == said
