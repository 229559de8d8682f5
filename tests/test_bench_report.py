"""stfusion bench's report: what is bold, what the columns say, the run record, the figures,
and the selections the command refuses (the user trial of `stfusion bench`)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import KRANJ, REPO, need
from stfusion.bench import Run, _PeakRSS, run_bench
from stfusion.bench_report import (
    FigureStyle,
    case_figures,
    git_commit,
    html_page,
    summary_latex,
    summary_markdown,
)
from stfusion.cases import NAMED_CASE_NAMES, Case, load_cases_file, named_cases
from stfusion.cli import main
from stfusion.errors import InputFileError, InvalidParameterError
from stfusion.metrics import evaluate


def _case(name: str = "c") -> Case:
    return Case(name, (("f.tif", "c.tif"),), "t.tif", "u.tif", ("2001-10-17",), "2001-11-02")


def _runs(gap: bool = True) -> tuple[list[Run], np.ndarray]:
    """Two predictions of one truth: ``full`` everywhere with a larger error, ``gappy`` with
    a smaller error but half the pixels left empty (``gap``)."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.4, (2, 40, 40)).astype(np.float32)
    full = truth + rng.normal(0, 0.02, truth.shape).astype(np.float32)
    gappy = truth + rng.normal(0, 0.001, truth.shape).astype(np.float32)
    if gap:
        gappy[:, :20] = np.nan
    runs = []
    for name, pred in (("full", full), ("gappy", gappy)):
        run = Run("c", name, seconds=1.0, prediction=pred)
        run.report = evaluate(pred, truth, band_names=["red", "nir"])
        runs.append(run)
    return runs, truth


def _row(text: str, method: str) -> str:
    return next(ln for ln in text.splitlines() if ln.lstrip("| ").startswith(method + " "))


RECORD = {
    "stfusion_version": "x",
    "created": "now",
    "machine": {"cpu": "cpu", "cores": 2},
    "total_seconds": 1.0,
}


def test_best_only_among_rows_with_the_best_coverage() -> None:
    """The trial: a method that leaves pixels empty got the bold RMSE, scored on fewer pixels
    (docs/metrics.md: lower coverage has not earned its lower RMSE)."""
    runs, _ = _runs()
    md = summary_markdown(runs, [_case()])
    assert "**" in _row(md, "full") and "**" not in _row(md, "gappy")
    assert "among the rows with the highest coverage (1.000, within 0.001)" in md
    assert "gappy (0.500)" in md
    tex = summary_latex(runs, [_case()])
    assert r"\textbf" in _row(tex, "full") and r"\textbf" not in _row(tex, "gappy")
    assert "gappy (0.500)" in tex
    page = html_page(runs, [_case()], {}, RECORD)
    html_row = {m: page.split(f"<tr><td>{m}</td>")[1].split("</tr>")[0] for m in ("full", "gappy")}
    assert "class='best'" in html_row["full"] and "class='best'" not in html_row["gappy"]
    # The truth's valid fraction is the truth's, whichever run comes first (a user trial:
    # it was the first run's pixels valid in both, 0.500 with the gappy run first)
    assert "truth valid fraction 1.000;" in summary_markdown(runs[::-1], [_case()])
    # The same coverage: the smaller error is bold, and no note is needed.
    runs, _ = _runs(gap=False)
    md = summary_markdown(runs, [_case()])
    assert "**" in _row(md, "gappy") and "highest coverage" not in md


def test_best_ignores_gaps_on_real_kranj_case(tmp_path: Path) -> None:
    """The trial's case: Kranj with the unfilled Landsat image as the pair's fine image, so
    the baselines leave its gaps empty (coverage 0.938) while Fit-FC fills them."""
    k = need(KRANJ)
    toml = tmp_path / "gaps.toml"
    toml.write_text(
        "[cases.kranj-finegaps]\n"
        f'pairs = [["{k}/landsat/unfilled/2020068_191-28_kranj.tif", '
        f'"{k}/modis/filled/2020068_18-04_kranj.tif"]]\n'
        f'target = "{k}/modis/filled/2020077_18-04_kranj.tif"\n'
        f'truth = "{k}/landsat/filled/2020077_190-28.tif_filled_kranj.tif"\n'
        'pair_dates = ["2020-03-08"]\ntarget_date = "2020-03-17"\n'
        "fine_scale = 0.0001\nratio = 16\n"
    )
    case = load_cases_file(toml)["kranj-finegaps"]
    run_bench([case], ["fitfc"], tmp_path / "b", figures=False)
    md = (tmp_path / "b" / "summary.md").read_text()
    rmse = {r: _row(md, r).split("|")[2].strip() for r in ("additive", "fitfc")}
    assert rmse["fitfc"].startswith("**") and not rmse["additive"].startswith("**"), md
    assert float(rmse["additive"]) < float(rmse["fitfc"].strip("*"))  # why it matters
    assert "additive (0.938)" in md


