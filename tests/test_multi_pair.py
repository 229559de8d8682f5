"""``--multi-pair vip``: a one-pair method given several pairs runs as VIPSTF over it, through
``stfusion predict``, ``run_prediction``, ``make_estimator`` and ``stfusion bench``; without it
the method refuses the pairs and says how to use them."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

import stfusion.bench as bench_mod
from conftest import KRANJ, need, run_cli, write_tif
from stfusion.api import run_prediction
from stfusion.bench import run_bench
from stfusion.cases import Case
from stfusion.errors import InvalidParameterError, OutputExistsError
from stfusion.io import Scaling
from stfusion.methods import available, get_method, make_estimator
from stfusion.methods.vipstf import VIPSTF, one_pair_method
from stfusion.series import run_series
from stfusion.testing import piecewise_scene

HAS_TORCH = importlib.util.find_spec("torch") is not None
RATIO = 8
#: Small windows so the classical methods run fast on 32 x 32 px.
CLASSICAL = {
    "fsdaf": ["window=9"],
    "fsdaf2": ["window=9"],
    "fitfc": ["window=9", "similar=6", "regression_window=3"],
}
#: The one-pair deep methods, with their shipped weights (tile: the scene).
DEEP = ("dcstfn", "ganstfm", "vitgan", "student")


def test_one_pair_methods_are_covered() -> None:
    """Every registered one-pair method is tested below (classical or deep)."""
    assert {m for m in available() if one_pair_method(get_method(m))} == set(CLASSICAL) | set(DEEP)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two pairs and a target 32 x 32 x 3 (R = 8): the target mixes both pairs."""
    d = tmp_path_factory.mktemp("mp")
    scene = piecewise_scene(32, 32, bands=3, patch=4, ratio=RATIO)
    fine, coarse = scene["fine"], scene["coarse"]
    rng = np.random.default_rng(3)
    fines = [fine, (fine * 1.2 + 0.01).astype(np.float32)]
    coarses = [coarse, (coarse * 1.2 + 0.01).astype(np.float32)]
    target = 0.5 * coarses[0] + 0.4 * coarses[1] + 0.005 * rng.standard_normal(coarse.shape)
    target = target.astype(np.float32)
    truth = (0.5 * fines[0] + 0.4 * fines[1]).astype(np.float32)
    pairs = [
        (str(write_tif(d / f"F{k}.tif", f)), str(write_tif(d / f"C{k}.tif", c)))
        for k, (f, c) in enumerate(zip(fines, coarses))
    ]
    return {
        "dir": d,
        "pairs": pairs,
        "target": str(write_tif(d / "C_target.tif", target)),
        "truth": str(write_tif(d / "F_truth.tif", truth)),
        "arrays": (list(zip(fines, coarses)), target),
    }


def _library(method: str, params: list[str], files: dict) -> np.ndarray:
    pairs, target = files["arrays"]
    est = make_estimator(method, params, pairs=2, multi_pair="vip")
    assert isinstance(est, VIPSTF) and est.base == method
    return est.fit(pairs, ratio=RATIO).predict(target).values


def _cli_args(method: str, params: list[str], files: dict, out: Path) -> list[str]:
    args = ["predict", "-m", method, "--coarse", files["target"], "-o", str(out), "-q"]
    for f, c in files["pairs"]:
        args += ["--pair", f, c]
    for p in [f"ratio={RATIO}", *params]:
        args += ["--param", p]
    return args


@pytest.mark.parametrize("method", list(CLASSICAL))
def test_cli_and_api_equal_vipstf_over_the_method(method: str, files: dict, tmp_path: Path) -> None:
    params = CLASSICAL[method]
    want = _library(method, params, files)
    out = tmp_path / "cli.tif"
    code, _, _ = run_cli([*_cli_args(method, params, files, out), "--multi-pair", "vip"])
    assert code == 0
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), want)
        assert ds.tags()["STFUSION_METHOD"] == "vipstf"
    api_out = tmp_path / "api.tif"
    info = run_prediction(
        method=method,
        pairs=files["pairs"],
        target=files["target"],
        out=str(api_out),
        params=[f"ratio={RATIO}", *params],
        multi_pair="vip",
    )
    assert info["method"] == f"vipstf over {method}"
    with rasterio.open(api_out) as ds:
        np.testing.assert_array_equal(ds.read(), want)
    # the same as the explicit spelling
    explicit = VIPSTF(base=method, base_params=get_method(method).parse_params(params))
    pairs, target = files["arrays"]
    np.testing.assert_array_equal(explicit.fit(pairs, ratio=RATIO).predict(target).values, want)


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize("method", DEEP)
def test_deep_methods_through_vip(method: str, files: dict, tmp_path: Path) -> None:
    """The shipped weights, through the CLI: finite, and the library's result."""
    params = ["tile=32"]
    want = _library(method, params, files)
    assert np.isfinite(want).all()
    out = tmp_path / "cli.tif"
    code, _, _ = run_cli([*_cli_args(method, params, files, out), "--multi-pair", "vip"])
    assert code == 0
    with rasterio.open(out) as ds:
        np.testing.assert_allclose(ds.read(), want, rtol=0, atol=1e-6)


