"""stfusion bench: cases, skipping, tidy CSV that matches an independent computation, report."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from conftest import write_tif
from stfusion.bench import applicable, parse_bench_params, run_bench
from stfusion.cases import Case, load_cases_file, named_cases
from stfusion.cli import main
from stfusion.errors import InvalidParameterError, OutputExistsError
from stfusion.io import FileSource


@pytest.fixture
def user_case(small_tifs: dict[str, Path], tmp_path: Path) -> Path:
    toml = tmp_path / "cases.toml"
    toml.write_text(
        "[cases.tiny]\n"
        f'pairs = [["{small_tifs["f1"].name}", "{small_tifs["c1"].name}"]]\n'
        'pair_dates = ["2001-10-17"]\n'
        f'target = "{small_tifs["c2"].name}"\n'
        f'truth = "{small_tifs["f2"].name}"\n'
        'target_date = "2001-11-02"\n'
        "ratio = 10\n"
        'bands = ["red", "nir"]\n'
    )
    return toml


def test_named_cases_and_user_file(user_case: Path) -> None:
    cases = named_cases()
    assert {"sample-cia-1pair", "sample-cia-2pair"} <= set(cases)
    c = cases["sample-cia-2pair"]
    assert len(c.pairs) == 2 and c.target_date == "2001-10-17" and c.ratio == 10
    c.check_files()
    user = load_cases_file(user_case)["tiny"]
    assert Path(user.pairs[0][0]).is_absolute() and user.ratio == 10
    bad = user_case.parent / "bad.toml"
    bad.write_text("[cases.x]\npairs = []\n")
    with pytest.raises(InvalidParameterError, match="lacks target, truth"):
        load_cases_file(bad)


def test_applicable_and_param_parsing() -> None:
    class TwoPairs:
        min_pairs, max_pairs = 2, 2

    case = named_cases()["sample-cia-1pair"]
    assert "at least 2 pairs" in applicable(TwoPairs, case)

    class Trained:
        min_pairs, max_pairs = 1, None
        training_dates = ("2001-11-02",)

    assert "trained on the target date" in applicable(Trained, case)
    assert parse_bench_params(["starfm.window=31"]) == {"starfm": ["window=31"]}
    with pytest.raises(InvalidParameterError, match=r"METHOD\.NAME"):
        parse_bench_params(["window=31"])


def test_bench_outputs_match_independent_metrics(user_case: Path, tmp_path: Path) -> None:
    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    result = run_bench([case], ["starfm"], out, params={"starfm": ["window=7"]})
    for name in ("metrics.csv", "runs.csv", "summary.md", "index.html", "run.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "figures" / "tiny_quicklook.png").exists()
    assert (out / "figures" / "tiny_scatter.png").exists()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    methods = {r["method"] for r in rows}
    assert methods == {"nochange", "additive", "starfm"}  # baselines always there
    # The no-change prediction is F1: recompute its RMSE, bias and CC by hand.
    f1 = FileSource(case.pairs[0][0]).read().astype(np.float64)
    f2 = FileSource(case.truth).read().astype(np.float64)
    got = {(r["band"], r["metric"]): float(r["value"]) for r in rows if r["method"] == "nochange"}
    for b, band in enumerate(["red", "nir"]):
        d = f1[b] - f2[b]
        assert got[(band, "rmse")] == pytest.approx(np.sqrt(np.mean(d**2)), rel=1e-9)
        assert got[(band, "bias")] == pytest.approx(np.mean(d), rel=1e-9, abs=1e-12)
        assert got[(band, "cc")] == pytest.approx(np.corrcoef(f1[b].ravel(), f2[b].ravel())[0, 1])
    assert got[("mean", "rmse")] == pytest.approx((got[("red", "rmse")] + got[("nir", "rmse")]) / 2)
    runs = list(csv.DictReader(open(out / "runs.csv")))
    assert all(r["status"] == "ok" for r in runs)
    assert all(float(r["seconds"]) >= 0 and float(r["peak_mem_mb"]) > 0 for r in runs)
    record = json.loads((out / "run.json").read_text())
    assert record["machine"]["cores"] >= 1 and record["cases"]["tiny"]["ratio"] == 10
    assert next(r for r in record["runs"] if r["method"] == "starfm")["params"]["window"] == 7
    summary = (out / "summary.md").read_text()
    assert "| starfm |" in summary and "nochange (baseline)" in summary and "**" in summary
    assert result["summary"] == summary
    with pytest.raises(OutputExistsError):
        run_bench([case], ["starfm"], out)


def test_bench_skips_with_reason(tmp_path: Path) -> None:
    d = tmp_path
    img = np.full((1, 20, 20), 0.2, np.float32)
    tr = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)
    paths = [str(write_tif(d / f"{n}.tif", img + i * 0.01, transform=tr))
             for i, n in enumerate("abcd")]  # fmt: skip
    case = Case("one", ((paths[0], paths[1]),), paths[2], paths[3], ("2000-01-01",), "2000-01-05")
    out = tmp_path / "b"
    run_bench([case], ["starfm"], out, params={"starfm": ["window=99x"]}, figures=False)
    runs = {r["method"]: r for r in csv.DictReader(open(out / "runs.csv"))}
    assert runs["starfm"]["status"] == "skipped" and "window" in runs["starfm"]["reason"]
    assert "starfm: skipped" in (out / "summary.md").read_text()


def test_bench_cli(user_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    try:
        main(["bench", "--cases-file", str(user_case), "--cases", "tiny", "--methods", "starfm",
              "--param", "starfm.window=5", "--no-figures", "--out", str(out)])  # fmt: skip
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert "| starfm |" in capsys.readouterr().out
    assert not (out / "figures").exists()
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--cases", "nope", "--out", str(tmp_path / "c")])
    assert exc.value.code == 1 and "unknown case" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(user_case: Path, tmp_path: Path) -> None:
    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    run_bench([case], ["starfm"], out, params={"starfm": ["window=5"]})
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
         f"--screenshot={shot}", (out / "index.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] == 1600 and img.std() > 0.05  # a page with content, not blank
