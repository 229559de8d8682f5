"""stfusion bench: cases, skipping, tidy CSV that matches an independent computation, report."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from conftest import CIA, REPO, SHARED_DATA, need, run_cli, write_tif
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


def _bench(cases: str, out: Path | str, *extra: str, methods: str = "nochange") -> list[str]:
    """``bench --cases CASES --methods METHODS --out OUT EXTRA`` (``main``'s or ``_cli``'s)."""
    return ["bench", "--cases", cases, "--methods", methods, "--out", str(out), *extra]


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


def test_bench_cli(user_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    mine = ("--cases-file", str(user_case), "--param", "starfm.window=5", "--no-figures")
    try:
        main(_bench("tiny", out, *mine, methods="starfm"))
    except SystemExit as exc:
        assert exc.code in (0, None)
    shown = capsys.readouterr()
    assert "| starfm |" in shown.out
    assert "bench: tiny: starfm (" in shown.err  # stderr not a terminal: a line per run
    assert not (out / "figures").exists() and not (out / "predictions").exists()
    # --save-predictions: georeferenced GeoTIFFs that score as the table says
    kept = tmp_path / "kept"
    try:
        main(_bench("tiny", kept, *mine, "--save-predictions", methods="starfm"))
    except SystemExit as exc:
        assert exc.code in (0, None)
    capsys.readouterr()
    case = load_cases_file(user_case)["tiny"]
    rows = list(csv.DictReader(open(kept / "metrics.csv")))
    for method in ("nochange", "additive", "starfm"):
        tif = kept / "predictions" / "tiny" / f"{method}.tif"
        assert FileSource(str(tif)).grid.same_as(FileSource(case.truth).grid)
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


def _cli(args: list[str], cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    """``stfusion ARGS`` as a real process (exit codes, cwd and umask are the process's own)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    return subprocess.run(
        [sys.executable, "-m", "stfusion.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def _tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (relative path -> content, or '<dir>')."""
    return {
        str(p.relative_to(root)): "<dir>" if p.is_dir() else p.read_text(errors="replace")
        for p in sorted(root.rglob("*"))
    }


def test_bad_params_and_repeats(user_case: Path, tmp_path: Path) -> None:
    """A misspelt parameter or a bad value stops the bench before any work (exit 1, nothing
    written), not a "skipped" row with exit 0; a case or method named twice runs once."""
    mine = ("--cases-file", str(user_case), "--no-figures")
    for bad, said in (("starfm.nosuch=3", "no such parameter"), ("starfm.window=abc", "window")):
        p = _cli(
            _bench("tiny", tmp_path / "o", *mine, "--param", bad, methods="starfm"), cwd=tmp_path
        )
        assert p.returncode == 1 and said in p.stderr and "starfm" in p.stderr, p.stderr
        assert not (tmp_path / "o").exists()
    p = _cli(_bench("tiny,tiny", tmp_path / "o", *mine, methods="starfm,starfm"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(open(tmp_path / "o" / "runs.csv")))
    assert sorted(r["method"] for r in rows) == ["additive", "nochange", "starfm"]
    assert "figures/" not in p.stdout and "wrote " in p.stdout


def test_overwrite_refuses_cwd_and_deletes_nothing(tmp_path: Path) -> None:
    # The reproduction: bench --out . --overwrite deleted notes.txt and keep/.
    need(CIA)
    d = tmp_path / "d"
    (d / "keep").mkdir(parents=True)
    (d / "keep" / "f").write_text("x\n")
    (d / "notes.txt").write_text("y\n")
    before = _tree(tmp_path)
    p = _cli(
        _bench("cia-1pair", ".", "--data-dir", str(SHARED_DATA), "--no-figures", "--overwrite"),
        cwd=d,
    )
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error:") and "Traceback" not in err
    assert "current folder" in err
    assert _tree(tmp_path) == before  # nothing deleted, nothing left behind


def test_overwrite_refuses_folder_with_foreign_files(tmp_path: Path, user_case: Path) -> None:
    out = tmp_path / "somedir"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work\n")
    before = _tree(tmp_path)
    mine = ("--cases-file", str(user_case), "--no-figures")
    p = _cli(_bench("tiny", out, *mine, "--overwrite"), cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and "thesis.tex" in err and "did not write" in err
    assert _tree(tmp_path) == before
    # Without --overwrite the message says the same (passing --overwrite would not help).
    p = _cli(_bench("tiny", out, *mine), cwd=tmp_path)
    assert p.returncode == 1 and "thesis.tex" in p.stderr and "did not write" in p.stderr
    assert _tree(tmp_path) == before


def test_overwrite_replaces_own_previous_output(user_case: Path, tmp_path: Path) -> None:
    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    run_bench([case], ["starfm"], out, params={"starfm": ["window=5"]})
    manifest = json.loads((out / ".stfusion-bench.json").read_text())
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == written - {".stfusion-bench.json"}
    assert "figures/tiny_quicklook.png" in manifest["files"] and manifest["stfusion_version"]
    # Its own previous output is replaced, as a whole (figures/ gone with --no-figures).
    replaced = run_bench([case], [], out, overwrite=True, figures=False)
    assert not (out / "figures").exists()
    methods = {r["method"] for r in csv.DictReader(open(out / "runs.csv"))}
    assert methods == {"nochange", "additive"}
    # what the earlier output held that the new one does not: said (the CLI prints it)
    assert replaced["dropped"] == {"cases": [], "methods": ["starfm"]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bench.")]  # no temp left
    # A file of the output changed since bench wrote it: not stfusion's any more, refused.
    (out / "summary.md").write_text("my edits\n")
    with pytest.raises(OutputExistsError, match=r"summary\.md"):
        run_bench([case], [], out, overwrite=True, figures=False)
    assert (out / "summary.md").read_text() == "my edits\n"
    # An empty folder, or one that does not exist, is fine.
    (tmp_path / "empty").mkdir()
    run_bench([case], [], tmp_path / "empty", figures=False)
    run_bench([case], [], tmp_path / "new" / "deeper", figures=False)
    assert (tmp_path / "new" / "deeper" / "runs.csv").exists()


def test_manifest_naming_paths_outside_is_foreign(user_case: Path, tmp_path: Path) -> None:
    """A hand-edited (or received) manifest listing ``../x`` or ``/x`` deletes nothing there."""
    import hashlib

    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    run_bench([case], [], out, figures=False)
    victims = [tmp_path / "victim.txt", tmp_path / "elsewhere" / "victim.txt"]
    victims[1].parent.mkdir()
    record = json.loads((out / ".stfusion-bench.json").read_text())
    for victim, rel in zip(victims, ["../victim.txt", str(victims[1])]):
        victim.write_text("precious\n")
        record["files"][rel] = {
            "bytes": 9,
            "sha256": hashlib.sha256(b"precious\n").hexdigest(),
        }
    record["dirs"].append("../elsewhere")
    (out / ".stfusion-bench.json").write_text(json.dumps(record))
    with pytest.raises(OutputExistsError, match="did not write"):
        run_bench([case], [], out, overwrite=True, figures=False)
    assert all(v.read_text() == "precious\n" for v in victims)
    assert (out / "runs.csv").exists()


def test_overwrite_refuses_home_root_inputs_and_cwd(
    user_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = load_cases_file(user_case)["tiny"]
    home = tmp_path / "home"
    home.mkdir()
    before = _tree(tmp_path)
    with pytest.raises(OutputExistsError, match=r"input.*f1\.tif"):  # the folder of the inputs
        run_bench([case], [], tmp_path, overwrite=True, figures=False)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(OutputExistsError, match="home folder"):
        run_bench([case], [], home, overwrite=True, figures=False)
    # Checked without run_bench: a regression must not get anywhere near replacing "/".
    with pytest.raises(OutputExistsError, match="is the root folder"):
        check_bench_out("/", [case], overwrite=True)
    with pytest.raises(OutputExistsError, match="is above the home folder"):
        check_bench_out(tmp_path, [], overwrite=True)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    for out in (".", sub, tmp_path / "a"):
        with pytest.raises(OutputExistsError, match="current folder"):
            run_bench([case], [], out, overwrite=True, figures=False)
    assert {k: v for k, v in _tree(tmp_path).items() if not k.startswith("a")} == before
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "a")
    with pytest.raises(OutputExistsError, match="symbolic link"):
        run_bench([case], [], link, overwrite=True, figures=False)


# ----------------------------------------------------------- case names are safe file names


@pytest.mark.parametrize(
    "name",
    [
        "../../pwned",
        "/tmp/stfusion-pwned",
        "a/b",
        "..",
        ".hidden",
        "a..b",
        "-x",
        "x" * 65,
        "caf\u00e9",
        "a b",
        "",
    ],
)
def test_unsafe_case_names_refused(user_case: Path, name: str) -> None:
    bad = user_case.parent / "bad.toml"
    bad.write_text(user_case.read_text().replace("[cases.tiny]", f"[cases.{json.dumps(name)}]"))
    with pytest.raises(InvalidParameterError) as exc:
        load_cases_file(bad)
    msg = str(exc.value)
    assert str(bad) in msg and repr(name) in msg and "A-Za-z0-9" in msg
    ok = user_case.parent / "ok.toml"
    ok.write_text(user_case.read_text().replace("[cases.tiny]", '[cases."my-farm_2021.v2"]'))
    assert list(load_cases_file(ok)) == ["my-farm_2021.v2"]


def test_bad_case_name_refused_before_any_work(user_case: Path, tmp_path: Path) -> None:
    # Reported: "../../pwned" and an absolute name wrote PNGs outside --out (rc 0).
    work = tmp_path / "w" / "x"
    work.mkdir(parents=True)
    absname = str(tmp_path / "abs-pwned")
    bad = tmp_path / "bad.toml"
    spec = user_case.read_text().split("\n", 1)[1]
    bad.write_text(f'[cases."../../pwned"]\n{spec}\n[cases.{json.dumps(absname)}]\n{spec}')
    before = _tree(tmp_path)
    p = _cli(["bench", "--cases-file", str(bad), "--methods", "nochange", "--out", "res"], cwd=work)
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "../../pwned" in err and str(bad) in err
    assert _tree(tmp_path) == before  # nothing written, inside --out or outside it
    # A Case built in Python is checked by run_bench too, before any computation.
    evil = dataclasses.replace(load_cases_file(user_case)["tiny"], name="../up")
    with pytest.raises(InvalidParameterError, match=r"'\.\./up'"):
        run_bench([evil], [], tmp_path / "out")
    assert _tree(tmp_path) == before


# ------------------------------------------------------------------------------ modes


def test_bench_output_modes_respect_umask(user_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    p = _cli(_bench("tiny", out, "--cases-file", str(user_case)), cwd=tmp_path, umask=0o022)
    assert p.returncode == 0, p.stderr
    assert (out / "figures" / "tiny_quicklook.png").exists()
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


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
    from stfusion.bench import check_bench_out

    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ro else real_access(p, m))
    with pytest.raises(InputFileError, match=r"ro/b: cannot write in .*ro \(read-only"):
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
    code, _, err = run_cli([*_bench("tiny", out, "--cases-file", str(user_case))], capsys)
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
