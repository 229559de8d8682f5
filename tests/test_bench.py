"""stfusion bench: cases, skipping, tidy CSV that matches an independent computation, report."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

import stfusion
from conftest import bench_args, run_cli, write_tif
from stfusion.bench import applicable, check_bench_out, parse_bench_params, run_bench
from stfusion.cases import Case, load_cases_file, named_cases
from stfusion.cli import main
from stfusion.errors import (
    InputFileError,
    InvalidParameterError,
    OutputExistsError,
    STFusionWarning,
)
from stfusion.io import FileSource
from stfusion.methods.params import MethodTags


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
    bad.write_text('[cases.x]\npairs = [["a.tif"]]\ntarget = "t.tif"\ntruth = "u.tif"\n')
    with pytest.raises(InvalidParameterError, match=r"pairs must be a list of \[fine, coarse\]"):
        load_cases_file(bad)
    # a misspelt file in a user's case: the cases file and its key (it said to point
    # --data-dir at the benchmark data, which plays no part in a user's case)
    typo = user_case.read_text().replace('truth = "', 'truth = "typo_')
    bad.write_text(typo)
    with pytest.raises(
        InputFileError,
        match=r"bad\.toml: case 'tiny': the file of truth, .*typo_.* relative to the file's own",
    ):
        load_cases_file(bad)["tiny"].check_files()


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('ratio = "sixteen"', r"ratio = 'sixteen' must be a number at least 1"),
        ("ratio = 0", "ratio = 0 must be"),
        ("ratio = 0.0625", "at least 1"),
        ("fine_scale = -1", "fine_scale = -1 must be a number greater than 0"),
        ('pair_dates = ["2001-10-17", "x"]', "2 pair_dates for 1 pair"),
        ('pair_dates = ["x"]', "'x' is not a date"),
        ('target_date = "soon"', "target_date 'soon' is not a date"),
        ("bands = [1, 2]", "bands must be a list of names"),
        ("ratoi = 16", r"unknown key\(s\) ratoi"),
        ("data_range = -1", "data_range = -1 must be a number greater than 0"),
    ],
)
def test_cases_file_values_are_checked(user_case: Path, line: str, match: str) -> None:
    """Every value of a case is checked when the file is read, before any method runs."""
    text = user_case.read_text()
    key = line.split(" =")[0]
    kept = [ln for ln in text.splitlines() if not ln.startswith(f"{key} =")]
    bad = user_case.parent / "bad.toml"
    bad.write_text("\n".join([*kept, line]) + "\n")
    with pytest.raises(InvalidParameterError, match=match):
        load_cases_file(bad)


def test_case_dates_from_names_and_truth_checked(
    small_tifs: dict[str, Path], user_case: Path, tmp_path: Path
) -> None:
    """Without target_date the target's file name gives it (as predict reads it), so a deep
    model trained on that date is still recognised; a truth that cannot match the fine grid is
    refused before any work."""
    folder = user_case.parent
    named = folder / "M_2001-11-02.tif"
    shutil.copy(small_tifs["c2"], named)
    text = user_case.read_text().replace('target_date = "2001-11-02"\n', "")
    text = text.replace(f'target = "{small_tifs["c2"].name}"', f'target = "{named.name}"')
    case_file = folder / "dated.toml"
    case_file.write_text(text)
    case = load_cases_file(case_file)["tiny"]
    assert case.target_date == "2001-11-02"
    assert applicable(
        type("Deep", (), {"tags": MethodTags(), "training_dates": ("2001-11-02",)}),  # type: ignore[arg-type]
        case,
    ).startswith("trained on the target date")
    undated = folder / "undated.toml"
    undated.write_text(user_case.read_text().replace('target_date = "2001-11-02"\n', ""))
    with pytest.warns(UserWarning, match="no target_date"):
        assert load_cases_file(undated)["tiny"].target_date == ""
    f = FileSource(str(small_tifs["f2"]))
    three = write_tif(folder / "truth3.tif", np.concatenate([f.read(), f.read()[:1]]))
    wrong = dataclasses.replace(case, truth=str(three))
    with pytest.raises(Exception, match=r"truth .*truth3\.tif \(3 x"):
        wrong.check_files()
    with pytest.raises(InvalidParameterError, match="3 band names for 2 bands"):
        dataclasses.replace(case, bands=("a", "b", "c")).check_files()


def test_applicable_and_param_parsing() -> None:
    class TwoPairs:
        tags = MethodTags(min_pairs=2, max_pairs=2)

    case = named_cases()["sample-cia-1pair"]
    assert "needs exactly 2 pairs, the case has 1" in applicable(TwoPairs, case)

    class Trained:
        tags = MethodTags(min_pairs=1, max_pairs=None)
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
    assert all(float(r["seconds"]) >= 0 and float(r["peak_rss_increase_mb"]) >= 0 for r in runs)
    record = json.loads((out / "run.json").read_text())
    assert record["machine"]["cores"] >= 1 and record["cases"]["tiny"]["ratio"] == 10
    assert next(r for r in record["runs"] if r["method"] == "starfm")["params"]["window"] == 7
    summary = (out / "summary.md").read_text()
    assert "| starfm |" in summary and "nochange (baseline)" in summary and "**" in summary
    assert result["summary"] == summary
    # The same table for a paper: booktabs, one row per run, the best RMSE in bold, the
    # numbers of summary.md.
    tex = (out / "summary.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 1 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\label{tab:stfusion-tiny}" in tex and "nochange (baseline)" in tex
    # what made the numbers, the same for two runs of one command on one code (no date)
    made = f"made by stfusion {stfusion.__version__} (code "
    assert f"% {made}" in tex and f"<!-- {made}" in summary and made in record["made_by"]
    plain = tex.replace(r"\{", "").replace(r"\}", "")
    depth = 0
    for ch in plain:  # LaTeX stopped at "Too many }'s": each caption closed one more
        depth += (ch == "{") - (ch == "}")
        assert depth >= 0
    assert depth == 0
    rmse = {
        r["method"]: float(r["value"])
        for r in rows
        if r["metric"] == "rmse" and r["band"] == "mean"
    }
    best = min(rmse, key=rmse.get)  # type: ignore[arg-type]
    line = next(ln for ln in tex.splitlines() if ln.startswith(best.replace("_", r"\_") + " "))
    assert rf"\textbf{{{rmse[best]:.5f}}}" in line
    assert len([ln for ln in tex.splitlines() if ln.endswith(r" \\")]) == 1 + 3  # header + runs
    assert "summary.tex" in json.loads((out / ".stfusion-bench.json").read_text())["files"]
    with pytest.raises(OutputExistsError):
        run_bench([case], ["starfm"], out)


def test_bench_skips_with_reason(tmp_path: Path) -> None:
    d = tmp_path
    img = np.full((1, 20, 20), 0.2, np.float32)
    tr = Affine(30.0, 0, 500000.0, 0, -30.0, 6100000.0)
    paths = [
        str(write_tif(d / f"{n}.tif", img + i * 0.01, transform=tr)) for i, n in enumerate("abcd")
    ]
    case = Case("one", ((paths[0], paths[1]),), paths[2], paths[3], ("2000-01-01",), "2000-01-05")
    out = tmp_path / "b"
    run_bench([case], ["starfm"], out, params={"starfm": ["window=99"]}, figures=False)
    runs = {r["method"]: r for r in csv.DictReader(open(out / "runs.csv"))}
    assert runs["starfm"]["status"] == "skipped" and "window" in runs["starfm"]["reason"]
    assert "starfm: skipped" in (out / "summary.md").read_text()


def test_the_ensemble_s_members_that_ran_are_said(tmp_path: Path) -> None:
    """A trial: on a two-pair case the ensemble left out Fit-FC and FSDAF (one-pair members)
    while run.json listed them among its members and the summary said nothing; the runs file
    and the notes under the table now name the members that ran and those that could not."""
    case = named_cases()["sample-cia-2pair"]
    out = tmp_path / "b"
    params = {"ensemble": ["members=fitfc,fsdaf,starfm,additive"]}
    run_bench([case], ["ensemble"], out, params=params, figures=False)
    runs = {r["method"]: r for r in csv.DictReader(open(out / "runs.csv"))}
    assert runs["ensemble"]["status"] == "ok"
    said = "ensemble members run: starfm, additive"
    assert (
        said in runs["ensemble"]["reason"]
        and "fitfc, fsdaf cannot run on 2 pairs" in (runs["ensemble"]["reason"])
    )
    assert f"ensemble: {said}" in (out / "summary.md").read_text()


def test_bench_cli(user_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    mine = ("--cases-file", str(user_case), "--param", "starfm.window=5", "--no-figures")
    try:
        main(bench_args("tiny", out, *mine, methods="starfm"))
    except SystemExit as exc:
        assert exc.code in (0, None)
    shown = capsys.readouterr()
    assert "| starfm |" in shown.out
    assert "bench: tiny: starfm (" in shown.err  # stderr not a terminal: a line per run
    assert not (out / "figures").exists() and not (out / "predictions").exists()
    # --save-predictions: georeferenced GeoTIFFs that score as the table says
    kept = tmp_path / "kept"
    try:
        main(bench_args("tiny", kept, *mine, "--save-predictions", methods="starfm"))
    except SystemExit as exc:
        assert exc.code in (0, None)
    capsys.readouterr()
    case = load_cases_file(user_case)["tiny"]
    rows = list(csv.DictReader(open(kept / "metrics.csv")))
    for method in ("nochange", "additive", "starfm"):
        tif = kept / "predictions" / "tiny" / f"{method}.tif"
        assert FileSource(str(tif)).grid.same_as(FileSource(case.truth).grid)
        with rasterio.open(tif) as ds:  # what made it, as predict's outputs say (a trial)
            assert ds.tags()["STFUSION_VERSION"] == stfusion.__version__
            assert len(ds.tags()["STFUSION_CODE"]) == 16
        code, out_text, err = run_cli(["evaluate", str(tif), case.truth, "--json"], capsys)
        assert code == 0, err
        scored = json.loads(out_text)
        want = next(
            float(r["value"])
            for r in rows
            if (r["method"], r["band"], r["metric"]) == (method, "mean", "rmse")
        )
        assert scored["rmse"]["mean"] == pytest.approx(want, rel=1e-6)
    summary = (kept / "summary.md").read_text()
    assert "sam (rad)" in summary and "psnr (dB)" in summary
    assert "truth valid fraction 1.000" in summary
    assert (
        "predictions/tiny/starfm.tif"
        in json.loads((kept / ".stfusion-bench.json").read_text())["files"]
    )
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--cases", "nope", "--out", str(tmp_path / "c")])
    assert exc.value.code == 1 and "unknown case" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--cases", "sample-cia-1pai", "--out", str(tmp_path / "c")])
    assert "(did you mean sample-cia-1pair?)" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(user_case: Path, tmp_path: Path) -> None:
    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    run_bench([case], ["starfm"], out, params={"starfm": ["window=5"]})
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            (out / "index.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] == 1600 and img.std() > 0.05  # a page with content, not blank


# ------------------------------------------------ --overwrite never deletes what it did not write


def test_case_data_range_reaches_the_metrics(
    user_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NDVI or temperature cases score SSIM and PSNR with their own range (data_range in the
    case file), not reflectance's 1."""
    import stfusion.bench as bench_mod

    case_file = user_case.parent / "ndvi.toml"
    case_file.write_text(user_case.read_text() + 'data_range = "truth"\n')
    case = load_cases_file(case_file)["tiny"]
    assert case.data_range == "truth" and load_cases_file(user_case)["tiny"].data_range == 1.0
    seen: list[object] = []
    real = bench_mod.evaluate

    def spy(*a: object, **kw: object) -> object:
        seen.append(kw.get("data_range"))
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(bench_mod, "evaluate", spy)
    run_bench([case], [], tmp_path / "b", figures=False)
    assert seen and set(seen) == {"truth"}


