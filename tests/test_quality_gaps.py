"""The quality layer and the series blend where data are missing: a fine gap in a pair, a
cloud on the coarse target (user trial on Kranj and CIA).

- Fit-FC's coarse substitute where F1 is missing is flagged (``fallback`` 1, ``pairs_used``
  0), and the series blend uses the other pair's prediction there instead of blending the
  substitute in with its temporal weight.
- ``pairs_used`` / ``days_to_pair`` describe the pairs that made the value: 0 / NaN where the
  prediction is NaN.
- A pixel without a valid coarse target value carries ``fallback`` bit 2, whether the method
  leaves it NaN (ESTARFM) or predicts it from the neighbouring coarse pixels (Fit-FC, FSDAF).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from conftest import KRANJ, need
from stfusion.cli import main
from stfusion.io import FileSource, Scaling
from stfusion.methods.fitfc import FitFC
from stfusion.quality import FALLBACK_RULE, NO_COARSE_TARGET
from stfusion.series.blend import Combination, Tier, quality_path

R = 16  # Kranj: MODIS 500 m on the 30 m Landsat grid
STRIPE = np.s_[:, :, 18:26]  # (band, row, col): columns without F1 in the 068 pair
CLOUD = np.s_[10:30, 15:35]  # rows/columns under a cloud on the 077 MODIS image


def _landsat(doy: str, filled: bool = True) -> Path:
    folder = need(KRANJ) / "landsat" / ("filled" if filled else "unfilled")
    return next(folder.glob(f"2020{doy}_*"))


def _modis(doy: str) -> Path:
    return need(KRANJ) / "modis" / "filled" / f"2020{doy}_18-04_kranj.tif"


def _read(path: Path, scale: float = 1.0) -> np.ndarray:
    return FileSource(str(path), Scaling(scale)).read()


def _quality(path: Path) -> dict[str, np.ndarray]:
    with rasterio.open(path) as ds:
        return dict(zip(ds.descriptions, ds.read()))


def _mask(path: Path, like: Path, invalid: Any) -> Path:
    with rasterio.open(like) as ds:
        profile = ds.profile
    m = np.zeros((profile["height"], profile["width"]), np.uint8)
    m[invalid] = 1
    profile.update(count=1, dtype="uint8", nodata=None)
    with rasterio.open(path, "w", **profile) as out:
        out.write(m, 1)
    return path


def _cli(*args: str) -> None:
    try:
        main(["predict", *args, "--fine-scale", "0.0001", "--quality", "--quiet"])
    except SystemExit as exc:
        assert exc.code in (0, None)


# ------------------------------------------------------------------------- Fit-FC's flag


def test_fitfc_flags_its_coarse_substitute(tmp_path: Path) -> None:
    """Where F1 is missing Fit-FC writes the coarse target value: ``fallback`` was 0 there and
    the pixel looked like an ordinary prediction."""
    f1 = _read(_landsat("068"), 1e-4)
    f1[STRIPE] = np.nan
    c2 = _read(_modis("077"))
    est = FitFC(window=11, similar=10).fit([(f1, _read(_modis("068")))], ratio=R)
    out, q = tmp_path / "p.tif", tmp_path / "p_quality.tif"
    est.predict(c2, out=out, quality_out=q)
    pred, qual = _read(out), _quality(q)
    gap = np.zeros(f1.shape[1:], bool)
    gap[STRIPE[1:]] = True
    np.testing.assert_array_equal(pred[:, gap], c2[:, gap])
    assert (qual["fallback"][gap] == FALLBACK_RULE).all()
    assert (qual["fallback"][~gap] == 0).all()
    assert (qual["pairs_used"][gap] == 0).all() and (qual["pairs_used"][~gap] == 1).all()
    # the flag costs nothing: the prediction is that of predict_window
    np.testing.assert_array_equal(pred, est.predict().values)


# ------------------------------------------------------------- pairs used where NaN


@pytest.mark.parametrize("method", ["estarfm", "starfm"])
def test_nan_prediction_reports_no_pair(method: str, tmp_path: Path) -> None:
    """The user trial: ESTARFM with fine gaps in both pairs and a cloud on the target. Of the
    NaN output pixels, most reported 1 or 2 pairs used and 9 or 16 days to a pair."""
    f68, f93 = _landsat("068", filled=False), _landsat("093", filled=False)
    fm68 = _mask(tmp_path / "fm068.tif", f68, ~np.isfinite(_read(f68)).all(axis=0))
    fm93 = _mask(tmp_path / "fm093.tif", f93, np.s_[25:40, 0:20])
    cm77 = _mask(tmp_path / "cm077.tif", _modis("077"), CLOUD)
    out = tmp_path / f"{method}.tif"
    _cli(
        "--method", method,
        "--pair", str(f68), str(_modis("068")),
        "--pair", str(f93), str(_modis("093")),
        "--coarse", str(_modis("077")),
        "--fine-mask", str(fm68), "--fine-mask", str(fm93),
        "--coarse-mask", "-", "--coarse-mask", "-", "--coarse-mask", str(cm77),
        "--param", "window=15",
        "--out", str(out),
    )  # fmt: skip
    pred, qual = _read(out), _quality(quality_path(out))
    empty = ~np.isfinite(pred).any(axis=0)
    # ESTARFM: under the cloud and the fine gaps; STARFM: where no neighbour is a candidate
    assert empty.sum() > (100 if method == "estarfm" else 10)
    assert (qual["pairs_used"][empty] == 0).all()
    assert np.isnan(qual["days_to_pair"][empty]).all()
    unc = np.stack([v for k, v in qual.items() if k.startswith("uncertainty_")])
    assert np.isnan(unc[:, empty]).all()
    # where both pairs' fine pixels are valid and the prediction has a value: both pairs,
    # and the nearer one (068, 9 days before 077) is the nearest
    both = np.isfinite(_read(f68)).all(axis=0) & ~empty
    both[25:40, 0:20] = False
    assert (qual["pairs_used"][both] == 2).all() and (qual["days_to_pair"][both] == 9).all()
    # the coarse cloud is flagged, predicted there or not
    cloud = np.zeros(empty.shape, bool)
    cloud[CLOUD] = True
    code = qual["fallback"].astype(int)
    assert ((code[cloud] & NO_COARSE_TARGET) > 0).all()
    assert ((code[~cloud] & NO_COARSE_TARGET) == 0).all()


# ------------------------------------------------------------- masked coarse target


@pytest.mark.parametrize("method", ["fitfc", "fsdaf"])
def test_masked_coarse_target_is_flagged(method: str, tmp_path: Path) -> None:
    """Fit-FC and FSDAF predict under a cloud on the coarse target (from the neighbouring
    coarse pixels): the quality layer had no per-pixel sign of it."""
    cm77 = _mask(tmp_path / "cm077.tif", _modis("077"), CLOUD)
    out = tmp_path / f"{method}.tif"
    common = ["--method", method, "--pair", str(_landsat("068")), str(_modis("068"))]
    common += ["--coarse", str(_modis("077")), "--param", f"ratio={R}", "--param", "window=11"]
    _cli(*common, "--coarse-mask", "-", "--coarse-mask", str(cm77), "--out", str(out))
    pred, qual = _read(out), _quality(quality_path(out))
    cloud = np.zeros(pred.shape[1:], bool)
    cloud[CLOUD] = True
    assert np.isfinite(pred[:, cloud]).all()  # predicted there, as documented
    code = qual["fallback"].astype(int)
    assert ((code[cloud] & NO_COARSE_TARGET) > 0).all()
    assert ((code[~cloud] & NO_COARSE_TARGET) == 0).all()
    assert (qual["pairs_used"] == 1).all()  # F1 is there: the pair made every value
    # without the cloud, no pixel carries the bit
    plain = tmp_path / f"{method}_plain.tif"
    _cli(*common, "--out", str(plain))
    assert (_quality(quality_path(plain))["fallback"].astype(int) & NO_COARSE_TARGET == 0).all()


def test_starfm_sets_no_rule_bit_where_it_made_no_value(tmp_path: Path) -> None:
    """A user trial: STARFM's pixels left NaN in every band under a cloud on the coarse
    target carried fallback 3 (bit 1: "the method's fallback rule made the value"). Nothing
    made a value there: bit 2 only."""
    cloud = np.s_[0:32, 16:45]  # 2 x 2 whole MODIS pixels (docs/commands/predict.md)
    cm77 = _mask(tmp_path / "cm077.tif", _modis("077"), cloud)
    out = tmp_path / "starfm.tif"
    _cli(
        *("--method", "starfm", "--pair", str(_landsat("068")), str(_modis("068"))),
        *("--coarse", str(_modis("077")), "--param", "window=11"),
        *("--coarse-mask", "-", "--coarse-mask", str(cm77), "--out", str(out)),
    )
    pred, qual = _read(out), _quality(quality_path(out))
    empty = ~np.isfinite(pred).any(axis=0)
    assert empty.any()  # a window of 11 leaves most of the cloud empty
    code = qual["fallback"].astype(int)
    assert (code[empty] == NO_COARSE_TARGET).all(), np.unique(code[empty])
    assert (qual["pairs_used"][empty] == 0).all()


# ------------------------------------------------------------------------- series blend


def _fitfc_component(tmp_path: Path, doy: str, stripe: bool) -> Path:
    f1 = _read(_landsat(doy), 1e-4)
    if stripe:
        f1[STRIPE] = np.nan
    out = tmp_path / f"comp_{doy}.tif"
    est = FitFC(window=11, similar=10).fit([(f1, _read(_modis(doy)))], ratio=R)
    est.predict(_read(_modis("077")), out=out, quality_out=quality_path(out), cog=False)
    return out


def test_blend_uses_the_other_pair_where_one_has_no_fine_data(tmp_path: Path) -> None:
    """The blend took Fit-FC's coarse substitute from the pair with the gap (weight 0.64) with
    the real prediction of the other pair (0.36); the real one alone is used now."""
    p68 = _fitfc_component(tmp_path, "068", stripe=True)
    p93 = _fitfc_component(tmp_path, "093", stripe=False)
    a, b = _read(p68), _read(p93)
    h, w = a.shape[1:]
    win = Window(0, 0, w, h)
    tier = Tier([p68, p93], [0.64, 0.36], "fitfc")
    blended = tier.blend(win)
    assert blended is not None
    gap = np.zeros((h, w), bool)
    gap[STRIPE[1:]] = True
    np.testing.assert_allclose(blended[:, gap], b[:, gap], rtol=1e-6)
    np.testing.assert_allclose(blended[:, ~gap], 0.64 * a[:, ~gap] + 0.36 * b[:, ~gap], rtol=1e-5)
    both = tier.blend_support(win)
    assert both is not None and not both[1].any()  # made from a pair everywhere
    truth = _read(_landsat("077"), 1e-4)

    def rmse(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean((x[:, gap] - truth[:, gap]) ** 2)))

    old = 0.64 * a + 0.36 * b  # what the blend made before
    assert rmse(blended) < rmse(old)

    # the substitute stays where no pair predicts (both components without F1 there)
    alone = Tier([p68], [1.0], "fitfc").blend_support(win)
    assert alone is not None
    np.testing.assert_array_equal(alone[0], a)
    assert alone[1][:, gap].all() and not alone[1][:, ~gap].any()
    # a later tier's value made from a pair replaces an earlier tier's substitute
    comb = Combination([Tier([p68], [1.0]), Tier([p93], [1.0])], None, FileSource(str(p68)).grid, 6)
    (_, out), *_ = list(comb.blocks())
    np.testing.assert_array_equal(out[:, gap], b[:, gap])
    np.testing.assert_array_equal(out[:, ~gap], a[:, ~gap])
    # without quality layers (older scratch files) every value counts, as before
    for p in (p68, p93):
        quality_path(p).unlink()
    old_blend = tier.blend(win)
    assert old_blend is not None
    np.testing.assert_allclose(old_blend, old, rtol=1e-5)


def test_series_fitfc_uses_the_clear_pair_under_a_fine_gap(tmp_path: Path) -> None:
    """End to end (needs runner.py to write each component's quality layer): Fit-FC in
    ``stfusion series`` between two pairs, the earlier one with a nodata stripe."""
    from stfusion.series import run_series

    fine, coarse = tmp_path / "fine", tmp_path / "coarse"
    fine.mkdir()
    coarse.mkdir()
    for doy in ("068", "093"):
        src = _landsat(doy)
        with rasterio.open(src) as ds:
            data, profile = ds.read(), ds.profile
        if doy == "068":
            data[STRIPE] = np.nan  # float32 files with NaN nodata
        profile.update(nodata=np.nan)
        with rasterio.open(fine / src.name, "w", **profile) as out:
            out.write(data)
    for doy in ("068", "077", "093"):
        shutil.copy(_modis(doy), coarse / _modis(doy).name)
    res = run_series(
        tmp_path / "out",
        fine=[str(fine)],
        coarse=[str(coarse)],
        method="fitfc",
        params=[f"ratio={R}", "window=11", "similar=10"],
        fine_scale=1e-4,
        dates="2020-03-17:2020-03-17",
    )
    assert res.counts()["predicted"] == 1
    pred = _read(tmp_path / "out" / "fused_2020-03-17.tif")
    only93 = _read(_fitfc_component(tmp_path, "093", stripe=False))
    gap = np.zeros(pred.shape[1:], bool)
    gap[STRIPE[1:]] = True
    np.testing.assert_allclose(pred[:, gap], only93[:, gap], rtol=1e-5, atol=1e-7)
    assert np.isfinite(pred).all()
