"""The quality layer beside a prediction: days to the nearest pair, pairs used, fallback,
uncertainty."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from stfusion.cli import main
from stfusion.io import FileSource


def _copy(src: Path, dst: Path, hole: bool = False) -> Path:
    with rasterio.open(src) as ds:
        data = ds.read()
        profile = ds.profile
        names = ds.descriptions
    if hole:
        data[:, 5:10, 5:10] = np.nan
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.descriptions = names
    return dst


def test_quality_layer_from_dated_names(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = small_tifs
    f_a = _copy(s["f1"], tmp_path / "L_2001-10-17.tif", hole=True)
    c_a = _copy(s["c1"], tmp_path / "M_2001-10-17.tif")
    f_b = _copy(s["f2"], tmp_path / "L_2001-11-10.tif")
    c_b = _copy(s["c2"], tmp_path / "M_2001-11-10.tif")
    target = _copy(s["c2"], tmp_path / "M_2001-11-02.tif")
    out = tmp_path / "pred.tif"
    try:
        main(
            [
                "predict",
                "--pair",
                str(f_a),
                str(c_a),
                "--pair",
                str(f_b),
                str(c_b),
                "--coarse",
                str(target),
                "--out",
                str(out),
                "--param",
                "window=5",
                "--quality",
            ]
        )
    except SystemExit as exc:
        assert exc.code in (0, None)
    qpath = tmp_path / "pred_quality.tif"
    assert "quality layer" in capsys.readouterr().out
    with rasterio.open(qpath) as ds:
        names = ds.descriptions
        q = ds.read()
        assert ds.transform == rasterio.open(out).transform
    assert names[:3] == ("days_to_pair", "pairs_used", "fallback")
    assert names[3:] == ("uncertainty_red", "uncertainty_nir")
    days, used = q[0], q[1]
    # 2001-11-02 is 16 days after 10-17 and 8 days before 11-10: nearest is 8 everywhere.
    assert np.all(days == 8)
    assert np.all(used[5:10, 5:10] == 1) and used[0, 0] == 2
    pred = FileSource(str(out)).read()
    assert pred.shape[0] == 2 and np.isfinite(pred).all()


def test_starfm_quality_fallback_and_uncertainty(small_tifs: dict[str, Path]) -> None:
    from stfusion.methods.base import WithQuality
    from stfusion.methods.starfm import STARFM
    from stfusion.tiling import plan_windows

    s = small_tifs
    f1 = FileSource(str(s["f1"])).read()
    f1[:, 20, 20] = np.nan  # no fine value: no candidate, falls back to the coarse target
    est = STARFM(window=5).fit([(f1, FileSource(str(s["c1"])).read())])
    c2 = FileSource(str(s["c2"])).read()
    est.prepare(c2)
    w = plan_windows(est.grid_, 40)[0]
    stacked = WithQuality(est).predict_window(w)
    pred, q = stacked[:2], stacked[2:]
    np.testing.assert_array_equal(pred, est.predict_window(w))
    fallback, unc = q[2], q[3:]
    assert fallback[20, 20] == 1 and fallback.sum() == 1
    np.testing.assert_array_equal(pred[:, 20, 20], c2[:, 20, 20])
    assert np.isnan(unc[:, 20, 20]).all()
    ok = np.isfinite(unc)
    assert ok.mean() > 0.99 and (unc[ok] >= 0).all()
    # The spread is that of the candidates' predictions: about the size of the coarse change.
    assert 0 < np.nanmedian(unc) < np.nanstd(c2 - FileSource(str(s["c1"])).read()) * 3


def test_undated_names_say_days_to_pair_is_nan(
    small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No date in a name: days_to_pair was NaN everywhere without a word (documented only)."""
    from conftest import predict_args, run_cli
    from stfusion.errors import STFusionWarning

    out = tmp_path / "pred.tif"
    with pytest.warns(STFusionWarning, match="days_to_pair is NaN everywhere: .*no acquisition"):
        code, _, err = run_cli([*predict_args(small_tifs, out), "--quality"], capsys)
    assert code == 0, err
    # each warning once: the names were parsed twice, so their own warnings came twice
    from stfusion.api import run_prediction

    two = tmp_path / "L_2001-10-17_proc20210101.tif"
    two.symlink_to(small_tifs["f1"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_prediction(
            method="additive",
            pairs=[(str(two), str(small_tifs["c1"]))],
            target=str(small_tifs["c2"]),
            out=str(tmp_path / "two.tif"),
            quality=True,
        )
    said = [str(w.message) for w in caught]
    assert len(said) == len(set(said)) and any("days_to_pair" in m for m in said), said
    with rasterio.open(tmp_path / "pred_quality.tif") as ds:
        assert np.isnan(ds.read(1)).all() and np.isfinite(ds.read(2)).all()
    # input the run then refuses (coarse x 10000 against fine reflectance): the error only,
    # not first a warning about a layer that is never written (a docs trial)
    again = tmp_path / "again.tif"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = [*predict_args(small_tifs, again), "--quality", "--coarse-scale", "10000"]
        code, _, err = run_cli(args, capsys)
    assert code == 1 and "scale" in err, err
    assert not [w for w in caught if "days_to_pair" in str(w.message)]
    assert "days_to_pair" not in err and not again.exists()


def test_a_quality_layer_without_its_prediction_is_removed(tmp_path: Path) -> None:
    """SIGTERM after the quality layer took its name (its writer closes first) but before
    the prediction did left `pred_quality.tif` alone, and the rerun was refused for it. The
    layer this run wrote goes when the prediction's writer fails (the earlier one, if any,
    put back); one it did not write stays."""
    from stfusion.io import atomic_path
    from stfusion.quality import dropped_unless_complete

    def place(path: Path, data: bytes) -> None:  # as the layer's writer places it
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_bytes(data)

    q = tmp_path / "p_quality.tif"
    with pytest.raises(KeyboardInterrupt), dropped_unless_complete(q):
        place(q, b"layer")
        raise KeyboardInterrupt  # the prediction's COG copy, interrupted
    assert not q.exists()
    q.write_bytes(b"an earlier run's")
    with pytest.raises(OSError), dropped_unless_complete(q):
        raise OSError("the disk is full")  # before this run wrote its layer
    assert q.read_bytes() == b"an earlier run's"
    with dropped_unless_complete(q):
        place(q, b"new")
    assert q.read_bytes() == b"new"
    # an --overwrite run's layer placed, then its prediction failed: the earlier layer comes
    # back (it was lost, and its prediction stood without it: a storage trial)
    with pytest.raises(OSError), dropped_unless_complete(q):
        place(q, b"newer")
        raise OSError("No space left on device")
    assert q.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == [q.name]  # nothing kept aside is left


def test_windows_with_a_quality_layer_are_planned_smaller(small_tifs: dict[str, Path]) -> None:
    """The quality layer's bands and spreads were not in the window plan: STARFM at
    --mem-limit 300 on 3000 x 3000 x 6 peaked at 612 MB with --quality (target 550), 560 MB
    with the windows planned for them."""
    from stfusion.methods.starfm import STARFM
    from stfusion.quality import window_budget

    est = STARFM().fit([(str(small_tifs["f1"]), str(small_tifs["c1"]))])
    budget = window_budget(est, 300)
    assert 0.5 * 300 < budget < 300
    assert window_budget(est, None) < 1024
    # never below the least --mem-limit a user may give (at 0.001 every series date failed)
    assert window_budget(est, 0.001) == 0.001
    est.plan(window_budget(est, 0.001))