def test_index_case_defaults_to_the_truth_range_and_runs_starfm(user_case: Path) -> None:
    """A user case whose bands name indices and which gives no data_range scores SSIM and PSNR
    with the truth's range, as `stfusion evaluate --data-range auto` does on the same files
    (the bench used 1); its names, no band roles, are not passed to STARFM as `bands=` (it
    was skipped for a --param the user never gave)."""
    case_file = user_case.parent / "index.toml"
    case_file.write_text(user_case.read_text().replace('["red", "nir"]', '["NDVI", "EVI"]'))
    case = load_cases_file(case_file)["tiny"]
    assert case.data_range == "truth"
    result = run_bench([case], ["starfm"], user_case.parent / "b", figures=False)
    run = next(r for r in result["runs"] if r.method == "starfm")
    assert run.status == "ok", run.reason
    assert run.params.get("bands", "auto") == "auto", run.params


def test_ergas_takes_the_ratio_of_coarse_images_on_their_own_grid(tmp_path: Path) -> None:
    """A case with 500 m coarse images and no ratio: the grids give R = 10, as predict
    records and evaluate uses (bench left ERGAS empty)."""
    import dataclasses

    import rasterio
    from affine import Affine

    case = named_cases()["sample-cia-1pair"]
    native = []
    for path in (case.pairs[0][1], case.target):
        src = FileSource(path)
        data = src.read()
        h, w = data.shape[1] // 10, data.shape[2] // 10
        blocks = data[:, : h * 10, : w * 10].reshape(data.shape[0], h, 10, w, 10).mean(axis=(2, 4))
        t = src.grid.transform
        out = tmp_path / Path(path).name
        profile = {"driver": "GTiff", "width": w, "height": h, "count": data.shape[0]}
        profile |= {"dtype": "float32", "crs": src.grid.crs, "transform": t * Affine.scale(10)}
        with rasterio.open(out, "w", **profile) as ds:
            ds.write(blocks.astype(np.float32))
        native.append(str(out))
    own = dataclasses.replace(
        case,
        name="own-grid",
        pairs=((case.pairs[0][0], native[0]),),
        target=native[1],
        ratio=None,
        coarse_scale=None,
    )
    run_bench([own], ["additive"], tmp_path / "b", figures=False)
    rows = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    ergas = [float(r["value"]) for r in rows if r["metric"] == "ergas" and r["band"] == "mean"]
    assert ergas and all(np.isfinite(ergas))
    assert "R = 10;" in (tmp_path / "b" / "summary.md").read_text()
    # a ratio the grids contradict is said, not silently used for ERGAS alone
    wrong = dataclasses.replace(own, ratio=16.0)
    with pytest.warns(STFusionWarning, match=r"ratio = 16 is given, but its coarse grid's ground"):
        run_bench([wrong], ["additive"], tmp_path / "c", figures=False)