def test_seconds_column_says_warm_or_cold(user_case: Path, tmp_path: Path) -> None:
    case = load_cases_file(user_case)["tiny"]
    run_bench([case], [], tmp_path / "cold", figures=False)
    run_bench([case], [], tmp_path / "warm", figures=False, warmup=True)
    for kind in ("cold", "warm"):
        md = (tmp_path / kind / "summary.md").read_text()
        tex = (tmp_path / kind / "summary.tex").read_text()
        page = (tmp_path / kind / "index.html").read_text()
        for text in (md, tex, page):
            assert f"fit+predict s ({kind})" in text
            # the case line: R, the data range, the truth's valid fraction (not in the HTML
            # page before, which could not then be read on its own)
            assert "R = 10$; data range 1.0; truth valid fraction 1.000;" in text.replace(
                "R = 10;", "R = 10$;"
            )
            assert "wall-clock seconds of fit + prepare + predict" in text
        rows = list(csv.DictReader(open(tmp_path / kind / "runs.csv")))
        assert {r["warm"] for r in rows} == {"yes" if kind == "warm" else "no"}
        # the notes name --warmup as an option, not with an en dash (a trial: "-warmup")
        assert "--warmup" not in tex and ("-{}-warmup" in tex or kind == "warm")
    # Cold and warm rows in one table: the cold cells say so.
    runs, _ = _runs()
    runs[1].warm = True
    md = summary_markdown(runs, [_case()])
    assert "| fit+predict s |" in md and "1.0 (cold)" in _row(md, "full")
    assert "(cold)" not in _row(md, "gappy")


