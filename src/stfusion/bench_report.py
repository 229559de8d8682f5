"""The tables, figures, HTML page and run record of ``stfusion bench`` (:mod:`stfusion.bench`).

Moved out of :mod:`stfusion.bench`, which still exports ``summary_markdown`` and
``SUMMARY_COLUMNS``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import stfusion
from stfusion.cases import Case, check_case_name
from stfusion.errors import InvalidParameterError
from stfusion.report import METRIC_COLUMNS, tidy_rows

if TYPE_CHECKING:  # Run lives in bench, which imports this module
    from stfusion.bench import Run

__all__ = [
    "BASELINES",
    "SUMMARY_COLUMNS",
    "FigureStyle",
    "case_figures",
    "dropped_runs",
    "html_page",
    "run_record",
    "summary_latex",
    "summary_markdown",
    "write_csvs",
    "write_predictions",
]

BASELINES = ("nochange", "additive")

_Column = tuple[str, str, Callable[..., float] | None]


def _summary_columns() -> tuple[_Column, ...]:
    """The metric columns, SAM in radians beside degrees (as GUIDE section 4 asks of
    reports), then the seconds."""
    out: list[_Column] = []
    for col in METRIC_COLUMNS:
        out.append(col)
        if col[0] == "sam_deg":
            out.append(("sam_rad", "{:.4f}", min))
    return (*out, ("seconds", "{:.1f}", None))


#: Summary columns: metric, format, which direction is better (None: no "best").
SUMMARY_COLUMNS = _summary_columns()


def write_csvs(runs: Sequence[Run], outdir: Path) -> None:
    """``metrics.csv`` (tidy rows) and ``runs.csv`` (one row per run) in ``outdir``."""
    with open(outdir / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "method", "band", "metric", "value"])
        for r in runs:
            if r.report is None:
                continue
            for band, metric, value in tidy_rows(r.report):
                w.writerow([r.case, r.method, band, metric, value])
    with open(outdir / "runs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "case",
                "method",
                "status",
                "reason",
                "seconds",
                "warm",
                "peak_rss_increase_mb",
                "coverage",
                "valid_fraction",
                "params",
            ]
        )
        for r in runs:
            cov = r.report.mean["coverage"] if r.report else float("nan")
            vf = r.report.mean["valid_fraction"] if r.report else float("nan")
            ps = {k: v for k, v in r.params.items() if k != "traceback"}
            w.writerow(
                [
                    r.case,
                    r.method,
                    r.status,
                    r.reason,
                    f"{r.seconds:.3f}",
                    "" if r.status != "ok" else "yes" if r.warm else "no",  # not run: none
                    f"{r.peak_rss_increase_mb:.0f}",
                    f"{cov:.4f}",
                    f"{vf:.4f}",
                    json.dumps(ps, default=str),
                ]
            )


def _cell(run: Run, metric: str) -> float:
    if metric == "seconds":
        return run.seconds
    return run.report.mean[metric] if run.report else float("nan")


#: Rows whose coverage is this much below the best one's cannot hold a column's best value.
COVERAGE_TOLERANCE = 0.001


def _eligible(runs: Sequence[Run]) -> tuple[list[Run], list[Run], float]:
    """The rows with the highest coverage (within :data:`COVERAGE_TOLERANCE`), the others,
    and that coverage. A row that leaves pixels empty is scored on fewer (often easier)
    pixels: its lower error is not earned (docs/metrics.md), so it is never "best"."""
    covs = [_cell(r, "coverage") for r in runs]
    top = max((c for c in covs if c == c), default=float("nan"))
    if top != top:
        return list(runs), [], top
    keep = [c >= top - COVERAGE_TOLERANCE for c in covs]
    return (
        [r for r, k in zip(runs, keep) if k],
        [r for r, k in zip(runs, keep) if not k],
        top,
    )


def _best(runs: Sequence[Run]) -> dict[str, float]:
    """The best value of each column that has a direction, over the rows of ``runs`` with
    the highest coverage."""
    best: dict[str, float] = {}
    for name, _, pick in SUMMARY_COLUMNS:
        vals = [_cell(r, name) for r in _eligible(runs)[0] if _cell(r, name) == _cell(r, name)]
        if pick and vals:
            best[name] = pick(vals)
    return best


def _timing(runs: Sequence[Run]) -> str:
    """``warm``, ``cold`` or ``mixed``: whether the rows' methods had run before in the
    process (``--warmup`` or an earlier case)."""
    kinds = {r.warm for r in runs}
    return "mixed" if len(kinds) > 1 else "warm" if kinds == {True} else "cold"


#: Column heads with their units.
_HEADS = {"sam_deg": "sam (deg)", "sam_rad": "sam (rad)", "psnr": "psnr (dB)"}


def _heads(runs: Sequence[Run]) -> list[str]:
    """The column heads; the seconds column says whether its times are warm or cold."""
    timing = _timing(runs)
    heads = []
    for name, _, _ in SUMMARY_COLUMNS:
        if name == "seconds":
            heads.append("fit+predict s" + ("" if timing == "mixed" else f" ({timing})"))
        else:
            heads.append(_HEADS.get(name, name))
    return heads


#: How the tables mark things, per format: bold, missing, the row of weights trained on the
#: case's pair dates.
_MD = {"bold": "**{}**", "missing": "-", "saw": " †", "inf": "inf"}
_TEX = {"bold": "\\textbf{{{}}}", "missing": "--", "saw": "$^\\dagger$", "inf": "$\\infty$"}
_HTML = {"bold": "<b>{}</b>", "missing": "-", "saw": " &dagger;", "inf": "&infin;"}


def _label(r: Run, style: dict[str, str], escape: Callable[[str], str]) -> str:
    label = escape(f"{r.method} (baseline)" if r.method in BASELINES else r.method)
    return label + (style["saw"] if r.saw_pairs else "")


def _rows(
    runs: Sequence[Run], style: dict[str, str], escape: Callable[[str], str] = str
) -> list[tuple[str, list[str]]]:
    """Per run, its label and the formatted summary cells: the best value of each column
    (among the rows with the highest coverage) in bold; in a table of warm and cold times,
    the cold ones marked."""
    best = _best(runs)
    mixed = _timing(runs) == "mixed"
    out = []
    for r in runs:
        cells = []
        for name, fmt, _ in SUMMARY_COLUMNS:
            v = _cell(r, name)
            text = style["missing"] if v != v else fmt.format(v)
            text = style["inf"] if v == float("inf") else text  # PSNR of a perfect prediction
            if name == "seconds" and mixed and not r.warm:
                text += " (cold)"
            cells.append(style["bold"].format(text) if name in best and v == best[name] else text)
        out.append((_label(r, style, escape), cells))
    return out


def _notes(rs: Sequence[Run]) -> list[tuple[bool, str]]:
    """The notes under a case's table, as ``(about rows marked with the dagger, text)``:
    why some rows cannot be best, what the seconds are, weights that saw the pair images,
    and why runs were skipped or failed."""
    ok = [r for r in rs if r.report is not None]
    notes: list[tuple[bool, str]] = []
    _, lower, top = _eligible(ok)
    if lower:
        left = ", ".join(f"{r.method} ({_cell(r, 'coverage'):.3f})" for r in lower)
        notes.append(
            (
                False,
                f"Best value per column (bold) among the rows with the highest coverage "
                f"({top:.3f}, within {COVERAGE_TOLERANCE:g}); not eligible, scored on fewer "
                f"pixels: {left}.",
            )
        )
    timing = _timing(ok)
    said = {
        "warm": "warm: every method had run before in this process (--warmup, or an earlier "
        "case), so its start-up is not counted",
        "cold": "cold: each method's first run in this process, so they include its start-up "
        "(imports, numba compiling its kernels or loading them from the cache, reading "
        "weights); --warmup takes it out",
        "mixed": "(cold): a method's first run in this process, including its start-up "
        "(imports, numba compiling or loading kernels, reading weights); the others had run "
        "before (an earlier case); --warmup makes all warm",
    }[timing]
    if ok:
        notes.append(
            (
                False,
                "seconds: wall-clock seconds of fit + prepare + predict in memory, one method "
                f"at a time; {said}.",
            )
        )
    for seen in dict.fromkeys(r.saw_pairs for r in ok if r.saw_pairs):
        names = ", ".join(r.method for r in ok if r.saw_pairs == seen)
        notes.append(
            (
                True,
                f"{names}: the weights were trained on this case's pair date(s) {seen}: they "
                "saw the pair images (not the target), so the scene is not new to them.",
            )
        )
    for r in rs:
        if r.report is None:
            notes.append((False, f"{r.method}: {r.status}: {_short_reason(r.reason)}"))
        elif r.reason:  # what a run chose (an ensemble's members that ran)
            notes.append((False, f"{r.method}: {r.reason}"))
    return notes


def _valid(runs: Sequence[Run]) -> str:
    """The truth's valid fraction, as GUIDE asks: per band, the fraction valid in both
    images over the share of the truth's pixels the prediction covers (a run's own gaps
    cancel out), then the mean over bands."""
    for r in runs:
        if r.report is None:
            continue
        both, cover = r.report.per_band["valid_fraction"], r.report.per_band["coverage"]
        if both and all(c > 0 for c in cover):  # else a band's truth is unknown here
            truth = [v / c for v, c in zip(both, cover, strict=True)]
            return f" truth valid fraction {sum(truth) / len(truth):.3f};"
    return ""


def _case_line(case: Case, runs: Sequence[Run]) -> str:
    dates = (
        f" Pairs {', '.join(case.pair_dates)} -> {case.target_date};"
        if case.pair_dates and case.target_date
        else ""
    )
    ratio = f" R = {case.ratio:g};" if case.ratio else ""
    return (
        f"{case.description}.{dates}{ratio} data range {case.data_range};{_valid(runs)} "
        "mean over bands (SAM and ERGAS: one value over all bands)."
    )


def summary_markdown(runs: Sequence[Run], cases: Sequence[Case]) -> str:
    """Per case, the mean over bands of each metric; the best value per column in bold
    (among the rows with the highest coverage); notes under each table."""
    lines = []
    for case in cases:
        rs = [r for r in runs if r.case == case.name]
        ok = [r for r in rs if r.report is not None]
        lines += [f"### {case.name}\n", f"{_case_line(case, ok)}\n"]
        header = ["method", *_heads(ok)]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for label, cells in _rows(ok, _MD):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        notes = _notes(rs)
        if notes:
            lines.append("")
        for saw, text in notes:
            lines.append(f"- {'† ' if saw else ''}{text}")
        lines.append("")
    lines.append(f"<!-- {_made_by()} -->")  # what made the numbers, in a file a paper cites
    return "\n".join(lines) + "\n"


def _made_by() -> str:
    """stfusion's version, the digest of its code and the command: the same for two runs of
    the same command on the same code (a date would make their tables differ)."""
    import shlex

    from stfusion.provenance import code_digest

    command = " ".join(shlex.quote(a) for a in ["stfusion", *sys.argv[1:]])
    return f"made by stfusion {stfusion.__version__} (code {code_digest()}): {command}"


def _tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    out = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    out = out.replace("--", "-{}-")  # an option, not an en dash (--warmup printed as -warmup)
    return out.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


def summary_latex(runs: Sequence[Run], cases: Sequence[Case]) -> str:
    """``summary.tex``: per case a booktabs table (the columns of ``summary.md``, the best
    value per column in bold) in a ``table`` float with a caption, a label and the notes of
    ``summary.md`` below it, ready to ``\\input`` into a paper (needs
    ``\\usepackage{booktabs}``)."""
    parts = [
        "% stfusion bench: mean over bands per case; best value per column in bold, among the",
        "% rows with the highest coverage. Needs \\usepackage{booktabs}.",
        "% " + _made_by().replace("\n", " "),
        "",
    ]
    for case in cases:
        rs = [r for r in runs if r.case == case.name]
        ok = [r for r in rs if r.report is not None]
        if not ok:
            continue
        heads = [_tex(h.replace("_", " ")) for h in _heads(ok)]
        rows = [" & ".join([label, *cells]) + r" \\" for label, cells in _rows(ok, _TEX, _tex)]
        notes = [(_TEX["saw"] + " " if saw else "") + _tex(text) for saw, text in _notes(rs)]
        dates = (
            f"; pairs {', '.join(case.pair_dates)}, target {case.target_date}"
            if case.pair_dates
            else ""
        )
        ratio = f"; $R = {case.ratio:g}$" if case.ratio else ""
        parts += [
            r"\begin{table}",
            r"\centering",
            f"\\caption{{{_tex(case.name)}: {_tex(case.description)}{_tex(dates)}{ratio}; "
            f"data range {_tex(str(case.data_range))};{_valid(ok)} mean over bands "
            "(SAM and ERGAS: one value over all bands).}",
            f"\\label{{tab:stfusion-{case.name}}}",  # a slug: letters, digits, . _ -
            r"\begin{tabular}{l" + "r" * len(heads) + "}",
            r"\toprule",
            " & ".join(["method", *heads]) + r" \\",
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            r"\par\smallskip{\footnotesize",
            *[n + r"\par" for n in notes],
            "}",
            r"\end{table}",
            "",
        ]
    return "\n".join(parts)


def dropped_runs(
    earlier: Path, new: Path, cases: Sequence[Case], methods: Sequence[str]
) -> dict[str, Any]:
    """The cases and methods an earlier bench output in ``earlier`` held that a new run of
    ``cases`` x ``methods`` (written to ``new``) replacing it does not (its ``run.json``;
    empty lists when none), and its ``figures`` and ``predictions`` folders that ``new``
    lacks, with their file counts (saved predictions can take hours to make again)."""
    folders = {
        sub: sum(1 for p in (earlier / sub).rglob("*") if p.is_file())
        for sub in ("figures", "predictions")
        if (earlier / sub).is_dir() and not (new / sub).exists()
    }
    try:
        record = json.loads((earlier / "run.json").read_text())
        old_cases, old_methods = list(record["cases"]), list(record["methods"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"cases": [], "methods": [], "folders": folders}
    new_cases = {c.name for c in cases}
    return {
        "cases": [c for c in old_cases if c not in new_cases],
        "methods": [m for m in old_methods if m not in methods],
        "folders": folders,
    }


def write_predictions(
    case: Case, runs: Sequence[Run], band_names: Sequence[str], grid: Any, folder: Path
) -> list[str]:
    """Each run's prediction as ``folder/CASE/METHOD.tif`` (float32 in the case's scaled
    units, NaN nodata, on the case's fine grid), so the scores can be checked with
    ``stfusion evaluate`` and the images reused; the relative paths written."""
    from stfusion.io import write_raster
    from stfusion.provenance import code_digest

    written = []
    for r in runs:
        if r.prediction is None or grid is None:
            continue
        path = folder / case.name / f"{r.method}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        tags = {
            "STFUSION_METHOD": r.method,
            "STFUSION_PARAMS": json.dumps(r.params, default=str),
            "STFUSION_CASE": case.name,
            # what made it, as predict's outputs say (a paper's supplement cites the files)
            "STFUSION_VERSION": stfusion.__version__,
            "STFUSION_CODE": code_digest(),
        }
        if r.weights:
            tags["STFUSION_WEIGHTS"] = json.dumps(r.weights)
        if case.ratio:
            tags["STFUSION_RATIO"] = f"{case.ratio:g}"
        write_raster(path, r.prediction, grid, band_names=band_names, tags=tags)
        written.append(path.relative_to(folder.parent).as_posix())
    return written


def _short_reason(reason: str) -> str:
    """First sentence of a skip/fail reason, paths shortened to file names (runs.csv has all)."""
    depth, first = 0, reason
    for i, ch in enumerate(reason):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        # a sentence's end outside brackets ("(pip install 'x'; ...)" is cut mid-bracket)
        if ch in ".;" and depth <= 0 and reason[i + 1 : i + 2].isspace():
            first = reason[:i]
            break
    first = first.rstrip(".;")
    return re.sub(r"(?:/[^\s/:]+)+/([^\s/:]+)", r"\1", first)


# --------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class FigureStyle:
    """How the bench saves its figures: PNG always (the HTML page shows it), at ``dpi`` (None:
    screen size, 90 for the quicklooks and 80 for the scatter plots; 300 for print), and also
    in each format of ``extra`` (``"pdf"``, ``"svg"``: vector axes and text for a paper)."""

    dpi: int | None = None
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        wrong = [f for f in self.extra if f not in ("pdf", "svg")]
        if wrong or (self.dpi is not None and not 20 <= self.dpi <= 1200):
            raise InvalidParameterError(
                f"figures: formats {list(self.extra)}, dpi {self.dpi}: the other formats are "
                "'pdf' and 'svg' (PNG is always written), dpi 20-1200 (300 for print)."
            )

    def save(self, fig: Any, path: Path, screen_dpi: int) -> list[str]:
        """``fig`` as ``path`` (a .png) and its ``extra`` formats; the paths, relative."""
        fig.savefig(path, dpi=self.dpi or screen_dpi, bbox_inches="tight")  # long labels
        files = [f"figures/{path.name}"]
        import matplotlib as mpl

        for fmt in self.extra:
            other = path.with_suffix(f".{fmt}")
            # TrueType (Type 42) fonts: matplotlib's default Type 3 fonts are refused by IEEE
            # PDF eXpress and other publishers' checks.
            with mpl.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
                fig.savefig(other, dpi=self.dpi or 150, bbox_inches="tight")  # raster panels
            files.append(f"figures/{other.name}")
        return files


def case_figures(
    case: Case,
    runs: Sequence[Run],
    truth: np.ndarray,
    names: list[str],
    figdir: Path,
    style: FigureStyle = FigureStyle(),
) -> list[str]:
    """The quicklooks, error maps and scatter plots of one case; their paths (the PNGs first,
    as the HTML page shows them)."""
    from stfusion.plot import quicklook_grid, scatter_grid  # pyplot-free: the backend is kept

    name = check_case_name(case.name)  # the only part of a figure's path not fixed here
    figdir.mkdir(parents=True, exist_ok=True)
    ok = [r for r in runs if r.prediction is not None]
    if not ok:
        return []
    quantity = _quantity(truth, names)
    panels = []
    for r in ok:
        assert r.prediction is not None  # ok holds only the runs with a prediction
        rm = r.report.mean["rmse"] if r.report else float("nan")
        panels.append((r.method, f"{r.method}\nRMSE {rm:.4f}", r.prediction))
    files = []
    fig = quicklook_grid(
        truth, panels, names, case.name, error_label=f"mean |error| over bands ({quantity})"
    )
    files += style.save(fig, figdir / f"{name}_quicklook.png", 90)
    fig = scatter_grid(truth, [(m, p) for m, _, p in panels], names, quantity, case.name)
    files += style.save(fig, figdir / f"{name}_scatter.png", 80)
    return files


def _quantity(truth: np.ndarray, names: Sequence[str]) -> str:
    """What the truth measures, for axis labels: reflectance, NDVI, LST (K) or value."""
    from stfusion.methods.variables import infer_variable

    sample = truth[:, :: max(1, truth.shape[1] // 256), :: max(1, truth.shape[2] // 256)]
    var = infer_variable(sample, truth.shape[0], tuple(names))
    label = {"reflectance": "reflectance", "ndvi": "NDVI", "lst": "LST (K)"}.get(var.name, "value")
    return label + (f" x {var.scale:g}" if var.scale != 1.0 else "")


def html_page(
    runs: Sequence[Run], cases: Sequence[Case], figs: dict[str, list[str]], record: dict[str, Any]
) -> str:
    """``index.html``: the tables, figures and run record on one page."""

    def esc(x: Any) -> str:
        return html.escape(str(x))

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>stfusion bench</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}th{background:#eee}td:first-child{text-align:left}"
        ".best{font-weight:bold;background:#e6f4e6}img{max-width:100%;margin:0.5em 0}"
        ".note{font-size:90%;margin:0.2em 0}</style>",
        "</head><body><h1>stfusion bench</h1>",
        f"<p>stfusion {esc(record['stfusion_version'])}, {esc(record['created'])}; "
        f"{esc(record['machine']['cpu'])}, {esc(record['machine']['cores'])} cores; total "
        f"{record['total_seconds']:.0f} s. Metrics as pinned in docs/metrics.md (mean over "
        "bands; data range 1.0 unless a case sets its own).</p>",
    ]
    for case in cases:
        rs = [r for r in runs if r.case == case.name]
        ok = [r for r in rs if r.report is not None]
        # the dates, R, data range and truth valid fraction, as summary.md and .tex say them
        parts.append(f"<h2>{esc(case.name)}</h2><p>{esc(_case_line(case, ok))}</p>")
        parts.append(
            "<table><tr><th>method</th>"
            + "".join(f"<th>{esc(h)}</th>" for h in _heads(ok))
            + "</tr>"
        )
        best = _best(ok)
        for r, (label, cells) in zip(ok, _rows(ok, {**_HTML, "bold": "{}"}, esc)):
            row = []
            for (name, _, _), text in zip(SUMMARY_COLUMNS, cells):
                cls = " class='best'" if name in best and _cell(r, name) == best[name] else ""
                row.append(f"<td{cls}>{esc(text)}</td>")
            parts.append(f"<tr><td>{label}</td>{''.join(row)}</tr>")
        parts.append("</table>")
        for saw, text in _notes(rs):
            parts.append(f"<p class='note'>{_HTML['saw'] + ' ' if saw else ''}{esc(text)}</p>")
        for f in (f for f in figs.get(case.name, []) if f.endswith(".png")):
            parts.append(f"<img src='{esc(f)}' alt='{esc(f)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------ run record


def run_record(
    runs: Sequence[Run],
    cases: Sequence[Case],
    methods: Sequence[str],
    params: dict[str, list[str]],
    how: tuple[str, bool],
    total: float,
) -> dict[str, Any]:
    """``run.json``: what reproducing the tables needs (versions, machine, cases, parameters
    and weights of every run)."""
    return {
        "stfusion_version": stfusion.__version__,
        "made_by": _made_by(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "total_seconds": round(total, 2),
        "versions": software_versions(),
        "machine": machine_info(),
        "methods": list(methods),
        "multi_pair": how[0],
        "warmup": how[1],
        "params": params,
        "cases": {c.name: c.to_dict() for c in cases},
        "runs": [
            {
                "case": r.case,
                "method": r.method,
                "status": r.status,
                "reason": r.reason,
                "seconds": _num(r.seconds),
                "warm": r.warm,
                "peak_rss_increase_mb": _num(r.peak_rss_increase_mb),
                "params": {k: v for k, v in r.params.items() if k != "traceback"},
                "weights": r.weights,
                "weights_trained_on_pair_dates": r.saw_pairs,
            }
            for r in runs
        ],
    }


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), 4)


def machine_info() -> dict[str, Any]:
    import numba

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def software_versions() -> dict[str, Any]:
    """stfusion (and its git commit when it runs from a checkout) and the libraries the
    numbers depend on; torch only when a deep method imported it."""
    from importlib import metadata

    out: dict[str, Any] = {"stfusion": stfusion.__version__, "stfusion_git": git_commit()}
    for name in ("numpy", "numba", "scipy", "rasterio"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    rasterio = sys.modules.get("rasterio")
    out["gdal"] = getattr(rasterio, "__gdal_version__", None)
    torch = sys.modules.get("torch")  # not imported here: only recorded when a method did
    if torch is not None:
        out["torch"] = getattr(torch, "__version__", None)
    from stfusion.provenance import code_digest, plugin_packages

    out["stfusion_code"] = code_digest()
    out["plugins"] = {name: version for name, version, _ in plugin_packages()}
    return out


def git_commit() -> dict[str, Any] | None:
    """The commit of the git checkout stfusion runs from (its ``__init__.py`` tracked there,
    so an installed copy inside some other repository does not count), and whether tracked
    files differ from it; None when that cannot be told. Never raises."""
    pkg = Path(stfusion.__file__).resolve()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(pkg.parent), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return done.stdout.strip()

    try:
        git("ls-files", "--error-unmatch", pkg.name)
        commit = git("rev-parse", "HEAD")
        modified = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "modified": modified}