def test_several_pairs_without_vip_are_refused_with_the_way_out(
    files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.tif"
    code, _, err = run_cli(_cli_args("fitfc", CLASSICAL["fitfc"], files, out), capsys)
    assert code != 0 and not out.exists()
    assert "fitfc needs exactly 1 pair, got 2" in err and "--multi-pair vip" in err
    with pytest.raises(InvalidParameterError, match=r"multi_pair='vip'"):
        make_estimator("fsdaf").fit(files["arrays"][0], ratio=RATIO)


def test_multi_pair_leaves_other_cases_alone() -> None:
    """One pair, or a method that takes several pairs itself: the method itself."""
    assert type(make_estimator("fsdaf", pairs=1, multi_pair="vip")).name == "fsdaf"
    assert type(make_estimator("starfm", pairs=2, multi_pair="vip")).name == "starfm"
    assert type(make_estimator("estarfm", pairs=2, multi_pair="vip")).name == "estarfm"
    with pytest.raises(InvalidParameterError, match="none or vip"):
        make_estimator("fsdaf", pairs=2, multi_pair="virtual")


def test_bench_runs_one_pair_methods_through_vip(
    files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (f0, c0), (f1, c1) = files["pairs"]
    case = Case(
        "two",
        ((f0, c0), (f1, c1)),
        files["target"],
        files["truth"],
        ("2000-01-01", "2000-01-20"),
        "2000-01-09",
        ratio=RATIO,
    )
    params = {"fitfc": CLASSICAL["fitfc"]}
    plain, vip = tmp_path / "plain", tmp_path / "vip"
    run_bench([case], ["fitfc"], plain, params=params, figures=False)
    runs = {r["method"]: r for r in csv.DictReader(open(plain / "runs.csv"))}
    assert runs["fitfc"]["status"] == "skipped"
    assert "--multi-pair vip" in runs["fitfc"]["reason"]
    calls: list[str] = []
    real_run_one = bench_mod.run_one

    def counting(case: Case, method: str, *a: Any) -> Any:
        calls.append(method)
        return real_run_one(case, method, *a)

    monkeypatch.setattr(bench_mod, "run_one", counting)
    run_bench([case], ["fitfc"], vip, params=params, figures=False, multi_pair="vip", warmup=True)
    runs = {r["method"]: r for r in csv.DictReader(open(vip / "runs.csv"))}
    assert runs["fitfc+vip"]["status"] == "ok"
    assert "| fitfc+vip |" in (vip / "summary.md").read_text()
    record = json.loads((vip / "run.json").read_text())
    assert record["multi_pair"] == "vip" and record["warmup"] is True
    assert sorted(calls) == sorted(["nochange", "additive", "fitfc"] * 2)  # warm-up + timed


# ---------------------------------------------------------------------- stfusion series


def _kranj_series(out: Path, method: str, multi_pair: str, params: list[str]) -> Any:
    d = need(KRANJ)
    fine = [str(d / "landsat" / "filled" / f"2020{doy}_*.tif") for doy in ("068", "093", "100")]
    return run_series(
        out,
        fine=fine,
        coarse=[str(d / "modis" / "filled")],
        fine_scale=1e-4,
        date_range="2020-03-17",
        method=method,
        params=[*params, "ratio=16"],
        multi_pair=multi_pair,
    )


@pytest.mark.realdata(KRANJ)
def test_series_vip_is_one_vipstf_prediction_from_the_bracketing_pairs(tmp_path: Path) -> None:
    params = CLASSICAL["fitfc"]
    out = tmp_path / "vip"
    res = _kranj_series(out, "fitfc", "vip", params)
    assert res.counts()["predicted"] == 1
    k = need(KRANJ)
    lf, mf = k / "landsat" / "filled", k / "modis" / "filled"
    pairs = [
        (str(next(lf.glob(f"2020{doy}_*"))), str(mf / f"2020{doy}_18-04_kranj.tif"))
        for doy in ("068", "093")
    ]
    est = VIPSTF(base="fitfc", base_params=get_method("fitfc").parse_params(params))
    est.fit(pairs, fine_scaling=Scaling(1e-4), ratio=16)
    want = est.predict(str(mf / "2020077_18-04_kranj.tif")).values
    with rasterio.open(out / "fused_2020-03-17.tif") as ds:
        np.testing.assert_allclose(ds.read(), want, rtol=0, atol=1e-6)
        tags = ds.tags()
    assert "VIPSTF prediction over fitfc" in tags["STFUSION_SERIES_BLEND"]
    assert json.loads(tags["STFUSION_SERIES_PAIRS"]) == ["2020-03-08", "2020-04-02"]
    assert json.loads(tags["STFUSION_SERIES_SETTINGS"])["multi_pair"] == "vip"
    # the choice is part of the resume key: the other one refuses to replace these outputs
    with pytest.raises(OutputExistsError, match="other settings"):
        _kranj_series(out, "fitfc", "none", params)
    res = _kranj_series(tmp_path / "none", "fitfc", "none", params)
    with rasterio.open(tmp_path / "none" / "fused_2020-03-17.tif") as ds:
        assert "temporal weights" in ds.tags()["STFUSION_SERIES_BLEND"]
        assert not np.array_equal(ds.read(), want)


@pytest.mark.realdata(KRANJ)
def test_series_multi_pair_is_moot_for_several_pair_methods(tmp_path: Path) -> None:
    """STARFM takes both pairs itself: vip changes neither the output nor its key."""
    out = tmp_path / "s"
    _kranj_series(out, "starfm", "none", ["window=11"])
    res = _kranj_series(out, "starfm", "vip", ["window=11"])  # kept, not refused
    assert "kept from an earlier run" in res.records[-1].reason