def test_peak_memory_is_the_increase_during_the_run(
    user_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the process's peak so far (which depends on the run order and the imports)."""
    import psutil

    class Fake:
        calls = 0

        def memory_info(self) -> Any:
            Fake.calls += 1
            mb = 1000 if Fake.calls == 1 else 1100  # before the run, then during it
            return type("Info", (), {"rss": mb * 2**20})()

    monkeypatch.setattr(psutil, "Process", Fake)
    with _PeakRSS() as mem:
        pass
    assert mem.increase_mb == pytest.approx(100)
    monkeypatch.undo()
    run_bench([load_cases_file(user_case)["tiny"]], [], tmp_path / "b", figures=False)
    rows = list(csv.DictReader(open(tmp_path / "b" / "runs.csv")))
    assert "peak_mem_mb" not in rows[0]
    assert all(0 <= float(r["peak_rss_increase_mb"]) < 10000 for r in rows)
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert all("peak_rss_increase_mb" in r for r in record["runs"])


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    code = exc.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def test_user_case_may_not_take_a_named_case_name(
    user_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clash = tmp_path / "clash.toml"
    clash.write_text(user_case.read_text().replace("[cases.tiny]", "[cases.cia-1pair]"))
    out = tmp_path / "o"
    code, err = _main(["bench", "--cases-file", str(clash), "--out", str(out)], capsys)
    assert code == 2 and str(clash) in err and "cia-1pair" in err and "Rename" in err
    assert not out.exists()
    assert set(named_cases()) <= set(NAMED_CASE_NAMES)
    # a name that differs in case only is the same name on case-folding file systems
    clash.write_text(user_case.read_text().replace("[cases.tiny]", "[cases.CIA-1pair]"))
    code, err = _main(["bench", "--cases-file", str(clash), "--out", str(out)], capsys)
    assert code == 2 and "CIA-1pair" in err


def test_empty_or_wrong_selections_are_usage_errors(
    user_case: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "bx"
    for args in (
        ["--cases", " , ", "--methods", "additive"],
        ["--cases", "sample-cia-1pair", "--methods", " ,"],
        ["--data-dir", str(tmp_path / "nonexistent"), "--cases", "all"],
        ["--data-dir", str(user_case.parent), "--cases", "all"],  # none of the data there
    ):
        code, err = _main(["bench", *args, "--out", str(out)], capsys)
        assert code == 2, (args, err)
        assert not out.exists()
        if "--data-dir" in args:
            assert args[1] in err
    monkeypatch.setenv("STFUSION_DATA", str(tmp_path / "nowhere"))
    code, err = _main(["bench", "--cases", "all", "--out", str(out)], capsys)
    assert code == 1 and "STFUSION_DATA" in err and "nowhere" in err and not out.exists()
    monkeypatch.delenv("STFUSION_DATA")
    with pytest.raises(InputFileError, match="nonexistent"):
        named_cases(tmp_path / "nonexistent")
    with pytest.raises(InvalidParameterError, match="no case"):
        run_bench([], ["additive"], out)
    assert not out.exists()


def test_run_record_reproduces_the_table(tmp_path: Path) -> None:
    """Versions (and the git commit of a checkout), a VIPSTF row's base parameters in full."""
    from stfusion.methods.fitfc import FitFC

    case = named_cases()["sample-cia-2pair"]
    run_bench([case], ["fitfc"], tmp_path / "b", figures=False, multi_pair="vip")
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    versions = record["versions"]
    for name in ("stfusion", "numpy", "numba", "rasterio", "gdal"):
        assert versions[name], name
    # the code digest outputs carry, and the installed plugins' versions (a plugin trial)
    assert re.fullmatch(r"[0-9a-f]{16}", versions["stfusion_code"]) and "plugins" in versions
    if (REPO / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", versions["stfusion_git"]["commit"])
    vip = next(r for r in record["runs"] if r["method"] == "fitfc+vip")
    assert vip["status"] == "ok"
    # the case's band names reach a method that takes band roles (bench._with_case_bands)
    fitfc = FitFC(bands=",".join(case.bands))
    assert vip["params"]["base_params"] == json.loads(json.dumps(fitfc.get_params()))


def test_git_commit_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def broken(*a: object, **k: object) -> None:
        raise OSError("no git")

    monkeypatch.setattr(subprocess, "run", broken)
    assert git_commit() is None


def test_deep_rows_record_weights_and_pairs_the_weights_saw(tmp_path: Path) -> None:
    """sample-cia-1pair's pair (2001-10-17, CIA) is a training date of the shipped weights,
    its target is not: scored, marked, and the checkpoint recorded with its SHA-256."""
    pytest.importorskip("torch")
    from stfusion.io import file_sha256

    case = named_cases()["sample-cia-1pair"]
    run_bench([case], ["student"], tmp_path / "b", figures=False)
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    run = next(r for r in record["runs"] if r["method"] == "student")
    assert run["status"] == "ok" and record["versions"]["torch"]
    (weights,) = run["weights"]
    assert weights["sha256"] == file_sha256(weights["path"])
    assert run["weights_trained_on_pair_dates"] == "2001-10-17 (site cia)"
    md = (tmp_path / "b" / "summary.md").read_text()
    assert "| student † |" in md
    assert "† student: the weights were trained on this case's pair date(s) 2001-10-17" in md
    tex = (tmp_path / "b" / "summary.tex").read_text()
    assert "student$^\\dagger$ &" in tex and "saw the pair images" in tex
    assert "additive (baseline) &" in tex  # the baselines are not marked


def test_tex_lists_skipped_runs_and_cli_names_every_file(
    user_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b"
    mine = ["--cases-file", str(user_case), "--no-figures", "--out", str(out)]
    try:
        main(["bench", "--cases", "tiny", "--methods", "estarfm", *mine])
    except SystemExit as exc:
        assert exc.code in (0, None)
    said = capsys.readouterr().out
    assert "summary.tex" in said and "run.json" in said and "index.html" in said
    tex = (out / "summary.tex").read_text()
    assert "estarfm: skipped: needs exactly 2 pairs, the case has 1" in tex
    # a run that did not run is neither warm nor cold (a trial: "no")
    rows = {r["method"]: r for r in csv.DictReader(open(out / "runs.csv"))}
    assert rows["estarfm"]["warm"] == "" and rows["additive"]["warm"] == "no"


def test_quicklook_wraps_many_methods(tmp_path: Path) -> None:
    """17 methods made one 3978 px wide row; at most 6 panels per row now."""
    import matplotlib.image as mpimg

    runs, truth = _runs(gap=False)
    many = [
        Run("c", f"m{i}", prediction=truth * (1 + 0.01 * i), report=runs[0].report)
        for i in range(13)
    ]
    files = case_figures(_case(), many, truth, ["red", "nir"], tmp_path / "figures")
    width = mpimg.imread(tmp_path / files[0]).shape[1]
    assert width <= 6 * 2.6 * 90 + 60  # 6 panels; the tight box may widen for the colour bar


def test_figures_for_print_and_in_vector_formats(tmp_path: Path) -> None:
    """A paper author's trial: the figures were PNG at 80-90 dpi only, tick labels a few
    pixels tall. ``FigureStyle`` sets the dpi and adds PDF/SVG beside the PNGs (which the HTML
    page keeps showing)."""
    import matplotlib.image as mpimg

    runs, truth = _runs(gap=False)
    screen = case_figures(_case(), runs, truth, ["red", "nir"], tmp_path / "a")
    style = FigureStyle(dpi=270, extra=("pdf", "svg"))
    files = case_figures(_case(), runs, truth, ["red", "nir"], tmp_path / "b", style)
    stems = [Path(f).stem for f in screen]
    assert files == [f"figures/{s}.{ext}" for s in stems for ext in ("png", "pdf", "svg")]
    pdf = (tmp_path / "b" / f"{stems[0]}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    # embedded TrueType, not Type 3 fonts (refused by IEEE PDF eXpress)
    assert b"/Subtype /Type3" not in pdf and b"/Subtype /CIDFontType2" in pdf
    assert b"<svg" in (tmp_path / "b" / f"{stems[1]}.svg").read_bytes()[:2000]
    small = mpimg.imread(tmp_path / "a" / f"{stems[0]}.png").shape[1]
    large = mpimg.imread(tmp_path / "b" / f"{stems[0]}.png").shape[1]
    assert 2.5 < large / small < 3.5  # 270 dpi against 90
    with pytest.raises(InvalidParameterError, match="'pdf' and 'svg'"):
        FigureStyle(extra=("eps",))
    page = html_page(runs, [_case()], {"c": files}, RECORD)
    assert page.count("<img") == 2 and ".pdf" not in page


def test_scatter_shares_limits_and_colour_scale() -> None:
    """Per band, one range for every method (from the truth and all predictions), one colour
    scale with a colour bar, labelled axes and the 1:1 line."""
    import matplotlib.pyplot as plt

    from stfusion.plot import scatter_grid

    rng = np.random.default_rng(1)
    truth = rng.uniform(0.1, 0.3, (2, 30, 30))
    preds = [("near", truth + 0.01), ("far", truth * 1.5 + 0.1)]
    fig = scatter_grid(truth, preds, ["red", "nir"], "reflectance", "c")
    panels = np.array(fig.axes[:4]).reshape(2, 2)
    for b in range(2):
        lims = {(panels[i, b].get_xlim(), panels[i, b].get_ylim()) for i in range(2)}
        assert len(lims) == 1
        (lo, hi), _ = lims.pop()
        assert lo < truth[b].min() + 0.01 and hi > (truth[b] * 1.5 + 0.1).max() - 0.02
    norms = {(m.norm.vmin, m.norm.vmax) for ax in panels.ravel() for m in ax.collections}
    assert len(norms) == 1
    assert len(fig.axes) == 5  # the four panels and one colour bar
    assert panels[1, 0].get_xlabel() == "truth reflectance"
    assert panels[0, 0].get_ylabel() == "predicted reflectance"
    for ax in panels.ravel():
        assert any(np.allclose(ln.get_xdata(), ln.get_ydata()) for ln in ax.get_lines())
    plt.close(fig)


def test_a_skip_reason_is_cut_at_a_sentence_end_outside_brackets() -> None:
    """A packaging trial: the note under a table kept "install stfusion[dl] (pip install
    'stfusion[dl]'" (cut at the "; " inside the bracket), an unclosed bracket in the
    terminal, summary.md and index.html."""
    from stfusion.bench_report import _short_reason

    reason = (
        "the deep methods need PyTorch: install stfusion[dl] (pip install 'stfusion[dl]'; on "
        "a machine without a GPU first pip install torch). Then run again."
    )
    assert _short_reason(reason).endswith("first pip install torch)")
    assert _short_reason("needs 2 pairs, has 1; see /a/b/docs.md. More") == "needs 2 pairs, has 1"
    assert _short_reason("version 1.2 of /x/y.tif is old.") == "version 1.2 of y.tif is old"