def test_bench_out_in_a_read_only_folder_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only parent failed at the end with "[Errno 30] Read-only file system:
    '.b.<pid>-<hex>.partial'" (a hidden name). (Root ignores permissions, so the file
    system's answer is simulated.)"""

    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*a: Any, dir: Path, **kw: Any) -> str:
        if Path(dir) == ro:
            raise OSError(30, "Read-only file system")
        return real_mkdtemp(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(InputFileError, match=r"ro/b: cannot write in .*ro \(read-only.*Read-only"):
        check_bench_out(ro / "b")
    check_bench_out(tmp_path / "elsewhere" / "b")


def test_an_unreadable_case_input_fails_before_any_run(
    user_case: Path, small_tifs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user trial: a case whose target was a zero-byte file ran every method as "skipped",
    printed "wrote OUT/" and exited 0; its truth was checked first. Every input is."""
    from conftest import run_cli

    (tmp_path / "zero.tif").write_bytes(b"")
    user_case.write_text(user_case.read_text().replace(small_tifs["c2"].name, "zero.tif"))
    out = tmp_path / "b"
    code, _, err = run_cli([*bench_args("tiny", out, "--cases-file", str(user_case))], capsys)
    assert code == 1 and "case tiny: " in err and "zero.tif" in err, err
    assert not out.exists()


def test_vipstf_bases_get_the_case_band_roles(user_case: Path) -> None:
    """VIPSTF-SW ranks similar pixels by red and NIR: its base gets the case's band names as
    STARFM and Fit-FC get them (ENVI cases name no bands), unless the user gave some."""
    from stfusion.bench import _with_case_bands, effective_params
    from stfusion.methods import make_estimator
    from stfusion.methods.vipstf import VIPSTF

    case = load_cases_file(user_case)["tiny"]
    assert _with_case_bands(VIPSTF, case, ["base=sw"]) == ["base=sw", "base.bands=red,nir"]
    assert _with_case_bands(VIPSTF, case, ["base=sw", "base.bands=nir,red"])[-1].endswith("red")
    assert _with_case_bands(VIPSTF, case, []) == []  # FSDAF, the default base, takes none
    est = make_estimator("vipstf", ["base=sw"], pairs=2)
    assert effective_params(est)["base_params"]["window"] == 65  # sw is VIPSTF's own base


@pytest.mark.parametrize("scaled", [("f1", "f2"), ("f1", "c1", "c2", "f2")])
def test_a_case_in_the_wrong_units_fails_before_any_run(
    user_case: Path,
    small_tifs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scaled: tuple[str, ...],
) -> None:
    """User trials: a case whose Landsat was x 10000 and MODIS 0-1 ran every method as
    "skipped" and exited 0 with an empty table; one with both x 10000 and no scales was scored
    in digital numbers (RMSE 116, PSNR -40 dB, in bold). Both are refused up front, naming the
    case's keys to set."""
    for key in scaled:
        arr = FileSource(str(small_tifs[key])).read() * 10000
        transform = FileSource(str(small_tifs[key])).grid.transform
        write_tif(small_tifs[key], arr, transform=transform, names=["red", "nir"])
    out = tmp_path / "b"
    code, _, err = run_cli([*bench_args("tiny", out, "--cases-file", str(user_case))], capsys)
    assert code == 1 and "case tiny: " in err, err
    assert "fine_scale" in err and "[cases.tiny]" in err, err
    if len(scaled) == 4:
        assert 'data_range = "truth"' in err
    assert not out.exists()
    # With the scales set it runs.
    user_case.write_text(
        user_case.read_text()
        + "fine_scale = 0.0001\n"
        + ("coarse_scale = 0.0001\n" if len(scaled) == 4 else "")
    )
    code, _, err = run_cli([*bench_args("tiny", out, "--cases-file", str(user_case))], capsys)
    assert code == 0, err


def test_a_case_reads_its_images_with_the_offsets_it_gives(
    user_case: Path, small_tifs: dict[str, Path]
) -> None:
    """A cases file had no fine_offset: Landsat surface temperature (x 0.00341802 + 149) and
    Collection 2 reflectance (-0.2) could not be read in their units (an LST trial's Fit-FC
    was scored at RMSE 44.7 K, exit 0)."""
    from stfusion.bench import _truth
    from stfusion.methods import make_estimator

    text = user_case.read_text()
    user_case.write_text(text + "fine_offset = 0.5\ncoarse_offset = 0.25\n")
    case = load_cases_file(user_case)["tiny"]
    assert case.fine_scaling.offset == 0.5 and case.coarse_scaling.offset == 0.25
    f1, f2 = (FileSource(str(small_tifs[k])).read() for k in ("f1", "f2"))
    np.testing.assert_allclose(_truth(case)[0], f2 + 0.5, atol=1e-6)
    np.testing.assert_allclose(case.predict_with(make_estimator("nochange")), f1 + 0.5, atol=1e-6)
    user_case.write_text(text + 'fine_offset = "x"\n')
    with pytest.raises(InvalidParameterError, match="fine_offset = 'x' must be a number"):
        load_cases_file(user_case)


def test_a_truth_that_is_a_pair_s_fine_image_is_said(user_case: Path, tmp_path: Path) -> None:
    """A user trial: a case whose truth was its pair's own fine image ran without a word
    (nochange RMSE 0, PSNR 'inf', all bold); and the LaTeX table printed 'inf'."""
    case = load_cases_file(user_case)["tiny"]
    own = dataclasses.replace(case, truth=case.pairs[0][0])
    with pytest.warns(STFusionWarning, match="is the fine image of one of its pairs"):
        run_bench([own], [], tmp_path / "o", figures=False)
    tex = (tmp_path / "o" / "summary.tex").read_text()
    assert r"$\infty$" in tex and " inf " not in tex
